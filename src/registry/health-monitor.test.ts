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
