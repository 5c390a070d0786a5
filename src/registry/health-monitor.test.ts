import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import { HealthMonitor, checkInstance, isSelfConnection } from './health-monitor.ts';
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
