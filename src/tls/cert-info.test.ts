import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidInput } from '../core/errors.ts';
import { makeCa, makeLeaf } from '../../test/helpers/certs.ts';
import { checkUpload, renewalDue, retryDelay } from './cert-info.ts';

const DAY = 86_400_000;

test('checkUpload: a matching, current certificate covering the host (wildcards as TLS clients match them)', async () => {
  const ca = await makeCa();
  const leaf = await makeLeaf(ca, ['shop.example.com', '*.apps.example.com']);
  const info = checkUpload('shop.example.com', leaf.certPem, leaf.keyPem, Date.now());
  assert.deepEqual(info.names, ['shop.example.com', '*.apps.example.com']);
  assert.equal(info.issuer, 'Berth Test CA');
  assert.match(info.fingerprint, /^[0-9a-f]{64}$/);
  assert.equal(checkUpload('x.apps.example.com', leaf.certPem, leaf.keyPem, Date.now()).fingerprint, info.fingerprint);
  // The leaf alone (no chain) is fine too.
  checkUpload('shop.example.com', leaf.leafPem, leaf.keyPem, Date.now());
});

test('checkUpload refuses, naming the field and what would be right: wrong key, other host, expired, not yet valid, bad chain, not PEM, encrypted key', async () => {
  const ca = await makeCa();
  const other = await makeCa('Other CA');
  const leaf = await makeLeaf(ca, ['shop.example.com']);
  const stranger = await makeLeaf(ca, ['shop.example.com']);
  const expired = await makeLeaf(ca, ['shop.example.com'], { notBefore: Date.now() - 10 * DAY, notAfter: Date.now() - DAY });
  const future = await makeLeaf(ca, ['shop.example.com'], { notBefore: Date.now() + DAY });
  const cases: [string, string, string, RegExp][] = [
    ['shop.example.com', leaf.certPem, stranger.keyPem, /^key: this private key does not belong to the certificate/],
    ['www.example.com', leaf.certPem, leaf.keyPem, /^cert: the certificate is for shop\.example\.com, not www\.example\.com: upload one whose subjectAltName covers www\.example\.com$/],
    ['a.shop.example.com', leaf.certPem, leaf.keyPem, /^cert: the certificate is for shop\.example\.com, not a\.shop/],
    ['shop.example.com', expired.certPem, expired.keyPem, /^cert: the certificate expired on \d{4}-/],
    ['shop.example.com', future.certPem, future.keyPem, /^cert: the certificate is not valid before/],
    ['shop.example.com', `${leaf.leafPem}\n${other.certPem}`, leaf.keyPem, /^cert: certificate 2 of the bundle did not issue certificate 1/],
    ['shop.example.com', 'hello', leaf.keyPem, /^cert: no certificate found: expected PEM/],
    ['shop.example.com', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', leaf.keyPem, /^cert: certificate 1 of the bundle is not a valid X\.509/],
    ['shop.example.com', leaf.certPem, leaf.certPem, /^key: expected a PEM private key/],
    ['shop.example.com', leaf.certPem, '-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----', /^key: the private key is encrypted/],
    ['shop.example.com', leaf.certPem, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----', /^key: not a readable PEM private key/],
  ];
  for (const [host, cert, key, re] of cases) {
    assert.throws(() => checkUpload(host, cert, key, Date.now()), (e: unknown) => e instanceof InvalidInput && re.test(e.message), String(re));
  }
});

test('renewal at 2/3 of the lifetime; backoff doubles up to its cap', () => {
  assert.equal(renewalDue({ notBefore: 0, notAfter: 90 * DAY }), 60 * DAY);
  assert.equal(renewalDue({ notBefore: 1000, notAfter: 1000 + 3 * DAY }, 0.5), 1000 + 1.5 * DAY);
  assert.deepEqual([1, 2, 3, 4, 10, 100].map((n) => retryDelay(n, 60_000, 600_000)), [60_000, 120_000, 240_000, 480_000, 600_000, 600_000]);
});
