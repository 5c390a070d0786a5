/**
 * What the README says `--env` does, checked against a real server: commands that act on one
 * environment default to prod; listings and `rm` cover every environment unless `--env` narrows
 * them; `deploy --env` runs the same file as another environment with its own services, releases
 * and configuration (nothing is copied from prod); routes share the one ingress, so a route without
 * `${BERTH_ENV}` in its host cannot be served by two environments of an app (the refusal says so).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness } from './helpers/harness.ts';

const WORKER = `name: envs
services:
  worker:
    image: berth/busybox:latest
    command: ["sh", "-c", "echo up in $$BERTH_ENV; exec sleep 600"]
    stop_grace_period: 1s
`;
const ROUTED = `name: envroute
services:
  web:
    image: berth/busybox:latest
    command: ["sh", "-c", "exec httpd -f -p $$PORT -h /tmp"]
    stop_grace_period: 1s
    x-berth:
      port: 8080
      routes:
        - path: /
`;

describe('--env', () => {
  let h: Harness;
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-envflag-'));
    await writeFile(join(work, 'worker.yaml'), WORKER);
    await writeFile(join(work, 'routed.yaml'), ROUTED);
    h = await Harness.create({ portRange: '18700-18799' });
    await h.startServer();
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-5000));
    await h.cleanup();
    await rm(work, { recursive: true, force: true });
  });

  test('deploy --env runs the same file as another environment: its own services, releases and configuration', async () => {
    // The two environments are independent: deployed side by side.
    const [prod, staging] = await Promise.all([
      h.cli(['deploy', '-f', join(work, 'worker.yaml')], { timeoutMs: 120_000 }),
      h.cli(['deploy', '-f', join(work, 'worker.yaml'), '--env', 'staging'], { timeoutMs: 120_000 }),
    ]);
    assert.equal(prod.code, 0, prod.stderr);
    assert.equal(staging.code, 0, staging.stderr);

    // Listings cover every environment; --env narrows them.
    const [allOut, onlyOut] = await Promise.all([h.cli(['--json', 'status', 'envs']), h.cli(['--json', 'status', 'envs', '--env', 'staging'])]);
    const all = JSON.parse(allOut.stdout) as { services: { env: string }[] };
    assert.deepEqual(all.services.map((s) => s.env).sort(), ['prod', 'staging']);
    const only = JSON.parse(onlyOut.stdout) as { services: { env: string }[] };
    assert.deepEqual(only.services.map((s) => s.env), ['staging']);
    const rels = (await h.api('GET', '/v1/apps/envs/releases')).json.releases as { env: string; seq: number }[];
    assert.deepEqual(rels.map((r) => `${r.env}:${r.seq}`).sort(), ['prod:1', 'staging:1'], 'release numbering is per environment');

    // Commands on one environment default to prod; configuration is not copied between environments.
    assert.equal((await h.cli(['config', 'set', 'envs', 'ONLY_PROD=1'])).code, 0);
    const [prodOut, stagingCfg] = await Promise.all([h.cli(['--json', 'config', 'ls', 'envs']), h.cli(['--json', 'config', 'ls', 'envs', '--env', 'staging'])]);
    const prodCfg = JSON.parse(prodOut.stdout) as { key: string }[] | { entries: { key: string }[] };
    const keys = (x: typeof prodCfg) => (Array.isArray(x) ? x : x.entries).map((e) => e.key);
    assert.deepEqual(keys(prodCfg), ['ONLY_PROD']);
    assert.equal(stagingCfg.code, 0, stagingCfg.stderr);
    assert.deepEqual(keys(JSON.parse(stagingCfg.stdout) as typeof prodCfg), []);
  });

  test('a route without ${BERTH_ENV} in its host is one environment\'s: another is refused with the host to write', async () => {
    const prod = await h.cli(['deploy', '-f', join(work, 'routed.yaml')], { timeoutMs: 120_000 });
    assert.equal(prod.code, 0, prod.stderr);
    const staging = await h.cli(['deploy', '-f', join(work, 'routed.yaml'), '--env', 'staging'], { timeoutMs: 120_000 });
    assert.equal(staging.code, 4, staging.stderr);
    assert.match(staging.stderr, /already served by envroute\/prod\/web/);
    assert.match(staging.stderr, /\$\{BERTH_ENV\}/);
  });

  test('rm --env removes one environment; rm without it every one', async () => {
    const one = await h.cli(['rm', 'envs', '--env', 'staging']);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /^removing envs: staging\/worker$/m);
    const left = JSON.parse((await h.cli(['--json', 'status', 'envs'])).stdout) as { services: { env: string }[] };
    assert.deepEqual(left.services.map((s) => s.env), ['prod']);
    const rest = await h.cli(['rm', 'envs']);
    assert.equal(rest.code, 0, rest.stderr);
    assert.match(rest.stdout, /^removing envs: prod\/worker$/m);
  });
});
