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
 * HTTPS on edge hosts: the API serves TLS (a CA of this test, trusted by the agents through
 * NODE_EXTRA_CA_CERTS), so the agents get the certificates and keys of the routes' hosts. Debian's
 * pebble (ACME) resolves every name to the first edge host and validates HTTP-01 there: the edge host
 * answers the challenge. Both edge hosts serve the certificate on 21800 (redirects 308, HSTS); its key
 * is on a tmpfs of the agent's mount namespace, 0600, nowhere on disk; an uploaded certificate replaces
 * it under load through both edge hosts with 0 failed.
 *
 * Test-host slot: BERTH_TESTHOSTS_SLOT (the helper "cedge" runs it with 5). Ports: instances
 * 20700-20749; the edge nginx listens on 20800 (admin 20801, HTTPS 21800) inside the test hosts'
 * namespaces; the control host's HTTPS ingress on 21801.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Harness, ROOT, get, threadNices } from './helpers/harness.ts';
import { startTestHosts, type TestHosts } from './helpers/swarm-hosts.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { findMaster, stopNginx } from '../src/ingress/index.ts';
import { makeCa, makeLeaf } from './helpers/certs.ts';
import { startPebble, type Pebble } from './helpers/pebble.ts';

const exec = promisify(execFile);
const BERTH = join(ROOT, 'bin/berth');
const EDGE_PORT = 20800;
const EDGE_ADMIN_PORT = 20801;
const EDGE_HTTPS_PORT = 21800;
const CONTROL_HTTPS_PORT = 21801;
/** The route with a certificate (ACME from pebble, then an upload), HSTS 1 h. */
const SECURE = 'secure.example';
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

/** A GET over TLS to an edge host naming `host` (SNI and Host), verified against `ca` only: status, HSTS header, the leaf's SHA-256 (hex, lowercase). */
function tlsGetAt(address: string, host: string, path: string, ca: string, timeoutMs = 3000): Promise<{ status: number; body: string; hsts?: string; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: address, port: EDGE_HTTPS_PORT, path, servername: host, headers: { host }, ca, agent: false, timeout: timeoutMs }, (r) => {
      const fingerprint = ((r.socket as TLSSocket).getPeerX509Certificate()?.fingerprint256 ?? '').replace(/:/g, '').toLowerCase();
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (body += c));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body, fingerprint, ...(typeof r.headers['strict-transport-security'] === 'string' ? { hsts: r.headers['strict-transport-security'] } : {}) }));
      r.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout asking ${address}:${EDGE_HTTPS_PORT}`)));
    req.on('error', reject);
    req.end();
  });
}

/** The status and Location of a plain HTTP GET to an edge host. */
function redirectAt(address: string, host: string, path: string): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port: EDGE_PORT, path, headers: { host }, agent: false, timeout: 3000 }, (r) => {
      r.resume();
      r.on('end', () => resolve({ status: r.statusCode ?? 0, ...(r.headers.location ? { location: r.headers.location } : {}) }));
    });
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
  /** The ports `berth host add --pool edge` printed for it. */
  ports?: { http: number; https: number };
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
  let pebble: Pebble | undefined;
  /** Where the API's CA, pebble's files and the uploaded certificates go. */
  let tlsDir: string;

  const startAgent = (e: Edge, token: string): void => {
    // `ip netns exec` runs the agent (and the nginx it starts) in the host's network namespace.
    // The agent's own mount namespace (ip netns exec makes one): the tmpfs it mounts at --tls-dir is seen by it and its nginx only.
    const proc = spawn('ip', ['netns', 'exec', e.name, BERTH, 'edge', '--control', `https://${bridge}:${h.apiPort}`, '--token', token,
      '--data-dir', e.dir, '--port', String(e.ports?.http ?? EDGE_PORT), '--https-port', String(e.ports?.https ?? EDGE_HTTPS_PORT), '--tls-dir', join(e.dir, 'tls'),
      '--admin-port', String(EDGE_ADMIN_PORT), '--wait-seconds', '10'],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BERTH_LOG_LEVEL: 'info', NODE_EXTRA_CA_CERTS: join(tlsDir, 'api-ca.pem') } });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (c: string) => (e.log = (e.log + c).slice(-20_000)));
    e.proc = proc;
  };

  before(async () => {
    const t0 = Date.now();
    // Edge hosts run Berth's edge agent and its nginx, no engine: no dockerd, no Swarm to start.
    th = await startTestHosts(2, { engines: false });
    console.log(`edge e2e: test hosts up in ${th.setupS}s`);
    // The root namespace's address on the test bridge: edge hosts reach the control plane and this host's instances there.
    const route = (await exec('ip', ['-4', '-o', 'route', 'get', th.hosts[0]!.address])).stdout;
    bridge = /\bsrc (\S+)/.exec(route)?.[1] ?? '';
    assert.match(bridge, /^\d+\.\d+\.\d+\.\d+$/, route);
    // The API over TLS with a certificate for the bridge address (edge hosts) and loopback (the harness, the CLI).
    tlsDir = await mkdtemp(join(tmpdir(), 'berth-edge-tls-'));
    const apiCa = await makeCa('Berth edge e2e API CA');
    const apiLeaf = await makeLeaf(apiCa, [bridge, '127.0.0.1', 'localhost']);
    await writeFile(join(tlsDir, 'api-ca.pem'), apiCa.certPem);
    await writeFile(join(tlsDir, 'api.crt'), apiLeaf.certPem);
    await writeFile(join(tlsDir, 'api.key'), apiLeaf.keyPem);
    h = await Harness.create({ portRange: '20700-20749', env, apiCa: apiCa.certPem });
    // Pebble resolves every name to the first edge host and validates HTTP-01 on its nginx: the edge host must answer.
    pebble = await startPebble(tlsDir, EDGE_PORT, th.hosts[0]!.address);
    Object.assign(env, {
      BERTH_LISTEN: `0.0.0.0:${h.apiPort}`, BERTH_EDGE_ADDRESS: bridge, BERTH_INGRESS_HTTPS_PORT: String(CONTROL_HTTPS_PORT),
      BERTH_API_TLS_CERT: join(tlsDir, 'api.crt'), BERTH_API_TLS_KEY: join(tlsDir, 'api.key'), NODE_EXTRA_CA_CERTS: join(tlsDir, 'api-ca.pem'),
      BERTH_ACME_DIRECTORY: pebble.directoryUrl, BERTH_ACME_CA_FILE: pebble.listenerCaFile, BERTH_ACME_RETRY_S: '2',
    });
    await h.startServer();
    console.log(`edge e2e: setup ${(Date.now() - t0) / 1000}s`);
    for (const host of th.hosts) edges.push({ name: host.name, address: host.address, dir: await mkdtemp(join(tmpdir(), `berth-edge-${host.name}-`)), log: '' });
  });

  after(async () => {
    if (process.exitCode) console.error(`server:\n${h?.serverLog.slice(-4000)}\npebble:\n${pebble?.log().slice(-3000)}\n${edges.map((e) => `${e.name}:\n${e.log.slice(-3000)}`).join('\n')}`);
    pebble?.stop();
    for (const e of edges) {
      if (e.proc && e.proc.exitCode === null && e.proc.signalCode === null) e.proc.kill('SIGTERM');
      await stopNginx(join(e.dir, 'nginx'), { timeoutMs: 5000 }).catch(() => undefined);
      await rm(e.dir, { recursive: true, force: true });
    }
    // The server and its local leftovers, and the test hosts: independent, so both at once.
    await Promise.all([h?.cleanup(), th?.down()]);
    if (tlsDir) await rm(tlsDir, { recursive: true, force: true });
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
      const r = await h.cli(['--json', 'host', 'add', '--pool', 'edge', '--name', e.name, '--port', String(EDGE_PORT), '--https-port', String(EDGE_HTTPS_PORT)]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { token: string; unit: string; command: string };
      assert.match(out.unit, new RegExp(`ExecStart=.* edge --control https://.* --token-file .* --port ${EDGE_PORT} --https-port ${EDGE_HTTPS_PORT} `));
      // The agents below run with the ports the printed command gives them.
      e.ports = { http: Number(/ --port (\d+)/.exec(out.command)![1]), https: Number(/ --https-port (\d+)/.exec(out.command)![1]) };
      assert.deepEqual(e.ports, { http: EDGE_PORT, https: EDGE_HTTPS_PORT });
      tokens.push(out.token);
    }
    // Without --https-port: 443; bad ports are usage errors naming the flag (exit 2), nothing printed.
    const plain = await h.cli(['--json', 'host', 'add', '--pool', 'edge', '--name', 'edge-x']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match((JSON.parse(plain.stdout) as { command: string }).command, / --port 80 --https-port 443 /);
    for (const [args, msg] of [
      [['--https-port', '70000'], /--https-port "70000" is not a port \(1-65535\)/],
      [['--https-port', '8443x'], /--https-port "8443x" is not a port/],
      [['--port', '8443', '--https-port', '8443'], /--https-port 8443 is the same as --port 8443/],
      [['--port', '443'], /--https-port 443 is the same as --port 443/],
    ] as const) {
      const bad = await h.cli(['host', 'add', '--pool', 'edge', '--name', 'edge-x', ...args]);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
      assert.match(bad.stderr, msg);
      assert.equal(bad.stdout, '');
    }
    const notEdge = await h.cli(['host', 'add', '--pool', 'a', '--https-port', '8443']);
    assert.equal(notEdge.code, 2, notEdge.stderr);
    assert.match(notEdge.stderr, /--name, --port and --https-port are for --pool edge/);
    const help = await h.cli(['host', 'add', '--help']);
    assert.match(help.stdout, /--https-port <port>/);
    // Attacker: no token, a wrong one, another host's secret, the admin token: 401; the edge token reads nothing else.
    assert.equal((await h.api('GET', '/v1/edge/config?wait=0', undefined, null)).status, 401);
    assert.equal((await h.api('GET', '/v1/edge/config?wait=0', undefined, `${tokens[0]!.slice(0, -4)}0000`)).status, 401);
    assert.equal((await h.api('GET', '/v1/edge/config?wait=0', undefined, tokens[0]!.replace(edges[0]!.name, edges[1]!.name))).status, 401);
    assert.equal((await h.api('GET', '/v1/edge/config?wait=0')).status, 401, 'the admin token is no edge token');
    for (const path of ['/v1/apps', '/v1/hosts', '/v1/edge/hosts', '/v1/apps/edge/config?env=prod', '/v1/registry', '/v1/certs', '/v1/events']) {
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
    // The agents (and the nginx each starts) run ahead of their host's other work, like the server: BERTH_NICE, -5 by default.
    const niceOf = async (pid: number): Promise<number[]> => [...new Set(await threadNices(pid))];
    const wantNice = Math.min((await niceOf(process.pid))[0]!, -5);
    for (const e of edges) assert.deepEqual(await niceOf(e.proc!.pid!), [wantNice], `${e.name}'s agent, every thread`);
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
      '    x-berth:\n      port: 3000\n      routes: [{host: two.example, path: /, tls: false}, {host: ' + SECURE + ', path: /, hsts: 1h}]\n      health: {http: /healthz}\n');
    const d2 = await h.cli(['deploy', '-f', join(dir2, 'compose.yaml'), '--app', 'two'], { timeoutMs: 120_000 });
    assert.equal(d2.code, 0, d2.stderr);
    await rm(dir2, { recursive: true, force: true });
    // (secure.example's certificate is issued by pebble meanwhile, validated on the first edge host: checked in the next test.)
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
    console.log(`edge e2e: ${marks.join(', ')}; during the control-plane kill ${during.ok} ok / ${during.failed} failed`);
  });

  test('HTTPS on edge hosts: an ACME certificate validated on an edge host, served by both with 308 and HSTS; its key on a tmpfs only; an uploaded one replaces it under load with 0 failed', async () => {
    const t0 = Date.now();
    const marks: string[] = [];
    const mark = (what: string): void => void marks.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    const pebbleRoot = pebble!.root;
    const certOf = async () => ((await h.api('GET', '/v1/certs')).json.certs as { host: string; status: string; source?: string; fingerprint?: string; lastError?: string }[]).find((c) => c.host === SECURE);
    const acme = await waitFor(async () => {
      const c = await certOf();
      return c?.status === 'valid' ? c : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200, what: `an ACME certificate for ${SECURE}` }).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await certOf())}`);
    });
    assert.equal(acme.source, 'acme');
    const issued = ((await h.api('GET', '/v1/events?app=two&limit=1000')).json.events as { kind: string; message: string }[]).filter((e) => e.kind === 'cert.issued');
    assert.equal(issued.length, 1, 'issued at the first attempt: the edge host answered the challenge');
    // Pebble asked the first edge host only (its resolver says so): that host's nginx served the answer.
    const accessLog = await readFile(join(edges[0]!.dir, 'nginx/logs/access.json.log'), 'utf8');
    assert.match(accessLog, /"path":"\/\.well-known\/acme-challenge\/[A-Za-z0-9_-]+","status":200/, 'the edge host answered the HTTP-01 challenge');
    mark('acme issued');
    for (const e of edges) {
      const r = await waitFor(async () => {
        const x = await tlsGetAt(e.address, SECURE, '/api/whoami', pebbleRoot).catch(() => undefined);
        return x?.fingerprint === acme.fingerprint ? x : undefined;
      }, { timeoutMs: 20_000, intervalMs: 100, what: `${e.name} to serve ${SECURE} over TLS` });
      assert.equal(r.status, 200);
      assert.match(r.body, /"version":"two"/);
      assert.equal(r.hsts, 'max-age=3600');
      assert.deepEqual(await redirectAt(e.address, SECURE, '/api/whoami?x=1'), { status: 308, location: `https://${SECURE}:${EDGE_HTTPS_PORT}/api/whoami?x=1` });
      // The route without a certificate stays plain HTTP, not redirected.
      assert.match(await getAt(e.address, EDGE_PORT, '/api/whoami', 'two.example'), /"version":"two"/);
      // The key: 0600 on a tmpfs of the agent's (and its nginx's) mount namespace; the disk under it holds nothing.
      const master = (await findMaster(join(e.dir, 'nginx')))!;
      const keyDir = join(e.dir, 'tls');
      const mounts = await readFile(`/proc/${master}/mountinfo`, 'utf8');
      assert.ok(mounts.split('\n').some((l) => l.split(' ')[4] === keyDir && l.split(' - ')[1]?.startsWith('tmpfs ')), `${keyDir} is a tmpfs for ${e.name}'s nginx`);
      const seen = await readdir(`/proc/${master}/root${keyDir}`);
      const key = seen.find((n) => n.startsWith(`${SECURE}.`) && n.endsWith('.key'));
      assert.ok(key, `a key file in ${seen.join(',')}`);
      assert.equal((await stat(`/proc/${master}/root${keyDir}/${key}`)).mode & 0o777, 0o600);
      assert.deepEqual(await readdir(keyDir), [], 'nothing of it on the disk');
      assert.doesNotMatch(await readFile(join(e.dir, 'edge-state.json'), 'utf8'), /PRIVATE KEY/);
    }
    mark('https on both');

    // An uploaded certificate replaces the ACME one under TLS load through both edge hosts: nothing fails.
    const ca = await makeCa('Edge e2e uploaded CA');
    const leaf = await makeLeaf(ca, [SECURE]);
    const want = new X509Certificate(leaf.leafPem).fingerprint256.replace(/:/g, '').toLowerCase();
    await writeFile(join(tlsDir, 'up.crt'), leaf.certPem);
    await writeFile(join(tlsDir, 'up.key'), leaf.keyPem);
    const trust = `${pebbleRoot}\n${ca.certPem}`;
    const newSeen = edges.map(() => false);
    let ok = 0;
    const failures: string[] = [];
    let stop = false;
    const loop = async (k: number): Promise<void> => {
      const deadline = Date.now() + 40_000;
      for (let i = 0; i < 3000 && !stop && Date.now() < deadline; i++) {
        const e = (i + k) % edges.length;
        try {
          const r = await tlsGetAt(edges[e]!.address, SECURE, '/api/whoami', trust);
          if (r.status !== 200 || !r.body.includes('"version":"two"')) failures.push(`${edges[e]!.name}: HTTP ${r.status}`);
          else {
            ok++;
            if (r.fingerprint === want) newSeen[e] = true;
          }
        } catch (err) {
          failures.push(`${edges[e]!.name}: ${String(err)}`);
        }
      }
    };
    const loops = [0, 1, 2, 3].map(loop);
    await new Promise((r) => setTimeout(r, 300));
    const up = await h.cli(['cert', 'add', SECURE, '--cert', join(tlsDir, 'up.crt'), '--key', join(tlsDir, 'up.key'), '--json']);
    assert.equal(up.code, 0, up.stderr);
    await waitFor(async () => newSeen.every(Boolean), { timeoutMs: 30_000, intervalMs: 50, what: 'both edge hosts to serve the uploaded certificate' });
    // A little more load after the swap, then stop.
    const okAtSwap = ok;
    await waitFor(async () => ok > okAtSwap + 20, { timeoutMs: 10_000, intervalMs: 20, what: 'load after the swap' });
    stop = true;
    await Promise.all(loops);
    mark('rotated under load');
    assert.deepEqual(failures, [], `${failures.length} of ${ok + failures.length} TLS requests failed`);
    assert.ok(ok > 50, `the load ran across the swap (${ok} requests)`);
    // The old key files are gone from the tmpfs (swept after the reload).
    for (const e of edges) {
      const master = (await findMaster(join(e.dir, 'nginx')))!;
      const files = await readdir(`/proc/${master}/root${join(e.dir, 'tls')}`);
      assert.deepEqual(files.sort(), [`${SECURE}.${want.slice(0, 16)}.crt`, `${SECURE}.${want.slice(0, 16)}.key`]);
    }
    console.log(`edge e2e https: ${marks.join(', ')}; rotation under load: ${ok} TLS requests through 2 edge hosts, ${failures.length} failed`);
  });

  test('an edge host lost under load: a client that tries both loses nothing', async () => {
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
    console.log(`edge e2e: during the edge loss ${loss.ok} ok / ${loss.failed} failed (${loss.perEdgeFailures[0]} retried on the other edge)`);
  });
});
