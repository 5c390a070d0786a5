/**
 * deploy, cluster figure (issue 13): 9 replicas over 3 test hosts (a Swarm of network-namespace hosts,
 * scripts/testhosts.sh; BERTH_TESTHOSTS_SLOT picks the set) until all are healthy — Berth in cluster
 * mode (API call → deployment succeeded: all 9 healthy by Berth's HTTP check and routed by its
 * ingress) versus `docker service create` of the same image and command on the same Swarm with a
 * health check (`docker service create` → every task Running, which Swarm says only once its check
 * passed; no routing). Both run the process on the host network of the host they land on, on a port
 * from $PORT (Berth's allocator; for Swarm `300{{.Task.Slot}}`). Alternating runs, medians. The hosts'
 * engines listen on ADDRESS:2376 with TLS from the server's cluster CA, as on an installation.
 *
 * Fairness (why the first recorded Swarm figure was ~66 s): Swarm gets the image the way Berth gives
 * it, by image id with `--no-resolve-image`. With a tag, `docker service create` first asks a registry
 * for the digest and every agent tries a pull before starting its task; these hosts have no registry
 * and no DNS, so each attempt ends in a DNS timeout (~20 s measured: `docker pull` inside a test host),
 * twice in a row. Its health check is the one of Berth's spec (HTTP `/` every 500 ms, 3 retries; a
 * 5 s timeout as the exec alone can take over 1 s on a loaded machine), and completion is read from
 * the manager's API every 100 ms (one HTTP call), not from a `docker service ps` process every 20 ms
 * that kept a core busy. Tasks that failed and were replaced are counted and logged.
 */
import Docker from 'dockerode';
import type { Harness } from '../test/helpers/harness.ts';
import type { TestHosts } from '../test/helpers/swarm-hosts.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { clusterOnTestHosts, deployAndWait, hostEngineWarnings, hostEnginesFollowed, log, median } from './common.ts';

const REPLICAS = 9;
const IMAGE = 'berth/busybox:latest';
/** busybox httpd answering its name on $PORT. */
const COMMAND = ['sh', '-c', 'mkdir -p /tmp/w && echo ok > /tmp/w/index.html && exec httpd -f -p $PORT -h /tmp/w'];

function spec(app: string) {
  const web = {
    name: 'web', image: IMAGE, command: COMMAND, environment: {}, ports: [], replicas: REPLICAS, limits: {}, labels: {},
    // Berth probes a starting instance at 25 ms, doubling; 500 ms once it is healthy.
    health: { type: 'http', path: '/', intervalMs: 500, timeoutMs: 1000, retries: 3, startPeriodMs: 0 },
    restart: { condition: 'any', delayMs: 1000 }, stopSignal: 'SIGTERM', stopGracePeriodMs: 2000, volumes: [], dependsOn: [],
    port: 8080, routes: [{ path: `/${app}` }],
  };
  return { name: app, services: { web } };
}

async function berthOnce(h: Harness, th: TestHosts, app: string): Promise<number> {
  const ms = await deployAndWait(h, app, spec(app), 180_000, 'cluster deployment');
  const st = await h.status(app);
  const hosts = new Set((st.services as { instances: { host: string; health: string }[] }[]).flatMap((s) => s.instances.filter((i) => i.health === 'healthy').map((i) => i.host)));
  const images = new Set((await th.docker(1, 'service', 'ls', '--filter', `label=io.berth.app=${app}`, '--format', '{{.Image}}')).split('\n').filter(Boolean));
  log(`  berth: ${REPLICAS} healthy on ${hosts.size} hosts (${[...hosts].sort().join(', ')}); its services' image: ${[...images].join(', ')}`);
  await h.api('DELETE', `/v1/apps/${app}`);
  await waitFor(async () => (await th.docker(1, 'service', 'ls', '-q', '--filter', `label=io.berth.app=${app}`)) === '' && (await tasksLeft(th, `label=io.berth.app=${app}`)) === 0,
    { timeoutMs: 120_000, intervalMs: 250, what: `${app} removed` });
  return ms;
}

/** Containers left on all hosts matching the filter. */
async function tasksLeft(th: TestHosts, filter: string): Promise<number> {
  let n = 0;
  for (let i = 1; i <= th.hosts.length; i++) n += (await th.docker(i, 'ps', '-aq', '--filter', filter)).split('\n').filter(Boolean).length;
  return n;
}

interface TaskView { DesiredState?: string; NodeID?: string; Status?: { State?: string; Err?: string } }

async function swarmOnce(th: TestHosts, name: string): Promise<number> {
  const docker = new Docker({ socketPath: th.manager });
  // The image id, as Berth hands it to Swarm: no registry round trip, no pull attempt by the agents.
  const image = (await th.docker(1, 'image', 'inspect', '--format', '{{.Id}}', IMAGE)).trim();
  const t0 = performance.now();
  await th.docker(1, 'service', 'create', '--detach', '--no-resolve-image', '--name', name, '--replicas', String(REPLICAS), '--network', 'host',
    '--env', 'PORT=300{{.Task.Slot}}', '--stop-grace-period', '2s',
    // The check of Berth's spec: HTTP `/` every 500 ms, 3 retries (Docker 20.10 has no start interval:
    // the first check runs 500 ms after the start). A 5 s timeout: the exec alone can take > 1 s here.
    '--health-cmd', 'wget -q -O /dev/null http://127.0.0.1:$PORT/', '--health-interval', '500ms', '--health-timeout', '5s', '--health-retries', '3',
    image, ...COMMAND);
  let tasks: TaskView[] = [];
  await waitFor(async () => {
    tasks = (await docker.listTasks({ filters: { service: [name] } })) as TaskView[];
    const up = tasks.filter((t) => t.DesiredState === 'running' && t.Status?.State === 'running');
    return up.length === REPLICAS;
  }, { timeoutMs: 180_000, intervalMs: 100, what: `swarm service ${name} running` });
  const ms = performance.now() - t0;
  const nodes = new Set(tasks.filter((t) => t.DesiredState === 'running').map((t) => t.NodeID));
  const replaced = tasks.filter((t) => t.DesiredState !== 'running');
  log(`  swarm: ${REPLICAS} running (healthy) on ${nodes.size} hosts; ${replaced.length} task(s) failed and replaced${replaced.length ? `: ${replaced.map((t) => t.Status?.Err ?? t.Status?.State).join('; ')}` : ''}`);
  await th.docker(1, 'service', 'rm', name);
  await waitFor(async () => (await tasksLeft(th, `label=com.docker.swarm.service.name=${name}`)) === 0, { timeoutMs: 120_000, intervalMs: 250, what: `${name} removed` });
  return ms;
}

export async function clusterFigures(runs: number): Promise<{ cluster_berth_ms: number; cluster_swarm_ms: number; cluster_ratio: number; cluster_runs: number; cluster_host_engines_followed: number; cluster_host_engine_warnings: number }> {
  process.env.BERTH_TESTHOSTS_SLOT ??= '2';
  log(`cluster: starting 3 test hosts (slot ${process.env.BERTH_TESTHOSTS_SLOT}), engines on TLS from the server's cluster CA`);
  // As an installation has them: the server follows every host's engine events (and reads logs and stats there).
  const { h, th } = await clusterOnTestHosts(3, { portRange: '21000-21199' });
  try {
    await h.startServer();
    const { followed } = await hostEnginesFollowed(h, th, 'cluster');
    // One untimed round each: the first Swarm service and the first Berth deploy warm caches on every host.
    log('cluster: warm-up round');
    await berthOnce(h, th, 'cwarm');
    await swarmOnce(th, 'berth-bench-swarm-warm');
    const berth: number[] = [];
    const swarm: number[] = [];
    for (let i = 0; i < runs; i++) {
      berth.push(await berthOnce(h, th, `cbench${i}`));
      swarm.push(await swarmOnce(th, `berth-bench-swarm-${i}`));
      log(`cluster run ${i + 1}/${runs}: berth ${berth.at(-1)!.toFixed(0)} ms, swarm ${swarm.at(-1)!.toFixed(0)} ms`);
    }
    const b = median(berth);
    const s = median(swarm);
    const warnings = hostEngineWarnings(h, 'cluster, after the runs');
    return {
      cluster_berth_ms: Math.round(b), cluster_swarm_ms: Math.round(s), cluster_ratio: Math.round((b / s) * 100) / 100, cluster_runs: runs,
      cluster_host_engines_followed: followed, cluster_host_engine_warnings: warnings.length,
    };
  } catch (err) {
    process.stderr.write(h.serverLog.slice(-4000));
    throw err;
  } finally {
    await h.cleanup();
    await th.down();
  }
}
