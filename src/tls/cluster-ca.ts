import { X509Certificate, randomBytes, webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import { InvalidInput } from '../core/errors.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import type { SecretBox } from '../config/index.ts';

x509.cryptoProvider.set(webcrypto as never);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;
/** The CA outlives any host's certificate; hosts re-run the join step to renew (renewal is not automated yet). */
const CA_DAYS = 3650;
const LEAF_DAYS = 825;
const KEY_AAD = 'cluster-ca:key';
const CLIENT_KEY_AAD = 'cluster-ca:client-key';
/** A host's certificate names: Docker node names and DNS names (letters, digits, dots, dashes). */
const NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$/;

/** PEM material for one TLS party: its certificate and key, and the CA that both sides trust. */
export interface TlsMaterial {
  caPem: string;
  certPem: string;
  keyPem: string;
}

interface CaFile {
  version: 1;
  caCert: string;
  caKey: SealedJson;
  clientCert: string;
  clientKey: SealedJson;
}

interface SealedJson { ciphertext: string; iv: string; tag: string }

function sealJson(box: SecretBox, text: string, aad: string): SealedJson {
  const s = box.seal(text, aad);
  return { ciphertext: s.ciphertext.toString('base64'), iv: s.iv.toString('base64'), tag: s.tag.toString('base64') };
}

function openJson(box: SecretBox, s: SealedJson, aad: string): string {
  return box.open({ ciphertext: Buffer.from(s.ciphertext, 'base64'), iv: Buffer.from(s.iv, 'base64'), tag: Buffer.from(s.tag, 'base64') }, aad);
}

async function keyPem(k: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', k), 'PRIVATE KEY');
}

async function importKey(pem: string): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decode(pem)[0]!, ALG, false, ['sign']);
}

function serial(): string {
  // Positive 16-byte serial (RFC 5280: at most 20 octets, unique per CA).
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f | 0x01;
  return b.toString('hex');
}

/**
 * Berth's cluster CA: the trust between the control plane and every host's Docker engine (issue 13
 * item 4). Each host's dockerd listens on TCP 2376 with `--tlsverify`, a server certificate from this
 * CA and this CA as the only client CA; Berth connects with the one client certificate the CA issued
 * to it. So a host's engine answers Berth and nobody else (not a plain TCP client, not a certificate
 * of another CA), and Berth talks only to engines whose certificate names the address it dialled.
 * Kept in `DATA/cluster-ca.json` (0600): certificates in PEM, the CA's and the client's private keys
 * sealed with the server's secret key (AES-256-GCM, like every other secret).
 */
export class ClusterCa {
  private constructor(
    readonly caPem: string,
    private readonly caKey: webcrypto.CryptoKey,
    private readonly client: { certPem: string; keyPem: string },
  ) {}

  /** Opens the CA kept at `path`, or makes one (and Berth's client certificate) there. */
  static async open(path: string, box: SecretBox, now = Date.now()): Promise<ClusterCa> {
    const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (text !== undefined) {
      let f: CaFile;
      try {
        f = JSON.parse(text) as CaFile;
        if (f.version !== 1 || !f.caCert || !f.caKey || !f.clientCert || !f.clientKey) throw new Error('missing fields');
      } catch (e) {
        throw new InvalidInput(`${path}: not a Berth cluster CA file (${(e as Error).message}); move it away to make a new CA (every host then needs the join step again)`);
      }
      const caKeyPem = openJson(box, f.caKey, KEY_AAD);
      return new ClusterCa(f.caCert, await importKey(caKeyPem), { certPem: f.clientCert, keyPem: openJson(box, f.clientKey, CLIENT_KEY_AAD) });
    }
    const ca = await ClusterCa.create(now);
    const file: CaFile = {
      version: 1, caCert: ca.caPem, caKey: sealJson(box, ca.caKeyPem, KEY_AAD),
      clientCert: ca.ca.client.certPem, clientKey: sealJson(box, ca.ca.client.keyPem, CLIENT_KEY_AAD),
    };
    await writeFileAtomic(path, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
    return ca.ca;
  }

  /** A new CA in memory (tests; `open` keeps one on disk). */
  static async create(now = Date.now(), name = 'Berth cluster CA'): Promise<{ ca: ClusterCa; caPem: string; caKeyPem: string }> {
    const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(), name: `CN=${name} ${randomBytes(4).toString('hex')},O=Berth`, notBefore: new Date(now - DAY), notAfter: new Date(now + CA_DAYS * DAY),
      keys, signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const caPem = cert.toString('pem');
    const caKeyPem = await keyPem(keys.privateKey);
    const partial = new ClusterCa(caPem, keys.privateKey, { certPem: '', keyPem: '' });
    const client = await partial.issue({ cn: 'berth-control-plane', usage: 'client', names: [], now });
    return { ca: new ClusterCa(caPem, keys.privateKey, { certPem: client.certPem, keyPem: client.keyPem }), caPem, caKeyPem };
  }

  /** What Berth's Docker clients present to hosts' engines (and the CA they verify the engines with). */
  clientMaterial(): TlsMaterial {
    return { caPem: this.caPem, certPem: this.client.certPem, keyPem: this.client.keyPem };
  }

  /**
   * A host engine's server certificate for its addresses and names (what `berth host add --address`
   * prints into the join step). Throws InvalidInput naming `address` when one is neither an IP nor a
   * host name.
   */
  async issueEngine(o: { host: string; addresses: string[]; now?: number }): Promise<TlsMaterial> {
    if (o.addresses.length === 0) throw new InvalidInput('address: the host\'s address Berth reaches its engine on is required (an IP address or DNS name)', { details: { field: 'address' } });
    for (const a of [o.host, ...o.addresses]) {
      if (!isIP(a) && !NAME.test(a)) throw new InvalidInput(`address: "${a}" is neither an IP address nor a host name`, { details: { field: 'address' } });
    }
    return this.issue({ cn: o.host, usage: 'server', names: [...new Set([...o.addresses, o.host])], now: o.now ?? Date.now() });
  }

  /** A client certificate under this CA (Berth's own is made once; tests use this for a second client). */
  async issueClient(cn: string, now = Date.now()): Promise<TlsMaterial> {
    return this.issue({ cn, usage: 'client', names: [], now });
  }

  private async issue(o: { cn: string; usage: 'server' | 'client'; names: string[]; now: number }): Promise<TlsMaterial> {
    const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
    const ca = new x509.X509Certificate(this.caPem);
    const sans = o.names.map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }));
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(), subject: `CN=${o.cn},O=Berth`, issuer: ca.subject,
      notBefore: new Date(o.now - DAY), notAfter: new Date(o.now + LEAF_DAYS * DAY),
      publicKey: keys.publicKey, signingKey: this.caKey, signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([o.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false),
        await x509.AuthorityKeyIdentifierExtension.create(ca, false),
        ...(sans.length ? [new x509.SubjectAlternativeNameExtension(sans, false)] : []),
      ],
    });
    return { caPem: this.caPem, certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey) };
  }
}

/**
 * Checks TLS material a host presents or Berth issued: the certificate was signed by the CA, is valid
 * at `now`, carries the usage (server/client), and — for a server — names `address`. The reasons it
 * fails, in words (empty when it is fine).
 */
export function checkIssued(caPem: string, certPem: string, o: { usage: 'server' | 'client'; address?: string; now?: number }): string[] {
  const problems: string[] = [];
  let ca: X509Certificate;
  let cert: X509Certificate;
  try {
    ca = new X509Certificate(caPem);
    cert = new X509Certificate(certPem);
  } catch {
    return ['not a PEM X.509 certificate'];
  }
  const now = o.now ?? Date.now();
  if (!cert.verify(ca.publicKey) || !cert.checkIssued(ca)) problems.push(`not issued by ${ca.subject.replace(/\n/g, ', ')}`);
  if (Date.parse(cert.validFrom) > now) problems.push(`not valid before ${cert.validFrom}`);
  if (Date.parse(cert.validTo) < now) problems.push(`expired ${cert.validTo}`);
  const eku = cert.keyUsage ?? [];
  const want = o.usage === 'server' ? '1.3.6.1.5.5.7.3.1' : '1.3.6.1.5.5.7.3.2';
  if (!eku.includes(want)) problems.push(`not a TLS ${o.usage} certificate`);
  if (o.address !== undefined) {
    const ok = isIP(o.address) ? cert.checkIP(o.address) !== undefined : cert.checkHost(o.address) !== undefined;
    if (!ok) problems.push(`does not name ${o.address} (names: ${cert.subjectAltName ?? 'none'})`);
  }
  return problems;
}
