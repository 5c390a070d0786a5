/**
 * What a deploy tells you while it waits and when it fails: a rollback to an old release gets its
 * whole deadline; a wrong health path, a crash on start and an app ignoring $PORT are named in the
 * deploy's output and in `status`; a slow starter is not probed hundreds of times; `✔ deployed`
 * only once every replica is healthy. One server, the fixture app test/fixtures/apps/feedback.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, ROOT } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const APP_DIR = join(ROOT, 'test/fixtures/apps/feedback');

interface AppOpts {
  replicas?: number;
  /** x-berth.health.http path (default /health, which the app answers). */
  healthPath?: string;
  deadline?: string;
  env?: Record<string, string>;
  /** A Compose healthcheck instead of x-berth.health. */
  composeHealth?: string[];
}

describe('deploy feedback', () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    h = await Harness.create({ portRange: '34000-34099' });
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
      ? `    healthcheck:\n      test: ${JSON.stringify(o.composeHealth)}\n      interval: 1s\n      timeout: 2s\n      retries: 3\n`
      : '';
    const xHealth = o.composeHealth ? '' : `      health: { http: ${o.healthPath ?? '/health'} }\n`;
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, `name: ${name}
services:
  web:
    build: ${APP_DIR}
    image: berth-test/feedback:latest
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

  test('rollback --to 1 after release 1\'s deadline has passed: exit 0, healthy (the deadline counts from the rollback)', async () => {
    const v1 = await deploy(await composeFile('rb', { deadline: '8s', env: { VERSION: 'v1' } }));
    assert.equal(v1.code, 0, v1.stderr);
    const v2 = await deploy(await composeFile('rb', { deadline: '8s', env: { VERSION: 'v2' } }));
    assert.equal(v2.code, 0, v2.stderr);
    const rels = (await h.api('GET', '/v1/apps/rb/releases')).json.releases as { seq: number; createdAt: number }[];
    const created1 = rels.find((r) => r.seq === 1)!.createdAt;
    await waitFor(() => Date.now() - created1 > 10_000, { timeoutMs: 15_000, intervalMs: 200, what: 'release 1 older than its 8 s deadline' });
    const rb = await h.cli(['rollback', 'rb', 'web', '--to', '1']);
    assert.equal(rb.code, 0, `${rb.stdout}\n${rb.stderr}`);
    const s = (await h.status('rb')).services[0];
    assert.equal(s.release.seq, 1);
    assert.equal(s.release.status, 'healthy');
    assert.equal(s.status, 'running');
  });
});
