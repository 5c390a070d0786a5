/**
 * Berth's image registry and promotion, end to end: a real `berth server` with its managed
 * `docker-registry` on loopback. A git push builds, pushes to the registry (checked through the
 * registry's own HTTP API) and deploys by digest; a push of branch `pre` deploys to env `pre`;
 * `berth promote APP --from pre --to prod` moves the identical digest to prod without a build;
 * promoting from an environment whose release failed, or that has nothing, is refused and changes nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exampleRepo, git, helloCompose, pushSetup, type PushSetup } from './helpers/git.ts';
import { request } from 'node:http';
import type { Harness } from './helpers/harness.ts';

const APP = 'regapp';

// The same app runs in several environments here: each gets its own host through ${BERTH_ENV}.
function compose(version: string, extraEnv = '', deadline = '15s'): string {
  return helloCompose(APP, version, { route: false, extraEnv, deadline })
    .replace('      health:', '      routes:\n        - {host: "regapp-${BERTH_ENV}.test", path: /}\n      health:');
}

interface Rel { id: string; image: string; imageId: string; status: string; current: boolean; service: string }

describe('image registry and promotion', () => {
  let h: Harness;
  let work: string;
  let setup: PushSetup;
  before(async () => {
    setup = await pushSetup({ portRange: '10200-10299', prefix: 'berth-reg-', compose: compose('v1') });
    ({ h, work } = setup);
  });
  after(() => setup.cleanup());

  const remote = () => setup.remote(APP);
  const current = async (env: string): Promise<Rel | undefined> =>
    ((await h.api('GET', `/v1/apps/${APP}/releases?env=${env}`)).json.releases as Rel[]).find((r) => r.current && r.service === 'web');
  const builds = async () => (await h.api('GET', `/v1/builds?app=${APP}`)).json.builds as { id: string; status: string; images: Record<string, string> }[];
  const digestOf = (image: string) => /@(sha256:[0-9a-f]{64})$/.exec(image)?.[1];

  test('push main: the image is in the registry and prod runs it by digest', async () => {
    const r = await git(work, ['push', remote(), 'main']);
    assert.equal(r.code, 0, r.out);
    const sha12 = (await git(work, ['rev-parse', 'HEAD'])).out.trim().slice(0, 12);
    assert.match(r.out, new RegExp(`remote: -----> web pushed: 127\\.0\\.0\\.1:${h.registryPort}/${APP}/web@sha256:`));
    const catalog = (await (await setup.registryFetch(`/v2/_catalog`)).json()) as { repositories: string[] };
    assert.ok(catalog.repositories.includes(`${APP}/web`), JSON.stringify(catalog));
    const tags = (await (await setup.registryFetch(`/v2/${APP}/web/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, [sha12]);
    const head = await setup.registryFetch(`/v2/${APP}/web/manifests/${sha12}`, { method: 'HEAD', headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    assert.equal(head.status, 200);
    const digest = head.headers.get('docker-content-digest');
    assert.match(digest ?? '', /^sha256:[0-9a-f]{64}$/);
    const rel = await current('prod');
    assert.ok(rel, 'prod has a current release');
    assert.equal(rel.image, `127.0.0.1:${h.registryPort}/${APP}/web@${digest}`);
    assert.equal(rel.status, 'healthy');
    const b = await builds();
    assert.equal(b.length, 1);
    assert.equal(b[0]!.images.web, rel.image);
  });

  test('push branch pre deploys to env pre; promote moves the identical digest to prod without a build', async () => {
    await writeFile(join(work, 'compose.yaml'), compose('v2'));
    assert.equal((await git(work, ['checkout', '-q', '-b', 'pre'])).code, 0);
    assert.equal((await git(work, ['commit', '-qam', 'v2'])).code, 0);
    const r = await git(work, ['push', remote(), 'pre']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /deployed to pre/);
    const pre = (await current('pre'))!;
    assert.equal(pre.status, 'healthy');
    const prodBefore = (await current('prod'))!;
    assert.notEqual(digestOf(prodBefore.image), digestOf(pre.image));
    const nBuilds = (await builds()).length;

    const p = await h.cli(['promote', APP, '--from', 'pre', '--to', 'prod']);
    assert.equal(p.code, 0, p.stdout + p.stderr);
    const prod = (await current('prod'))!;
    assert.equal(prod.image, pre.image);
    assert.equal(digestOf(prod.image), digestOf(pre.image));
    assert.equal(prod.imageId, pre.imageId);
    assert.equal(prod.status, 'healthy');
    assert.notEqual(prod.id, prodBefore.id);
    assert.equal((await builds()).length, nBuilds, 'promotion built nothing');
    // Production's own environment: the container runs in env prod.
    const st = await h.status(APP);
    assert.ok(st.services.some((s: { env: string; release: { id: string } }) => s.env === 'prod' && s.release.id === prod.id));
  });

  test('promoting from an env whose release failed, or that has nothing, is refused and changes nothing', async () => {
    // Never healthy: it fails at its deadline, which need not be long.
    await writeFile(join(work, 'compose.yaml'), compose('v3', '      HEALTH_FAIL: "1"\n', '5s'));
    assert.equal((await git(work, ['checkout', '-q', '-b', 'broken'])).code, 0);
    assert.equal((await git(work, ['commit', '-qam', 'v3 broken'])).code, 0);
    const r = await git(work, ['push', remote(), 'broken']);
    assert.notEqual(r.code, 0, r.out);
    const broken = (await current('broken'))!;
    assert.equal(broken.status, 'failed');
    const prodBefore = (await current('prod'))!;

    const p = await h.cli(['promote', APP, '--from', 'broken', '--to', 'prod']);
    assert.notEqual(p.code, 0);
    assert.match(p.stderr, /refusing to promote .*failed/);
    const api = await h.api('POST', `/v1/apps/${APP}/promote`, { from: 'broken', to: 'prod' });
    assert.equal(api.status, 409);
    const none = await h.cli(['promote', APP, '--from', 'staging', '--to', 'prod']);
    // An environment the app never had: not found (exit 3), naming the ones it has.
    assert.equal(none.code, 3, none.stderr);
    assert.match(none.stderr, /no environment "staging" for app "regapp": its environments are broken, pre, prod/);
    const prodAfter = (await current('prod'))!;
    assert.equal(prodAfter.id, prodBefore.id);
    assert.equal(prodAfter.image, prodBefore.image);
  });

  test('the issue\'s path end to end: git push main → image in the registry (its HTTP API) → deployed to pre (x-berth.pipeline) → served through the ingress', async () => {
    const app = 'regpre';
    const yaml = helloCompose(app, 'pre-v1', { route: false, top: 'x-berth:\n  pipeline:\n    branches: {main: pre}\n' })
      .replace('      health:', '      routes:\n        - {host: pre.regpre.test, path: /}\n      health:');
    const repo = await exampleRepo('berth-regpre-', yaml);
    try {
      // The version comes from an env_file in the commit: read from git like everything else.
      await writeFile(join(repo, 'compose.yaml'), yaml.replace('      APP_VERSION: pre-v1\n', '      OTHER: x\n').replace('    environment:', '    env_file: [config/pre.env]\n    environment:'));
      await mkdir(join(repo, 'config'));
      await writeFile(join(repo, 'config', 'pre.env'), 'APP_VERSION=pre-v1\n');
      assert.equal((await git(repo, ['add', '-A'])).code, 0);
      assert.equal((await git(repo, ['commit', '-qm', 'version from an env_file'])).code, 0);
      const r = await git(repo, ['push', setup.remote(app), 'main']);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /-----> Branch main deploys to env pre/);
      const sha12 = (await git(repo, ['rev-parse', 'HEAD'])).out.trim().slice(0, 12);
      assert.deepEqual(((await (await setup.registryFetch(`/v2/${app}/web/tags/list`)).json()) as { tags: string[] }).tags, [sha12]);
      const head = await setup.registryFetch(`/v2/${app}/web/manifests/${sha12}`, { method: 'HEAD', headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
      const digest = head.headers.get('docker-content-digest');
      const rel = ((await h.api('GET', `/v1/apps/${app}/releases?env=pre`)).json.releases as Rel[]).find((x) => x.current)!;
      assert.equal(rel.image, `127.0.0.1:${h.registryPort}/${app}/web@${digest}`);
      assert.equal((await h.api('GET', `/v1/apps/${app}/releases?env=prod`)).json.releases?.length ?? 0, 0, 'nothing in prod');
      const body = await new Promise<string>((resolve, reject) => {
        request({ host: '127.0.0.1', port: h.ingressPort, path: '/api/whoami', headers: { host: 'pre.regpre.test' }, agent: false }, (res) => {
          let b = '';
          res.on('data', (c: Buffer) => (b += c.toString()));
          res.on('end', () => (res.statusCode === 200 ? resolve(b) : reject(new Error(`HTTP ${res.statusCode}: ${b}`))));
        }).on('error', reject).end();
      });
      assert.equal(JSON.parse(body).version, 'pre-v1');
    } finally {
      await rm(repo, { recursive: true, force: true });
    }
  });
});
