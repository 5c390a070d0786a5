/**
 * HTTPS end to end: a real `berth server` with a real nginx, and Debian's `pebble` (an ACME test CA)
 * run by this test. Pebble validates HTTP-01 by connecting to the route's host name, which a tiny
 * resolver here answers with 127.0.0.1, on the ingress's HTTP port: no traffic leaves loopback.
 * Pebble's CAs are trusted only where they must be: its listener's CA by Berth's ACME client
 * (BERTH_ACME_CA_FILE), its issuing root by this test's TLS client. The API itself serves TLS with a
 * certificate from a CA of this test, trusted by the harness and, for the CLI, NODE_EXTRA_CA_CERTS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, freePort } from './helpers/harness.ts';
import { makeCa, makeLeaf, type TestCa } from './helpers/certs.ts';
import { startPebble, type Pebble } from './helpers/pebble.ts';
import { waitFor } from '../src/lib/backoff.ts';

interface TlsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  fingerprint: string;
}

/** A GET over TLS to 127.0.0.1:port naming `host` (SNI, Host, and the name the certificate must match), verified against `ca` only. */
function tlsGet(port: number, host: string, path: string, ca: string | undefined): Promise<TlsAnswer> {
  return new Promise((res, rej) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, servername: host, headers: { host }, agent: false, timeout: 5000, ...(ca ? { ca } : {}) }, (r) => {
      const fingerprint = (r.socket as import('node:tls').TLSSocket).getPeerX509Certificate?.()?.fingerprint256 ?? '';
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, headers: r.headers, body, fingerprint }));
      r.on('error', rej);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

function httpGet(port: number, host: string, path: string): Promise<{ status: number; location?: string; body: string }> {
  return new Promise((res, rej) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false, timeout: 5000, headers: { host } }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, ...(r.headers.location ? { location: r.headers.location } : {}), body }));
      r.on('error', rej);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

/** busybox httpd serving `files` on $PORT, with `routes` (YAML) as x-berth.routes. */
function compose(app: string, routes: string, files: Record<string, string>): string {
  const setup = Object.entries(files).map(([p, body]) => `mkdir -p /www${p.slice(0, p.lastIndexOf('/'))} && echo ${body} > /www${p}`).join(' && ');
  return [
    `name: ${app}`, 'services:', '  web:', '    image: berth/busybox:latest',
    `    command: ["sh", "-c", "${setup} && exec httpd -f -p $$PORT -h /www"]`, '    stop_grace_period: 1s',
    '    x-berth:', '      port: 8080', `      routes: ${routes}`, '      health: { http: /index.html }', '',
  ].join('\n');
}

describe('https', () => {
  let h: Harness;
  let dir: string;
  let pebble: Pebble | undefined;
  /** Pebble's issuing root: what a browser would trust. */
  let pebbleRoot: string;
  let httpsPort: number;
  let apiCa: TestCa;
  const cliEnv = () => ({ NODE_EXTRA_CA_CERTS: join(dir, 'api-ca.pem') });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-https-'));
    httpsPort = await freePort();
    // The API's own certificate.
    apiCa = await makeCa('Berth API test CA');
    const api = await makeLeaf(apiCa, ['127.0.0.1', 'localhost']);
    await writeFile(join(dir, 'api-ca.pem'), apiCa.certPem);
    await writeFile(join(dir, 'api.crt'), api.certPem);
    await writeFile(join(dir, 'api.key'), api.keyPem);
    const acmeEnv: Record<string, string> = {};
    h = await Harness.create({
      portRange: '19200-19299', apiCa: apiCa.certPem,
      env: Object.assign(acmeEnv, {
        BERTH_ACME_EMAIL: 'ops@example.com', BERTH_INGRESS_HTTPS_PORT: String(httpsPort),
        BERTH_API_TLS_CERT: join(dir, 'api.crt'), BERTH_API_TLS_KEY: join(dir, 'api.key'),
      }),
    });
    // Pebble validates on this server's ingress port; its directory goes into the server's environment.
    pebble = await startPebble(dir, h.ingressPort);
    pebbleRoot = pebble.root;
    Object.assign(acmeEnv, { BERTH_ACME_DIRECTORY: pebble.directoryUrl, BERTH_ACME_CA_FILE: pebble.listenerCaFile });
    await h.startServer();
  });

  after(async () => {
    if (process.exitCode) console.error(`${h?.serverLog.slice(-6000)}\npebble:\n${pebble?.log().slice(-4000)}`);
    pebble?.stop();
    await h?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  const file = async (name: string, text: string) => {
    const f = join(dir, `${name}.yaml`);
    await writeFile(f, text);
    return f;
  };
  const certs = async () => {
    const r = await h.cli(['certs', '--json'], { env: cliEnv() });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { host: string; status: string; source?: string; issuer?: string; fingerprint?: string; lastError?: string; notAfter?: number }[];
  };
  const certOf = async (host: string) => (await certs()).find((c) => c.host === host);

  test('ACME: pebble issues a certificate through the ingress; served over TLS with a chain that verifies against pebble\'s root; HTTP redirects (308) except where asked; HSTS where asked', async () => {
    const t0 = Date.now();
    const f = await file('shop', compose('shop', '[{host: shop.example.com, hsts: 1h}, {host: shop.example.com, path: /plain, redirect: false}, /any]',
      { '/index.html': 'shop', '/plain/x': 'plain', '/any/x': 'any' }));
    const d = await h.cli(['deploy', '-f', f], { env: cliEnv(), timeoutMs: 120_000 });
    assert.equal(d.code, 0, d.stderr);
    const served = await waitFor(async () => tlsGet(httpsPort, 'shop.example.com', '/', pebbleRoot).catch(() => undefined), { timeoutMs: 60_000, intervalMs: 100, what: 'the host to be served over TLS' });
    const issuanceMs = Date.now() - t0;
    console.log(`# certificate issued and served ${issuanceMs} ms after the deploy started`);
    assert.equal(served.status, 200);
    assert.equal(served.body, 'shop\n');
    assert.equal(served.headers['strict-transport-security'], 'max-age=3600');
    // The chain is really verified: a client that trusts only the system store refuses it.
    await assert.rejects(tlsGet(httpsPort, 'shop.example.com', '/', undefined), /self.signed|unable to (get|verify)/i);
    // ... and a client asking for another name is refused at the handshake (never shown this certificate).
    await assert.rejects(tlsGet(httpsPort, 'other.example.com', '/', pebbleRoot), /alert|handshake|unrecognized name|socket hang up|ECONNRESET/i);
    // Browsers get HTTP/2 (ALPN); clients that do not ask keep HTTP/1.1 (as above).
    const alpn = await new Promise<string | false>((res, rej) => {
      const s = tlsConnect({ host: '127.0.0.1', port: httpsPort, servername: 'shop.example.com', ca: pebbleRoot, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
        res(s.alpnProtocol ?? false);
        s.end();
      });
      s.on('error', rej);
    });
    assert.equal(alpn, 'h2');
    const plainTls = await tlsGet(httpsPort, 'shop.example.com', '/plain/x', pebbleRoot);
    assert.deepEqual([plainTls.status, plainTls.body, plainTls.headers['strict-transport-security']], [200, 'plain\n', undefined]);

    const c = await certOf('shop.example.com');
    assert.equal(c?.status, 'valid');
    assert.equal(c?.source, 'acme');
    assert.match(c?.issuer ?? '', /^Pebble Intermediate CA/);
    assert.equal(served.fingerprint.replace(/:/g, '').toLowerCase(), c?.fingerprint);
    // HTTP: 308 to HTTPS (method and body kept), but /plain stays plain and challenges are never redirected.
    assert.deepEqual(await httpGet(h.ingressPort, 'shop.example.com', '/?q=1'), { status: 308, location: `https://shop.example.com:${httpsPort}/?q=1`, body: (await httpGet(h.ingressPort, 'shop.example.com', '/?q=1')).body });
    assert.deepEqual(await httpGet(h.ingressPort, 'shop.example.com', '/plain/x'), { status: 200, body: 'plain\n' });
    assert.equal((await httpGet(h.ingressPort, 'shop.example.com', '/.well-known/acme-challenge/none')).status, 404);
    // The route without a host gets no certificate, and is served on HTTP for any host.
    assert.deepEqual((await certs()).map((x) => x.host), ['shop.example.com']);
    assert.deepEqual(await httpGet(h.ingressPort, 'any.example.net', '/any/x'), { status: 200, body: 'any\n' });

    const ev = await h.api('GET', '/v1/events?app=shop&limit=1000');
    const issued = ev.json.events.filter((e: { kind: string }) => e.kind === 'cert.issued');
    assert.equal(issued.length, 1);
    assert.match(issued[0].message, /^certificate for shop\.example\.com issued by Pebble Intermediate CA \S+ in \d+ ms/);
    console.log(`# ACME order to certificate: ${/in (\d+) ms/.exec(issued[0].message)![1]} ms`);
    // Keys: sealed in tls.db, in clear only in root-only files for nginx.
    const cluster = (await readFile(join(h.dataDir, 'cluster-id'), 'utf8')).trim();
    const tlsDir = join('/run/berth', cluster, 'tls');
    assert.equal((await stat(tlsDir)).mode & 0o777, 0o700);
    assert.ok((await readFile('/proc/self/mounts', 'utf8')).split('\n').some((l) => l.split(' ')[1] === tlsDir && l.split(' ')[2] === 'tmpfs'), `${tlsDir} is a tmpfs`);
    const keyFile = (await readdir(tlsDir)).find((n) => n.startsWith('shop.example.com.') && n.endsWith('.key'))!;
    assert.equal((await stat(join(tlsDir, keyFile))).mode & 0o777, 0o600);
    const keyBody = (await readFile(join(tlsDir, keyFile), 'utf8')).split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    for (const n of (await readdir(h.dataDir)).filter((x) => x.startsWith('tls.db'))) {
      assert.ok(!(await readFile(join(h.dataDir, n))).toString('latin1').includes(keyBody.slice(0, 40)), `${n} holds the key in clear`);
    }
  });

  test('renewal swaps the certificate with an nginx reload and drops no request of a load loop over TLS', async () => {
    const before = await certOf('shop.example.com');
    assert.ok(before?.fingerprint);
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const seen = new Set<string>();
    const loop = async () => {
      const deadline = Date.now() + 60_000;
      for (let i = 0; i < 4000 && !stop && Date.now() < deadline; i++) {
        try {
          const r = await tlsGet(httpsPort, 'shop.example.com', '/', pebbleRoot);
          if (r.status === 200 && r.body === 'shop\n') {
            ok++;
            seen.add(r.fingerprint.replace(/:/g, '').toLowerCase());
          } else failures.push(`HTTP ${r.status} ${r.body.slice(0, 80)}`);
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    const loops = [loop(), loop(), loop()];
    const r = await h.cli(['cert', 'renew', 'shop.example.com', '--json'], { env: cliEnv(), timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const renewed = JSON.parse(r.stdout) as { fingerprint: string; status: string };
    assert.equal(renewed.status, 'valid');
    assert.notEqual(renewed.fingerprint, before.fingerprint);
    // Keep loading until the new certificate is what clients get.
    await waitFor(async () => seen.has(renewed.fingerprint), { timeoutMs: 20_000, intervalMs: 50, what: 'the renewed certificate to be served' });
    stop = true;
    await Promise.all(loops);
    assert.deepEqual(failures, [], `${failures.length} of ${ok + failures.length} requests failed`);
    assert.ok(seen.has(before.fingerprint) && ok > 20, `the loop ran across the swap (${ok} requests)`);
    console.log(`# renewal under load: ${ok} TLS requests, 0 failed, served ${seen.size} certificates`);
    const ev = await h.api('GET', '/v1/events?app=shop&limit=1000');
    assert.equal(ev.json.events.filter((e: { kind: string }) => e.kind === 'cert.renewed').length, 1);
  });

  test('uploads: a mismatched key, an expired certificate or one for another host is refused (exit 2, nothing changed); a good one is served and never touched by ACME; rm lets ACME take over', async () => {
    const ca = await makeCa('Uploaded test CA');
    const good = await makeLeaf(ca, ['up.example.com']);
    const other = await makeLeaf(ca, ['other.example.com']);
    const expired = await makeLeaf(ca, ['up.example.com'], { notBefore: Date.now() - 10 * 86_400_000, notAfter: Date.now() - 60_000 });
    const put = async (name: string, leaf: { certPem: string; keyPem: string }, key = leaf.keyPem) => {
      await writeFile(join(dir, `${name}.crt`), leaf.certPem);
      await writeFile(join(dir, `${name}.key`), key);
      return h.cli(['cert', 'add', 'up.example.com', '--cert', join(dir, `${name}.crt`), '--key', join(dir, `${name}.key`), '--json'], { env: cliEnv() });
    };
    for (const [name, leaf, key, re] of [
      ['mismatch', good, other.keyPem, /key: this private key does not belong to the certificate/],
      ['expired', expired, expired.keyPem, /cert: the certificate expired on/],
      ['otherhost', other, other.keyPem, /cert: the certificate is for other\.example\.com, not up\.example\.com/],
    ] as const) {
      const r = await put(name, leaf, key);
      assert.equal(r.code, 2, `${name}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.equal(JSON.parse(r.stderr).error.code, 'invalid_input');
      assert.match(JSON.parse(r.stderr).error.message, re);
      assert.equal(await certOf('up.example.com'), undefined, `${name}: nothing stored`);
    }
    const missing = await h.cli(['cert', 'add', 'up.example.com', '--cert', join(dir, 'nope.crt'), '--key', join(dir, 'nope.key')], { env: cliEnv() });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--cert .*nope\.crt: cannot read it \(ENOENT\)/);

    const ok = await put('good', good);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).status, 'unused', 'no route of the host yet');
    const f = await file('up', compose('up', '[up.example.com]', { '/index.html': 'up' }));
    const d = await h.cli(['deploy', '-f', f], { env: cliEnv(), timeoutMs: 120_000 });
    assert.equal(d.code, 0, d.stderr);
    const served = await waitFor(async () => tlsGet(httpsPort, 'up.example.com', '/', ca.certPem).catch(() => undefined), { timeoutMs: 30_000, intervalMs: 100, what: 'the uploaded certificate to be served' });
    assert.equal(served.body, 'up\n');
    assert.equal(served.fingerprint, new X509Certificate(good.leafPem).fingerprint256);
    const listed = await certOf('up.example.com');
    assert.deepEqual([listed?.status, listed?.source, listed?.issuer], ['valid', 'upload', 'Uploaded test CA']);
    const renew = await h.cli(['cert', 'renew', 'up.example.com', '--json'], { env: cliEnv() });
    assert.equal(renew.code, 4, renew.stderr);
    assert.match(JSON.parse(renew.stderr).error.message, /was uploaded: renew it by uploading a new one/);

    const rm = await h.cli(['cert', 'rm', 'up.example.com', '--json'], { env: cliEnv() });
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual(JSON.parse(rm.stdout), { removed: 'up.example.com' });
    const rm2 = await h.cli(['cert', 'rm', 'never.example.com'], { env: cliEnv() });
    assert.equal(rm2.code, 3, rm2.stderr);
    assert.match(rm2.stderr, /no certificate stored for never\.example\.com/);
    // The route still asks: ACME gets one.
    const acme = await waitFor(async () => tlsGet(httpsPort, 'up.example.com', '/', pebbleRoot).catch(() => undefined), { timeoutMs: 60_000, intervalMs: 100, what: 'an ACME certificate after rm' });
    assert.equal(acme.body, 'up\n');
  });

  test('a host the CA cannot validate: a cert.failed event with the reason, backoff, served over HTTP meanwhile', async () => {
    const f = await file('nx', compose('nx', '[nxdomain-shop.example.com]', { '/index.html': 'nx' }));
    const d = await h.cli(['deploy', '-f', f], { env: cliEnv(), timeoutMs: 120_000 });
    assert.equal(d.code, 0, d.stderr);
    const c = await waitFor(async () => {
      const x = await certOf('nxdomain-shop.example.com');
      return x?.status === 'failed' ? x : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'the ACME attempt to fail' });
    assert.match(c.lastError ?? '', /ACME for nxdomain-shop\.example\.com failed while .*(NXDOMAIN|DNS|no valid A|dns)/i);
    const ev = await h.api('GET', '/v1/events?app=nx&limit=100');
    const failed = ev.json.events.filter((e: { kind: string }) => e.kind === 'cert.failed');
    assert.equal(failed.length, 1, 'one attempt, then backoff (BERTH_ACME_RETRY_S, 60 s)');
    assert.match(failed[0].message, /not issued \(attempt 1, next at .*served over HTTP only meanwhile/);
    assert.deepEqual(await httpGet(h.ingressPort, 'nxdomain-shop.example.com', '/'), { status: 200, body: 'nx\n' });
  });

  test('the API serves TLS: plain HTTP is refused, the CLI trusts a private CA through NODE_EXTRA_CA_CERTS, a renewed API certificate is taken without a restart', async () => {
    const info = JSON.parse(await readFile(join(h.dataDir, 'server.json'), 'utf8'));
    assert.equal(info.url, `https://127.0.0.1:${h.apiPort}`);
    await assert.rejects(fetch(`http://127.0.0.1:${h.apiPort}/v1/ping`).then(async (r) => {
      if (r.status === 200) return r;
      throw new Error(`HTTP ${r.status}`);
    }));
    const untrusted = await h.cli(['certs']);
    assert.equal(untrusted.code, 6, untrusted.stderr);
    assert.match(untrusted.stderr, /cannot reach the Berth server at https:/);
    const fp = () => new Promise<string>((res, rej) => {
      const s = tlsConnect({ host: '127.0.0.1', port: h.apiPort, ca: apiCa.certPem, servername: 'localhost' }, () => {
        res(s.getPeerX509Certificate()!.fingerprint256);
        s.end();
      });
      s.on('error', rej);
    });
    const first = await fp();
    const next = await makeLeaf(apiCa, ['127.0.0.1', 'localhost']);
    await writeFile(join(dir, 'api.key'), next.keyPem);
    await writeFile(join(dir, 'api.crt'), next.certPem);
    const want = new X509Certificate(next.leafPem).fingerprint256;
    await waitFor(async () => (await fp()) === want, { timeoutMs: 20_000, intervalMs: 200, what: 'the new API certificate' });
    assert.notEqual(first, want);
    assert.equal((await h.api('GET', '/v1/ping')).status, 200);
  });
});
