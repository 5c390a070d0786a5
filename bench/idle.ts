/**
 * idle: resident memory of the server process after start with no apps, and with 50 apps × 2
 * replicas of a tiny image (busybox httpd) deployed, healthy and routed.
 */
import { Harness } from '../test/helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { log, prepare, rssMb } from './common.ts';

const APPS = Number(process.env.BENCH_APPS ?? 50);

function spec(app: string) {
  const svc = {
    name: 'web', image: 'berth/busybox:latest', command: ['sh', '-c', 'exec httpd -f -p "$PORT" -h /etc'], environment: {}, ports: [],
    replicas: 2, limits: { memoryBytes: 32 * 1024 * 1024 }, labels: {},
    health: { type: 'tcp', intervalMs: 2000, timeoutMs: 1000, retries: 3, startPeriodMs: 0 },
    restart: { condition: 'any', delayMs: 1000 }, stopSignal: 'SIGTERM', stopGracePeriodMs: 2000, volumes: [], dependsOn: [],
    port: 8000, routes: [{ path: `/${app}` }],
  };
  return { name: app, services: { web: svc } };
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function run(): Promise<Record<string, number>> {
  await prepare();
  const h = await Harness.create({ portRange: '12000-12999' });
  try {
    await h.startServer();
    const pid = h.proc!.pid!;
    await settle(5000);
    const idle = rssMb(pid);
    log(`idle: ${idle} MB`);
    const ids: string[] = [];
    for (let i = 0; i < APPS; i++) {
      const r = await h.api('POST', `/v1/apps/idle${i}/deployments`, { env: 'prod', spec: spec(`idle${i}`) });
      if (r.status !== 202) throw new Error(JSON.stringify(r.json));
      ids.push(r.json.deployment.id);
    }
    await waitFor(async () => {
      let done = 0;
      for (const id of ids) {
        const d = await h.api('GET', `/v1/deployments/${id}`);
        if (d.json.deployment.status === 'failed') throw new Error(d.json.deployment.message);
        if (d.json.deployment.status === 'succeeded') done++;
      }
      log(`${done}/${APPS} apps healthy`);
      return done === APPS;
    }, { timeoutMs: 600_000, intervalMs: 3000, what: 'all apps healthy' });
    await settle(10_000);
    const loaded = rssMb(pid);
    log(`with ${APPS} apps × 2 replicas: ${loaded} MB`);
    return { rss_idle_mb: idle, rss_50apps_mb: loaded, apps: APPS, replicas_each: 2 };
  } finally {
    await h.cleanup();
  }
}
