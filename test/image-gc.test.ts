/**
 * Registry garbage collection, end to end: a real `berth server` with its managed `docker-registry`
 * and BERTH_REGISTRY_KEEP=2. The same app is pushed five times; after each build the app's images
 * the rule lets go are deleted (checked through the registry's own HTTP API) with their local engine
 * tags; `berth images` shows which image is kept and why; a dry run deletes nothing; `berth images
 * gc` frees the blobs with the registry stopped while the current release keeps serving through the
 * ingress. A push after the collection still works (the registry came back and accepts layers it had
 * freed); an image a container uses keeps its local tags.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { git, helloCompose, pushSetup, type PushSetup } from './helpers/git.ts';
import { docker, get, type Harness } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { formatImageSize } from '../src/core/image-checks.ts';

const APP = 'gcapp';
const MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

function compose(version: string): string {
  return helloCompose(APP, version, { stopGrace: '1s' });
}

interface Pushed { version: string; sha12: string; digest: string }
interface Image {
  repo: string; digest: string; tags: string[]; keep: boolean; reasons: string[]; usedBy: { env: string; seq: number; current: boolean }[]; sizeBytes?: number; compressedBytes?: number;
}

describe('registry garbage collection', () => {
  let h: Harness;
  let work: string;
  let setup: PushSetup;
  const pushed: Pushed[] = [];

  before(async () => {
    // No periodic collection: its first run (60 s after start) collects the blobs itself when the
    // five pushes take longer than that (a loaded CI machine), and `berth images gc` then finds
    // nothing pending (the final check of 2026-12-01 saw `blobs.collected: false`).
    setup = await pushSetup({ portRange: '10800-10899', prefix: 'berth-gc-', compose: compose('v1'),
      env: { BERTH_REGISTRY_KEEP: '2', BERTH_REGISTRY_GC_INTERVAL_MS: '0' } });
    ({ h, work } = setup);
  });
  after(async () => {
    await setup.cleanup();
    // The engine's images of this app, once its containers are gone (other tests' images are not ours).
    const refs = (await docker('image', 'ls', '--format', '{{.Repository}}:{{.Tag}}').catch(() => ''))
      .split('\n').filter((r) => r.startsWith(`berth/${APP}/`) || r.startsWith(`127.0.0.1:${h.registryPort}/${APP}/`));
    if (refs.length) await docker('rmi', ...refs).catch(() => undefined);
  });

  const remote = () => setup.remote(APP);
  const whoami = async () => JSON.parse((await get(h.ingressPort, '/api/whoami')).body) as { version: string };
  const tags = async () => (((await (await setup.registryFetch(`/v2/${APP}/web/tags/list`)).json()) as { tags: string[] | null }).tags ?? []).sort();
  const head = async (ref: string) => (await setup.registryFetch(`/v2/${APP}/web/manifests/${ref}`, { method: 'HEAD', headers: { accept: MANIFEST } })).status;
  const localImage = async (ref: string) => docker('image', 'inspect', '--format', '{{.Id}}', ref).then(() => true, () => false);
  const currentImage = async (): Promise<string> => {
    const rels = (await h.api('GET', `/v1/apps/${APP}/releases?env=prod`)).json.releases as { image: string; current: boolean }[];
    return rels.find((r) => r.current)!.image;
  };

  async function push(version: string): Promise<Pushed> {
    await writeFile(join(work, 'compose.yaml'), compose(version));
    assert.equal((await git(work, ['commit', '-qam', version])).code, 0);
    const r = await git(work, ['push', remote(), 'main']);
    assert.equal(r.code, 0, r.out);
    const sha12 = (await git(work, ['rev-parse', 'HEAD'])).out.trim().slice(0, 12);
    const image = await currentImage();
    const digest = /@(sha256:[0-9a-f]{64})$/.exec(image)?.[1];
    assert.ok(digest, `prod runs ${image} by digest`);
    return { version, sha12, digest };
  }

  test('five pushes: after each build the rule runs for the app; berth images shows what is kept and why', async () => {
    // The first commit of the repo is v1 already: push it, then four more.
    const first = await git(work, ['push', remote(), 'main']);
    assert.equal(first.code, 0, first.out);
    pushed.push({ version: 'v1', sha12: (await git(work, ['rev-parse', 'HEAD'])).out.trim().slice(0, 12), digest: /@(sha256:[0-9a-f]{64})$/.exec(await currentImage())![1]! });
    for (const v of ['v2', 'v3', 'v4', 'v5']) pushed.push(await push(v));
    assert.equal(new Set(pushed.map((p) => p.digest)).size, 5, 'five distinct images');
    // keep 2: the current (running) release + the last 2 releases, then the 2 newest others. After
    // the fifth build, v1 is none of those: the collection that follows every build deletes it —
    // through the registry's API, and its local tags on the engine.
    const v1 = pushed[0]!;
    await waitFor(async () => (await tags()).join() === pushed.slice(1).map((p) => p.sha12).sort().join(), { timeoutMs: 30_000, what: 'v1 deleted after the fifth build' });
    assert.equal(await head(v1.digest), 404);
    for (const p of pushed.slice(1)) assert.equal(await head(p.digest), 200, `${p.version} kept`);
    for (const ref of [`berth/${APP}/web:${v1.sha12}`, `127.0.0.1:${h.registryPort}/${APP}/web:${v1.sha12}`]) {
      await waitFor(async () => !(await localImage(ref)), { timeoutMs: 10_000, what: `${ref} removed from the engine` });
    }
    for (const p of pushed.slice(1)) assert.ok(await localImage(`berth/${APP}/web:${p.sha12}`), `${p.version} still local`);
    // The event is recorded once the collection (local tags included) has ended.
    let events: { kind: string; message: string }[] = [];
    await waitFor(async () => {
      events = (await h.api('GET', `/v1/events?app=${APP}`)).json.events as { kind: string; message: string }[];
      return events.some((e) => e.kind === 'registry.gc' && e.message.includes(`web:${v1.sha12}`));
    }, { timeoutMs: 10_000, what: 'a registry.gc event naming v1' }).catch((err: Error) => assert.fail(`${err.message}: ${JSON.stringify(events.slice(-5))}`));

    const r = await h.cli(['images', APP, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const images = JSON.parse(r.stdout) as Image[];
    const byDigest = new Map(images.map((i) => [i.digest, i]));
    const verdict = pushed.slice(1).map((p) => [p.version, byDigest.get(p.digest)!.keep ? byDigest.get(p.digest)!.reasons.join('+') : 'delete']);
    assert.deepEqual(verdict, [['v2', 'recent'], ['v3', 'recent'], ['v4', 'rollback'], ['v5', 'current+running+rollback']]);
    assert.equal(byDigest.has(v1.digest), false);
    const v5 = byDigest.get(pushed[4]!.digest)!;
    assert.deepEqual(v5.usedBy.map((u) => [u.env, u.seq, u.current]), [['prod', 5, true]]);
    assert.deepEqual(v5.tags, [pushed[4]!.sha12]);
    // One measure of size: the registry reports the unpacked image, as the engine and the push's
    // image checks do (not the compressed bytes it stores, which the JSON gives apart).
    const engineSize = Number(await docker('image', 'inspect', '--format', '{{.Size}}', `berth/${APP}/web:${pushed[4]!.sha12}`));
    assert.equal(v5.sizeBytes, engineSize, 'berth images size = the engine\'s size of the image');
    assert.ok((v5.compressedBytes ?? 0) > 0 && v5.compressedBytes! < engineSize, `compressed ${v5.compressedBytes} < unpacked ${engineSize}`);
    const builds = (await h.api('GET', `/v1/builds?app=${APP}`)).json.builds as { commit: string; checks?: Record<string, { id: string; message: string }[]> }[];
    const sizeCheck = builds.find((b) => b.commit.startsWith(pushed[4]!.sha12))?.checks?.web?.find((c) => c.id === 'size')?.message ?? '';
    const shown = formatImageSize(engineSize);
    assert.ok(sizeCheck.startsWith(`image size ${shown} (previous build `), `checks report: ${sizeCheck}, want ${shown}`);

    const table = await h.cli(['images']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /IMAGE\s+TAG\s+DIGEST\s+SIZE\s+PUSHED\s+USED BY\s+KEEP/);
    assert.match(table.stdout, new RegExp(`${APP}/web\\s+${pushed[4]!.sha12}\\s+${pushed[4]!.digest.slice(7, 19)}\\s+${shown.replace('.', '\\.')}\\s.*prod#5\\*\\s+current,running,rollback`));
  });

  test('a dry run deletes nothing', async () => {
    const [r, human] = await Promise.all([h.cli(['images', 'gc', '--dry-run', '--json']), h.cli(['images', 'gc', '--dry-run', '--keep', '1'])]);
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as { dryRun: boolean; deleted: Image[]; kept: Image[]; blobs: { collected: boolean } };
    assert.equal(rep.dryRun, true);
    assert.deepEqual(rep.deleted, [], 'the builds\' own collections left nothing to delete at keep 2');
    assert.equal(rep.blobs.collected, false);
    assert.equal(human.code, 0, human.stderr);
    // keep 1: v5 (current, last release) and v4 (newest other) stay; v2 and v3 would go.
    assert.match(human.stdout, /would delete 2 image\(s\), kept 2 \(keep 1\)/);
    assert.match(human.stdout, new RegExp(`${APP}/web\\s+${pushed[1]!.sha12}\\s.*would delete`));
    assert.deepEqual(await tags(), pushed.slice(1).map((p) => p.sha12).sort());
    for (const p of pushed.slice(1)) assert.equal(await head(p.digest), 200, `${p.version} still in the registry`);
  });

  test('berth images gc frees the deleted images\' blobs with the registry stopped, and the app keeps serving', async () => {
    const before = await whoami();
    assert.equal(before.version, 'v5');
    // The ingress keeps serving while the registry is stopped for the blob collection.
    let done = false;
    const failures: string[] = [];
    let served = 0;
    const poll = (async () => {
      while (!done) {
        const res = await get(h.ingressPort, '/api/whoami').catch((e: Error) => ({ status: 0, body: e.message }));
        if (res.status === 200) served++;
        else failures.push(`${res.status} ${res.body.slice(0, 80)}`);
        await new Promise((ok) => setTimeout(ok, 20));
      }
    })();
    const r = await h.cli(['images', 'gc', '--json']);
    done = true;
    await poll;
    assert.deepEqual(failures, []);
    assert.ok(served > 0);
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as { dryRun: boolean; deleted: Image[]; kept: Image[]; localRemoved: string[]; blobs: { collected: boolean; reclaimedBytes: number }; errors: string[] };
    assert.deepEqual(rep.errors, []);
    assert.deepEqual(rep.deleted, []);
    assert.equal(rep.kept.length, 4);
    assert.equal(rep.blobs.collected, true, 'blobs of v1 collected (registry stopped and started again)');
    assert.ok(rep.blobs.reclaimedBytes > 0, `reclaimed ${rep.blobs.reclaimedBytes} bytes`);
    assert.deepEqual(await tags(), pushed.slice(1).map((p) => p.sha12).sort());
    assert.equal(await currentImage(), `127.0.0.1:${h.registryPort}/${APP}/web@${pushed[4]!.digest}`);
    assert.equal((await whoami()).version, 'v5');

    // The deletion windows are over: deletes are refused again, even with Berth's credentials.
    const del = await setup.registryFetch(`/v2/${APP}/web/manifests/${pushed[1]!.digest}`, { method: 'DELETE' });
    assert.equal(del.status, 405, 'deletes are off outside garbage collection');
    assert.equal(await head(pushed[1]!.digest), 200);

    // A second collection has nothing to do.
    const again = JSON.parse((await h.cli(['images', 'gc', '--json'])).stdout) as { deleted: Image[]; blobs: { collected: boolean } };
    assert.deepEqual(again.deleted, []);
    assert.equal(again.blobs.collected, false);
  });

  test('a push after the collection works; an image a container uses loses its manifest but stays on the engine', async () => {
    // keep 2 after v6: v6 current, v5 rollback, v4 and v3 newest others: v2 goes with v6's build.
    const v2 = pushed[1]!;
    const holder = `berth-gc-test-hold-${process.pid}`;
    await docker('create', '--name', holder, `berth/${APP}/web:${v2.sha12}`);
    try {
      const p = await push('v6');
      assert.equal(await head(p.digest), 200);
      assert.equal((await whoami()).version, 'v6');
      await waitFor(async () => (await head(v2.digest)) === 404, { timeoutMs: 30_000, what: 'v2 deleted after the sixth build' });
      assert.ok(await localImage(`berth/${APP}/web:${v2.sha12}`), 'still on the engine while a container uses it');
      assert.ok(await localImage(`127.0.0.1:${h.registryPort}/${APP}/web:${v2.sha12}`));
    } finally {
      await docker('rm', '-f', holder).catch(() => undefined);
    }
  });

  test('bad input and unknown apps get clear errors and exit codes', async () => {
    const [keep0, api, none] = await Promise.all([h.cli(['images', 'gc', '--keep', '0']), h.api('POST', '/v1/images/gc', { keep: 0 }), h.cli(['images', 'nosuchapp'])]);
    assert.equal(keep0.code, 2, keep0.stderr);
    assert.match(keep0.stderr, /--keep "0" must be a whole number of at least 1/);
    assert.equal(api.status, 400);
    assert.equal(none.code, 3, none.stderr);
    assert.match(none.stderr, /no app "nosuchapp"/);
  });

  test('a removed app keeps no images: once its containers are gone, images gc collects its last one too', async () => {
    const before = JSON.parse((await h.cli(['images', 'gc', '--dry-run', '--json'])).stdout) as { kept: Image[] };
    const mine = before.kept.filter((i) => i.repo === `${APP}/web`);
    assert.ok(mine.length >= 2, `images of ${APP} before rm: ${mine.length}`);
    const rm = await h.cli(['rm', APP]);
    assert.equal(rm.code, 0, rm.stderr);
    await waitFor(async () => (await h.containers(APP)).length === 0, { timeoutMs: 60_000, what: `${APP}'s containers removed` });
    const r = await h.cli(['images', 'gc', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as { deleted: Image[]; kept: Image[]; localRemoved: string[]; errors: string[] };
    assert.deepEqual(rep.errors, []);
    assert.deepEqual(rep.kept.filter((i) => i.repo === `${APP}/web`).map((i) => `${i.tags.join()} ${i.reasons.join('+')}`), [], 'nothing of a removed app is kept');
    assert.deepEqual(rep.deleted.map((i) => i.digest).sort(), mine.map((i) => i.digest).sort());
    assert.deepEqual(await tags(), []);
    for (const i of mine) {
      assert.equal(await head(i.digest), 404, `${i.tags.join()} deleted from the registry`);
      for (const t of i.tags) assert.equal(await localImage(`berth/${APP}/web:${t}`), false, `berth/${APP}/web:${t} removed from the engine`);
    }
  });
});
