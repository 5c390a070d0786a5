/**
 * release: failed requests while a release replaces a running one, under the same fixed-rate load,
 * three ways in one run:
 *   1. Berth rolling update (3 replicas, start-first, max_surge 1) through Berth's nginx;
 *   2. Berth blue-green (3 replicas): the switch to v2, then `POST /v1/apps/APP/rollback` back to the
 *      idle v1 set, timed until 6 consecutive requests through nginx answer v1;
 *   3. Docker Swarm's `docker service update` with its default update settings (parallelism 1,
 *      stop-first, no delay, monitor 5 s) on a single-node swarm running on a dockerd of its own in a
 *      network namespace (bench/swarm-host.ts). Services use the host network (of that namespace),
 *      never the routing mesh. Three replicas, each on its own port (PORT=300{{.Task.Slot}}), the client
 *      spreading requests round-robin over the three task ports, since without the mesh Swarm offers
 *      no load balancer; and, as a second figure, one replica on one port.
 *   4. Many hosts (three test hosts, scripts/testhosts.sh, slot BERTH_TESTHOSTS_SLOT, default 2; one
 *      Swarm): Berth rolling in cluster mode (instances spread over the hosts, load through Berth's
 *      nginx; the hosts' engines reached over mutual TLS from the server's cluster CA, as on an
 *      installation, so the server follows each host's engine events), then Swarm alone with its default update config and with its best settings
 *      (start-first, an HTTP health check, rollback on failure, monitor 5 s), the same image given by
 *      id. No IPVS on these hosts, so no routing mesh: each task publishes port 3000 in host mode on a
 *      port Swarm picks and the client spreads requests round robin over the running tasks' node:port,
 *      re-read every second (as bench/failover.ts's client does). BENCH_RELEASE_CLUSTER_SECONDS (60)
 *      of load per way; BENCH_RELEASE_ONE_HOST=0 / BENCH_RELEASE_CLUSTER=0 leave a part out.
 * The image pair is the example app (examples/hello) with APP_VERSION v1 → v2.
 *
 * Load: an open-loop fixed-rate client (RATE req/s, exactly `requests_each` requests per way), one
 * fresh TCP connection per request, 5 s timeout; failed = non-2xx + socket errors + timeouts. The
 * update starts LEAD_MS into the load; the load lasts long enough to cover the slowest update plus a
 * margin (the run says so if it did not).
 */
import { request } from 'node:http';
import { join } from 'node:path';
import { Harness, ROOT } from '../test/helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { DEFAULT_UPDATE, type UpdateSpec } from '../src/core/spec/types.ts';
import { clusterOnTestHosts, deployAndWait, exec, hostEngineWarnings, hostEnginesFollowed, loadImageInto, log, prepare } from './common.ts';
import { NS_ADDR, SwarmHost } from './swarm-host.ts';
import type { TestHosts } from '../test/helpers/swarm-hosts.ts';
import Docker from 'dockerode';
import { loadavg } from 'node:os';

const IMAGE = 'berth-bench/web:latest';
const RATE = Number(process.env.BENCH_RELEASE_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_RELEASE_SECONDS ?? 30);
const TOTAL = RATE * SECONDS;
const LEAD_MS = 2000;
/** Time after an update finished that must still be under load for the window to count as covering it. */
const MARGIN_MS = 1000;
const PATH = '/api/whoami';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Target { host: string; port: number; hostHeader?: string }

interface Reply { ok: boolean; status: number; version?: string; error?: string }

function once(t: Target, timeoutMs = 5000): Promise<Reply> {
  return new Promise((resolve) => {
    const req = request({
      host: t.host, port: t.port, path: PATH, agent: false, timeout: timeoutMs,
      headers: t.hostHeader ? { host: t.hostHeader } : {},
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        let version: string | undefined;
        try {
          version = (JSON.parse(body) as { version?: string }).version;
        } catch {
          // not the app's JSON (e.g. an nginx error page)
        }
        resolve({ ok: status >= 200 && status < 300, status, ...(version ? { version } : {}) });
      });
      res.on('error', (e) => resolve({ ok: false, status: res.statusCode ?? 0, error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ ok: false, status: 0, error: (e as NodeJS.ErrnoException).code ?? e.message }));
    req.end();
  });
}

interface LoadResult {
  sent: number;
  ok: number;
  failed: number;
  /** Failure reasons with counts ("HTTP 502", "ECONNREFUSED", ...). */
  reasons: Record<string, number>;
  versions: Record<string, number>;
  /** ms after the load started, of the first and last failed request (by send time). */
  firstFailMs?: number;
  lastFailMs?: number;
  /** Send time of the last request, ms after the load started. */
  endMs: number;
}

/**
 * Open loop: request i is sent at t0 + i/rate whatever happened to the earlier ones (a closed loop
 * would slow down exactly when the service stalls and so hide failures). Bounded: `total` requests,
 * at most 1000 in flight (beyond that a request counts as failed, "client: too many in flight").
 */
function fixedRate(targets: Target[] | ((i: number) => Target | undefined), rate: number, total: number): { t0: number; done: Promise<LoadResult> } {
  const pick = typeof targets === 'function' ? targets : (i: number) => targets[i % targets.length];
  const t0 = performance.now();
  const r: LoadResult = { sent: 0, ok: 0, failed: 0, reasons: {}, versions: {}, endMs: 0 };
  let inFlight = 0;
  const fail = (sentAt: number, reason: string) => {
    r.failed++;
    r.reasons[reason] = (r.reasons[reason] ?? 0) + 1;
    r.firstFailMs = Math.min(r.firstFailMs ?? Infinity, sentAt);
    r.lastFailMs = Math.max(r.lastFailMs ?? -Infinity, sentAt);
  };
  const done = (async () => {
    const pending: Promise<void>[] = [];
    while (r.sent < total) {
      const now = performance.now() - t0;
      const due = Math.min(total, Math.floor((now * rate) / 1000) + 1);
      while (r.sent < due) {
        const sentAt = Math.round(performance.now() - t0);
        const target = pick(r.sent);
        r.sent++;
        if (!target) {
          fail(sentAt, 'client: no endpoint known');
          continue;
        }
        if (inFlight >= 1000) {
          fail(sentAt, 'client: too many in flight');
          continue;
        }
        inFlight++;
        pending.push(once(target).then((rep) => {
          inFlight--;
          if (rep.ok) {
            r.ok++;
            const v = rep.version ?? '?';
            r.versions[v] = (r.versions[v] ?? 0) + 1;
          } else {
            fail(sentAt, rep.error ?? `HTTP ${rep.status}`);
          }
        }));
      }
      r.endMs = Math.round(performance.now() - t0);
      await sleep(1);
    }
    await Promise.all(pending);
    return r;
  })();
  return { t0, done };
}

function describeLoad(what: string, r: LoadResult, t0: number, updateAt: number): string {
  const rel = (ms?: number) => (ms === undefined ? '-' : `${Math.round(t0 + ms - updateAt)} ms`);
  return `${what}: ${r.sent} sent, ${r.ok} ok, ${r.failed} failed ${JSON.stringify(r.reasons)}; versions ${JSON.stringify(r.versions)}; `
    + `failures from ${rel(r.firstFailMs)} to ${rel(r.lastFailMs)} after the update started`;
}

/** Fails loudly when the load window did not cover the update plus the margin. */
function covered(what: string, t0: number, r: LoadResult, updateDoneAt: number, seconds = SECONDS, knob = 'BENCH_RELEASE_SECONDS'): void {
  const endAt = t0 + r.endMs;
  if (endAt < updateDoneAt + MARGIN_MS) {
    throw new Error(`${what}: the load (${seconds} s) ended ${Math.round(updateDoneAt + MARGIN_MS - endAt)} ms too early; raise ${knob}`);
  }
}

// ---------------------------------------------------------------- Berth

function spec(app: string, version: string, strategy: UpdateSpec['strategy']) {
  const svc = {
    name: 'web', image: IMAGE, environment: { APP_VERSION: version }, ports: [], replicas: 3, limits: {}, labels: {},
    health: { type: 'http', path: '/healthz', intervalMs: 1000, timeoutMs: 1000, retries: 3, startPeriodMs: 0 },
    restart: { condition: 'any', delayMs: 1000 }, stopSignal: 'SIGTERM', stopGracePeriodMs: 5000, volumes: [], dependsOn: [],
    port: 3000, routes: [{ host: `${app}.bench`, path: '/' }],
    update: { ...DEFAULT_UPDATE, strategy, keepPreviousMs: 300_000, deadlineMs: 60_000 },
  };
  return { name: app, services: { web: svc } };
}

/** Deploys and waits for the deployment to succeed (all releases healthy and routed). Returns ms. */
async function deploy(h: Harness, app: string, version: string, strategy: UpdateSpec['strategy']): Promise<number> {
  return deployAndWait(h, app, spec(app, version, strategy), 120_000, `deployment of ${app} ${version}`);
}

/** Berth's event timeline of an app since `sinceMs` (epoch), to stderr: where the time went. */
async function timeline(h: Harness, app: string, sinceMs: number): Promise<void> {
  const r = await h.api('GET', `/v1/events?app=${app}&limit=1000`);
  const evs = ((r.json?.events ?? []) as { ts: number; kind: string; instance: string }[]).filter((e) => e.ts >= sinceMs);
  log(`${app} timeline (ms after the deploy call): ${evs.map((e) => `${e.ts - sinceMs} ${e.kind}${e.instance ? `(${e.instance.slice(-4)})` : ''}`).join(', ')}`);
}

async function remove(h: Harness, app: string, th?: TestHosts): Promise<void> {
  await h.api('DELETE', `/v1/apps/${app}`);
  // Cluster mode: one Swarm service per instance, on the test hosts (not on this machine's engine).
  const gone = th
    ? async () => (await th.docker(1, 'service', 'ls', '-q', '--filter', `label=io.berth.app=${app}`)).trim() === ''
    : async () => (await h.containers(app)).length === 0;
  await waitFor(gone, { timeoutMs: 60_000, intervalMs: 250, what: `${app} removed` });
}

async function berthRolling(h: Harness, o: { app: string; what: string; total: number; seconds: number; th?: TestHosts }): Promise<{ failed: number; seconds: number; result: LoadResult }> {
  const { app, what } = o;
  const target = { host: '127.0.0.1', port: h.ingressPort, hostHeader: `${app}.bench` };
  await deploy(h, app, 'v1', 'rolling');
  if (o.th) {
    const hosts = ((await h.status(app)).services as { instances: { host: string; address: string; port: number }[] }[]).flatMap((x) => x.instances.map((i) => `${i.host} ${i.address}:${i.port}`));
    log(`${what}: v1 instances on ${hosts.join(', ')}`);
  }
  log(`${what}: 3 × v1 healthy and routed; load on, v2 in 2 s`);
  const load = fixedRate([target], RATE, o.total);
  await sleep(LEAD_MS);
  const at = performance.now();
  const atEpoch = Date.now();
  const ms = await deploy(h, app, 'v2', 'rolling');
  const doneAt = performance.now();
  log(`${what}: release v2 healthy ${Math.round(ms)} ms after the deploy call`);
  await timeline(h, app, atEpoch);
  const r = await load.done;
  log(describeLoad(what, r, load.t0, at));
  covered(what, load.t0, r, doneAt, o.seconds, o.th ? 'BENCH_RELEASE_CLUSTER_SECONDS' : 'BENCH_RELEASE_SECONDS');
  if ((await once(target)).version !== 'v2') throw new Error(`${what}: v2 is not served after the update`);
  await remove(h, app, o.th);
  return { failed: r.failed, seconds: ms / 1000, result: r };
}

async function berthBlueGreen(h: Harness): Promise<{ failed: number; switchSeconds: number; rollbackMs: number; result: LoadResult }> {
  const app = 'relbg';
  const target = { host: '127.0.0.1', port: h.ingressPort, hostHeader: `${app}.bench` };
  await deploy(h, app, 'v1', 'blue-green');
  log('berth blue-green: 3 × v1 healthy and routed; load on, v2 in 2 s, rollback 2 s after the switch');
  const load = fixedRate([target], RATE, TOTAL);
  await sleep(LEAD_MS);
  const at = performance.now();
  const atEpoch = Date.now();
  const ms = await deploy(h, app, 'v2', 'blue-green');
  log(`berth blue-green: switched to v2 ${Math.round(ms)} ms after the deploy call`);
  if ((await once(target)).version !== 'v2') throw new Error('berth blue-green: v2 is not served after the switch');
  await sleep(2000);
  const t0 = performance.now();
  const rb = await h.api('POST', `/v1/apps/${app}/rollback`, { env: 'prod' });
  if (rb.status !== 202) throw new Error(`rollback refused: ${JSON.stringify(rb.json)}`);
  await waitFor(async () => {
    for (let i = 0; i < 6; i++) if ((await once(target)).version !== 'v1') return false;
    return true;
  }, { timeoutMs: 20_000, intervalMs: 10, what: 'v1 served again' });
  const rollbackMs = performance.now() - t0;
  log(`berth blue-green: rollback → 6 consecutive v1 answers in ${Math.round(rollbackMs)} ms`);
  await timeline(h, app, atEpoch);
  const r = await load.done;
  log(describeLoad('berth blue-green (switch + rollback)', r, load.t0, at));
  covered('berth blue-green', load.t0, r, t0 + rollbackMs);
  await remove(h, app);
  return { failed: r.failed, switchSeconds: ms / 1000, rollbackMs, result: r };
}

// ---------------------------------------------------------------- Swarm

const SERVICE = 'relbench';

async function swarmUpdate(s: SwarmHost, replicas: number): Promise<{ failed: number; seconds: number; result: LoadResult }> {
  // Host network of the namespace: replicas cannot share a port there, so each task gets its own
  // through a service template; one replica keeps the app's own port.
  const port = replicas === 1 ? 'PORT=3000' : 'PORT=300{{.Task.Slot}}';
  const ports = replicas === 1 ? [3000] : Array.from({ length: replicas }, (_, i) => 3001 + i);
  await s.docker(['service', 'create', '--detach', '--no-resolve-image', '--name', SERVICE, '--replicas', String(replicas),
    '--network', 'host', '-e', port, '-e', 'APP_VERSION=v1', IMAGE]);
  const targets = ports.map((p) => ({ host: NS_ADDR, port: p }));
  await waitFor(async () => {
    for (const t of targets) if ((await once(t, 1000)).version !== 'v1') return false;
    return true;
  }, { timeoutMs: 120_000, intervalMs: 100, what: `${replicas} swarm task(s) answering v1` });
  const what = `swarm ${replicas} replica(s)`;
  log(`${what}: v1 answers on ${NS_ADDR}:${ports.join(',')}; load on, \`docker service update\` in 2 s`);
  const load = fixedRate(targets, RATE, TOTAL);
  await sleep(LEAD_MS);
  const at = performance.now();
  await s.docker(['service', 'update', '--detach', '--env-add', 'APP_VERSION=v2', SERVICE]);
  let state = '';
  await waitFor(async () => {
    state = await s.docker(['service', 'inspect', '--format', '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}', SERVICE]);
    return state === 'completed' || state === 'paused' || state.startsWith('rollback');
  }, { timeoutMs: 180_000, intervalMs: 100, what: 'swarm update to complete' });
  const doneAt = performance.now();
  if (state !== 'completed') throw new Error(`${what}: update ended in state ${state}`);
  const seconds = (doneAt - at) / 1000;
  log(`${what}: update completed ${seconds.toFixed(1)} s after \`docker service update\``);
  const r = await load.done;
  log(describeLoad(what, r, load.t0, at));
  covered(what, load.t0, r, doneAt);
  for (const t of targets) if ((await once(t, 1000)).version !== 'v2') throw new Error(`${what}: :${t.port} does not answer v2 after the update`);
  await s.docker(['service', 'rm', SERVICE]);
  await waitFor(async () => (await s.docker(['ps', '-q'])) === '', { timeoutMs: 60_000, intervalMs: 200, what: 'swarm tasks gone' });
  return { failed: r.failed, seconds, result: r };
}

// ---------------------------------------------------------------- many hosts (test hosts, one Swarm)

const CLUSTER_SECONDS = Number(process.env.BENCH_RELEASE_CLUSTER_SECONDS ?? 60);
const CLUSTER_TOTAL = RATE * CLUSTER_SECONDS;
/** How often the Swarm client re-reads the running tasks (as bench/failover.ts's client does). */
const DISCOVERY_MS = 1000;
const CSERVICE = 'relbench-c';

interface CTask { ID: string; NodeID?: string; DesiredState?: string; Status?: { State?: string; Err?: string; PortStatus?: { Ports?: Array<{ PublishedPort?: number }> } } }

/**
 * Swarm alone on the three test hosts, default update config or its best settings. The test hosts
 * have no IPVS (no routing mesh), so each task publishes its port in host mode on a port Swarm picks
 * (a start-first replacement cannot take its predecessor's port) and the client spreads requests round
 * robin over the running tasks' node:port, re-reading Swarm's task list every DISCOVERY_MS.
 */
async function swarmCluster(th: TestHosts, best: boolean): Promise<{ failed: number; seconds: number; result: LoadResult; restartedTasks: number; state: string }> {
  const what = best ? 'swarm best (3 hosts)' : 'swarm default (3 hosts)';
  const docker = new Docker({ socketPath: th.manager });
  const nodes = new Map<string, string>();
  for (const n of (await docker.listNodes()) as Array<{ ID: string; Status?: { Addr?: string } }>) nodes.set(n.ID, n.Status?.Addr ?? '');
  // The image id, as Berth gives it to Swarm: no registry round trip, no pull attempt (bench/deploy-cluster.ts).
  const image = (await th.docker(1, 'image', 'inspect', '--format', '{{.Id}}', IMAGE)).trim();
  const settings = best
    ? [
      // What a user would write for zero downtime: the app's own health endpoint (the check of Berth's
      // spec: every 1 s, 3 retries), start-first, roll back on failure, watch each task 5 s.
      '--health-cmd', `node -e "require('http').get('http://127.0.0.1:3000/healthz',r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"`,
      '--health-interval', '1s', '--health-timeout', '5s', '--health-retries', '3', '--health-start-period', '0s',
      '--update-order', 'start-first', '--update-parallelism', '1', '--update-delay', '0s',
      '--update-failure-action', 'rollback', '--update-monitor', '5s', '--stop-grace-period', '5s',
    ]
    : [];
  await th.docker(1, 'service', 'create', '--detach', '--no-resolve-image', '--name', CSERVICE, '--replicas', '3',
    '--publish', 'mode=host,target=3000', '-e', 'APP_VERSION=v1', ...settings, image);
  let endpoints: Target[] = [];
  let tasks: CTask[] = [];
  const readTasks = async (): Promise<void> => {
    tasks = (await docker.listTasks({ filters: { service: [CSERVICE] } })) as CTask[];
    endpoints = tasks.filter((t) => t.DesiredState === 'running' && t.Status?.State === 'running' && t.Status.PortStatus?.Ports?.[0]?.PublishedPort)
      .map((t) => ({ host: nodes.get(t.NodeID ?? '') ?? '', port: t.Status!.PortStatus!.Ports![0]!.PublishedPort! }))
      .filter((e) => e.host);
  };
  await waitFor(async () => {
    await readTasks();
    if (endpoints.length !== 3) return false;
    for (const t of endpoints) if ((await once(t, 1000)).version !== 'v1') return false;
    return true;
  }, { timeoutMs: 120_000, intervalMs: 250, what: `${what}: 3 tasks answering v1` });
  const before = tasks.length;
  log(`${what}: v1 answers on ${endpoints.map((e) => `${e.host}:${e.port}`).join(', ')}; load on, \`docker service update\` in 2 s`);
  let refreshing = true;
  const refresher = (async () => {
    while (refreshing) {
      await sleep(DISCOVERY_MS);
      await readTasks().catch((e) => log(`${what}: task list: ${String(e)}`));
    }
  })();
  const load = fixedRate((i) => (endpoints.length ? endpoints[i % endpoints.length] : undefined), RATE, CLUSTER_TOTAL);
  await sleep(LEAD_MS);
  const at = performance.now();
  await th.docker(1, 'service', 'update', '--detach', '--env-add', 'APP_VERSION=v2', CSERVICE);
  let state = '';
  await waitFor(async () => {
    state = (await th.docker(1, 'service', 'inspect', '--format', '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}', CSERVICE)).trim();
    return state === 'completed' || state === 'paused' || state.startsWith('rollback');
  }, { timeoutMs: 180_000, intervalMs: 250, what: `${what}: update to complete` });
  const doneAt = performance.now();
  const seconds = (doneAt - at) / 1000;
  const r = await load.done;
  refreshing = false;
  await refresher;
  if (state === 'paused') throw new Error(`${what}: update paused`);
  // Rolled back (its failure action): a result too, not an error; the figures say so.
  if (state !== 'completed') {
    log(`${what}: update ended in state ${state}; waiting for the rollback`);
    await waitFor(async () => (await th.docker(1, 'service', 'inspect', '--format', '{{.UpdateStatus.State}}', CSERVICE)).trim() === 'rollback_completed',
      { timeoutMs: 180_000, intervalMs: 500, what: `${what}: rollback to complete` });
  }
  log(`${what}: update ${state} ${seconds.toFixed(1)} s after \`docker service update\``);
  log(describeLoad(what, r, load.t0, at));
  covered(what, load.t0, r, doneAt, CLUSTER_SECONDS, 'BENCH_RELEASE_CLUSTER_SECONDS');
  await readTasks();
  // 3 old tasks replaced by 3 new ones: anything beyond is a task that failed and was restarted.
  const restartedTasks = tasks.length - before - 3;
  if (state === 'completed') for (const t of endpoints) if ((await once(t, 1000)).version !== 'v2') throw new Error(`${what}: ${t.host}:${t.port} does not answer v2 after the update`);
  await th.docker(1, 'service', 'rm', CSERVICE);
  await waitFor(async () => {
    for (let i = 1; i <= th.hosts.length; i++) if ((await th.docker(i, 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${CSERVICE}`)).trim()) return false;
    return true;
  }, { timeoutMs: 60_000, intervalMs: 250, what: `${what}: tasks gone` });
  return { failed: r.failed, seconds, result: r, restartedTasks, state };
}

async function clusterPart(out: Record<string, number | string>, cleanups: (() => Promise<void>)[]): Promise<void> {
  log(`many hosts: starting 3 test hosts (slot ${process.env.BERTH_TESTHOSTS_SLOT}); ${CLUSTER_TOTAL} requests (${CLUSTER_SECONDS} s) per way`);
  // The hosts' engines with TLS from the server's cluster CA, as an installation has them: the server
  // follows every host's engine events (and reads logs and stats there).
  const { h, th } = await clusterOnTestHosts(3, { portRange: '22200-22299' });
  cleanups.push(() => th.down());
  cleanups.push(() => h.cleanup());
  await loadImageInto(th.hosts.map((x) => x.socket), IMAGE);
  await h.startServer();
  const { followed } = await hostEnginesFollowed(h, th, 'berth (3 hosts)');
  const rolling = await berthRolling(h, { app: 'relcroll', what: 'berth rolling (3 hosts)', total: CLUSTER_TOTAL, seconds: CLUSTER_SECONDS, th });
  const warnings = hostEngineWarnings(h, 'berth rolling (3 hosts), after the run');
  await h.cleanup();
  const def = await swarmCluster(th, false);
  const best = await swarmCluster(th, true);
  await th.down();
  Object.assign(out, {
    berth_cluster_rolling_failed: rolling.failed,
    berth_cluster_rolling_s: Math.round(rolling.seconds * 100) / 100,
    cluster_host_engines_followed: followed,
    cluster_host_engine_warnings: warnings.length,
    swarm_cluster_default_failed: def.failed,
    swarm_cluster_default_update_s: Math.round(def.seconds * 100) / 100,
    swarm_best_failed: best.failed,
    swarm_best_update_s: Math.round(best.seconds * 100) / 100,
    swarm_best_restarted_tasks: best.restartedTasks,
    swarm_best_update_state: best.state,
    cluster_requests_each: CLUSTER_TOTAL,
    swarm_cluster_mode: `3 test hosts, host-mode published ports (no IPVS: no routing mesh), client round robin over running tasks re-read every ${DISCOVERY_MS} ms; best = start-first + HTTP health check + rollback on failure, monitor 5 s`,
  });
}

// ---------------------------------------------------------------- run

export async function run(): Promise<Record<string, number | string>> {
  // Cleanup runs once, from `finally` or from a signal (a Ctrl-C would otherwise skip `finally`).
  const cleanups: (() => Promise<void>)[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () => (cleaning ??= (async () => {
    for (const c of cleanups.reverse()) await c().catch((e) => log(`cleanup: ${String(e)}`));
  })());
  const onSignal = (sig: NodeJS.Signals) => {
    log(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    process.env.BERTH_TESTHOSTS_SLOT ??= '2';
    const out: Record<string, number | string> = { load_1m_start: Math.round(loadavg()[0]! * 10) / 10 };
    await prepare();
    log('building the example image');
    await exec('docker', ['build', '-q', '-t', IMAGE, join(ROOT, 'examples/hello')], { timeout: 300_000 });
    log(`load: ${RATE} req/s open loop, fresh connection per request`);

    if (process.env.BENCH_RELEASE_ONE_HOST !== '0') {
      log(`one host: ${TOTAL} requests (${SECONDS} s) per way`);
      const h = await Harness.create({ portRange: '18000-18099' });
      cleanups.push(() => h.cleanup());
      await h.startServer();
      const rolling = await berthRolling(h, { app: 'relroll', what: 'berth rolling', total: TOTAL, seconds: SECONDS });
      const bg = await berthBlueGreen(h);
      await h.cleanup();

      const swarm = new SwarmHost((m) => log(`swarm-host: ${m}`));
      cleanups.push(() => swarm.down());
      await swarm.up();
      await swarm.loadImage(IMAGE);
      const s3 = await swarmUpdate(swarm, 3);
      const s1 = await swarmUpdate(swarm, 1);
      await swarm.down();

      Object.assign(out, {
        berth_rolling_failed: rolling.failed,
        berth_bluegreen_failed: bg.failed,
        swarm_default_failed: s3.failed,
        requests_each: TOTAL,
        berth_rolling_s: Math.round(rolling.seconds * 100) / 100,
        rollback_ms: Math.round(bg.rollbackMs),
        berth_bluegreen_s: Math.round(bg.switchSeconds * 100) / 100,
        swarm_update_s: Math.round(s3.seconds * 100) / 100,
        swarm_1replica_failed: s1.failed,
        swarm_1replica_update_s: Math.round(s1.seconds * 100) / 100,
        swarm_mode: 'host network in own netns, 3 replicas on ports 3001-3003 (PORT=300{{.Task.Slot}}), client round-robin; default update config',
      });
    }
    if (process.env.BENCH_RELEASE_CLUSTER !== '0') await clusterPart(out, cleanups);
    out.load = `${RATE} req/s open loop, fresh connection per request`;
    out.load_1m_end = Math.round(loadavg()[0]! * 10) / 10;
    return out;
  } finally {
    await cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
