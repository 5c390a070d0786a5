/**
 * deploy: 3 replicas of the example image (already built) until all are healthy and routed through
 * nginx, Berth (API call → deployment succeeded, which Berth reports only once nginx serves them)
 * versus by hand (`docker run` ×3 on the host network + polling each health endpoint until 200).
 * Alternating, 9 runs each by default (BENCH_RUNS); medians. Then the cluster figure (deploy-cluster.ts): 9 replicas over 3
 * test hosts, Berth in cluster mode vs `docker service create` with a health check.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Harness, ROOT, docker, freePort, get } from '../test/helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { deployAndWait, exec, log, median, prepare } from './common.ts';
import { clusterFigures } from './deploy-cluster.ts';

const IMAGE = 'berth-bench/web:latest';
/** 9 alternating runs each (was 5): single runs on these machines vary by ±15%, and the median of 5 moved the ratio by ±0.05 between runs of the same code. */
const RUNS = Number(process.env.BENCH_RUNS ?? 9);

function spec(app: string) {
  const svc = {
    name: 'web', image: IMAGE, environment: { APP_VERSION: 'v1' }, ports: [], replicas: 3, limits: {}, labels: {},
    health: { type: 'http', path: '/healthz', intervalMs: 1000, timeoutMs: 1000, retries: 3, startPeriodMs: 0 },
    restart: { condition: 'any', delayMs: 1000 }, stopSignal: 'SIGTERM', stopGracePeriodMs: 5000, volumes: [], dependsOn: [],
    port: 3000, routes: [{ path: `/${app}` }],
  };
  return { name: app, services: { web: svc } };
}

/** Berth's event timeline of a deploy (ms after the API call), to stderr: where the time went. */
async function timeline(h: Harness, app: string, sinceMs: number): Promise<void> {
  const r = await h.api('GET', `/v1/events?app=${app}&limit=200`);
  const evs = ((r.json?.events ?? []) as { ts: number; kind: string; instance: string }[]).filter((e) => e.ts >= sinceMs).sort((a, b) => a.ts - b.ts);
  log(`${app} timeline (ms after the deploy call): ${evs.map((e) => `${e.ts - sinceMs} ${e.kind}${e.instance ? `(${e.instance.slice(-4)})` : ''}`).join(', ')}`);
}

async function berthOnce(h: Harness, app: string): Promise<number> {
  const at = Date.now();
  const ms = await deployAndWait(h, app, spec(app), 60_000);
  await timeline(h, app, at);
  // Sanity: it really is routed.
  const res = await get(h.ingressPort, `/${app}`);
  if (res.status !== 404 && res.status !== 200) throw new Error(`route answered ${res.status}`);
  await h.api('DELETE', `/v1/apps/${app}`);
  await waitFor(async () => (await h.containers(app)).length === 0, { timeoutMs: 60_000, what: 'cleanup' });
  return ms;
}

async function dockerOnce(run: number): Promise<number> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const names = ports.map((_, i) => `berth-bench-manual-${run}-${i}`);
  const t0 = performance.now();
  await Promise.all(ports.map((p, i) => docker('run', '-d', '--name', names[i]!, '--network', 'host', '-e', `PORT=${p}`, '-e', 'APP_VERSION=v1', IMAGE)));
  await Promise.all(ports.map((p) => waitFor(async () => (await get(p, '/healthz', 1000)).status === 200, { timeoutMs: 60_000, intervalMs: 20, what: `:${p}` })));
  const ms = performance.now() - t0;
  await docker('rm', '-f', ...names);
  return ms;
}

/**
 * BENCH_DEPLOY_ONE_HOST=0 / BENCH_DEPLOY_CLUSTER=0 leave a part out; BENCH_CLUSTER_RUNS (3) cluster
 * runs. `load_1m_*`: the machine's 1-minute load average when the run started and ended (these
 * machines are shared: the figures are only comparable at a similar load).
 */
export async function run(): Promise<Record<string, number>> {
  await prepare();
  const out: Record<string, number> = { load_1m_start: Math.round(loadavg()[0]! * 10) / 10 };
  if (process.env.BENCH_DEPLOY_ONE_HOST !== '0') {
    log('building the example image');
    await exec('docker', ['build', '-q', '-t', IMAGE, join(ROOT, 'examples/hello')], { timeout: 300_000 });
    const h = await Harness.create({ portRange: '11000-11999' });
    try {
      await h.startServer();
      const berth: number[] = [];
      const manual: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        berth.push(await berthOnce(h, `bench${i}`));
        manual.push(await dockerOnce(i));
        log(`run ${i + 1}/${RUNS}: berth ${berth.at(-1)!.toFixed(0)} ms, docker ${manual.at(-1)!.toFixed(0)} ms`);
      }
      const b = median(berth);
      const d = median(manual);
      Object.assign(out, { berth_ms: Math.round(b), docker_ms: Math.round(d), ratio: Math.round((b / d) * 100) / 100, runs: RUNS });
    } finally {
      await h.cleanup();
    }
  }
  if (process.env.BENCH_DEPLOY_CLUSTER !== '0') Object.assign(out, await clusterFigures(Number(process.env.BENCH_CLUSTER_RUNS ?? 3)));
  out.load_1m_end = Math.round(loadavg()[0]! * 10) / 10;
  return out;
}
