/**
 * scale: the control plane against a simulated large cluster (issue 13). In this process: the real
 * SQLite store, the deploy path (DeploymentService + DeploymentController), the service reconcilers on
 * the controller manager's work queue, the resync loop, engine events, the health monitor and the
 * registry, the route table, the ingress RENDER (checkRoutes + planConfig, as NginxIngress runs them
 * on every pass, behind the Ingress port: nginx itself does not run) and the HTTP API (fastify,
 * listening on 127.0.0.1). The engine is the fake engine (src/engine/fake) simulating
 * BENCH_SCALE_HOSTS (100) hosts; BENCH_SCALE_APPS (50) apps × 10 services × BENCH_SCALE_REPLICAS (10)
 * = 500 services, 5,000 instances, deployed through the API.
 *
 * Services use an engine-run (Compose) health check, as Swarm reports it: the bench plays the engine's
 * checker (a started container turns healthy) and the data plane (the reconciler's port check of an
 * instance answers "connected": nothing is sent on the network).
 *
 * Figures (last line): rss_mb (the process's peak RSS after the deploy and through the churn),
 * resync_ms (every key woken — services, instances, containers — until the queue is idle),
 * status_p99_ms (GET /v1/apps/APP, what `berth status APP` asks, under churn), render_ms (median full
 * render pass of the 5,000-backend table), flip_to_routed_p99_ms (an engine health flip until the
 * rendered upstreams no longer / again contain the instance), plus deploy_s, apps_p99_ms (GET /v1/apps,
 * every app at once), host_loss_restored_ms (a host dies: until every service is back to its
 * replicas healthy and routed), churn_cpu_ms / churn_cpu_ms_per_flip (the process's CPU time over the
 * churn: comparable across load averages, unlike the latencies), event_loop_delay_p99_ms / _max_ms (how
 * long a ready callback waited for the event loop over the churn: perf_hooks.monitorEventLoopDelay) and
 * the counts.
 * BENCH_SCALE_PROFILE=FILE writes a CPU profile of the churn window alone.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FakeEngine } from '../src/engine/fake/index.ts';
import { LABEL, systemClock, type Ingress, type IngressRoute } from '../src/core/ports.ts';
import { SqliteAuditStore, SqliteAuthStore, SqliteStore } from '../src/store/index.ts';
import { ConfigStore, SecretBox, SpecFiles } from '../src/config/index.ts';
import { Authenticator, hashToken } from '../src/auth/index.ts';
import { ControllerManager, type Controller } from '../src/reconcile/index.ts';
import { DeploymentController, DeploymentService, Resync, ServiceReconciler, deploymentKey, parseServiceKey, rollbacks, serviceKey, watchEngineEvents } from '../src/deploy/index.ts';
import { HealthMonitor, Registry, RouteTable } from '../src/registry/index.ts';
import { buildApi } from '../src/api/index.ts';
import { knownApps } from '../src/api/known.ts';
import { parseAppSpec } from '../src/api/spec-schema.ts';
import { scopedEngine } from '../src/server/host-setup.ts';
import { checkRoutes, isFrozenBackends, planConfig, onlyBackendsDiffer, type RenderOptions } from '../src/ingress/render.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { shortId } from '../src/lib/ids.ts';
import { Coalesced } from '../src/lib/coalesce.ts';
import type { InstanceRecord, ServiceKey } from '../src/core/store.ts';
import { log, median } from './common.ts';

const HOSTS = Number(process.env.BENCH_SCALE_HOSTS ?? 100);
const APPS = Number(process.env.BENCH_SCALE_APPS ?? 50);
const SERVICES_PER_APP = 10;
const REPLICAS = Number(process.env.BENCH_SCALE_REPLICAS ?? 10);
const FLIPS = Number(process.env.BENCH_SCALE_FLIPS ?? 100);
const STATUS_REQUESTS = Number(process.env.BENCH_SCALE_STATUS ?? 300);
/** The whole run stops by itself after this long. */
const BUDGET_MS = Number(process.env.BENCH_SCALE_BUDGET_S ?? 175) * 1000;
const TOKEN = randomBytes(16).toString('hex');
const IMAGE = 'berth/busybox';

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)]! : NaN;
}

const round = (n: number) => Math.round(n * 10) / 10;

/**
 * The ingress as NginxIngress runs it, without nginx: apply() coalesces (leading edge, 50 ms), each
 * pass runs checkRoutes and planConfig over the whole table — with the Lua balancer's options, as
 * NginxIngress renders when nginx can load it (BENCH_SCALE_RELOADS=1: without, plus the
 * onlyBackendsDiffer test of testAndSwap) — and keeps the config and backends text in memory. No
 * `nginx -t`, no reload, no push to nginx's admin endpoint.
 * Watchers learn which instances each pass left in the upstreams.
 */
class RenderOnlyIngress implements Ingress {
  readonly port = 0;
  readonly passMs: number[] = [];
  routed = new Set<string>();
  private desired: IngressRoute[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastPassAt = 0;
  private lastPassReloaded = true;
  private readonly watchers = new Set<() => void>();
  config: string | undefined;
  /** The backends file's text (Lua balancer): a backend-only change is pushed, not reloaded. */
  backends: string | undefined;
  private readonly opts: Omit<RenderOptions, 'generation'> = {
    prefix: '/var/lib/berth/nginx', listenPort: 8080, listenAddress: '0.0.0.0', adminPort: 8081, stubStatus: true, workerUser: 'nobody nogroup',
    // As NginxIngress renders when nginx can load the Lua balancer (its default).
    ...(process.env.BENCH_SCALE_RELOADS === '1' ? {} : {
      lua: { moduleDir: '/usr/lib/nginx/modules', backendsFile: '/var/lib/berth/nginx/conf/backends.conf', verifierFile: '/var/lib/berth/nginx/admin/token.sha1' },
    }),
  };

  async start(): Promise<void> {}

  apply(routes: IngressRoute[]): void {
    this.desired = routes.map((r) => ({ ...r, backends: isFrozenBackends(r.backends) ? r.backends : r.backends.map((b) => ({ ...b })) }));
    if (this.timer) return;
    // As NginxIngress schedules: after a pass that reloaded (the config changed, or always without
    // Lua) changes wait out the 50 ms window; after a backends-only pass the next goes out at once.
    const quiet = !this.lastPassReloaded || Date.now() - this.lastPassAt >= 50;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pass();
    }, quiet ? 0 : 50);
  }

  /** Flushes asked for before a pass starts share it (it reads the latest table when it runs). */
  private readonly flushes = new Coalesced(() => this.pass());

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    await this.flushes.request();
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
  }

  /** Calls fn after every pass until it returns true; rejects after timeoutMs. */
  until(fn: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (fn()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.watchers.delete(w);
        reject(new Error(`${what}: not within ${Math.round(timeoutMs / 1000)}s`));
      }, Math.max(0, timeoutMs));
      const w = () => {
        if (!fn()) return;
        clearTimeout(timer);
        this.watchers.delete(w);
        resolve();
      };
      this.watchers.add(w);
    });
  }

  private pass(): void {
    if (this.desired === undefined) return;
    const t0 = performance.now();
    const { routes } = checkRoutes(this.desired);
    const plan = planConfig(this.config, routes, this.opts);
    if (plan.changed) {
      // Without Lua, NginxIngress tests whether only server lines changed (then no `nginx -t`).
      if (this.config !== undefined && !this.opts.lua) onlyBackendsDiffer(this.config, plan.config);
      this.config = plan.config;
    }
    if (plan.backends !== this.backends) this.backends = plan.backends;
    this.lastPassReloaded = plan.changed || !this.opts.lua;
    this.passMs.push(performance.now() - t0);
    this.lastPassAt = Date.now();
    this.routed = new Set(routes.flatMap((r) => r.backends.map((b) => b.instance)));
    for (const w of [...this.watchers]) w();
  }
}

export async function run(): Promise<Record<string, number | string>> {
  const started = Date.now();
  const left = () => BUDGET_MS - (Date.now() - started);
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-scale-'));
  const clock = systemClock;
  const logger = silentLogger;
  const store = new SqliteStore(join(dir, 'berth.db'), clock);
  store.addToken(hashToken(TOKEN), 'admin');
  const authStore = new SqliteAuthStore(join(dir, 'auth.db'));
  const auth = new Authenticator({ store: authStore, adminTokens: store, clock });
  const audit = new SqliteAuditStore(join(dir, 'audit.db'));
  const config = new ConfigStore(join(dir, 'config.db'), new SecretBox(randomBytes(32)), clock);
  const cluster = 'bench';
  const fake = new FakeEngine({
    images: [IMAGE],
    hosts: Array.from({ length: HOSTS }, (_, i) => ({ name: `host-${String(i + 1).padStart(3, '0')}`, pool: i < 4 ? 'edge' : 'default', cpus: 64, memoryBytes: 256 * 1024 ** 3 })),
  });
  const engine = scopedEngine(fake, { [LABEL.cluster]: cluster });
  const ingress = new RenderOnlyIngress();
  const directAddresses = new Map<string, { address: string; port: number }>();
  const registry = new Registry(store, clock, logger);
  // As server.ts wires them.
  const routeTable = new RouteTable(store, directAddresses);
  const publishRoutes = new Coalesced(() => {
    registry.refresh();
    ingress.apply(routeTable.routes());
  });
  const applyRoutes = () => publishRoutes.schedule((err) => log(`route table not rebuilt: ${String(err)}`));
  const routesChanged = async () => {
    await publishRoutes.request();
    await ingress.flush();
  };
  const manager = new ControllerManager<{ 'instance.health': [InstanceRecord]; 'release.finished': [ServiceKey] }>(logger, 8);
  const late: { services?: ServiceReconciler; deployments?: DeploymentController } = {};
  const wakeService = manager.register<ServiceKey>({ name: 'services', key: serviceKey, parse: parseServiceKey, reconcile: (k) => late.services!.reconcile(k) });
  const wakeDeployment = manager.register<string>({
    name: 'deployments', key: deploymentKey, parse: (q) => (q.startsWith('deploy/') ? q.slice('deploy/'.length) : undefined), reconcile: (id) => late.deployments!.reconcile(id),
  } satisfies Controller<string>);
  const enqueueService = (app: string, env: string, service: string) => wakeService({ app, env, service });
  manager.on('instance.health', (inst) => {
    applyRoutes();
    enqueueService(inst.app, inst.env, inst.service);
  });
  manager.on('release.finished', (k) => {
    for (const dep of store.listDeployments({ status: ['rolling'] })) if (dep.app === k.app && dep.env === k.env) wakeDeployment(dep.id);
  });
  const health = new HealthMonitor(store, clock, logger, (inst) => manager.emit('instance.health', inst));
  const instancesChanged = new Coalesced(() => {
    health.refresh();
    registry.refresh();
  });
  late.services = new ServiceReconciler({
    store, engine, clock, logger, newId: () => shortId(10), hostAddress: '127.0.0.1', networkScope: cluster, directAddresses,
    portRange: { min: 20000, max: 29999 }, isPortFree: () => true, routesChanged,
    instancesChanged: () => instancesChanged.schedule((err) => log(`instance set not followed: ${String(err)}`)),
    // The data plane: something listens on every instance's port (no packet is sent).
    probe: async (inst) => ({ ok: true, text: `connected to ${inst.address}:${inst.port}` }),
    releaseFinished: (k) => manager.emit('release.finished', k),
  });
  const deploymentService = new DeploymentService({
    store, specFiles: new SpecFiles(config), clock, newId: () => shortId(10), enqueue: (id) => wakeDeployment(id), parseSpec: parseAppSpec,
    hostPaths: { bindSource: async (path) => ({ path }), buildContext: async (path) => ({ path }) },
  });
  late.deployments = new DeploymentController({
    store, engine, clock, logger, newId: () => shortId(10), enqueueService, applyRoutes, configVersion: (app, env) => config.version(app, env),
  });
  const resync = new Resync({ store, engine, logger, wakeService, wakeDeployment, wakePurge: () => undefined, intervalMs: 10_000, periodic: () => health.refresh() });
  const unwatch = watchEngineEvents({ engine, cluster, events: store, logger, serviceChanged: (k) => wakeService(k), reachable: () => void resync.all() });
  const known = knownApps({ store, config, listings: [] });
  const api = buildApi({
    store, clock, logger, newId: () => shortId(10), version: 'bench', deployments: deploymentService, rollback: rollbacks(store, clock), enqueueService,
    logs: { search: () => ({ lines: [] }), tail: () => () => undefined }, ingressPort: 0, known, auth, authStore, audit,
  });
  await api.listen({ host: '127.0.0.1', port: 0 });
  const addr = api.server.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const get = async (path: string): Promise<number> => {
    const t0 = performance.now();
    const res = await fetch(base + path, { headers: { authorization: `Bearer ${TOKEN}` } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`GET ${path} → ${res.status}`);
    return performance.now() - t0;
  };

  // The engine's health checker: a started container passes its check shortly after (unless the
  // churn holds it unhealthy).
  const heldUnhealthy = new Set<string>();
  const checker = setInterval(() => {
    for (const c of fake.containersNow()) if (c.running && c.health === 'starting' && !heldUnhealthy.has(c.id)) fake.setHealth(c.id, 'healthy', { exitCode: 0, output: 'ok' });
  }, 100);
  let peakRss = 0;
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 200);

  const total = APPS * SERVICES_PER_APP * REPLICAS;
  const result: Record<string, number | string> = {};
  try {
    // ---- deploy 500 services through the API ----
    log(`deploying ${APPS} apps × ${SERVICES_PER_APP} services × ${REPLICAS} replicas = ${total} instances on ${HOSTS} simulated hosts`);
    const t0 = Date.now();
    for (let a = 0; a < APPS; a++) {
      const app = `app${String(a).padStart(2, '0')}`;
      const services: Record<string, unknown> = {};
      for (let s = 0; s < SERVICES_PER_APP; s++) {
        const name = `svc${s}`;
        services[name] = {
          name, image: IMAGE, environment: {}, ports: [], replicas: REPLICAS, limits: {}, port: 8080,
          health: { type: 'command', test: ['CMD', 'true'], intervalMs: 5000, timeoutMs: 1000, retries: 3, startPeriodMs: 0 },
          restart: { condition: 'any', delayMs: 1000 }, labels: {}, stopSignal: 'SIGTERM', stopGracePeriodMs: 10_000, volumes: [], dependsOn: [],
          routes: [{ host: `${name}.${app}.example.test`, path: '/' }],
        };
      }
      const res = await fetch(`${base}/v1/apps/${app}/deployments`, {
        method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ env: 'prod', spec: { name: app, services } }),
      });
      if (res.status !== 202) throw new Error(`deploy ${app}: ${res.status} ${await res.text()}`);
    }
    await ingress.until(() => ingress.routed.size >= total, left() - 45_000, `${total} instances deployed and routed`);
    await waitUntil(() => store.listDeployments({ status: ['pending', 'building', 'rolling'] }).length === 0, 60_000);
    result.deploy_s = round((Date.now() - t0) / 1000);
    log(`deployed and routed in ${result.deploy_s}s; ${fake.containersNow().length} containers; rss ${Math.round(process.memoryUsage.rss() / 1048576)} MB`);
    await manager.idle();

    // ---- a full resync: every key woken, until the queue is idle ----
    const resyncs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r0 = performance.now();
      await resync.all();
      await manager.idle();
      resyncs.push(performance.now() - r0);
    }
    result.resync_ms = Math.round(median(resyncs));
    log(`full resync: ${resyncs.map(Math.round).join(', ')} ms`);

    // ---- churn: health flips and status requests at once, then a host lost ----
    const flips: number[] = [];
    const statusMs: number[] = [];
    const appsMs: number[] = [];
    const passesBefore = ingress.passMs.length;
    const flipper = async (n: number) => {
      for (let i = 0; i < n && left() > 12_000; i++) {
        const running = fake.containersNow().filter((c) => c.running && c.health === 'healthy' && !heldUnhealthy.has(c.id));
        const c = running[Math.floor(Math.random() * running.length)]!;
        const inst = c.labels[LABEL.instance]!;
        heldUnhealthy.add(c.id);
        let f0 = performance.now();
        fake.setHealth(c.id, 'unhealthy', { exitCode: 1, output: 'bench: flipped' });
        await ingress.until(() => !ingress.routed.has(inst), 30_000, `instance ${inst} unrouted`);
        flips.push(performance.now() - f0);
        f0 = performance.now();
        heldUnhealthy.delete(c.id);
        fake.setHealth(c.id, 'healthy', { exitCode: 0, output: 'ok' });
        await ingress.until(() => ingress.routed.has(inst), 30_000, `instance ${inst} routed again`);
        flips.push(performance.now() - f0);
      }
    };
    const statuses = async (n: number) => {
      for (let i = 0; i < n && left() > 12_000; i++) {
        statusMs.push(await get(`/v1/apps/app${String(Math.floor(Math.random() * APPS)).padStart(2, '0')}`));
        if (i % 20 === 0 && process.env.BENCH_SCALE_NO_APPS !== "1") appsMs.push(await get("/v1/apps"));
        await sleep(20);
      }
    };
    log(`churn: ${FLIPS} health flips (out and back) by 4 flippers, ${STATUS_REQUESTS} status requests`);
    // BENCH_SCALE_PROFILE=FILE: a CPU profile of the churn window alone (open in Chrome's DevTools).
    const profiler = process.env.BENCH_SCALE_PROFILE ? new Session() : undefined;
    if (profiler) {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
    }
    // CPU time of this process over the churn (all threads): unlike the latencies it hardly depends on
    // what else the machine runs, so runs at different load averages compare.
    const cpu0 = process.cpuUsage();
    // How long a ready callback waits for the event loop over the churn (the flip→routed tail).
    const eld = monitorEventLoopDelay({ resolution: 10 });
    eld.enable();
    const churn0 = performance.now();
    await Promise.all([flipper(FLIPS / 4), flipper(FLIPS / 4), flipper(FLIPS / 4), flipper(FLIPS / 4), statuses(STATUS_REQUESTS)]);
    const cpu = process.cpuUsage(cpu0);
    eld.disable();
    result.event_loop_delay_p99_ms = round(eld.percentile(99) / 1e6);
    result.event_loop_delay_max_ms = round(eld.max / 1e6);
    result.churn_cpu_ms = Math.round((cpu.user + cpu.system) / 1000);
    result.churn_wall_ms = Math.round(performance.now() - churn0);
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      writeFileSync(process.env.BENCH_SCALE_PROFILE!, JSON.stringify(profile));
      profiler.disconnect();
      log(`churn profile written to ${process.env.BENCH_SCALE_PROFILE}`);
    }
    result.status_p99_ms = round(p99(statusMs));
    result.apps_p99_ms = round(p99(appsMs));
    result.flip_to_routed_p99_ms = round(p99(flips));
    result.flip_to_routed_p50_ms = round(median(flips));
    const passes = ingress.passMs.slice(passesBefore);
    result.render_ms = round(median(passes));
    result.render_max_ms = round(Math.max(...passes));
    result.render_passes = passes.length;
    result.churn_cpu_ms_per_flip = round(Number(result.churn_cpu_ms) / Math.max(1, flips.length));
    log(`churn: ${result.churn_cpu_ms} ms CPU in ${result.churn_wall_ms} ms (${result.churn_cpu_ms_per_flip} ms CPU per flip, status requests included); event-loop delay p99 ${result.event_loop_delay_p99_ms} ms, max ${result.event_loop_delay_max_ms} ms`);
    log(`status p99 ${result.status_p99_ms} ms (${statusMs.length}), /v1/apps p99 ${result.apps_p99_ms} ms, flip→routed p99 ${result.flip_to_routed_p99_ms} ms (${flips.length}), render ${result.render_ms} ms median of ${passes.length}`);

    // A host dies: its instances are replaced on the others; done when every service is back to its
    // replicas, healthy and routed.
    const victim = 'host-010';
    const lost = fake.containersNow().filter((c) => c.host === victim && c.running).length;
    const h0 = Date.now();
    fake.hostDown(victim);
    try {
      await ingress.until(() => ingress.routed.size >= total && fake.containersNow().filter((c) => c.running && c.health === 'healthy').length >= total,
        left() - 2_000, 'every instance back');
      result.host_loss_restored_ms = Date.now() - h0;
    } catch (err) {
      result.host_loss_restored_ms = (err as Error).message;
    }
    const restored = result.host_loss_restored_ms;
    log(`host ${victim} lost (${lost} instances): ${typeof restored === 'number' ? `${restored} ms until all ${total} routed again` : restored}`);
    result.rss_mb = Math.round(Math.max(peakRss, process.memoryUsage.rss()) / 1048576);
    Object.assign(result, { hosts: HOSTS, services: APPS * SERVICES_PER_APP, instances: total, flips: flips.length, status_requests: statusMs.length });
    return {
      rss_mb: result.rss_mb, resync_ms: result.resync_ms, status_p99_ms: result.status_p99_ms, render_ms: result.render_ms,
      flip_to_routed_p99_ms: result.flip_to_routed_p99_ms, ...result,
    };
  } finally {
    clearInterval(checker);
    clearInterval(rssTimer);
    unwatch();
    resync.stop();
    manager.stop();
    health.close();
    registry.close();
    routeTable.close();
    await api.close();
    await manager.idle();
    await ingress.close();
    store.close();
    authStore.close();
    audit.close();
    config.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitUntil(fn: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(50);
  }
}
