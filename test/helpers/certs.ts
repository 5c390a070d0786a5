/**
 * Certificates for tests (uploads, the API's TLS, a CA for pebble's listener): a CA and leaves with
 * any names and dates, made with @peculiar/x509 over Node's WebCrypto. Nothing here is trusted by
 * anything but the test that made it.
 */
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface TestCa {
  certPem: string;
  keyPem: string;
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
}

export interface TestLeaf {
  /** Leaf, then the CA. */
  certPem: string;
  keyPem: string;
  leafPem: string;
}

async function keyPem(k: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', k), 'PRIVATE KEY');
}

let serial = 1;
function nextSerial(): string {
  return (serial++).toString(16).padStart(4, '0') + Date.now().toString(16);
}

export async function makeCa(name = 'Berth Test CA'): Promise<TestCa> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(), name: `CN=${name}`, notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 30 * DAY), keys, signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(true, 1, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return { certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey), cert, keys };
}

/** A server certificate for `names` (DNS names or IP addresses) signed by `ca`. */
export async function makeLeaf(ca: TestCa, names: string[], o: { notBefore?: number; notAfter?: number } = {}): Promise<TestLeaf> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  const ip = (n: string) => /^[\d.]+$/.test(n) || n.includes(':');
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(), subject: `CN=${names[0]}`, issuer: ca.cert.subject,
    notBefore: new Date(o.notBefore ?? Date.now() - DAY), notAfter: new Date(o.notAfter ?? Date.now() + 20 * DAY),
    signingKey: ca.keys.privateKey, publicKey: keys.publicKey, signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: ip(n) ? 'ip' as const : 'dns' as const, value: n }))),
    ],
  });
  const leafPem = cert.toString('pem');
  return { certPem: `${leafPem}\n${ca.certPem}\n`, keyPem: await keyPem(keys.privateKey), leafPem };
}
