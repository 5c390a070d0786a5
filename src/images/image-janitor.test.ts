import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoredManifest } from '../core/image-retention.ts';
import type { ServiceSpec } from '../core/spec/types.ts';
import { FakeEngine } from '../engine/fake/index.ts';
import { silentLogger } from '../lib/logger.ts';
import { SqliteStore } from '../store/index.ts';
import { ImageJanitor, type JanitorRegistry } from './image-janitor.ts';

const HOST = '127.0.0.1:5999';
const T0 = 1_700_000_000_000;

/** An in-memory registry: manifests per repo; blob collection only counts its runs. */
class FakeRegistry implements JanitorRegistry {
  readonly host = HOST;
  readonly manifests = new Map<string, StoredManifest[]>();
  collections = 0;
  failing = false;
  bytes = 1000;
  async catalog() {
    if (this.failing) throw new Error('registry down');
    return [...this.manifests.keys()];
  }
  async inventory(repo: string) {
    return structuredClone(this.manifests.get(repo) ?? []);
  }
  /** Deletion windows opened, and whether one is open (the real registry refuses deletes outside one). */
  windows = 0;
  private open = false;
  /** Runs inside the next window before the janitor plans again there (e.g. a push that raced the first plan). */
  beforeReplan: (() => void) | undefined;
  async withDeletes<T>(fn: () => Promise<T>): Promise<T> {
    this.windows++;
    this.open = true;
    this.beforeReplan?.();
    this.beforeReplan = undefined;
    try {
      return await fn();
    } finally {
      this.open = false;
    }
  }
  async deleteManifest(repo: string, digest: string) {
    if (!this.open) throw new Error('405: deletes are disabled outside a deletion window');
    const list = this.manifests.get(repo) ?? [];
    this.manifests.set(repo, list.filter((m) => m.digest !== digest));
    return list.some((m) => m.digest === digest);
  }
  async garbageCollect() {
    this.collections++;
    this.bytes -= 100;
    return '';
  }
  async storageBytes() {
    return this.bytes;
  }
  digests(repo = 'shop/web'): string[] {
    return (this.manifests.get(repo) ?? []).map((m) => m.digest);
  }
}

function svc(): ServiceSpec {
  return {
    name: 'web', image: 'x', environment: {}, ports: [], health: { type: 'none' }, replicas: 1, limits: {},
    restart: { condition: 'any', delayMs: 1000 }, labels: {}, stopSignal: 'SIGTERM', stopGracePeriodMs: 10_000, volumes: [],
    dependsOn: [], routes: [],
  };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Builds and "pushes" n images of shop/web as the pipeline does (local tag, registry tag, by digest). */
async function setup(n: number, keep = 1) {
  const dir = mkdtempSync(join(tmpdir(), 'berth-janitor-'));
  dirs.push(dir);
  const clock = { t: T0, now() { return this.t; } };
  const store = new SqliteStore(join(dir, 'berth.db'), clock);
  const engine = new FakeEngine({ clock });
  const registry = new FakeRegistry();
  const refs: string[] = [];
  for (let i = 1; i <= n; i++) {
    await engine.build({ tag: `berth/shop/web:c${i}` });
    await engine.tag(`berth/shop/web:c${i}`, `${HOST}/shop/web`, `c${i}`);
    const { digest } = await engine.push(`${HOST}/shop/web:c${i}`);
    refs.push(`${HOST}/shop/web@${digest}`);
    registry.manifests.set('shop/web', [...(registry.manifests.get('shop/web') ?? []), { repo: 'shop/web', digest, tags: [`c${i}`], createdAt: T0 + i * 1000 }]);
  }
  let inFlight: string[] = [];
  const janitor = new ImageJanitor({
    registry, engine, store, clock, logger: silentLogger, keep, intervalMs: 0, statePath: join(dir, 'gc-state.json'), inFlightImages: () => inFlight,
  });
  /** Release `seq` of shop/prod/web runs image i (1-based) and becomes current. */
  const release = async (seq: number, i: number) => {
    const id = `r${seq}`;
    store.putService(
      { app: 'shop', env: 'prod', name: 'web', replicas: 1, releaseId: id, failures: 0, nextStartAt: 0, updatedAt: clock.now() },
      {
        id, app: 'shop', env: 'prod', service: 'web', seq, spec: svc(), specHash: `h${seq}`, image: refs[i - 1]!,
        imageId: (await engine.imageId(refs[i - 1]!))!, status: 'healthy', message: '', createdAt: clock.now(), createdBy: 't',
      },
    );
  };
  const events = () => store.listEvents({}).filter((e) => e.kind === 'registry.gc').map((e) => e.message);
  return { dir, store, engine, registry, janitor, refs, release, events, setInFlight: (r: string[]) => void (inFlight = r) };
}

test('afterBuild deletes what the rule lets go, with the local tags; blobs wait for a collection', async () => {
  const h = await setup(4);
  await h.release(1, 4);
  const [, , d3, d4] = h.refs.map((r) => r.split('@')[1]!);
  await h.janitor.afterBuild('shop');
  // keep 1: the current release (image 4) and the newest other (image 3).
  assert.deepEqual(h.registry.digests(), [d3, d4]);
  for (const ref of [`berth/shop/web:c1`, `${HOST}/shop/web:c1`, h.refs[0]!, `berth/shop/web:c2`, h.refs[1]!]) {
    assert.equal(await h.engine.imageId(ref), undefined, `${ref} removed`);
  }
  assert.ok(await h.engine.imageId('berth/shop/web:c3'));
  assert.ok(await h.engine.imageId(h.refs[3]!));
  assert.equal(h.registry.collections, 0, 'no blob collection after a build');
  assert.equal(h.registry.windows, 1, 'one deletion window for the pass');
  assert.match(h.events().join('\n'), /deleted 2 images no release needs \(keep 1\): web:c2, web:c1/);
  assert.equal(JSON.parse(readFileSync(join(h.dir, 'gc-state.json'), 'utf8')).pending, true);

  const r = await h.janitor.collect();
  assert.equal(r.deleted.length, 0);
  assert.deepEqual(r.blobs, { collected: true, reclaimedBytes: 100 });
  assert.equal(h.registry.collections, 1);
  // Nothing deleted since: the next collection leaves blobs alone.
  assert.equal((await h.janitor.collect()).blobs.collected, false);
  assert.equal(h.registry.collections, 1);
});

test('a dry run changes nothing and reports what would go; list shows reasons and users', async () => {
  const h = await setup(4);
  await h.release(1, 2);
  await h.release(2, 4);
  const dry = await h.janitor.collect({ dryRun: true });
  assert.equal(dry.dryRun, true);
  assert.deepEqual(dry.deleted.map((d) => d.tags[0]), ['c2', 'c1']);
  assert.equal(h.registry.digests().length, 4);
  assert.equal(h.engine.calls.filter((c) => c.startsWith('rmi')).length, 0);
  assert.equal(h.registry.collections, 0);
  assert.equal(h.registry.windows, 0, 'a dry run opens no deletion window');

  const list = await h.janitor.list('shop');
  assert.deepEqual(list.images.map((i) => [i.tags[0], i.reasons.join('+') || '-']), [['c4', 'current+rollback'], ['c3', 'recent'], ['c2', '-'], ['c1', '-']]);
  assert.deepEqual(list.images[0]!.usedBy.map((u) => [u.env, u.seq, u.current]), [['prod', 2, true]]);
  assert.equal(list.images[0]!.app, 'shop');
  // keep 2 would also keep release 1's image as rollback material.
  const dry2 = await h.janitor.collect({ dryRun: true, keep: 2 });
  assert.deepEqual(dry2.deleted.map((d) => d.tags[0]), []);
  await assert.rejects(h.janitor.list('nope'), /no app "nope"/);
  await assert.rejects(h.janitor.collect({ keep: 0 }), /at least 1/);
});

test('images of unfinished builds and images a container uses are never removed', async () => {
  const h = await setup(4);
  await h.release(1, 4);
  h.setInFlight([h.refs[0]!]);
  // A container of another installation runs image 2 by its id.
  await h.engine.create({ name: 'other', image: (await h.engine.imageId(h.refs[1]!))!, labels: {}, env: {}, mounts: [] });
  const r = await h.janitor.collect();
  assert.deepEqual(r.deleted.map((d) => d.tags[0]), ['c2']);
  assert.deepEqual(r.kept.map((d) => [d.tags[0], d.reasons.join('+')]), [['c4', 'current+rollback'], ['c3', 'recent'], ['c1', 'in-flight']]);
  // Manifest 2 is gone from the registry, but its local image stays while the container uses it.
  assert.ok(await h.engine.imageId('berth/shop/web:c2'));
  assert.ok(await h.engine.imageId(h.refs[1]!));
  assert.deepEqual(r.localRemoved, []);
});

test('errors never escape afterBuild: they are logged and recorded as registry.gc events', async () => {
  const h = await setup(2);
  h.registry.failing = true;
  await h.janitor.afterBuild('shop');
  assert.match(h.events().join('\n'), /garbage collection failed after a build: registry down/);
  await assert.rejects(h.janitor.collect(), /registry down/);
  await h.janitor.runPeriodic();
  assert.match(h.events().join('\n'), /failed in the periodic collection/);
  h.registry.failing = false;
  await h.janitor.afterBuild('shop');
});

test('nothing to delete opens no deletion window; inside the window the plan is made again', async () => {
  const h = await setup(3, 2);
  await h.release(1, 3);
  await h.janitor.afterBuild('shop');
  assert.equal(h.registry.windows, 0, 'keep 2 keeps all three: the registry is not restarted');
  // keep 1 would delete image 1; while the window opens, a deployment starts to run image 1 again
  // (e.g. a rollback): the plan made inside the window keeps it.
  const [d1] = h.refs.map((r) => r.split('@')[1]!);
  h.registry.beforeReplan = () => h.setInFlight([h.refs[0]!]);
  const r = await h.janitor.collect({ keep: 1 });
  assert.equal(h.registry.windows, 1);
  assert.deepEqual(r.deleted.map((d) => d.tags[0]), []);
  assert.ok(h.registry.digests().includes(d1!));
  assert.deepEqual(r.kept.find((d) => d.digest === d1)?.reasons, ['in-flight']);
});
