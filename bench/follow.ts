/**
 * follow: what a follower costs and how soon it learns (issue 11, progress from store events).
 * 1. Requests made by `berth deploy` while it waits for a rollout whose instance becomes ready after
 *    10 s (test/fixtures/apps/feedback, READY_DELAY_MS), counted by a loopback proxy in front of the
 *    server: the CLI before this change (BENCH_OLD_COMMIT, default c1f19e8, main just before it landed: polled the deployment
 *    every 100 ms next to an event stream) and after (one stream), alternating, BENCH_RUNS each.
 * 2. SSE latency: a follower on /v1/events/stream over loopback, in-process API over a real SQLite
 *    store; from `store.addEvent` to the message read by the client, 200 writes (p50, p99). The
 *    stream before this change read the store every 100 ms, so its latency was 0–100 ms by construction.
 */
import { createServer, request, type Server } from 'node:http';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, ROOT, docker } from '../test/helpers/harness.ts';
import { openSse, testApi } from '../test/helpers/api-inject.ts';
import { exec, log, median, prepare } from './common.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const OLD = process.env.BENCH_OLD_COMMIT ?? 'c1f19e8';
const IMAGE = 'berth-test/feedback:latest';
const READY_MS = 10_000;

/** A loopback proxy that counts the requests passing through it. */
function countingProxy(target: number): Promise<{ server: Server; port: number; counts: Map<string, number>; reset(): void }> {
  const counts = new Map<string, number>();
  const server = createServer((req, res) => {
    const key = `${req.method} ${(req.url ?? '').split('?')[0]!.replace(/\/v1\/deployments\/[^/]+/, '/v1/deployments/ID')}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const up = request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
    res.on('close', () => up.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    server, port: (server.address() as { port: number }).port, counts, reset: () => counts.clear(),
  })));
}

/** The CLI of an older commit, extracted once (git archive) beside this checkout's node_modules. */
function oldCli(): string {
  const dir = join(tmpdir(), `berth-bench-cli-${OLD}`);
  if (!existsSync(join(dir, 'bin/berth'))) {
    mkdirSync(dir, { recursive: true });
    execFileSync('bash', ['-c', `git -C ${JSON.stringify(ROOT)} archive ${OLD} | tar -x -C ${JSON.stringify(dir)}`]);
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  }
  return join(dir, 'bin/berth');
}

async function deployCounting(h: Harness, cli: string, proxy: Awaited<ReturnType<typeof countingProxy>>, app: string, dir: string) {
  const file = join(dir, `${app}.yaml`);
  writeFileSync(file, `name: ${app}
services:
  web:
    image: ${IMAGE}
    environment:
      APP: ${app}
      READY_DELAY_MS: "${READY_MS}"
    x-berth:
      port: 3000
      health: { http: /health }
`);
  proxy.reset();
  const t0 = performance.now();
  // Asynchronously: the counting proxy runs in this process and must go on serving while the CLI waits.
  await promisify(execFile)(cli, ['deploy', '-f', file, '--env', 'prod'], {
    env: { ...h.env, BERTH_URL: `http://127.0.0.1:${proxy.port}` }, timeout: 120_000,
  });
  const ms = performance.now() - t0;
  const total = [...proxy.counts.values()].reduce((a, b) => a + b, 0);
  const byRoute = Object.fromEntries(proxy.counts);
  await h.api('DELETE', `/v1/apps/${app}`);
  return { total, ms, byRoute };
}

async function sseLatency(n: number): Promise<{ p50: number; p99: number }> {
  const t = await testApi();
  try {
    t.addService('lat', 'prod', 'web');
    const s = await openSse(t, '/v1/events/stream?app=lat');
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const e = t.store.addEvent({ app: 'lat', env: 'prod', service: 'web', instance: '', kind: 'bench.tick', message: String(i) });
      const m = await s.next((x) => x.id === e.id, 5000);
      ms.push(m.at - t0);
    }
    s.close();
    const sorted = [...ms].sort((a, b) => a - b);
    return { p50: Math.round(median(ms) * 100) / 100, p99: Math.round(sorted[Math.floor(sorted.length * 0.99) - 1]! * 100) / 100 };
  } finally {
    await t.close();
  }
}

export async function run(): Promise<Record<string, number | string>> {
  const lat = await sseLatency(200);
  log(`SSE store write → client: p50 ${lat.p50} ms, p99 ${lat.p99} ms`);
  await prepare();
  await docker('build', '-q', '-t', IMAGE, join(ROOT, 'test/fixtures/apps/feedback'));
  const old = oldCli();
  const now = join(ROOT, 'bin/berth');
  const h = await Harness.create({ portRange: '10700-10799' });
  const dir = join(tmpdir(), `berth-bench-follow-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    await h.startServer();
    const p = await countingProxy(h.apiPort);
    const before: number[] = [];
    const after: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const b = await deployCounting(h, old, p, `fold${i}`, dir);
      before.push(b.total);
      log(`run ${i + 1}/${RUNS} before: ${b.total} requests in ${(b.ms / 1000).toFixed(1)} s ${JSON.stringify(b.byRoute)}`);
      const a = await deployCounting(h, now, p, `fnew${i}`, dir);
      after.push(a.total);
      log(`run ${i + 1}/${RUNS} after: ${a.total} requests in ${(a.ms / 1000).toFixed(1)} s ${JSON.stringify(a.byRoute)}`);
    }
    p.server.close();
    return {
      deploy_requests_before: median(before), deploy_requests_after: median(after), rollout_s: READY_MS / 1000,
      sse_latency_p50_ms: lat.p50, sse_latency_p99_ms: lat.p99, sse_latency_before_ms: '0-100 (100 ms poll)', runs: RUNS,
    };
  } finally {
    await h.cleanup();
    await exec('rm', ['-rf', dir]);
  }
}
