/**
 * `berth rm` and `berth rm --purge`, end to end on a real server, Docker, git and registry: an app
 * pushed with git (builds, images in Berth's registry, a volume), configured (a value and a secret);
 * a plain `rm` stops it and lists what it keeps (the secret is still revealable); a purge is guarded
 * while it waits for the containers (deploy, config, git push refused with 409; asking again is the
 * same purge), then removes everything: secrets, config and its history, builds, the repository and
 * webhook source, registry images, the volume, logs, releases — a new push starts at release 1 — and
 * no Compose environment value is left in any file of the data directory.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { git, pushSetup, type PushSetup } from './helpers/git.ts';
import { docker, type Harness } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const APP = 'gone';
const MARKER = `compose-env-${randomBytes(6).toString('hex')}`;
const SECRET = `secret-${randomBytes(6).toString('hex')}`;

/**
 * web: the example app with a volume; worker: ignores SIGTERM, so stopping it takes its whole grace period —
 * `workerGrace` s: 6 where the purge's wait for it is the window the test writes in, 1 elsewhere (each stop of
 * the worker, in a config rollout or a plain rm, costs that long).
 */
function compose(version: string, workerGrace = 1): string {
  return `name: ${APP}
services:
  web:
    build: .
    environment:
      APP_VERSION: ${version}
      PURGE_MARKER: ${MARKER}
    volumes:
      - data:/data
    stop_grace_period: 1s
    x-berth:
      port: 3000
      health:
        http: /healthz
  worker:
    image: berth/busybox:latest
    command: ["sh", "-c", "trap '' TERM; echo worker up; while true; do sleep 1; done"]
    stop_grace_period: ${workerGrace}s
volumes:
  data: {}
`;
}

describe('rm and rm --purge', () => {
  let setup: PushSetup;
  let h: Harness;
  let work: string;
  before(async () => {
    // DNS for containers on: each container gets DATA/dns/resolv-APP.ENV.conf, which the purge must remove too.
    setup = await pushSetup({ portRange: '18600-18699', prefix: 'berth-purge-', compose: compose('v1'),
      // No periodic registry collection: its first run (60 s after start) could land inside the purge and take the
      // app's images before the purge's own step does, which then (rightly) reports none.
      env: { BERTH_DNS_CONTAINER_ADDRESS: `127.0.${Math.floor(Math.random() * 200) + 20}.54`, BERTH_REGISTRY_GC_INTERVAL_MS: '0' } });
    ({ h, work } = setup);
  });
  after(async () => {
    await setup.cleanup();
    await docker('volume', 'rm', `berth_${APP}_prod_data`).catch(() => undefined);
    const refs = (await docker('image', 'ls', '--format', '{{.Repository}}:{{.Tag}}').catch(() => ''))
      .split('\n').filter((r) => r.startsWith(`berth/${APP}/`) || r.startsWith(`127.0.0.1:${h.registryPort}/${APP}/`));
    if (refs.length) await docker('rmi', ...refs).catch(() => undefined);
  });

  const push = async (version: string, workerGrace?: number) => {
    await writeFile(join(work, 'compose.yaml'), compose(version, workerGrace));
    await git(work, ['commit', '-qam', version]);
    return git(work, ['push', setup.remote(APP), 'HEAD:main']);
  };
  const releases = async () => ((await h.api('GET', `/v1/apps/${APP}/releases`)).json?.releases ?? []) as { service: string; seq: number }[];
  const registryTags = async () => {
    const r = await setup.registryFetch(`/v2/${APP}/web/tags/list`);
    const body = await r.text();
    if (r.status === 404) return [];
    assert.equal(r.status, 200, body);
    return (JSON.parse(body) as { tags: string[] | null }).tags ?? [];
  };
  const exists = async (p: string) => (await stat(p).catch(() => undefined)) !== undefined;
  const volumeExists = async () => docker('volume', 'inspect', `berth_${APP}_prod_data`).then(() => true, () => false);

  test('plain rm stops the app and says what it keeps; the secret is still there', async () => {
    const p = await push('v1');
    assert.equal(p.code, 0, p.out);
    assert.equal((await h.cli(['config', 'set', APP, 'GREETING=hello'])).code, 0);
    const sec = await h.cli(['secret', 'set', APP, 'API_KEY', SECRET, '--value-from-argv']);
    assert.equal(sec.code, 0, sec.stderr);
    await waitFor(async () => (await h.status(APP)).services?.every((s: { release: { seq: number; status: string } }) =>
      s.release.seq >= 2 && s.release.status === 'healthy'), { timeoutMs: 90_000, what: 'the configured release healthy' });
    assert.ok((await registryTags()).length > 0, 'the image is in the registry');
    assert.ok(await volumeExists());

    const rm = await h.cli(['rm', APP]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(rm.stdout, /^removing gone: (prod\/web, prod\/worker|prod\/worker, prod\/web)$/m);
    for (const kept of [/config \(prod\)\s+1 value, 1 secret; 2 versions of history/, /builds\s+1 build record/, /git\s+the repository/,
      /images\s+1 image in Berth's registry/, /volumes\s+berth_gone_prod_data/, /releases\s+6 releases \(the next deploy continues their numbering\)/, /remove all of it with: berth rm gone --purge/]) {
      assert.match(rm.stdout, kept);
    }
    await waitFor(async () => (await h.containers(APP)).length === 0, { timeoutMs: 30_000, what: 'the containers to go' });
    const reveal = await h.cli(['secret', 'get', APP, 'API_KEY', '--reveal']);
    assert.equal(reveal.code, 0, reveal.stderr);
    assert.match(reveal.stdout, new RegExp(SECRET));
    // Asked again: nothing runs, the same remains, as JSON too.
    const again = await h.cli(['--json', 'rm', APP]);
    assert.equal(again.code, 0, again.stderr);
    const doc = JSON.parse(again.stdout) as { removed: string[]; remains: { releases: number; builds: number; repository: boolean; config: unknown[] } };
    assert.deepEqual(doc.removed, []);
    assert.equal(doc.remains.releases, 6, '2 services × (push, config set, secret set)');
    assert.equal(doc.remains.builds, 1);
    assert.equal(doc.remains.repository, true);
  });

  test('rm --purge: nothing writes to the app while it runs, then everything is gone and a new push starts at release 1', async () => {
    const p = await push('v2', 6);
    assert.equal(p.code, 0, p.out);
    await waitFor(async () => (await h.containers(APP)).filter((c) => c.running).length === 2, { timeoutMs: 60_000, what: 'both services running' });

    const resolvFiles = async () => (await readdir(join(h.dataDir, 'dns')).catch(() => [] as string[])).filter((f) => f.startsWith(`resolv-${APP}.`));
    assert.deepEqual(await resolvFiles(), [`resolv-${APP}.prod.conf`], 'the containers resolve through Berth');

    const asked = await h.api('DELETE', `/v1/apps/${APP}?purge=true`);
    assert.equal(asked.status, 202, JSON.stringify(asked.json));
    assert.equal(asked.json.purge.state, 'purging');
    // The worker ignores SIGTERM: for ~6 s the purge waits for its container. Nothing may write meanwhile.
    // The three writes go at once: one after another they took longer than the window on a loaded machine.
    const [deploy, config, pushed] = await Promise.all([
      h.api('POST', `/v1/apps/${APP}/deployments`, { env: 'prod', spec: { name: APP, services: {} } }),
      h.cli(['config', 'set', APP, 'GREETING=again']),
      push('v3', 6),
    ]);
    const state = (await h.api('GET', `/v1/apps/${APP}/purge`)).json.purge.state;
    assert.equal(state, 'purging', 'the checks above ran while the purge waited');
    assert.equal(deploy.status, 409);
    assert.match(deploy.json.error.message, /being purged/);
    assert.equal(config.code, 4, config.stderr);
    assert.notEqual(pushed.code, 0, pushed.out);
    assert.match(pushed.out, /409/);

    const rm = await h.cli(['rm', APP, '--purge'], { timeoutMs: 180_000 });
    assert.equal(rm.code, 0, rm.stderr + rm.stdout);
    assert.match(rm.stdout, /^purged gone:/m);
    for (const what of [/builds\s+2 build\(s\)/, /git\s+git gone\.git, gone\.source\.json|git\s+git gone\.git/, /configuration\s+configuration: 1 value\(s\), 1 secret\(s\)/,
      /volumes\s+volume\(s\) berth_gone_prod_data/, /releases\s+\d+ release\(s\)/, /images\s+\d+ image\(s\) in the registry/, /events\s+\d+ event\(s\)/]) {
      assert.match(rm.stdout, what);
    }

    // Every way of asking about the app: it does not exist.
    for (const args of [['secret', 'get', APP, 'API_KEY', '--reveal'], ['config', 'ls', APP], ['builds', APP], ['releases', APP], ['logs', APP]]) {
      const r = await h.cli(args);
      assert.equal(r.code, 3, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    }
    const images = await h.cli(['--json', 'images', APP]);
    assert.ok(images.code === 3 || (images.code === 0 && (JSON.parse(images.stdout) as unknown[]).length === 0), images.stdout + images.stderr);
    assert.deepEqual(await registryTags(), []);
    assert.equal(await exists(join(h.dataDir, 'git', `${APP}.git`)), false);
    assert.deepEqual(await resolvFiles(), [], 'the containers\' resolv.conf files go with the app');
    assert.equal(await volumeExists(), false);
    assert.deepEqual((await h.api('GET', '/v1/builds')).json.builds.filter((b: { app: string }) => b.app === APP), []);
    const ev = (await h.api('GET', '/v1/events?limit=1000')).json.events as { app: string; kind: string; message: string }[];
    assert.deepEqual(ev.filter((e) => e.app === APP), []);
    assert.ok(ev.some((e) => e.kind === 'app.purged' && e.message.startsWith(`app ${APP} purged:`)));

    // No file of the data directory still holds a value of the app's Compose environment (the
    // registry's blobs aside: they hold image layers, and go with the next blob collection).
    const hits: string[] = [];
    for (const e of await readdir(h.dataDir, { recursive: true, withFileTypes: true })) {
      const p = join(e.parentPath, e.name);
      if (!e.isFile() || p.startsWith(join(h.dataDir, 'registry'))) continue;
      if ((await readFile(p).catch(() => Buffer.alloc(0))).includes(MARKER)) hits.push(p);
    }
    assert.deepEqual(hits, []);

    // The name is free again: a push starts a new app at release 1.
    await writeFile(join(work, 'compose.yaml'), compose('v4'));
    await git(work, ['commit', '-qam', 'v4']);
    const fresh = await git(work, ['push', '--force', setup.remote(APP), 'HEAD:main']);
    assert.equal(fresh.code, 0, fresh.out);
    assert.deepEqual((await releases()).map((r) => r.seq), [1, 1]);
    assert.equal((await h.cli(['config', 'ls', APP])).code, 0);
    assert.doesNotMatch((await h.cli(['config', 'ls', APP])).stdout, /GREETING|API_KEY/);
    assert.equal((await h.cli(['rm', APP, '--purge'], { timeoutMs: 180_000 })).code, 0);
  });
});
