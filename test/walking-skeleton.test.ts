/**
 * The walking skeleton end to end: a real `berth server`, Docker Engine and nginx.
 * Deploy 3 replicas → traffic reaches all; kill one → replaced and out of the upstreams;
 * server SIGKILL under load → no failed request, the same containers adopted; scale 3→5→1; rm.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Harness, ROOT, docker, get, load, threadNices } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { findMaster } from '../src/ingress/index.ts';

const COMPOSE = join(ROOT, 'test/fixtures/apps/web/compose.yaml');

describe('walking skeleton', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.create({ portRange: '31000-31999' });
    await h.startServer();
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-5000));
    await h.cleanup();
  });

  const whoami = async () => JSON.parse((await get(h.ingressPort, '/api/whoami')).body) as { instance: string; version: string; port: number };
  const healthyIds = async () => {
    const st = await h.status('e2e');
    const web = st.services.find((s: { name: string }) => s.name === 'web');
    return { web, ids: web.instances.filter((i: { health: string; state: string }) => i.health === 'healthy' && i.state === 'running').map((i: { id: string }) => i.id) as string[] };
  };

  test('the server and the nginx it starts run ahead of the host\'s other work: nice -5 on every thread (BERTH_NICE)', async () => {
    // The server starts at this test's own value: -5 unless that is already lower (kept, then).
    const own = (await threadNices(process.pid))[0]!;
    const want = Math.min(own, -5);
    const server = h.proc!.pid!;
    assert.deepEqual([...new Set(await threadNices(server))], [want], `every thread of the server (the test runs at ${own})`);
    const nginx = await findMaster(join(h.dataDir, 'nginx'));
    assert.ok(nginx, 'nginx runs');
    assert.deepEqual([...new Set(await threadNices(nginx))], [want], 'nginx inherits it');
  });

  test('every API route needs a bearer token', async () => {
    assert.equal((await h.api('GET', '/v1/ping', undefined, null)).status, 401);
    assert.equal((await h.api('GET', '/v1/apps', undefined, 'wrong-token')).status, 401);
    const noTok = await h.api('POST', '/v1/apps/x/deployments', {}, null);
    assert.equal(noTok.status, 401);
    assert.match(noTok.json.error.message, /bearer token/);
    const ok = await h.api('GET', '/v1/ping');
    assert.equal(ok.status, 200);
    assert.equal(ok.json.ok, true);
  });

  test('deploy 3 replicas: 60 requests through nginx reach all 3 instances', async () => {
    const r = await h.cli(['deploy', '-f', COMPOSE]);
    assert.equal(r.code, 0, `deploy failed: ${r.stderr}`);
    const { web, ids } = await healthyIds();
    assert.equal(web.desired, 3);
    assert.equal(ids.length, 3, JSON.stringify(web.instances));
    const seen = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const w = await whoami();
      seen.set(w.instance, (seen.get(w.instance) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), [...ids].sort(), 'requests reached exactly the healthy instances');
    // Every instance runs with host networking on its own allocated port and records its host.
    for (const i of web.instances) {
      assert.ok(i.port >= 31000 && i.port <= 31999, `port ${i.port} in the range`);
      assert.ok(i.host.length > 0);
    }
    const c = (await h.containers('e2e'))[0]!;
    const mode = await docker('inspect', '--format', '{{.HostConfig.NetworkMode}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config "max-size"}}', c.id);
    assert.equal(mode, 'host no json-file 10m');
  });

  test('berth logs: every replica\'s lines, prefixed with the instance, searchable', async () => {
    const { ids } = await healthyIds();
    await waitFor(async () => {
      const r = await h.cli(['logs', 'e2e', '--grep', 'listening']);
      return r.code === 0 && ids.every((id) => r.stdout.includes(`web/${id} | `));
    }, { timeoutMs: 10_000, intervalMs: 300, what: 'a listening line from every instance' });
    const j = await h.cli(['--json', 'logs', 'e2e/web', '--grep', 'listening', '-n', '2']);
    const lines = JSON.parse(j.stdout);
    assert.equal(lines.length, 2);
    assert.ok(lines.every((l: { text: string; service: string }) => /listening/.test(l.text) && l.service === 'web'));
    const none = await h.cli(['logs', 'e2e', '--grep', 'no-such-word-anywhere']);
    assert.equal(none.stdout, '');
    assert.equal((await h.cli(['logs', 'e2e', '--since', 'yesterday-ish'])).code, 2);
  });

  test('docker kill one instance: a replacement becomes healthy and the killed one leaves the upstreams', async () => {
    const before = await h.containers('e2e');
    const victim = before[0]!;
    await docker('kill', victim.id);
    await waitFor(async () => {
      const { ids } = await healthyIds();
      return ids.length === 3 && !ids.includes(victim.instance);
    }, { timeoutMs: 30_000, what: 'a healthy replacement' });
    assert.ok(!(await h.nginxBackends()).includes(`127.0.0.1:${victim.port}`), 'killed instance is out of the nginx upstreams');
    await waitFor(async () => (await h.nginxBackends()).length === 3, { timeoutMs: 5_000, intervalMs: 20, what: 'nginx routing to the 3 healthy instances' });
    // The ingress follows the registry within a second: soon every request spreads over the 3.
    await waitFor(async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 30; i++) seen.add((await whoami()).instance);
      assert.ok(!seen.has(victim.instance), 'no request reaches the killed instance');
      return seen.size === 3;
    }, { timeoutMs: 2000, intervalMs: 50, what: 'requests reaching all 3 instances' });
    const ev = await h.api('GET', '/v1/events?app=e2e&limit=200');
    assert.ok(ev.json.events.some((e: { kind: string; instance: string }) => e.kind === 'instance.crashed' && e.instance === victim.instance));
  });

  test('server SIGKILL while serving: no failed request; restart adopts the same containers', async () => {
    const before = (await h.containers('e2e')).filter((c) => c.running).sort((a, b) => a.id.localeCompare(b.id));
    assert.equal(before.length, 3);
    const traffic = load(h.ingressPort, '/api/whoami', { total: 1500, concurrency: 2, maxMs: 60_000 });
    await new Promise((r) => setTimeout(r, 300));
    await h.killServer('SIGKILL');
    // The data plane serves on its own while the control plane is down.
    const during = await load(h.ingressPort, '/api/whoami', { total: 50, concurrency: 1, maxMs: 10_000 });
    assert.equal(during.failed, 0, during.errors.join('\n'));
    await h.startServer();
    const res = await traffic;
    assert.equal(res.failed, 0, res.errors.join('\n'));
    assert.ok(res.ok >= 1000, `${res.ok} requests succeeded`);
    // Let a few reconcile rounds pass, then check nothing was restarted or recreated.
    await new Promise((r) => setTimeout(r, 2000));
    const after = (await h.containers('e2e')).filter((c) => c.running).sort((a, b) => a.id.localeCompare(b.id));
    assert.deepEqual(after.map((c) => [c.id, c.startedAt]), before.map((c) => [c.id, c.startedAt]));
    const { ids } = await healthyIds();
    assert.equal(ids.length, 3);
  });

  test('scale 3 → 5 → 1', async () => {
    let r = await h.cli(['scale', 'e2e', 'web=5']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => (await healthyIds()).ids.length === 5, { timeoutMs: 30_000, what: '5 healthy' });
    assert.equal((await h.containers('e2e')).length, 5);
    r = await h.cli(['scale', 'e2e', 'web=1']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => (await h.containers('e2e')).length === 1, { timeoutMs: 60_000, what: 'containers down to 1' });
    const { ids } = await healthyIds();
    assert.equal(ids.length, 1);
    assert.equal((await h.nginxBackends()).length, 1, 'one upstream server left');
    assert.equal((await get(h.ingressPort, '/healthz')).status, 200);
  });

  test('scale of an unknown service is a clear error that changes nothing', async () => {
    const r = await h.cli(['scale', 'e2e', 'wbe=2']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /no service "wbe" in e2e\/prod: did you mean "web"\?/);
    const bad = await h.cli(['scale', 'e2e', 'web=two']);
    assert.equal(bad.code, 2);
    assert.equal((await healthyIds()).web.desired, 1);
  });

  test('status --json and rm', async () => {
    const st = await h.cli(['status', 'e2e', '--json']);
    assert.equal(st.code, 0);
    assert.equal(JSON.parse(st.stdout).services[0].name, 'web');
    const r = await h.cli(['rm', 'e2e']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => (await h.containers('e2e')).length === 0, { timeoutMs: 30_000, what: 'containers removed' });
    assert.equal((await h.cli(['status', 'e2e'])).code, 3);
  });
});
