import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { ROOT, type Harness } from '../test/helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { BerthClient } from '../src/client/client.ts';

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
