import { X509Certificate, createPrivateKey } from 'node:crypto';
import { InvalidInput } from '../core/errors.ts';

/** What Berth knows of a certificate chain (the leaf first), read from its PEM. */
export interface CertInfo {
  /** The leaf's DNS names (subjectAltName), or its CN when it has none. */
  names: string[];
  /** The issuer's CN (or O), e.g. `Pebble Intermediate CA 317781` or `R11`. */
  issuer: string;
  notBefore: number;
  notAfter: number;
  /** SHA-256 of the leaf (hex, no colons): names the files nginx reads, so a new certificate is a config change. */
  fingerprint: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
/** Beyond any real chain: refuse before parsing megabytes. */
const MAX_PEM = 64 * 1024;

/** The certificates of a PEM bundle, in order; throws InvalidInput naming `field` when there are none or one does not parse. */
export function parseChain(pem: string, field = 'cert'): X509Certificate[] {
  if (typeof pem !== 'string' || pem.length > MAX_PEM) throw new InvalidInput(`${field}: expected PEM text of at most ${MAX_PEM / 1024} KiB`, { details: { field } });
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) {
    throw new InvalidInput(`${field}: no certificate found: expected PEM ("-----BEGIN CERTIFICATE-----"), the server's certificate first, then its intermediates`, { details: { field } });
  }
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch {
      throw new InvalidInput(`${field}: certificate ${i + 1} of the bundle is not a valid X.509 certificate`, { details: { field } });
    }
  });
}

export function certInfo(chain: readonly X509Certificate[]): CertInfo {
  const leaf = chain[0]!;
  const sans = (leaf.subjectAltName ?? '').split(/,\s*/).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4).toLowerCase());
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(leaf.subject)?.[1];
  return {
    names: sans.length > 0 ? sans : cn ? [cn.toLowerCase()] : [],
    issuer: /(?:^|\n)CN=([^\n]*)/.exec(leaf.issuer)?.[1] ?? /(?:^|\n)O=([^\n]*)/.exec(leaf.issuer)?.[1] ?? leaf.issuer,
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
    fingerprint: leaf.fingerprint256.replace(/:/g, '').toLowerCase(),
  };
}

/** Parses a PEM chain Berth itself stored or got from its CA. */
export function readCertInfo(pem: string): CertInfo {
  return certInfo(parseChain(pem));
}

/**
 * Checks an uploaded certificate and key for `host` before anything is stored: the key must be an
 * unencrypted PEM private key that matches the leaf, the leaf must cover the host (wildcards as TLS
 * clients match them), be valid now, and each further certificate must be the issuer of the one
 * before it. Throws InvalidInput naming the field (`cert` or `key`) and what would be right.
 */
export function checkUpload(host: string, certPem: string, keyPem: string, now: number): CertInfo {
  const chain = parseChain(certPem, 'cert');
  const leaf = chain[0]!;
  if (typeof keyPem !== 'string' || keyPem.length > MAX_PEM || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyPem)) {
    throw new InvalidInput('key: expected a PEM private key ("-----BEGIN PRIVATE KEY-----", RSA or EC)', { details: { field: 'key' } });
  }
  if (/ENCRYPTED/.test(keyPem)) throw new InvalidInput('key: the private key is encrypted: nginx cannot use it unattended; decrypt it first (openssl pkey -in KEY -out KEY.plain)', { details: { field: 'key' } });
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new InvalidInput('key: not a readable PEM private key', { details: { field: 'key' } });
  }
  if (!leaf.checkPrivateKey(key)) {
    throw new InvalidInput("key: this private key does not belong to the certificate (the first certificate of the bundle must be the server's own)", { details: { field: 'key' } });
  }
  const info = certInfo(chain);
  if (leaf.checkHost(host) === undefined) {
    throw new InvalidInput(`cert: the certificate is for ${info.names.join(', ') || 'no DNS name'}, not ${host}: upload one whose subjectAltName covers ${host}`, { details: { field: 'cert' } });
  }
  if (!(info.notAfter > now)) throw new InvalidInput(`cert: the certificate expired on ${new Date(info.notAfter).toISOString()}: upload a current one`, { details: { field: 'cert' } });
  if (info.notBefore > now + 5 * 60_000) throw new InvalidInput(`cert: the certificate is not valid before ${new Date(info.notBefore).toISOString()}: upload it then, or a current one`, { details: { field: 'cert' } });
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey)) {
      throw new InvalidInput(`cert: certificate ${i + 2} of the bundle did not issue certificate ${i + 1}: order the bundle leaf first, then each issuer`, { details: { field: 'cert' } });
    }
  }
  return info;
}

/**
 * When a certificate is due for renewal: at `fraction` of its lifetime (2/3 by default, as ACME
 * clients do: a 90-day certificate renews with 30 days left).
 */
export function renewalDue(info: Pick<CertInfo, 'notBefore' | 'notAfter'>, fraction = 2 / 3): number {
  return info.notBefore + Math.floor((info.notAfter - info.notBefore) * fraction);
}

/** Backoff after `failures` failed attempts in a row: base·2^(n-1), capped. */
export function retryDelay(failures: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(30, failures - 1)));
}
