/**
 * The ingress on every edge host (issue 13 item 4): two test hosts (network namespaces) each run an
 * edge agent (`berth edge`) and its nginx inside their namespace, fed by a real `berth server` on this
 * host over the test bridge. An app (host-mode instances on this host, reached by the edge hosts at the
 * bridge address: BERTH_EDGE_ADDRESS) is served through both edge hosts; a new route reaches both;
 * the server SIGKILLed under load: both keep serving, 0 failed; the server restarted: it adopts (the
 * edge nginx masters keep their pids), a new deploy reaches both; one edge host killed under load: the
 * other serves every request (a client tries both). An agent without the token gets 401; the edge
 * token reads nothing else.
 *
 * Test-host slot: BERTH_TESTHOSTS_SLOT (the helper "cedge" runs it with 5). Ports: instances
 * 20700-20749; the edge nginx listens on 20800 (admin 20801) inside the test hosts' namespaces.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Harness, ROOT, get } from './helpers/harness.ts';
import { startTestHosts, type TestHosts } from './helpers/swarm-hosts.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { findMaster, stopNginx } from '../src/ingress/index.ts';

const exec = promisify(execFile);
const BERTH = join(ROOT, 'bin/berth');
const EDGE_PORT = 20800;
const EDGE_ADMIN_PORT = 20801;
const WEB = join(ROOT, 'test/fixtures/apps/web/compose.yaml');

/** One GET to an address through a fresh connection: body (trimmed) on 200, else `HTTP <status>`; throws on socket errors. */
function getAt(address: string, port: number, path: string, host?: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path, agent: false, timeout: timeoutMs, ...(host ? { headers: { host } } : {}) }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (body += c));
      r.on('end', () => resolve(r.statusCode === 200 ? body.trim() : `HTTP ${r.statusCode}`));
      r.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout asking ${address}:${port}`)));
    req.on('error', reject);
    req.end();
  });
}

interface Edge {
  name: string;
  address: string;
  dir: string;
  proc?: ChildProcess;
  log: string;
}

/**
 * A bounded load loop (at most `total` requests, `maxMs` long) over the edge hosts: each request goes
 * to one edge (round robin) and, when `failover`, to the next one if that fails (as a client with
 * several A records does). Counts requests that failed everywhere, and failures per edge.
 */
async function edgeLoad(edges: Edge[], o: { total: number; concurrency: number; maxMs: number; failover: boolean; until?: () => boolean }):
  Promise<{ ok: number; failed: number; perEdgeFailures: number[]; errors: string[]; lastOkAt: number }> {
  const deadline = Date.now() + o.maxMs;
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let lastOkAt = 0;
  const perEdgeFailures = edges.map(() => 0);
  const errors: string[] = [];
  const worker = async (): Promise<void> => {
    while (sent < o.total && Date.now() < deadline && !o.until?.()) {
      const first = sent++ % edges.length;
      let done = false;
      for (let k = 0; k < (o.failover ? edges.length : 1) && !done; k++) {
        const i = (first + k) % edges.length;
        try {
          const body = await getAt(edges[i]!.address, EDGE_PORT, '/api/whoami', undefined, 2000);
          if (body.startsWith('{')) done = true;
          else throw new Error(body);
        } catch (e) {
          perEdgeFailures[i]!++;
          if (errors.length < 10) errors.push(`${edges[i]!.name}: ${String(e)}`);
        }
      }
      if (done) {
        ok++;
        lastOkAt = Date.now();
      }
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  return { ok, failed, perEdgeFailures, errors, lastOkAt };
}

describe('edge hosts: the ingress on every edge host outlives the control plane', () => {
  let th: TestHosts;
  let h: Harness;
  const edges: Edge[] = [];
  let bridge: string;
  const env: Record<string, string> = {};

  const startAgent = (e: Edge, token: string): void => {
    // `ip netns exec` runs the agent (and the nginx it starts) in the host's network namespace.
    const proc = spawn('ip', ['netns', 'exec', e.name, BERTH, 'edge', '--control', `http://${bridge}:${h.apiPort}`, '--token', token,
      '--data-dir', e.dir, '--port', String(EDGE_PORT), '--admin-port', String(EDGE_ADMIN_PORT), '--wait-seconds', '10'],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BERTH_LOG_LEVEL: 'info' } });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (c: string) => (e.log = (e.log + c).slice(-20_000)));
    e.proc = proc;
  };

  before(async () => {
    const t0 = Date.now();
    th = await startTestHosts(2);
    console.log(`edge e2e: test hosts up in ${th.setupS}s`);
    // The root namespace's address on the test bridge: edge hosts reach the control plane and this host's instances there.
    const route = (await exec('ip', ['-4', '-o', 'route', 'get', th.hosts[0]!.address])).stdout;
    bridge = /\bsrc (\S+)/.exec(route)?.[1] ?? '';
    assert.match(bridge, /^\d+\.\d+\.\d+\.\d+$/, route);
    h = await Harness.create({ portRange: '20700-20749', env });
    Object.assign(env, { BERTH_LISTEN: `0.0.0.0:${h.apiPort}`, BERTH_EDGE_ADDRESS: bridge });
    await h.startServer();
    console.log(`edge e2e: setup ${(Date.now() - t0) / 1000}s`);
    for (const host of th.hosts) edges.push({ name: host.name, address: host.address, dir: await mkdtemp(join(tmpdir(), `berth-edge-${host.name}-`)), log: '' });
  });

  after(async () => {
    for (const e of edges) {
      if (e.proc && e.proc.exitCode === null && e.proc.signalCode === null) e.proc.kill('SIGTERM');
      await stopNginx(join(e.dir, 'nginx'), { timeoutMs: 5000 }).catch(() => undefined);
      await rm(e.dir, { recursive: true, force: true });
    }
    await h?.cleanup();
    await th?.down();
  });

  test('served through both edge hosts; tokens; a new route reaches both; control plane killed and restarted under load; an edge host lost', async () => {
    const t0 = Date.now();
    const marks: string[] = [];
    const mark = (what: string): void => void marks.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    const d = await h.cli(['deploy', '-f', WEB, '--app', 'edge'], { timeoutMs: 180_000, env: { REPLICAS: '2', APP_VERSION: 'v1' } });
    assert.equal(d.code, 0, d.stderr);
    mark('deployed');

    // Each edge host's token and unit, as an operator gets them.
    const tokens: string[] = [];
    for (const e of edges) {
      const r = await h.cli(['--json', 'host', 'add', '--pool', 'edge', '--name', e.name, '--port', String(EDGE_PORT)]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { token: string; unit: string; command: string };
      assert.match(out.unit, /ExecStart=.* edge --control http:\/\/.* --token-file /);
      tokens.push(out.token);
    }
    // Attacker: no token, a wrong one, another host's secret, the admin token: 401; the edge token reads nothing else.
    assert.equal((await h.api('GET', '/v1/edge/config?wait=0', undefined, null)).status, 401);
    assert.equal((await h.api('GET', '/v1/edge/config?wait=0', undefined, `${tokens[0]!.slice(0, -4)}0000`)).status, 401);
    assert.equal((await h.api('GET', '/v1/edge/config?wait=0', undefined, tokens[0]!.replace(edges[0]!.name, edges[1]!.name))).status, 401);
    assert.equal((await h.api('GET', '/v1/edge/config?wait=0')).status, 401, 'the admin token is no edge token');
    for (const path of ['/v1/apps', '/v1/hosts', '/v1/edge/hosts', '/v1/apps/edge/config?env=prod', '/v1/registry']) {
      assert.equal((await h.api('GET', path, undefined, tokens[0]!)).status, 401, `${path} with an edge token`);
    }
    assert.equal((await h.api('POST', '/v1/edge/tokens', { host: 'evil' }, tokens[0]!)).status, 401);

    for (const [i, e] of edges.entries()) startAgent(e, tokens[i]!);
    for (const e of edges) {
      await waitFor(async () => (await getAt(e.address, EDGE_PORT, '/api/whoami').catch(() => '')).includes('"version":"v1"'),
        { timeoutMs: 60_000, intervalMs: 200, what: `${e.name} to serve the app` }).catch((err: Error) => {
        throw new Error(`${err.message}\nagent log:\n${e.log.slice(-3000)}`);
      });
    }
    mark('edges serve');
    // Both replicas behind each edge (round robin through the edge's Lua balancer).
    for (const e of edges) {
      const seen = new Set<string>();
      for (let k = 0; k < 8; k++) seen.add((JSON.parse(await getAt(e.address, EDGE_PORT, '/api/whoami')) as { instance: string }).instance);
      assert.equal(seen.size, 2, `${e.name} reaches both instances: ${[...seen].join(',')}`);
    }
    await waitFor(async () => {
      const r = JSON.parse((await h.cli(['--json', 'hosts'])).stdout) as { edge: { hosts: { host: string; inSync: boolean }[] } };
      return r.edge.hosts.length === 2 && r.edge.hosts.every((x) => x.inSync);
    }, { timeoutMs: 20_000, intervalMs: 300, what: 'berth hosts: both edge hosts in sync' });

    mark('in sync');
    // A route change (a new host route of a second app) reaches both edge hosts.
    const dir2 = await mkdtemp(join(tmpdir(), 'berth-edge-app2-'));
    await writeFile(join(dir2, 'compose.yaml'), 'services:\n  web:\n    image: berth-e2e/web:latest\n    environment: {APP_VERSION: two}\n' +
      '    x-berth:\n      port: 3000\n      routes: [{host: two.example, path: /}]\n      health: {http: /healthz}\n');
    const d2 = await h.cli(['deploy', '-f', join(dir2, 'compose.yaml'), '--app', 'two'], { timeoutMs: 120_000 });
    assert.equal(d2.code, 0, d2.stderr);
    await rm(dir2, { recursive: true, force: true });
    for (const e of edges) {
      await waitFor(async () => (await getAt(e.address, EDGE_PORT, '/api/whoami', 'two.example').catch(() => '')).includes('"version":"two"'),
        { timeoutMs: 20_000, intervalMs: 100, what: `${e.name} to serve the new route` });
    }

    mark('new route on both');
    // SIGKILL the control plane under load: both edges keep serving, nothing fails.
    const masters = await Promise.all(edges.map((e) => findMaster(join(e.dir, 'nginx'))));
    assert.ok(masters.every((p) => p !== undefined), 'each edge runs its nginx');
    const controlMaster = await findMaster(join(h.dataDir, 'nginx'));
    let killedAt = 0;
    const loaded = edgeLoad(edges, { total: 6000, concurrency: 4, maxMs: 20_000, failover: false, until: () => killedAt > 0 && Date.now() - killedAt > 4000 });
    await new Promise((r) => setTimeout(r, 500));
    await h.killServer('SIGKILL');
    killedAt = Date.now();
    const during = await loaded;
    assert.equal(during.failed, 0, `requests failed with the control plane gone: ${during.errors.join('\n')}`);
    assert.ok(during.ok > 50, `load ran (${during.ok} ok)`);
    assert.ok(during.lastOkAt - killedAt >= 3000, `served for 3 s and more after the kill (last answer ${during.lastOkAt - killedAt} ms after it)`);

    // Restart: the agents reconnect, nothing restarts (same nginx masters), a new deploy reaches both.
    mark('killed under load');
    await h.startServer();
    mark('restarted');
    assert.deepEqual(await Promise.all(edges.map((e) => findMaster(join(e.dir, 'nginx')))), masters, 'edge nginx masters adopted, not restarted');
    assert.equal(await findMaster(join(h.dataDir, 'nginx')), controlMaster, 'the control host\'s nginx adopted');
    const d3 = await h.cli(['deploy', '-f', WEB, '--app', 'edge'], { timeoutMs: 180_000, env: { REPLICAS: '2', APP_VERSION: 'v2' } });
    assert.equal(d3.code, 0, d3.stderr);
    for (const e of edges) {
      await waitFor(async () => {
        const seen = new Set<string>();
        for (let k = 0; k < 4; k++) seen.add((await getAt(e.address, EDGE_PORT, '/api/whoami').catch(() => '')).includes('"version":"v2"') ? 'v2' : 'other');
        return seen.size === 1 && seen.has('v2');
      }, { timeoutMs: 30_000, intervalMs: 200, what: `${e.name} to serve only v2 after the restart` });
    }
    mark('v2 on both');
    assert.deepEqual(await Promise.all(edges.map((e) => findMaster(join(e.dir, 'nginx')))), masters, 'still the same edge nginx masters');
    assert.equal((await get(h.ingressPort, '/healthz')).status, 200, 'the control host\'s ingress serves too');

    // One edge host dies under load: a client that tries both loses nothing.
    let lostAt = 0;
    const lossLoad = edgeLoad(edges, { total: 2000, concurrency: 4, maxMs: 20_000, failover: true, until: () => lostAt > 0 && Date.now() - lostAt > 3000 });
    await new Promise((r) => setTimeout(r, 500));
    await th.kill(1);
    lostAt = Date.now();
    const loss = await lossLoad;
    assert.equal(loss.failed, 0, `requests failed on both edges: ${loss.errors.join('\n')}`);
    assert.ok(loss.perEdgeFailures[0]! > 0, `the killed edge host failed requests (${loss.perEdgeFailures.join('/')}): the test saw the loss`);
    assert.equal(loss.perEdgeFailures[1], 0, 'the surviving edge failed nothing');
    mark('edge lost under load');
    console.log(`edge e2e: ${marks.join(', ')}; during the control-plane kill ${during.ok} ok / ${during.failed} failed; during the edge loss ${loss.ok} ok / ${loss.failed} failed (${loss.perEdgeFailures[0]} retried on the other edge)`);
  });
});
