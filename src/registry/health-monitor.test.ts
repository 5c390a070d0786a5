import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { checkInstance } from './health-monitor.ts';

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
