/**
 * One app in several environments, each with its own host routes, end to end (real server, Docker,
 * nginx, git, Berth's registry): `${BERTH_ENV}` in a host makes `deploy --env staging` and prod
 * live side by side, each served by its host through nginx; the same literal host in two
 * environments is refused with the fix in the message; a pushed branch interpolates for its own
 * environment (BERTH_ENV, the environment's configuration values over the commit's `.env`); promote
 * re-interpolates the kept Compose file for the target, with the very same image digest.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exampleRepo, git, helloCompose, pushSetup, type PushSetup } from './helpers/git.ts';
import type { Harness } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

/** The example app's compose.yaml with a host route instead of the catch-all one. */
function withHost(app: string, version: string, host: string): string {
  return helloCompose(app, version, { route: false, deadline: '30s' })
    .replace('      health:', `      routes:\n        - {host: "${host}", path: /}\n      health:`);
}

/** GET /api/whoami through the ingress with a Host header: the app's version, or the HTTP status when it is not 200. */
function whoamiAt(port: number, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/api/whoami', headers: { host }, agent: false, timeout: 5000 }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve(res.statusCode === 200 ? (JSON.parse(b) as { version: string }).version : `HTTP ${res.statusCode}`));
    }).on('error', reject).on('timeout', function (this: { destroy(e: Error): void }) {
      this.destroy(new Error(`timeout asking ${host}`));
    }).end();
  });
}

describe('environments with host routes', { concurrency: true }, () => {
  let h: Harness;
  let setup: PushSetup;
  let cliRepo: string;
  before(async () => {
    // The pushed app reads DOMAIN: from the commit's .env, unless the environment's configuration sets it.
    setup = await pushSetup({ portRange: '18400-18499', prefix: 'berth-envpush-', compose: withHost('envpush', 'push-${BERTH_ENV}', 'envpush-${BERTH_ENV}.${DOMAIN}') });
    h = setup.h;
    await writeFile(join(setup.work, '.env'), 'DOMAIN=test\n');
    assert.equal((await git(setup.work, ['add', '.env'])).code, 0);
    assert.equal((await git(setup.work, ['commit', '-qm', 'the domain in .env'])).code, 0);
    cliRepo = await exampleRepo('berth-envcli-', withHost('envcli', 'cli-${BERTH_ENV}', 'envcli-${BERTH_ENV}.test'));
  });
  after(async () => {
    await rm(cliRepo, { recursive: true, force: true });
    await setup.cleanup();
  });

  // The pushed app (envpush) has tests of its own app and hosts: it runs beside the envcli tests,
  // which go in order (the last one promotes envcli's staging release).
  describe('envcli, deployed with the CLI', { concurrency: 1 }, () => {
    test('deploy --env staging and prod with ${BERTH_ENV} hosts: both run, each served by its own host', async () => {
      const file = join(cliRepo, 'compose.yaml');
      // Side by side: the two environments' deploys are independent.
      const [staging, prod] = await Promise.all([
        h.cli(['deploy', '-f', file, '--env', 'staging'], { timeoutMs: 180_000 }),
        h.cli(['deploy', '-f', file], { timeoutMs: 180_000 }),
      ]);
      assert.equal(staging.code, 0, staging.stderr);
      assert.match(staging.stdout, /web: http:\/\/envcli-staging\.test:/);
      assert.equal(prod.code, 0, prod.stderr);
      assert.equal(await whoamiAt(h.ingressPort, 'envcli-staging.test'), 'cli-staging');
      assert.equal(await whoamiAt(h.ingressPort, 'envcli-prod.test'), 'cli-prod');
      assert.equal(await whoamiAt(h.ingressPort, 'envcli-dev.test'), 'HTTP 404', 'no route for an environment that does not exist');
      const envs = (await h.api('GET', '/v1/apps')).json.apps.find((a: { name: string }) => a.name === 'envcli').envs;
      assert.deepEqual([...envs].sort(), ['prod', 'staging']);
    });

    test('the same literal host in two environments of one app is refused with the ${BERTH_ENV} fix; another app keeps the first-owner rule', async () => {
      const file = join(cliRepo, 'literal.yaml');
      await writeFile(file, withHost('literal', 'v1', 'literal.test'));
      const first = await h.cli(['deploy', '-f', file], { timeoutMs: 180_000 });
      assert.equal(first.code, 0, first.stderr);
      const second = await h.cli(['deploy', '-f', file, '--env', 'staging'], { timeoutMs: 60_000 });
      assert.equal(second.code, 4, second.stdout + second.stderr);
      assert.match(second.stderr, /route literal\.test\/ of web is already served by literal\/prod\/web: literal in staging needs a host of its own — write the environment into the host, e\.g\. host: literal-\$\{BERTH_ENV\}\.test \(served as literal-staging\.test in staging and literal-prod\.test in prod\)/);
      assert.equal((await h.api('GET', '/v1/apps/literal?env=staging')).status, 404, 'nothing deployed in staging');
      assert.equal(await whoamiAt(h.ingressPort, 'literal.test'), 'v1', 'prod still serves');
      // Another app asking for a host an app already serves: refused, whatever its environment.
      await writeFile(file, withHost('intruder', 'v1', 'envcli-prod.test'));
      for (const r of await Promise.all(['prod', 'staging'].map((env) => h.cli(['deploy', '-f', file, '--env', env], { timeoutMs: 60_000 })))) {
        assert.equal(r.code, 4, r.stderr);
        assert.match(r.stderr, /route envcli-prod\.test\/ of web is already served by envcli\/prod\/web: choose another host or path/);
      }
      assert.equal(await whoamiAt(h.ingressPort, 'envcli-prod.test'), 'cli-prod');
      assert.equal((await h.cli(['rm', 'literal'])).code, 0);
    });

    test('a Compose file that does not hold for the target is a 400 invalid_spec from promote (CLI exit 2), not a conflict; nothing deployed there', async () => {
      // A running release in pre whose kept source needs NEED, which no environment sets: it holds for no
      // environment, so promoting it must be refused as the invalid spec it is.
      const rel = (await h.api('GET', '/v1/apps/envcli/releases?env=staging')).json.releases.find((r: { current: boolean }) => r.current);
      const { source: _source, ...web } = (await h.api('GET', `/v1/apps/envcli/releases/${rel.id}`)).json.release.spec;
      const source = { file: 'compose.yaml', baseDir: '/srv/promobad', files: {}, variables: {},
        text: 'services:\n  web:\n    image: example\n    environment:\n      NEED: ${NEED:?set NEED for the environment}\n' };
      const dep = await h.api('POST', '/v1/apps/promobad/deployments', { env: 'pre', spec: { name: 'promobad', services: { web: { ...web, routes: [] } } }, source });
      assert.equal(dep.status, 202, JSON.stringify(dep.json));
      await waitFor(async () => (await h.api('GET', `/v1/deployments/${dep.json.deployment.id}`)).json.deployment.status === 'succeeded',
        { timeoutMs: 120_000, what: 'promobad healthy in pre' });
      const api = await h.api('POST', '/v1/apps/promobad/promote', { from: 'pre', to: 'prod' });
      assert.equal(api.status, 400, JSON.stringify(api.json));
      assert.equal(api.json.error.code, 'invalid_spec');
      assert.match(api.json.error.message, /compose\.yaml:\d+:\d+: .*required variable "NEED" is not set: set NEED for the environment \(refusing to promote promobad to prod/);
      const cli = await h.cli(['promote', 'promobad', '--from', 'pre', '--to', 'prod']);
      assert.equal(cli.code, 2, cli.stdout + cli.stderr);
      assert.equal((await h.api('GET', '/v1/apps/promobad?env=prod')).status, 404, 'nothing deployed in prod');
      assert.equal((await h.cli(['rm', 'promobad'])).code, 0);
    });
  });

  test('a pushed branch interpolates for its environment; promote re-interpolates for the target with the same digest', async () => {
    const { work } = setup;
    // pre's own configuration value wins over the commit's .env; prod has none, so it takes the .env.
    const cfg = await h.cli(['config', 'set', 'envpush', '--env', 'pre', 'DOMAIN=pre.test', '--create']);
    assert.equal(cfg.code, 0, cfg.stderr);
    assert.equal((await git(work, ['checkout', '-q', '-b', 'pre'])).code, 0);
    const push = await git(work, ['push', setup.remote('envpush'), 'pre']);
    assert.equal(push.code, 0, push.out);
    assert.match(push.out, /-----> Branch pre deploys to env pre/);
    assert.match(push.out, /deployed to pre/);
    assert.equal(await whoamiAt(h.ingressPort, 'envpush-pre.pre.test'), 'push-pre');
    const current = async (env: string) => ((await h.api('GET', `/v1/apps/envpush/releases?env=${env}`)).json.releases as
      { image: string; current: boolean; status: string }[]).find((r) => r.current);
    const pre = (await current('pre'))!;
    assert.match(pre.image, /@sha256:[0-9a-f]{64}$/);

    const p = await h.cli(['promote', 'envpush', '--from', 'pre', '--to', 'prod'], { timeoutMs: 180_000 });
    assert.equal(p.code, 0, p.stdout + p.stderr);
    const prod = (await current('prod'))!;
    assert.equal(prod.image, pre.image, 'the very same digest');
    assert.equal(prod.status, 'healthy');
    assert.equal(await whoamiAt(h.ingressPort, 'envpush-prod.test'), 'push-prod', 'prod\'s host, prod\'s BERTH_ENV');
    assert.equal(await whoamiAt(h.ingressPort, 'envpush-pre.pre.test'), 'push-pre', 'pre keeps serving on its own host');
    const cfgProd = await h.api('GET', '/v1/apps/envpush/config?env=prod');
    assert.deepEqual(cfgProd.json.entries, [], 'prod has no configuration of its own: the .env value was used');
  });
});
