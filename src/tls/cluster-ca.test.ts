import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, connect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SecretBox } from '../config/index.ts';
import { ClusterCa, checkIssued } from './cluster-ca.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'berth-ca-'));
  dirs.push(d);
  return d;
}

test('the CA is made once, kept 0600 with its keys sealed, and reopened with the same key', async () => {
  const dir = await tmp();
  const box = new SecretBox(randomBytes(32));
  const path = join(dir, 'cluster-ca.json');
  const a = await ClusterCa.open(path, box);
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  const text = await readFile(path, 'utf8');
  assert.doesNotMatch(text, /PRIVATE KEY/, 'no private key in plain text');
  const b = await ClusterCa.open(path, box);
  assert.equal(b.caPem, a.caPem);
  assert.deepEqual(b.clientMaterial(), a.clientMaterial());
  // Another secret key cannot open it: a clear error, not garbage keys.
  await assert.rejects(ClusterCa.open(path, new SecretBox(randomBytes(32))), /cannot decrypt the secret cluster-ca:key/);
  await writeFile(path, '{"version":1}');
  await assert.rejects(ClusterCa.open(path, box), /not a Berth cluster CA file .*move it away/);
});

test('an engine certificate names its addresses and is a server certificate of this CA; the client certificate is a client one', async () => {
  const { ca } = await ClusterCa.create();
  const m = await ca.issueEngine({ host: 's3h2', addresses: ['10.77.3.12'] });
  assert.equal(m.caPem, ca.caPem);
  assert.deepEqual(checkIssued(ca.caPem, m.certPem, { usage: 'server', address: '10.77.3.12' }), []);
  assert.deepEqual(checkIssued(ca.caPem, m.certPem, { usage: 'server', address: 's3h2' }), []);
  assert.match(checkIssued(ca.caPem, m.certPem, { usage: 'server', address: '10.77.3.13' }).join(), /does not name 10\.77\.3\.13/);
  assert.match(checkIssued(ca.caPem, m.certPem, { usage: 'client' }).join(), /not a TLS client certificate/);
  const c = ca.clientMaterial();
  assert.deepEqual(checkIssued(ca.caPem, c.certPem, { usage: 'client' }), []);
  assert.match(checkIssued(ca.caPem, c.certPem, { usage: 'server' }).join(), /not a TLS server certificate/);
  // Another CA's certificate is not ours; dates are checked.
  const other = (await ClusterCa.create()).ca;
  assert.match(checkIssued(ca.caPem, other.clientMaterial().certPem, { usage: 'client' }).join(), /not issued by/);
  assert.match(checkIssued(ca.caPem, c.certPem, { usage: 'client', now: Date.now() + 900 * 86_400_000 }).join(), /expired/);
  assert.deepEqual(checkIssued(ca.caPem, 'junk', { usage: 'client' }), ['not a PEM X.509 certificate']);
});

test('bad addresses are refused naming the field', async () => {
  const { ca } = await ClusterCa.create();
  await assert.rejects(ca.issueEngine({ host: 'h1', addresses: [] }), /address: the host's address .* is required/);
  await assert.rejects(ca.issueEngine({ host: 'h1', addresses: ['10.0.0.1; rm -rf /'] }), /address: "10\.0\.0\.1; rm -rf \/" is neither an IP address nor a host name/);
});

test('mutual TLS with the issued material: Berth\'s client is accepted, a client without a certificate or with another CA\'s is refused', async () => {
  const { ca } = await ClusterCa.create();
  const srv = await ca.issueEngine({ host: 'localhost', addresses: ['127.0.0.1'] });
  const server = createServer({ key: srv.keyPem, cert: srv.certPem, ca: srv.caPem, requestCert: true, rejectUnauthorized: true }, (s) => s.end('hello\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const attempt = (opts: { key?: string; cert?: string }): Promise<string> => new Promise((res) => {
    const s: TLSSocket = connect({ host: '127.0.0.1', port, ca: ca.caPem, ...opts, servername: undefined }, () => undefined);
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('end', () => res(got || 'closed'));
    s.on('error', (e) => res(`error: ${e.message}`));
  });
  try {
    const c = ca.clientMaterial();
    assert.equal(await attempt({ key: c.keyPem, cert: c.certPem }), 'hello\n');
    assert.doesNotMatch(await attempt({}), /hello/);
    const foreign = (await ClusterCa.create()).ca.clientMaterial();
    assert.doesNotMatch(await attempt({ key: foreign.keyPem, cert: foreign.certPem }), /hello/);
  } finally {
    server.close();
  }
});
