/**
 * Cluster mode switched on (issue 13 items 1, 2, 3, 6): a Berth server whose engine is the manager of a
 * Swarm of test hosts (test/helpers/swarm-hosts.ts) deploys each instance as a Swarm service on the
 * host the Swarm (within Berth's placement) picks, writes that host and its address on the instance,
 * and routes the ingress to `hostAddress:port`; a stateful service says in `status` that it is pinned
 * to its host; rolling, blue-green, a reload by signal (sent to each instance's host engine over TLS,
 * certificates from the server's cluster CA) and a rollback across hosts under load fail nothing.
 * Ports 20000-20199 (test/port-ranges.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SecretBox, loadSecretKey } from '../src/config/index.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { ClusterCa } from '../src/tls/cluster-ca.ts';
import { Harness, get, load } from './helpers/harness.ts';
import { planTestHosts, startTestHosts, type TestHosts } from './helpers/swarm-hosts.ts';

let th: TestHosts;
let h: Harness;
let dir: string;
/**
 * The base image by its id: a Swarm task of a tag (`berth/busybox`) first tries to pull it from its
 * registry, which this machine cannot reach (~30 s per service before the task falls back to the local
 * image); an id is never pulled (Berth itself deploys local-only images by id).
 */
let busyboxId: string;
/** Host i's name (1-based; slot S of scripts/testhosts.sh names them sSh1…). */
const hn = (i: number): string => th.hosts[i - 1]!.name;
const ad = (i: number): string => th.hosts[i - 1]!.address;

before(async () => {
  // Each host's engine also listens on TCP with mutual TLS, its certificate from the server's cluster CA
  // (as `berth host add --address` issues it): signals (`berth reload`) reach instances through it.
  // A task pending past 20 s (not the default 60 s) fails its release: the pending cases below stay short.
  h = await Harness.create({ portRange: '20000-20199', env: { BERTH_DOCKER_SOCKET: (await planTestHosts(4))[0]!.socket, BERTH_PENDING_TIMEOUT_S: '20' } });
  const ca = await ClusterCa.open(join(h.dataDir, 'cluster-ca.json'), SecretBox.fromLoaded(loadSecretKey({ dataDir: h.dataDir })));
  th = await startTestHosts(4, { engineTls: (x) => ca.issueEngine({ host: x.name, addresses: [x.address] }) });
  // Pool a: hosts 1-3 (the manager among them), pool b: host 4.
  for (const [i, pool] of [[1, 'a'], [2, 'a'], [3, 'a'], [4, 'b']] as const) await th.docker(1, 'node', 'update', '--label-add', `io.berth.pool=${pool}`, hn(i));
  busyboxId = (await th.docker(1, 'image', 'inspect', '-f', '{{.Id}}', 'berth/busybox')).trim();
  dir = await mkdtemp(join(tmpdir(), 'berth-cluster-deploy-'));
  await h.startServer();
});

after(async () => {
  if (process.exitCode) console.error(h?.serverLog.slice(-6000));
  // The server and its local leftovers, and the test hosts: independent, so both at once.
  await Promise.all([h?.cleanup(), th?.down()]);
  await rm(dir, { recursive: true, force: true });
});

interface AppOpts { app: string; pool?: string; replicas?: number; version?: string; reserve?: string; strategy?: string; volume?: boolean }

/**
 * An HTTP server on $PORT answering its instance id and version, from the base image every test host
 * has; its shell counts the SIGHUPs it gets in /hup (served too) and stops httpd on SIGTERM.
 */
async function composeFile(o: AppOpts): Promise<string> {
  const file = join(dir, `${o.app}.yaml`);
  await writeFile(file, `name: ${o.app}
x-berth: {pool: ${o.pool ?? 'a'}}
services:
  web:
    image: berth/busybox:latest
    command: ["sh", "-c", "mkdir -p /tmp/w; echo \\"$$BERTH_INSTANCE ${o.version ?? 'v1'}\\" > /tmp/w/index.html; trap 'echo hup >> /tmp/w/hup' HUP; trap 'kill $$p; exit 0' TERM; httpd -f -p $$PORT -h /tmp/w & p=$$!; while kill -0 $$p 2>/dev/null; do wait $$p; done"]
${o.volume ? '    volumes: ["data:/data"]\n' : ''}    deploy:
      replicas: ${o.replicas ?? 6}
      resources:
        reservations: {${o.reserve ?? 'cpus: "0.1", memory: 32M'}}
    stop_grace_period: 2s
    x-berth:
      port: 8080
      routes:
        - ${o.app}.test/
      health:
        http: {path: /, interval: 500ms}
      update:
        strategy: ${o.strategy ?? 'rolling'}
        deadline: 180s
${o.volume ? 'volumes:\n  data: {}\n' : ''}`);
  return file;
}

async function deploy(o: AppOpts): Promise<{ code: number; stdout: string; stderr: string }> {
  return h.cli(['deploy', '-f', await composeFile(o)], { timeoutMs: 240_000 });
}

interface Inst { id: string; host: string; address: string; port: number; health: string; state: string }

/** Instances of the app as GET /v1/apps/:app shows them. */
async function instances(app: string): Promise<Inst[]> {
  return (await h.status(app)).services.flatMap((s: { instances: unknown[] }) => s.instances);
}

function tally(xs: string[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const x of xs) t[x] = (t[x] ?? 0) + 1;
  return t;
}

/** Distinct instance ids answering through the ingress for Host `app.test` over `n` requests. */
async function answering(app: string, n: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const r = await get(h.ingressPort, '/', 5000, { host: `${app}.test` });
    assert.equal(r.status, 200, r.body);
    seen.add(r.body.trim().split(' ')[0]!);
  }
  return seen;
}

test('six replicas of pool a spread 2/2/2 over its three hosts (one of them busier), each at its host address, all six routed through the ingress', async () => {
  // Host 1 already runs three tasks that are not Berth's: the Swarm alone (it balances all tasks of a
  // node) would put fewer of the six there; Berth's plan spreads the service itself, 2/2/2.
  await th.docker(1, 'service', 'create', '--detach', '--no-resolve-image', '--name', 'busy', '--replicas', '3', '--constraint', `node.hostname==${hn(1)}`,
    '--restart-condition', 'none', busyboxId, 'sleep', '3600');
  await waitFor(async () => (await th.docker(1, 'service', 'ps', 'busy', '--filter', 'desired-state=running', '--format', '{{.CurrentState}}')).split('\n').filter((l) => l.startsWith('Running')).length === 3,
    { timeoutMs: 60_000, intervalMs: 250, what: 'three other tasks on host 1' });
  const d = await deploy({ app: 'spread' });
  assert.equal(d.code, 0, d.stderr + d.stdout);
  const insts = await instances('spread');
  assert.equal(insts.length, 6);
  assert.deepEqual(tally(insts.map((i) => i.host)), { [hn(1)]: 2, [hn(2)]: 2, [hn(3)]: 2 });
  const addrOf = new Map(th.hosts.map((x) => [x.name, x.address]));
  for (const i of insts) assert.equal(i.address, addrOf.get(i.host), `${i.id} on ${i.host} at ${i.address}`);
  const ports = insts.map((i) => i.port);
  assert.equal(new Set(ports).size, 6, 'ports are unique over the cluster');
  // Every instance answers through the ingress (round robin over the six upstreams).
  const seen = await waitFor(async () => {
    const s = await answering('spread', 24);
    return s.size === 6 ? s : undefined;
  }, { timeoutMs: 20_000, intervalMs: 200, what: 'all six instances answering through the ingress' });
  assert.deepEqual([...seen].sort(), insts.map((i) => i.id).sort());
  // The instances are Swarm services on the manager (one per instance), not containers of the manager's engine alone.
  const services = (await th.docker(1, 'service', 'ls', '--filter', 'label=io.berth.app=spread', '--format', '{{.Name}}')).trim().split('\n').filter(Boolean);
  assert.equal(services.length, 6);
  // `berth status` names each instance's host.
  const st = await h.cli(['status', 'spread']);
  assert.equal(st.code, 0, st.stderr);
  for (const i of [1, 2, 3]) assert.match(st.stdout, new RegExp(`${hn(i)}\\s+${ad(i).replace(/\./g, '\\.')}:\\d+`));
});

test('an app of pool b runs only on pool b\'s host, never on pool a\'s; stateful (a named volume), it says in status that it is pinned there', async () => {
  const d = await deploy({ app: 'other', pool: 'b', replicas: 3, volume: true });
  assert.equal(d.code, 0, d.stderr + d.stdout);
  const insts = await instances('other');
  assert.deepEqual(insts.map((i) => [i.host, i.address]), [[hn(4), ad(4)], [hn(4), ad(4)], [hn(4), ad(4)]]);
  assert.equal((await answering('other', 6)).size, 3);
  // And pool a's app never moved there.
  assert.ok((await instances('spread')).every((i) => i.host !== hn(4)));
  // The pin, in the API's service and instance views and in `berth status` (a stateless app has none).
  const [web] = (await h.status('other')).services as Array<{ pinned?: { host: string; volumes: string[]; text: string }; instances: Array<{ pinned?: string }> }>;
  const text = `pinned to ${hn(4)} (volume data)`;
  assert.deepEqual(web!.pinned, { host: hn(4), volumes: ['data'], text });
  assert.deepEqual(web!.instances.map((i) => i.pinned), [text, text, text]);
  assert.equal((await h.status('spread')).services[0].pinned, undefined);
  const st = await h.cli(['status', 'other']);
  assert.equal(st.code, 0, st.stderr);
  assert.ok(st.stdout.includes(`prod/web: ${text}; \`berth failover other web --env prod --to HOST\``), st.stdout);
  const json = await h.cli(['--json', 'status', 'other']);
  assert.equal(JSON.parse(json.stdout).services[0].pinned.host, hn(4));
});

test('a deploy that does not fit its pool is refused with the numbers (exit 4) and starts nothing', async () => {
  const servicesBefore = (await th.docker(1, 'service', 'ls', '-q')).trim().split('\n').filter(Boolean).length;
  const d = await deploy({ app: 'huge', replicas: 6, reserve: 'cpus: "8", memory: 64M' });
  assert.equal(d.code, 4, d.stderr + d.stdout);
  assert.match(d.stderr, /huge in prod does not fit: pool a: asks 48 CPUs \/ 384 MiB, free [\d.]+ CPUs \/ [\d.]+ GiB on 3 hosts; web \(8 CPUs \/ 64 MiB each\) does not fit; nothing was deployed/);
  // Nothing recorded, nothing on the engine.
  assert.equal((await h.api('GET', '/v1/apps/huge')).status, 404);
  assert.equal((await th.docker(1, 'service', 'ls', '-q')).trim().split('\n').filter(Boolean).length, servicesBefore);
  // A pool no host carries: the file may name it, the deploy is refused.
  const none = await deploy({ app: 'huge', pool: 'nosuch', replicas: 1 });
  assert.equal(none.code, 4, none.stderr);
  assert.match(none.stderr, /pool nosuch has no hosts: label one with berth host label HOST io\.berth\.pool=nosuch/);
  assert.equal((await th.docker(1, 'service', 'ls', '-q')).trim().split('\n').filter(Boolean).length, servicesBefore);
});

/** A Swarm service that is not Berth's, on host `i`, running (what takes a port or room there behind Berth's back). */
async function outsider(name: string, i: number, ...args: string[]): Promise<void> {
  // --no-resolve-image: the test machine has no registry to ask for the tag's digest (that costs ~40 s per service).
  await th.docker(1, 'service', 'create', '--detach', '--no-resolve-image', '--name', name, '--constraint', `node.hostname==${hn(i)}`, '--restart-condition', 'none', ...args, busyboxId, 'sleep', '3600');
  await waitFor(async () => (await th.docker(1, 'service', 'ps', name, '--format', '{{.CurrentState}}')).startsWith('Running') || undefined,
    { timeoutMs: 60_000, intervalMs: 250, what: `${name} running on ${hn(i)}` });
}

test('a task Swarm cannot place fails the deploy after the bound with the reason, never "succeeded": a host port taken on the pool\'s only host, no room left there', async () => {
  // Pool b is host 4 alone. Something that is not Berth's holds host port 20199 there (host mode), and
  // another reserves all but 0.2 of its CPUs: Berth's admission counts Berth's reservations only, so
  // both deploys are admitted, and Swarm leaves their tasks pending.
  const tSetup = Date.now();
  const cpus = Number((await th.docker(1, 'node', 'inspect', hn(4), '--format', '{{.Description.Resources.NanoCPUs}}')).trim()) / 1e9;
  const berthReserved = ((await h.status('other')).services?.[0]?.instances?.length ?? 0) * 0.1;
  await Promise.all([
    outsider('portblock', 4, '--publish', 'mode=host,published=20199,target=80'),
    outsider('cpuhog', 4, '--reserve-cpu', (cpus - berthReserved - 0.2).toFixed(2)),
  ]);
  try {
    const portFile = join(dir, 'portclash.yaml');
    await writeFile(portFile, `name: portclash
x-berth: {pool: b}
services:
  web:
    image: berth/busybox:latest
    command: ["httpd", "-f", "-p", "8080", "-h", "/"]
    ports: ["20199:8080"]
`);
    const roomFile = join(dir, 'noroom.yaml');
    await writeFile(roomFile, `name: noroom
x-berth: {pool: b}
services:
  web:
    image: berth/busybox:latest
    command: ["sh", "-c", "mkdir -p /tmp/w; exec httpd -f -p $$PORT -h /tmp/w"]
    deploy:
      resources:
        reservations: {cpus: "0.5", memory: 16M}
    x-berth:
      port: 8080
`);
    const t0 = Date.now();
    console.log(`# figures: outsiders running in ${t0 - tSetup} ms`);
    const [port, room] = await Promise.all([h.cli(['deploy', '-f', portFile], { timeoutMs: 150_000 }), h.cli(['deploy', '-f', roomFile], { timeoutMs: 150_000 })]);
    const tookMs = Date.now() - t0;
    console.log(`# figures: pending past the bound (20 s): both deploys failed after ${tookMs} ms`);
    assert.equal(port.code, 1, port.stderr + port.stdout);
    assert.match(port.stderr, /release 1 of web failed: instance \S+ waited 2\ds to run: its host port is taken on the hosts that could run it; the engine says: .*host-mode port already in use on 1 node/);
    assert.equal(room.code, 1, room.stderr + room.stdout);
    assert.match(room.stderr, /release 1 of web failed: instance \S+ waited 2\ds to run: no host of its pool has the CPU and memory it reserves free; the engine says: .*insufficient resources on 1 node/);
    for (const app of ['portclash', 'noroom']) {
      const svc = (await h.status(app)).services[0] as { release: { status: string; message: string } };
      assert.equal(svc.release.status, 'failed', `${app}: ${JSON.stringify(svc.release)}`);
      const ev = (await h.api('GET', `/v1/events?app=${app}&limit=100`)).json as { events?: Array<{ kind: string }> } | Array<{ kind: string }>;
      const kinds = (Array.isArray(ev) ? ev : ev.events ?? []).map((e) => e.kind);
      assert.ok(kinds.includes('release.failed'), `${app}: ${kinds.join(', ')}`);
      assert.ok(!kinds.includes('release.healthy') && !kinds.includes('deployment.succeeded'), `${app} never said healthy: ${kinds.join(', ')}`);
    }
  } finally {
    const t1 = Date.now();
    const rms = await Promise.all(['portclash', 'noroom'].map((app) => h.cli(['rm', app], { timeoutMs: 120_000 })));
    await th.docker(1, 'service', 'rm', 'portblock', 'cpuhog');
    console.log(`# figures: cleanup in ${Date.now() - t1} ms (rm: ${rms.map((r) => r.code).join(', ')})`);
  }
});

/** Bounded load through the ingress for `spread.test` (GETs, 4 at a time) for as long as `action` runs. */
async function whileLoaded<T>(action: () => Promise<T>): Promise<{ result: T; r: Awaited<ReturnType<typeof load>> }> {
  let done = false;
  const running = load(h.ingressPort, '/', { total: 50_000, concurrency: 4, maxMs: 240_000, host: 'spread.test', stop: () => done });
  let result: T;
  try {
    result = await action();
  } finally {
    done = true;
  }
  return { result, r: await running };
}

/** What one instance serves at `path`, asked at its host address directly (not through the ingress). */
async function direct(i: { address: string; port: number }, path: string): Promise<string> {
  const r = await fetch(`http://${i.address}:${i.port}${path}`, { signal: AbortSignal.timeout(5000) });
  return r.ok ? r.text() : `HTTP ${r.status}`;
}

test('rolling and blue-green releases, a reload by signal and a rollback, across hosts under load: 0 failed requests', async () => {
  // The load runs from before each change starts until it is done (not a fixed count that may end before it).
  for (const [version, strategy] of [['v2', 'rolling'], ['v3', 'blue-green']] as const) {
    const { result: d, r } = await whileLoaded(() => deploy({ app: 'spread', version, strategy }));
    assert.equal(d.code, 0, d.stderr + d.stdout);
    assert.equal(r.failed, 0, `${strategy}: ${r.failed} of ${r.ok + r.failed} failed: ${r.errors.join('; ')}`);
    assert.ok(r.ok >= 200, `${strategy}: only ${r.ok} requests`);
    const insts = (await instances('spread')).filter((i) => i.state === 'running');
    await waitFor(async () => {
      const seen = await answering('spread', 12);
      return [...seen].every((id) => insts.some((i) => i.id === id)) ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250, what: `only ${version} answering` });
    const bodies = new Set<string>();
    for (let i = 0; i < 12; i++) bodies.add((await get(h.ingressPort, '/', 5000, { host: 'spread.test' })).body.trim().split(' ')[1]!);
    assert.deepEqual([...bodies], [version]);
  }

  // `berth reload` under load: the SIGHUP goes to each instance's host engine (over TLS), one instance
  // at a time; every instance on the three hosts gets exactly one, and none is recreated.
  const svc = (await h.status('spread')).services[0] as { release: { seq: number }; instances: Array<Inst & { release: number; containerId?: string }> };
  const current = svc.instances.filter((i) => i.release === svc.release.seq && i.state === 'running');
  assert.deepEqual(tally(current.map((i) => i.host)), { [hn(1)]: 2, [hn(2)]: 2, [hn(3)]: 2 });
  for (const i of current) assert.equal(await direct(i, '/hup'), 'HTTP 404', `${i.id}: no SIGHUP yet`);
  const { result: rl, r: during } = await whileLoaded(() => h.cli(['reload', 'spread', 'web'], { timeoutMs: 150_000 }));
  assert.equal(rl.code, 0, rl.stderr + rl.stdout);
  // (The previous release's six idle blue-green instances, kept for a one-switch rollback, get it too.)
  assert.match(rl.stdout, /reloaded (6|12) instance\(s\) of spread\/prod\/web; 6\/6 healthy/);
  assert.equal(during.failed, 0, `reload: ${during.errors.join('; ')}`);
  assert.ok(during.ok >= 50, `reload: only ${during.ok} requests`);
  for (const i of current) assert.equal(await direct(i, '/hup'), 'hup\n', `${i.id} on ${i.host} got one SIGHUP`);
  const after = (await h.status('spread')).services[0] as typeof svc;
  assert.deepEqual(after.instances.filter((i) => i.release === svc.release.seq && i.state === 'running').map((i) => [i.id, i.containerId]).sort(),
    current.map((i) => [i.id, i.containerId]).sort(), 'the same instances and containers');

  // Back to v2 (rolling), across the hosts, under load.
  const { result: rb, r } = await whileLoaded(() => h.cli(['rollback', 'spread', '--to', '2'], { timeoutMs: 150_000 }));
  assert.equal(rb.code, 0, rb.stderr + rb.stdout);
  assert.equal(r.failed, 0, `rollback: ${r.errors.join('; ')}`);
  assert.ok(r.ok >= 200, `rollback: only ${r.ok} requests`);
  await waitFor(async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) seen.add((await get(h.ingressPort, '/', 5000, { host: 'spread.test' })).body.trim().split(' ')[1]!);
    return seen.size === 1 && seen.has('v2') ? true : undefined;
  }, { timeoutMs: 60_000, intervalMs: 500, what: 'v2 again' });
  const hosts = (await instances('spread')).filter((i) => i.state === 'running').map((i) => i.host);
  assert.deepEqual(tally(hosts), { [hn(1)]: 2, [hn(2)]: 2, [hn(3)]: 2 });
});
