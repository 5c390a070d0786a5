import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import { HealthMonitor, checkInstance, isSelfConnection, startingProbeDelayMs } from './health-monitor.ts';
import { silentLogger } from '../lib/logger.ts';

const http = (path: string, timeoutMs = 1000) => ({ type: 'http' as const, path, intervalMs: 1000, timeoutMs, retries: 3, startPeriodMs: 0 });
const tcp = { type: 'tcp' as const, intervalMs: 1000, timeoutMs: 1000, retries: 3, startPeriodMs: 0 };

async function listen(s: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as { port: number }).port;
}

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const s = createTcpServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

test('checkInstance says what a check found: the status, a refused connection and where, a timeout', async () => {
  const server = createServer((req, res) => {
    if (req.url === '/slow') return void setTimeout(() => res.end('late'), 500);
    res.writeHead(req.url === '/health' ? 200 : 404).end();
  });
  const port = await listen(server);
  try {
    const at = { address: '127.0.0.1', port };
    assert.deepEqual(await checkInstance(at, http('/health')), { ok: true, text: 'GET /health → 200' });
    assert.deepEqual(await checkInstance(at, http('/healthz')), { ok: false, text: 'GET /healthz → 404' });
    assert.deepEqual(await checkInstance(at, http('/slow', 100)), { ok: false, text: `GET /slow → no answer within 100 ms on 127.0.0.1:${port}` });
    assert.deepEqual(await checkInstance(at, tcp), { ok: true, text: `connected to 127.0.0.1:${port}` });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  const closed = await closedPort();
  assert.deepEqual(await checkInstance({ address: '127.0.0.1', port: closed }, http('/healthz')),
    { ok: false, text: `GET /healthz → connection refused on 127.0.0.1:${closed}`, refused: true });
  assert.deepEqual(await checkInstance({ address: '127.0.0.1', port: closed }, tcp),
    { ok: false, text: `connection refused on 127.0.0.1:${closed}`, refused: true });
});

test('a check whose timeout ran late because the event loop was busy does not call a live instance unreachable', async () => {
  const server = createServer((_req, res) => res.end('ok'));
  const port = await listen(server);
  const at = { address: '127.0.0.1', port };
  /** Starts the check, lets its connect be issued (a nextTick), then keeps the event loop busy past its timeout. */
  const blocked = async (p: Parameters<typeof checkInstance>[1]) => {
    const result = checkInstance(at, p);
    await new Promise((r) => process.nextTick(r));
    const until = Date.now() + 4 * p.timeoutMs;
    while (Date.now() < until) { /* the kernel makes the connection meanwhile; Node sees it after the timers */ }
    return result;
  };
  try {
    // The timer and the made connection are due in the same turn: the connection is seen first.
    assert.deepEqual(await blocked({ ...tcp, timeoutMs: 50 }), { ok: true, text: `connected to 127.0.0.1:${port}` });
    const r = await blocked(http('/health', 50));
    assert.equal(r.unreachable, undefined, JSON.stringify(r));
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('a TCP connection that connected to itself (nothing listens; the kernel chose the port as source) is recognised, a real one is not', async () => {
  const port = await closedPort();
  // Binding the client to that same port makes the connect a simultaneous open with itself.
  const self = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1', localPort: port });
  await new Promise<void>((resolve, reject) => { self.once('connect', () => resolve()); self.once('error', reject); });
  assert.equal(isSelfConnection(self), true);
  self.destroy();
  const server = createTcpServer((s) => s.end());
  const real = connect({ host: '127.0.0.1', port: await listen(server) });
  await new Promise<void>((resolve, reject) => { real.once('connect', () => resolve()); real.once('error', reject); });
  assert.equal(isSelfConnection(real), false);
  real.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

test('HealthMonitor.refresh reads each release once, not once per instance per refresh (a release\'s spec never changes)', () => {
  const instances = Array.from({ length: 30 }, (_, n) => ({
    id: `i${n}`, app: 'a', env: 'prod', service: 'web', releaseId: `r${n % 3}`, host: 'h', address: '127.0.0.1', port: 20000 + n,
    state: 'running' as const, health: 'healthy' as const, createdAt: 1,
  }));
  const reads: string[] = [];
  const store = {
    allInstances: () => instances,
    // Moves with every instance written (here: added).
    instanceVersion: () => instances.length,
    // Cannot tell which were written: every refresh reads them all.
    instanceWritesSince: () => undefined,
    getRelease: (id: string) => {
      reads.push(id);
      return { id, spec: { health: { type: 'command', test: ['CMD', 'true'], intervalMs: 1000, timeoutMs: 1000, retries: 3, startPeriodMs: 0 } } };
    },
  } as unknown as ConstructorParameters<typeof HealthMonitor>[0];
  const monitor = new HealthMonitor(store, { now: () => 0 }, silentLogger, () => undefined);
  try {
    monitor.refresh();
    assert.deepEqual(reads.sort(), ['r0', 'r1', 'r2']);
    monitor.refresh();
    assert.equal(reads.length, 3, 'the second refresh reads no release');
    instances.push({ ...instances[0]!, id: 'new', releaseId: 'r9' });
    monitor.refresh();
    assert.deepEqual(reads.slice(3), ['r9'], 'only the new release is read');
  } finally {
    monitor.close();
  }
});

test('HealthMonitor.down: a healthy running instance leaves the upstreams at once (health and event in one write, onChange once); anything else is left alone', () => {
  const rows = new Map([
    ['up', { id: 'up', app: 'a', env: 'prod', service: 'web', releaseId: 'r', host: 'h', address: '127.0.0.1', port: 1, state: 'running', health: 'healthy', createdAt: 1 }],
    ['going', { id: 'going', app: 'a', env: 'prod', service: 'web', releaseId: 'r', host: 'h', address: '127.0.0.1', port: 2, state: 'stopping', health: 'healthy', createdAt: 1 }],
    ['new', { id: 'new', app: 'a', env: 'prod', service: 'web', releaseId: 'r', host: 'h', address: '127.0.0.1', port: 3, state: 'running', health: 'starting', createdAt: 1 }],
  ]);
  const batches: unknown[] = [];
  const store = {
    getInstance: (id: string) => (rows.has(id) ? { ...rows.get(id)! } : undefined),
    writeBatch: (b: { instances?: { id: string; patch: { health: string } }[] }) => {
      batches.push(b);
      for (const i of b.instances ?? []) Object.assign(rows.get(i.id)!, i.patch);
      return [];
    },
  } as unknown as ConstructorParameters<typeof HealthMonitor>[0];
  const changed: string[] = [];
  const monitor = new HealthMonitor(store, { now: () => 0 }, silentLogger, (inst) => void changed.push(inst.id));
  monitor.down('up', 'its container was sent SIGKILL');
  monitor.down('up', 'its container exited with code 137');
  monitor.down('going', 'its container exited with code 0');
  monitor.down('new', 'its container exited with code 1');
  monitor.down('gone', 'its container exited with code 1');
  assert.deepEqual(changed, ['up']);
  assert.deepEqual(batches, [{
    observed: true,
    instances: [{ id: 'up', patch: { health: 'unhealthy' } }],
    events: [{ app: 'a', env: 'prod', service: 'web', instance: 'up', kind: 'health.unhealthy', message: 'instance up is unhealthy: its container was sent SIGKILL' }],
  }]);
  monitor.close();
});

test('a starting instance is probed every 20 ms for its first 2 s, then less and less often; many starting at once share a budget', () => {
  // [ms since start, delay before the last probe, instances starting, check interval] → next delay
  const table: [number, number, number, number, number][] = [
    [0, 0, 3, 1000, 20],
    [400, 20, 3, 1000, 20],
    [1990, 20, 1, 1000, 20],
    [2000, 20, 3, 1000, 40],
    [2100, 40, 3, 1000, 80],
    [9000, 640, 3, 1000, 1000],
    [9000, 1000, 3, 1000, 1000],
    // the check's own interval is the cap when shorter
    [0, 0, 3, 10, 10],
    [5000, 400, 3, 500, 500],
    // 100 instances starting: each every 400 ms (~250 probes a second in all); 1,000: the cap
    [0, 0, 100, 1000, 400],
    [3000, 400, 100, 1000, 800],
    [0, 0, 1000, 1000, 1000],
  ];
  for (const [since, last, starting, interval, want] of table) {
    assert.equal(startingProbeDelayMs(since, last, starting, interval), want, `since ${since} last ${last} starting ${starting} interval ${interval}`);
  }
  // An instance that takes 30 s to start: probes in all.
  let t = 0;
  let last = 0;
  let probes = 0;
  while (t < 30_000) {
    last = startingProbeDelayMs(t, last, 3, 1000);
    t += last;
    probes++;
  }
  assert.ok(probes > 100 && probes < 140, `${probes} probes in 30 s`);
});

test('HealthMonitor.refresh: an instance whose release was not readable yet is probed once its release is written, without another instance write', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { SqliteStore } = await import('../store/index.ts');
  const dir = mkdtempSync(join(tmpdir(), 'berth-health-'));
  const clock = { now: () => Date.now() };
  const store = new SqliteStore(join(dir, 'berth.db'), clock);
  const server = createTcpServer((s) => s.end());
  const port = await listen(server);
  const changes: string[] = [];
  const monitor = new HealthMonitor(store, clock, silentLogger, (inst) => changes.push(inst.id));
  try {
    store.createInstance({ id: 'i1', app: 'a', env: 'prod', service: 'web', releaseId: 'r1', host: 'h', address: '127.0.0.1', state: 'running', health: 'starting', createdAt: 1 },
      { min: port, max: port, isFree: () => true });
    monitor.refresh();
    // The release comes after the instance (no instance written since): the next refresh reads it.
    store.putService({ app: 'a', env: 'prod', name: 'web', replicas: 1, releaseId: 'r1', failures: 0, nextStartAt: 0, updatedAt: 1 }, {
      id: 'r1', app: 'a', env: 'prod', service: 'web', seq: 1, specHash: 'h', image: 'x', imageId: 'sha256:x', status: 'progressing', message: '', createdAt: 1, createdBy: 't',
      spec: { name: 'web', image: 'x', environment: {}, ports: [], health: tcp, replicas: 1, limits: {}, restart: { condition: 'any', delayMs: 1000 }, labels: {},
        stopSignal: 'SIGTERM', stopGracePeriodMs: 1000, volumes: [], dependsOn: [], routes: [] },
    });
    monitor.refresh();
    const end = Date.now() + 10_000;
    while (changes.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(changes, ['i1'], 'one flip, reported');
    assert.equal(store.getInstance('i1')?.health, 'healthy');
  } finally {
    monitor.close();
    store.close();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('HealthMonitor.refresh after each of 200 random instance writes (some rolled back): probes exactly the instances a monitor started afresh would', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { SqliteStore } = await import('../store/index.ts');
  const dir = mkdtempSync(join(tmpdir(), 'berth-health-'));
  const clock = { now: () => 1000 };
  const store = new SqliteStore(join(dir, 'berth.db'), clock);
  const monitor = new HealthMonitor(store, clock, silentLogger, () => undefined);
  try {
    const spec = (health: typeof tcp | { type: 'none' }) => ({ name: 'web', image: 'x', environment: {}, ports: [], health, replicas: 1, limits: {}, restart: { condition: 'any' as const, delayMs: 1000 },
      labels: {}, stopSignal: 'SIGTERM', stopGracePeriodMs: 1000, volumes: [], dependsOn: [], routes: [] });
    const rel = (id: string, health: typeof tcp | { type: 'none' }) => ({ id, app: 'a', env: 'prod', service: 'web', seq: Number(id.slice(1)), specHash: id, image: 'x', imageId: 'sha256:x',
      status: 'progressing' as const, message: '', createdAt: 1, createdBy: 't', spec: spec(health) });
    const svc = (releaseId: string) => ({ app: 'a', env: 'prod', name: 'web', replicas: 1, releaseId, failures: 0, nextStartAt: 0, updatedAt: 1 });
    store.putService(svc('r1'), rel('r1', tcp));
    store.putService(svc('r2'), rel('r2', { type: 'none' }));
    let seed = 11;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor(seed / 65536) % n;
    };
    const states = ['running', 'running', 'pending', 'stopping', 'exited'] as const;
    const ids: string[] = [];
    let most = 0;
    // Closed ports on loopback: a probe that ran would be refused (none runs: the test never yields).
    const range = { min: 29000, max: 29999, isFree: () => true };
    for (let step = 0; step < 200; step++) {
      const op = rnd(10);
      if (op < 3 || ids.length === 0) {
        const id = `i${step}`;
        store.createInstance({ id, app: 'a', env: 'prod', service: 'web', releaseId: rnd(3) ? 'r1' : 'r2', host: 'h', address: rnd(4) ? '127.0.0.1' : '',
          state: states[rnd(states.length)]!, health: 'starting', createdAt: step }, range);
        ids.push(id);
      } else if (op < 8) {
        const id = ids[rnd(ids.length)]!;
        store.updateInstance(id, rnd(2) ? { state: states[rnd(states.length)]! } : { address: rnd(2) ? '127.0.0.1' : '' });
      } else if (op < 9) {
        store.deleteInstance(ids.splice(rnd(ids.length), 1)[0]!);
      } else {
        // A transaction that throws after a write: the store forgets it, and so must the monitor.
        const id = ids[rnd(ids.length)]!;
        assert.throws(() => store.writeBatch({ instances: [{ id, patch: { state: 'exited' } }], events: [{ app: 'a', env: 'prod', service: 'web', instance: id, kind: 'x', message: null as never }] }));
      }
      if (rnd(3) === 0) continue;
      monitor.refresh();
      const fresh = new HealthMonitor(store, clock, silentLogger, () => undefined);
      fresh.refresh();
      assert.deepEqual(monitor.trackedIds(), fresh.trackedIds(), `step ${step}`);
      most = Math.max(most, monitor.trackedIds().length);
      fresh.close();
    }
    assert.ok(most >= 3, `several instances were probed at once (at most ${most})`);
  } finally {
    monitor.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
