/**
 * Routes end to end (real server, Docker, nginx): one grammar for hosts and paths, hosts normalised
 * so nobody takes over another app's host by spelling it differently, upstream names that cannot
 * collide, path prefixes that stop at segment boundaries, and one app's bad route never stalling the
 * others. The apps are busybox httpd serving a few files, so each costs a container and no build.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Harness } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

/** A GET through the ingress with a Host header, on a fresh connection. */
function getHost(port: number, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 5000, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * A Compose file for an app whose one service serves `files` (path → body) with busybox httpd on
 * the port Berth allocates. `routes` is YAML for x-berth.routes.
 */
function compose(app: string, routes: string, files: Record<string, string>): string {
  const setup = Object.entries(files)
    .map(([p, body]) => `mkdir -p /www${p.slice(0, p.lastIndexOf('/'))} && echo ${body} > /www${p}`)
    .join(' && ');
  return [
    `name: ${app}`,
    'services:',
    '  web:',
    '    image: berth/busybox:latest',
    `    command: ["sh", "-c", "${setup} && exec httpd -f -p $$PORT -h /www"]`,
    '    stop_grace_period: 1s',
    '    x-berth:',
    '      port: 8080',
    `      routes: ${routes}`,
    '      health: { http: /index.html }',
    '',
  ].join('\n');
}

describe('routes', () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    h = await Harness.create({ portRange: '18100-18299' });
    await h.startServer();
    dir = await mkdtemp(join(tmpdir(), 'berth-routes-'));
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-6000));
    await h.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  const file = async (name: string, text: string) => {
    const f = join(dir, `${name}.yaml`);
    await writeFile(f, text);
    return f;
  };
  const deploy = async (f: string, ...extra: string[]) => h.cli(['deploy', '-f', f, ...extra], { timeoutMs: 120_000 });

  test('a host spelled in capitals with a trailing dot cannot take over another app\'s host (CLI 409, API 409); the first owner keeps serving', async () => {
    const owner = await file('owner', compose('owner', '["sec-case.local/"]', { '/index.html': 'owner' }));
    const d = await deploy(owner);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(await getHost(h.ingressPort, '/', 'sec-case.local'), { status: 200, body: 'owner\n' });

    const hijack = await file('hijack', compose('hijack', '["SEC-CASE.LOCAL./"]', { '/index.html': 'hijacker' }));
    const r = await deploy(hijack);
    assert.equal(r.code, 4, `expected a conflict: ${r.stderr}`);
    assert.match(r.stderr, /sec-case\.local\/ of web is already served by owner\/prod\/web/);
    // The API normalises what it is sent too (it trusts no client): IDNA capitals and the trailing dot.
    const rel = (await h.api('GET', '/v1/apps/owner/releases')).json.releases[0];
    const spec = (await h.api('GET', `/v1/apps/owner/releases/${rel.id}`)).json.release.spec;
    for (const host of ['SEC-CASE.LOCAL.', 'Sec-Case.Local', 'ｓｅｃ-case.local']) {
      const api = await h.api('POST', '/v1/apps/hijack/deployments', { env: 'prod', spec: { name: 'hijack', services: { web: { ...spec, routes: [{ host, path: '/' }] } } } });
      assert.equal(api.status, 409, `${host}: ${JSON.stringify(api.json)}`);
    }
    assert.equal((await h.api('GET', '/v1/apps/hijack')).status, 404, 'nothing of the hijacker was recorded');
    for (const host of ['sec-case.local', 'SEC-CASE.LOCAL', 'sec-case.local.']) {
      assert.deepEqual(await getHost(h.ingressPort, '/', host), { status: 200, body: 'owner\n' }, host);
    }
  });

  test('the longest hosts the grammar accepts (253 characters, exact and wildcard) are served, and stall no other app', async () => {
    const exact = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    const wild = `*.${'e'.repeat(63)}.${'f'.repeat(63)}.${'g'.repeat(63)}.${'h'.repeat(59)}`;
    assert.equal(exact.length, 253);
    assert.equal(wild.length, 253);
    const long = await file('longhost', compose('longhost', `["${exact}/", "${wild}/"]`, { '/index.html': 'long' }));
    const d = await deploy(long);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(await getHost(h.ingressPort, '/', exact), { status: 200, body: 'long\n' });
    assert.deepEqual(await getHost(h.ingressPort, '/', `x.${wild.slice(2)}`), { status: 200, body: 'long\n' });
    // Another app deployed afterwards is served too (the ingress did not stop taking changes).
    const next = await file('after-long', compose('after-long', '["after-long.local/"]', { '/index.html': 'after' }));
    const d2 = await deploy(next);
    assert.equal(d2.code, 0, d2.stderr);
    assert.deepEqual(await getHost(h.ingressPort, '/', 'after-long.local'), { status: 200, body: 'after\n' });
  });

  test('app a in env b-c and app a-b in env c are both served (upstream names cannot collide)', async () => {
    const a = await file('a', compose('a', '["abc-one.local/"]', { '/index.html': 'a-in-b-c' }));
    const ab = await file('a-b', compose('a-b', '["abc-two.local/"]', { '/index.html': 'a-b-in-c' }));
    const d1 = await deploy(a, '--env', 'b-c');
    assert.equal(d1.code, 0, d1.stderr);
    const d2 = await deploy(ab, '--env', 'c');
    assert.equal(d2.code, 0, d2.stderr);
    assert.deepEqual(await getHost(h.ingressPort, '/', 'abc-one.local'), { status: 200, body: 'a-in-b-c\n' });
    assert.deepEqual(await getHost(h.ingressPort, '/', 'abc-two.local'), { status: 200, body: 'a-b-in-c\n' });
    const conf = await h.nginxConf();
    const upstreams = [...conf.matchAll(/^ {4}upstream (\S+) \{$/gm)].map((m) => m[1]);
    assert.equal(new Set(upstreams).size, upstreams.length, `distinct upstream names: ${upstreams.join(', ')}`);
  });

  test('a path prefix stops at a segment boundary: /ux-path serves /ux-path and /ux-path/x, not /ux-pathology', async () => {
    const f = await file('pathy', compose('pathy', '["/ux-path"]', { '/index.html': 'pathy', '/ux-path/x': 'in-ux-path', '/ux-pathology': 'leaked' }));
    const d = await deploy(f);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(await getHost(h.ingressPort, '/ux-path/x', 'any.local'), { status: 200, body: 'in-ux-path\n' });
    // Exactly the prefix reaches the app (busybox httpd redirects a directory to its slash form).
    const exact = await getHost(h.ingressPort, '/ux-path', 'any.local');
    assert.notEqual(exact.body, 'no route\n', `/ux-path answered ${exact.status} ${exact.body}`);
    assert.ok(exact.status === 301 || exact.status === 302, `/ux-path answered ${exact.status}`);
    assert.deepEqual(await getHost(h.ingressPort, '/ux-pathology', 'any.local'), { status: 404, body: 'no route\n' });
  });

  test('a path with ";", "\'" or "$" is refused at deploy with file:line (CLI, exit 2) and 400 (API); nothing is recorded', async () => {
    for (const bad of ['/x;y', "/x'y", '/x$y']) {
      const f = await file('semi', compose('semi', JSON.stringify([bad]).replace(/\$/g, '$$$$'), { '/index.html': 'semi' }));
      const r = await deploy(f);
      assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
      assert.match(r.stderr, /semi\.yaml:9:\d+: services\.web\.x-berth\.routes\[0\]: .*is not a route path/, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at .*:\d+:\d+\)/, 'no stack trace');
    }
    const rel = (await h.api('GET', '/v1/apps/owner/releases')).json.releases[0];
    const spec = (await h.api('GET', `/v1/apps/owner/releases/${rel.id}`)).json.release.spec;
    for (const path of ['/x;y', "/x'y", '/x$y', '/a/../b', '/a b', '/{x}']) {
      const api = await h.api('POST', '/v1/apps/semi/deployments', { env: 'prod', spec: { name: 'semi', services: { web: { ...spec, routes: [{ path }] } } } });
      assert.equal(api.status, 400, `${path}: ${JSON.stringify(api.json)}`);
      assert.match(api.json.error.message, /spec\.services\.web\.routes\.0\.path: /);
    }
    for (const host of ['evil host', 'x.local;', 'a..b', '-x.local']) {
      const api = await h.api('POST', '/v1/apps/semi/deployments', { env: 'prod', spec: { name: 'semi', services: { web: { ...spec, routes: [{ host, path: '/' }] } } } });
      assert.equal(api.status, 400, `${host}: ${JSON.stringify(api.json)}`);
      assert.match(api.json.error.message, /spec\.services\.web\.routes\.0\.host: /);
    }
    assert.equal((await h.api('GET', '/v1/apps/semi')).status, 404);
    const ev = await h.api('GET', '/v1/events?limit=1000');
    assert.deepEqual(ev.json.events.filter((e: { app: string }) => e.app === 'semi'), [], 'not even a deployment record');
  });

  test('a stored route nginx cannot take (from before this check) stalls nobody: other apps roll out and are removed at once, the route is reported', async () => {
    const legacy = await file('legacy', compose('legacy', '["/legacy"]', { '/index.html': 'legacy', '/legacy/x': 'legacy-x' }));
    assert.equal((await deploy(legacy)).code, 0);
    const good = await file('good', compose('good', '["/good"]', { '/index.html': 'good', '/good/x': 'good-v1' }));
    assert.equal((await deploy(good)).code, 0);
    // What an older Berth accepted: a path with ';' in a stored release. Such a release is there when
    // the upgraded server starts (a running server reads a release's routes once: they never change).
    await h.killServer('SIGTERM');
    const db = new Database(join(h.dataDir, 'berth.db'));
    try {
      db.pragma('busy_timeout = 5000');
      const n = db.prepare(`UPDATE releases SET spec = json_set(spec, '$.routes[0].path', '/legacy;evil') WHERE app = 'legacy'`).run().changes;
      assert.ok(n >= 1);
    } finally {
      db.close();
    }
    await h.startServer();
    // The table rendered at start has the bad route in it; so does the next change: a new release of another app.
    const t0 = Date.now();
    const v2 = await file('good', compose('good', '["/good"]', { '/index.html': 'good', '/good/x': 'good-v2' }));
    const d = await h.cli(['deploy', '-f', v2, '--timeout', '25'], { timeoutMs: 60_000 });
    assert.equal(d.code, 0, d.stderr);
    const ms = Date.now() - t0;
    assert.ok(ms < 25_000, `rollout took ${ms} ms`);
    assert.deepEqual(await getHost(h.ingressPort, '/good/x', 'any.local'), { status: 200, body: 'good-v2\n' });
    await waitFor(async () => {
      const ev = await h.api('GET', '/v1/events?app=legacy');
      return ev.json.events.some((e: { kind: string; message: string }) => e.kind === 'route.refused' && e.message.includes('/legacy;evil'));
    }, { timeoutMs: 10_000, intervalMs: 200, what: 'a route.refused event for legacy' });
    // Removing an app takes its containers away without waiting on the broken route.
    assert.equal((await h.cli(['rm', 'good'])).code, 0);
    await waitFor(async () => (await h.containers('good')).length === 0, { timeoutMs: 20_000, intervalMs: 200, what: 'good\'s containers removed' });
    assert.equal((await getHost(h.ingressPort, '/good/x', 'any.local')).status, 404);
  });
});
