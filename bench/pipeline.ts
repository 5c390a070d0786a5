/**
 * pipeline: a small Node app with (vendored) dependencies, from `git push` to the new version served
 * through the ingress, versus the same steps by hand in the same run (`git clone`, `docker build`,
 * `docker run` on the host network, poll health). Then a push that changes only app code: it must hit
 * the layer cache for the dependency layers. Alternating, medians. Each run also logs where Berth's
 * time went (the build record's stage timings) and the manual path's parts; BENCH_SHOW_LOG=1 prints
 * each Berth build's output too.
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Harness, ROOT, docker, freePort, get } from '../test/helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { exec, log, median, prepare } from './common.ts';

const APP = 'pipe';
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@example.invalid', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@example.invalid', GIT_TERMINAL_PROMPT: '0' };

const DOCKERFILE = `FROM berth/node:20
WORKDIR /app
# Dependencies first: a code-only change reuses these layers.
COPY package.json ./
COPY node_modules ./node_modules
COPY server.js ./
CMD ["node", "/app/server.js"]
`;

function server(version: string): string {
  return `const http = require('http'); const yaml = require('yaml');
const v = ${JSON.stringify(version)};
http.createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok');
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ version: v, yaml: typeof yaml.parse }));
}).listen(Number(process.env.PORT || 3000));
process.on('SIGTERM', () => process.exit(0));
`;
}

const compose = `name: ${APP}
services:
  web:
    build: .
    x-berth:
      port: 3000
      routes: [{path: /}]
      health: {http: /healthz}
`;

async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await exec('git', ['-C', cwd, ...args], { env: gitEnv, maxBuffer: 64 * 1024 * 1024 })).stdout;
}

export async function run(): Promise<Record<string, number>> {
  await prepare();
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-pipe-'));
  const work = join(dir, 'work');
  const origin = join(dir, 'origin.git');
  const h = await Harness.create({ portRange: '10500-10599' });
  try {
    await h.startServer();
    const token = await h.token();
    await exec('git', ['init', '-q', '-b', 'main', work]);
    await writeFile(join(work, 'Dockerfile'), DOCKERFILE);
    await writeFile(join(work, '.dockerignore'), 'compose.yaml\n');
    await writeFile(join(work, 'compose.yaml'), compose);
    await writeFile(join(work, 'package.json'), JSON.stringify({ name: 'pipe', version: '1.0.0', dependencies: { yaml: '2' } }));
    // A real dependency, vendored (builds here have no network): the yaml package from our own tree.
    await cp(join(ROOT, 'node_modules/yaml'), join(work, 'node_modules/yaml'), { recursive: true });
    await exec('git', ['init', '-q', '--bare', '-b', 'main', origin]);
    await git(work, 'remote', 'add', 'origin', origin);
    await git(work, 'remote', 'add', 'berth', `http://x:${token}@127.0.0.1:${h.apiPort}/git/${APP}.git`);

    const commit = async (v: string) => {
      await writeFile(join(work, 'server.js'), server(v));
      await git(work, 'add', '-A');
      await git(work, 'commit', '-qm', v);
      await git(work, 'push', '-q', 'origin', 'main');
    };
    const servedViaIngress = (v: string) => waitFor(async () => {
      const r = await get(h.ingressPort, '/');
      return r.status === 200 && JSON.parse(r.body).version === v;
    }, { timeoutMs: 180_000, intervalMs: 20, what: `${v} through the ingress` });

    const nonce = randomBytes(4).toString('hex');
    const berth: number[] = [];
    const manual: number[] = [];
    /** Where Berth's time goes, per run: the build record's stage timings plus what surrounds them. */
    const parts: Record<string, number>[] = [];
    const manualParts: Record<string, number>[] = [];
    // Warm-up, not timed: the app's first deployment (and the registry's first copy of the base
    // layers, ~100 MB) and the engine's first build of the dependency layers by hand. What is timed
    // after it is what a push of new code costs an app that runs.
    await commit(`warmup-${nonce}`);
    await git(work, 'push', '-q', 'berth', 'main');
    await servedViaIngress(`warmup-${nonce}`);
    await exec('git', ['clone', '-q', origin, join(dir, 'clone-warmup')]);
    await exec('docker', ['build', '-q', '-t', `berth-bench/pipe-manual:warmup`, join(dir, 'clone-warmup')], { maxBuffer: 16 * 1024 * 1024 });
    for (let i = 0; i < RUNS; i++) {
      // New code every run, in every invocation: a version seen before would let both builders serve
      // the code layer from an earlier run's cache, which is not what pushing a change costs.
      const v = `b${i}-${nonce}`;
      await commit(v);
      // Live = the first response of the new version through the ingress (the push itself returns once
      // the old instance has also drained and stopped).
      let t0 = performance.now();
      const wall0 = Date.now();
      const push = git(work, 'push', '-q', 'berth', 'main');
      await servedViaIngress(v);
      berth.push(performance.now() - t0);
      const live = Date.now();
      await push;
      const rec = (await h.api('GET', `/v1/builds?app=${APP}&limit=1`)).json.builds[0] as { createdAt: number; startedAt: number; timings: Record<string, number> };
      const stagesEnd = rec.startedAt + Object.entries(rec.timings).filter(([k]) => k !== 'deploy').reduce((a, [, ms]) => a + ms, 0);
      parts.push({ push_to_queued: rec.createdAt - wall0, queued_to_start: rec.startedAt - rec.createdAt, ...rec.timings, deploy_to_live: live - stagesEnd });
      log(`berth parts (ms): ${JSON.stringify(parts.at(-1))}`);
      if (process.env.BENCH_SHOW_LOG) {
        const id = ((await h.api('GET', `/v1/builds?app=${APP}&limit=1`)).json.builds[0] as { id: string }).id;
        log(await (await fetch(`http://127.0.0.1:${h.apiPort}/v1/builds/${id}/logs`, { headers: { authorization: `Bearer ${token}` } })).text());
      }
      // By hand, the same commit.
      const clone = join(dir, `clone-${i}`);
      const port = await freePort();
      const name = `berth-bench-pipe-manual-${i}`;
      t0 = performance.now();
      await exec('git', ['clone', '-q', origin, clone]);
      const cloned = performance.now();
      await exec('docker', ['build', '-q', '-t', `berth-bench/pipe-manual:${v}`, clone], { maxBuffer: 16 * 1024 * 1024 });
      const built = performance.now();
      await docker('run', '-d', '--name', name, '--network', 'host', '-e', `PORT=${port}`, `berth-bench/pipe-manual:${v}`);
      await waitFor(async () => (await get(port, '/healthz', 1000)).status === 200, { timeoutMs: 60_000, intervalMs: 20, what: 'manual healthy' });
      manual.push(performance.now() - t0);
      manualParts.push({ clone: cloned - t0, build: built - cloned, run_to_healthy: t0 + manual.at(-1)! - built });
      log(`manual parts (ms): ${JSON.stringify(Object.fromEntries(Object.entries(manualParts.at(-1)!).map(([k, v]) => [k, Math.round(v)])))}`);
      await docker('rm', '-f', name);
      log(`run ${i + 1}/${RUNS}: berth ${berth.at(-1)!.toFixed(0)} ms, manual ${manual.at(-1)!.toFixed(0)} ms`);
    }
    // A code-only change: the dependency layers come from the cache.
    await commit(`code-only-${nonce}`);
    const t0 = performance.now();
    const push = git(work, 'push', '-q', 'berth', 'main');
    await servedViaIngress(`code-only-${nonce}`);
    const rebuild = performance.now() - t0;
    await push;
    const builds = (await h.api('GET', `/v1/builds?app=${APP}`)).json.builds as { id: string }[];
    const text = await (await fetch(`http://127.0.0.1:${h.apiPort}/v1/builds/${builds[0]!.id}/logs`, { headers: { authorization: `Bearer ${token}` } })).text();
    const cached = (text.match(/Using cache|CACHED/g) ?? []).length;
    log(`code-only rebuild ${rebuild.toFixed(0)} ms, cached steps: ${cached}`);
    const b = median(berth);
    const m = median(manual);
    const medians = (ps: Record<string, number>[]) => JSON.stringify(Object.fromEntries([...new Set(ps.flatMap((p) => Object.keys(p)))].map((k) => [k, Math.round(median(ps.map((p) => p[k] ?? 0)))])));
    log(`berth parts, medians (ms): ${medians(parts)}`);
    log(`manual parts, medians (ms): ${medians(manualParts)}`);
    return {
      berth_push_to_live_ms: Math.round(b), manual_ms: Math.round(m), ratio: Math.round((b / m) * 100) / 100,
      rebuild_code_only_ms: Math.round(rebuild), rebuild_cached_steps: cached, runs: RUNS,
    };
  } finally {
    await h.cleanup();
    await rm(dir, { recursive: true, force: true });
    await exec('sh', ['-c', 'docker rm -f $(docker ps -aq --filter name=berth-bench-pipe-manual) 2>/dev/null || true']);
  }
}
