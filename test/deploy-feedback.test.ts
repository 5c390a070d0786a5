/**
 * What a deploy tells you while it waits and when it fails: a rollback to an old release gets its
 * whole deadline; a wrong health path, a crash on start and an app ignoring $PORT are named in the
 * deploy's output and in `status`; a slow starter is not probed hundreds of times; `✔ deployed`
 * only once every replica is healthy. One server, the fixture app test/fixtures/apps/feedback.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, ROOT, docker } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const APP_DIR = join(ROOT, 'test/fixtures/apps/feedback');
const IMAGE = 'berth-test/feedback:latest';

interface AppOpts {
  replicas?: number;
  /** x-berth.health.http path (default /health, which the app answers). */
  healthPath?: string;
  deadline?: string;
  env?: Record<string, string>;
  /** A Compose healthcheck instead of x-berth.health. */
  composeHealth?: string[];
}

// The tests use apps of their own and mostly wait on deadlines: they run side by side.
describe('deploy feedback', { concurrency: true }, () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    // Berth hands out 10400-10489; 10490-10499 are this file's fixed ports (an app that ignores $PORT).
    h = await Harness.create({ portRange: '10400-10489' });
    // Built once, up front: the tests run side by side, and builds racing for one tag could give a
    // deploy a different image (a new release) than the one before it.
    await docker('build', '-q', '-t', IMAGE, APP_DIR);
    await h.startServer();
    dir = await mkdtemp(join(tmpdir(), 'berth-feedback-'));
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-8000));
    await h.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes a Compose file for app `name` (one service, web) and returns its path. */
  const composeFile = async (name: string, o: AppOpts = {}): Promise<string> => {
    const env = Object.entries(o.env ?? {}).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}\n`).join('');
    const health = o.composeHealth
      // timeout 10s: the check starts node in the container, which took over 2 s on CI's loaded machine.
      ? `    healthcheck:\n      test: ${JSON.stringify(o.composeHealth)}\n      interval: 1s\n      timeout: 10s\n      retries: 3\n`
      : '';
    const xHealth = o.composeHealth ? '' : `      health: { http: ${o.healthPath ?? '/health'} }\n`;
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, `name: ${name}
services:
  web:
    image: ${IMAGE}
    environment:
      APP: ${name}
${env}    deploy:
      replicas: ${o.replicas ?? 1}
    stop_grace_period: 2s
${health}    x-berth:
      port: 3000
${xHealth}      update: { deadline: ${o.deadline ?? '60s'} }
`);
    return file;
  };
  const deploy = (file: string, extra: string[] = []) => h.cli(['deploy', '-f', file, ...extra], { timeoutMs: 180_000 });

  /** Runs the CLI and notes when each line of its stderr arrived (ms after the start). */
  const deployTimed = (file: string): Promise<{ code: number; lines: { ms: number; text: string }[]; stderr: string }> => new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(join(ROOT, 'bin/berth'), ['deploy', '-f', file], { env: h.env, stdio: ['ignore', 'ignore', 'pipe'] });
    const lines: { ms: number; text: string }[] = [];
    let buf = '';
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (c: string) => {
      buf += c;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        lines.push({ ms: Date.now() - t0, text: buf.slice(0, i) });
        buf = buf.slice(i + 1);
      }
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), 180_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      if (buf) lines.push({ ms: Date.now() - t0, text: buf });
      resolve({ code: code ?? 1, lines, stderr: lines.map((l) => l.text).join('\n') });
    });
  });

  /** The app's own request log: `request GET /health → 503` lines. */
  const requestLog = async (app: string): Promise<string[]> => {
    const r = await h.api('GET', `/v1/apps/${app}/logs?grep=request&limit=10000`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return (r.json.lines as { text: string }[]).map((l) => l.text).filter((t) => t.startsWith('request '));
  };

  test('rollback --to 1 after release 1\'s deadline has passed: exit 0, healthy (the deadline counts from the rollback)', async () => {
    // 12 s: each release must become healthy within it on a loaded machine; the rollback comes after it.
    const v1 = await deploy(await composeFile('rb', { deadline: '12s', env: { VERSION: 'v1' } }));
    assert.equal(v1.code, 0, v1.stderr);
    const v2 = await deploy(await composeFile('rb', { deadline: '12s', env: { VERSION: 'v2' } }));
    assert.equal(v2.code, 0, v2.stderr);
    const rels = (await h.api('GET', '/v1/apps/rb/releases')).json.releases as { seq: number; createdAt: number }[];
    const created1 = rels.find((r) => r.seq === 1)!.createdAt;
    await waitFor(() => Date.now() - created1 > 14_000, { timeoutMs: 25_000, intervalMs: 200, what: 'release 1 older than its 12 s deadline' });
    const rb = await h.cli(['rollback', 'rb', 'web', '--to', '1']);
    assert.equal(rb.code, 0, `${rb.stdout}\n${rb.stderr}`);
    const s = (await h.status('rb')).services[0];
    assert.equal(s.release.seq, 1);
    assert.equal(s.release.status, 'healthy');
    assert.equal(s.status, 'running');
  });

  test('a wrong health path: the deploy says `GET /healthz → 404` while it waits (a progress line before the deadline) and when it fails', async () => {
    const r = await deployTimed(await composeFile('wrongpath', { healthPath: '/healthz', deadline: '12s' }));
    assert.equal(r.code, 1, r.stderr);
    const progress = r.lines.find((l) => /^ {2}waiting \d+s: web 0\/1 healthy; last check GET \/healthz → 404 \(/.test(l.text));
    assert.ok(progress, `a progress line naming the check's result:\n${r.stderr}`);
    const failed = r.lines.find((l) => /release\.failed/.test(l.text));
    assert.ok(failed && progress.ms < failed.ms, `the progress line comes while waiting, before the release fails (at the 12 s deadline; after the first line a changed check is printed within ~2 s):\n${r.stderr}`);
    assert.match(r.lines.at(-1)!.text, /^error: deployment \w+ failed: release 1 of web failed: it did not become healthy within 12s: 0\/1 healthy; last check GET \/healthz → 404 /);
    const st = await h.cli(['status', 'wrongpath']);
    assert.match(st.stdout, /GET \/healthz → 404 \(for \d+s\)/, st.stdout);
  });

  test('a crash on start: the deploy output and status show what the process printed last', async () => {
    const msg = 'Error: listen EADDRINUSE: address already in use 0.0.0.0:3000';
    const r = await deploy(await composeFile('crashy', { env: { CRASH_MESSAGE: msg } }), ['--timeout', '60']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /instance\.crashed +instance \w+ exited with code 1 after \d+s: "Error: listen EADDRINUSE: address already in use 0\.0\.0\.0:3000"/);
    assert.match(r.stderr.split('\n').at(-2)!, /^error: deployment \w+ failed: release 1 of web failed: its instances crashed 3 times in a row \(crash loop\); the last exited with code 1 after \d+s: "Error: listen EADDRINUSE/);
    const st = await h.cli(['status', 'crashy']);
    assert.ok(st.stdout.includes(`  | ${msg}`), st.stdout);
  });

  test('an app that ignores $PORT and has its own Compose healthcheck: not healthy, and the deploy names the port it should listen on', async () => {
    // It listens on a fixed port outside Berth's range; its own check, run inside, finds it there.
    // Not in the kernel's ephemeral range (32768-60999): a client's outgoing connection may hold
    // such a port, and the app then dies on EADDRINUSE (a full check here had 34190 taken once).
    const fixed = 10_490;
    const check = ['CMD', 'node', '-e', `require('http').get('http://127.0.0.1:${fixed}/health', (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))`];
    // The deadline leaves room for the in-container check to pass once on a loaded machine (CI had one
    // take over 2 s to start node, and an 8 s deadline came before any check had passed).
    const r = await deploy(await composeFile('portless', { env: { LISTEN_PORT: String(fixed) }, composeHealth: check, deadline: '20s' }));
    assert.equal(r.code, 1, r.stderr);
    const m = /nothing listens on 127\.0\.0\.1:(\d+) — the process must listen on \$PORT \((\d+) for this instance, set by Berth\); its Compose healthcheck passes/.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.equal(m[1], m[2]);
    const inst = (await h.status('portless')).services[0].instances[0];
    assert.equal(String(inst.port), m[1], 'the port named is the instance\'s allocated port');
    assert.equal(inst.health, 'starting');
    assert.match(r.stderr.split('\n').at(-2)!, /^error: deployment \w+ failed: .*did not become healthy within 20s: 0\/1 healthy; last check nothing listens on 127\.0\.0\.1:/);
  });

  test('a slow starter is probed with backoff (its own request log counts them); `✔ deployed` comes after release.healthy, and only once every replica is', async () => {
    const file = await composeFile('slow', { env: { READY_DELAY_MS: '6000' }, replicas: 1 });
    const r = await deploy(file);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.split('\n');
    const healthyAt = lines.findIndex((l) => /release\.healthy +release 1 of web is healthy/.test(l));
    const doneAt = lines.findIndex((l) => /^✔ slow\/prod deployed: web 1\/1 healthy/.test(l));
    assert.ok(healthyAt >= 0 && doneAt > healthyAt, `✔ after release.healthy:\n${r.stderr}`);
    const log = await waitFor(async () => {
      const l = await requestLog('slow');
      return l.some((t) => t.endsWith('→ 200')) ? l : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250, what: 'the probe that found it ready in its log' });
    const warming = log.filter((t) => t === 'request GET /health → 503').length;
    // The starting schedule (registry/health-monitor.ts): every 20 ms for the first 2 s after the
    // container starts (≤ 100, fewer as the app listens later), then doubling to 1 s (~9 in the other
    // 4 s): at most ~110. Every 20 ms for all 6 s would be ~300: the bound says it backs off.
    assert.ok(warming >= 5 && warming <= 130, `probes while warming up: ${warming}`);

    // `✔ deployed` only once every replica is healthy: a deploy that only raises replicas reuses the
    // healthy release, and waits for the new instances.
    const more = await deploy(await composeFile('slow', { env: { READY_DELAY_MS: '6000' }, replicas: 3 }));
    assert.equal(more.code, 0, more.stderr);
    assert.match(more.stderr, /✔ slow\/prod deployed: web 3\/3 healthy/);
    const s = (await h.status('slow')).services[0];
    assert.equal(s.healthy, 3, 'all three serve when the deploy says so');
    assert.equal(s.release.seq, 1, 'the same release');
  });
});
