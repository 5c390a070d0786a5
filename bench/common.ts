import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { Harness, ROOT } from '../test/helpers/harness.ts';
import { planTestHosts, startTestHosts, type TestHosts } from '../test/helpers/swarm-hosts.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { BerthClient } from '../src/client/client.ts';
import { ClusterCa } from '../src/tls/cluster-ca.ts';
import { SecretBox, loadSecretKey } from '../src/config/secret-box.ts';

export const exec = promisify(execFile);

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The Docker Engine and the base images, as `npm test` prepares them. */
export async function prepare(): Promise<void> {
  await exec('bash', [join(ROOT, 'scripts/dockerd.sh'), 'start'], { timeout: 120_000 });
  await exec('bash', [join(ROOT, 'scripts/images.sh')], { timeout: 300_000 });
}

/** Resident set size of a process in MB, from /proc. */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}

/**
 * POSTs a deployment of `spec` to prod through the API and follows it as `berth deploy` does (the
 * deployment's server-sent stream, one request) until it succeeded; throws with the reason when refused
 * or failed. Returns its wall time in ms, from the POST to the state that says `succeeded`. (Polling
 * `GET /v1/deployments/ID` every 20 ms, as this did before 2026-12-02, was 50 requests a second of
 * work for the server on the deploy's own path: ~50 ms of its CPU per deploy on 2 cores.) A server on
 * HTTPS with a private CA (the fetch-based client cannot trust it) is polled every 20 ms as before.
 */
export async function deployAndWait(h: Harness, app: string, spec: unknown, timeoutMs: number, what = `deployment of ${app}`): Promise<number> {
  const t0 = performance.now();
  const r = await h.api('POST', `/v1/apps/${app}/deployments`, { env: 'prod', spec });
  if (r.status !== 202) throw new Error(`${what} refused: ${JSON.stringify(r.json)}`);
  const id = r.json.deployment.id as string;
  let failure = '';
  let doneAt: number | undefined;
  if (h.apiCa !== undefined) {
    await waitFor(async () => {
      const d = await h.api('GET', `/v1/deployments/${id}`);
      if (d.json.deployment.status === 'failed') failure = d.json.deployment.message ?? 'failed';
      return failure !== '' || d.json.deployment.status === 'succeeded';
    }, { timeoutMs, intervalMs: 20, what });
    doneAt = performance.now();
  } else {
    const client = new BerthClient({ url: `http://127.0.0.1:${h.apiPort}`, token: await h.token() });
    const ac = new AbortController();
    let finished!: () => void;
    const outcome = new Promise<void>((r) => (finished = r));
    const timer = setTimeout(() => {
      ac.abort();
      finished();
    }, timeoutMs);
    const follow = client.followDeployment(id, undefined, {
      state: (s) => {
        if (doneAt !== undefined) return;
        if (s.deployment.status === 'failed') failure = s.deployment.message ?? 'failed';
        if (failure !== '' || s.deployment.status === 'succeeded') {
          doneAt = performance.now();
          finished();
        }
      },
    }, ac.signal);
    // Settles on the outcome (not on the stream's end: an abort that races the server's own end of
    // the stream can leave undici's body iterator pending).
    try {
      await Promise.race([outcome, follow.then(finished)]);
    } finally {
      clearTimeout(timer);
      ac.abort();
      follow.catch(() => undefined);
    }
    if (doneAt === undefined) throw new Error(`${what}: not finished within ${timeoutMs} ms`);
  }
  if (failure) throw new Error(`${what} failed: ${failure}`);
  return doneAt! - t0;
}

/**
 * `docker save IMAGE | docker -H unix://SOCKET load` into each engine (test hosts): image ids are
 * kept, so Berth's image-id references and a Swarm service given the id find it on every host.
 */
export async function loadImageInto(sockets: string[], image: string): Promise<void> {
  for (const socket of sockets) {
    await new Promise<void>((resolve, reject) => {
      const save = spawn('docker', ['save', image], { stdio: ['ignore', 'pipe', 'pipe'] });
      const load = spawn('docker', ['-H', `unix://${socket}`, 'load', '-q'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      save.stderr.on('data', (c) => (err += c));
      load.stderr.on('data', (c) => (err += c));
      save.stdout.pipe(load.stdin);
      let pending = 2;
      let failed = false;
      const done = (code: number | null) => {
        if (code !== 0) failed = true;
        if (--pending === 0) {
          if (failed) reject(new Error(`docker save ${image} | docker -H unix://${socket} load: ${err.trim()}`));
          else resolve();
        }
      };
      save.on('error', reject);
      load.on('error', reject);
      save.on('close', done);
      load.on('close', done);
    });
  }
  log(`image ${image} loaded into ${sockets.length} engine(s)`);
}

/**
 * Berth in cluster mode on `n` test hosts (scripts/testhosts.sh, slot BERTH_TESTHOSTS_SLOT) set up as
 * the cluster tests and a real installation have them: the server's engine is the manager's (host 1)
 * socket, and every host's dockerd also listens on ADDRESS:2376 with mutual TLS, its certificate
 * issued by the server's own cluster CA (as `berth host add --address` issues it), so the server
 * follows each host's engine events and reads logs and stats there. Without it the server follows
 * only the manager's events and sees a death on another host late, from the Swarm's task states.
 * The harness comes first (its data directory holds the secret key that seals the CA); its server is
 * not started. On failure nothing is left.
 */
export async function clusterOnTestHosts(n: number, o: { portRange: string; env?: Record<string, string> }): Promise<{ h: Harness; th: TestHosts }> {
  const h = await Harness.create({ portRange: o.portRange, env: { BERTH_DOCKER_SOCKET: (await planTestHosts(n))[0]!.socket, ...o.env } });
  try {
    const ca = await ClusterCa.open(join(h.dataDir, 'cluster-ca.json'), SecretBox.fromLoaded(loadSecretKey({ dataDir: h.dataDir })));
    const th = await startTestHosts(n, { engineTls: (x) => ca.issueEngine({ host: x.name, addresses: [x.address] }) });
    return { h, th };
  } catch (err) {
    await h.cleanup();
    throw err;
  }
}

type LogLine = { level?: number; msg?: string; host?: string; component?: string };

function serverLines(h: Harness): LogLine[] {
  return h.serverLog.split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as LogLine];
    } catch {
      return [];
    }
  });
}

/**
 * The server's warnings so far about the hosts' engines (unreachable, events not followed, TLS, log
 * streams), as `HOST: message`, logged with `what`. (The harness keeps the last 1-2 MB of the log.)
 */
export function hostEngineWarnings(h: Harness, what: string): string[] {
  const warnings = serverLines(h).filter((e) => (e.level ?? 0) >= 40 && /engine|tls|follow|log stream|log collection/i.test(`${e.component ?? ''} ${e.msg ?? ''}`))
    .map((e) => `${e.host ? `${e.host}: ` : ''}${e.msg}`);
  log(`${what}: ${warnings.length} server warning(s) about the hosts' engines${warnings.length ? `: ${[...new Set(warnings)].slice(0, 10).join('; ')}` : ''}`);
  return warnings;
}

/**
 * Waits (bounded) until the server's log says it follows every test host's engine events (host-events.ts
 * logs "host engine followed" per host at each (re)connect), and throws if it does not: the bench's
 * figures would not measure what an installation does. Call it soon after the server started (the
 * harness keeps only the log's tail) and before the bench kills a host. Returns how many hosts are
 * followed and the warnings about their engines so far.
 */
export async function hostEnginesFollowed(h: Harness, th: TestHosts, what: string): Promise<{ followed: number; warnings: string[] }> {
  const names = th.hosts.map((x) => x.name);
  const followed = () => new Set(serverLines(h).filter((e) => e.msg?.startsWith('host engine followed') && names.includes(e.host ?? '')).map((e) => e.host)).size;
  await waitFor(() => followed() === names.length, { timeoutMs: 60_000, intervalMs: 250, what: `${what}: every host's engine events followed` }).catch(() => undefined);
  const n = followed();
  log(`${what}: the server follows ${n}/${names.length} hosts' engine events`);
  const warnings = hostEngineWarnings(h, what);
  if (n < names.length) throw new Error(`${what}: the server follows the engine events of ${n} of ${names.length} test hosts (engine TLS not working?); its figures would not measure an installation:\n${h.serverLog.slice(-3000)}`);
  return { followed: n, warnings };
}
