import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkKeep, imageView, parseDigestRef, planRetention, type RetentionInput, type RetentionRelease, type StoredManifest } from './image-retention.ts';

const HOST = '127.0.0.1:5000';
/** A readable fake digest: `d(3)` → sha256:000…03. */
const d = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const ref = (repo: string, n: number, host = HOST) => `${host}/${repo}@${d(n)}`;
/** Manifest n of a repo, built at time n (newer = larger). */
const man = (repo: string, n: number, tags: string[] = [`t${n}`]): StoredManifest => ({ repo, digest: d(n), tags, createdAt: n * 1000 });
const rel = (id: string, env: string, seq: number, n: number, o: Partial<RetentionRelease> = {}): RetentionRelease =>
  ({ id, app: 'shop', env, service: 'web', seq, image: ref('shop/web', n), imageId: `sha256:id${n}`, ...o });

/** Services deployed (in prod) for every repository the tests use, unless a test gives its own. */
const DEPLOYED = ['shop/web', 'shop/worker', 'blog/web'].map((r) => ({ app: r.split('/')[0]!, env: 'prod', service: r.split('/')[1]!, releaseId: 'none' }));

function plan(o: Partial<RetentionInput> & { manifests: StoredManifest[] }) {
  return planRetention({ registryHost: HOST, keep: 2, releases: [], services: DEPLOYED, runningReleaseIds: [], ...o });
}
/** digest number → reasons ('-' when deleted), for compact table assertions. */
function table(p: ReturnType<typeof plan>): Record<number, string> {
  return Object.fromEntries(p.decisions.map((x) => [parseInt(x.digest.slice(7), 16), x.keep ? x.reasons.join('+') : '-']));
}

test('no releases: only the keep newest per repository stay', () => {
  const p = plan({ manifests: [1, 2, 3, 4, 5].map((n) => man('shop/web', n)) });
  assert.deepEqual(table(p), { 5: 'recent', 4: 'recent', 3: '-', 2: '-', 1: '-' });
  // Newest first in the output.
  assert.deepEqual(p.decisions.map((x) => x.digest), [5, 4, 3, 2, 1].map(d));
});

test('newest goes by push time when known (a cached build may carry an older build time), else build time', () => {
  const ms = [
    { ...man('shop/web', 1), createdAt: 5000, pushedAt: 1000 },
    { ...man('shop/web', 2), createdAt: 5000, pushedAt: 2000 },
    { ...man('shop/web', 3), createdAt: 5000, pushedAt: 3000 },
  ];
  assert.deepEqual(table(plan({ manifests: ms })), { 3: 'recent', 2: 'recent', 1: '-' });
  assert.deepEqual(table(plan({ manifests: [{ ...man('shop/web', 1), pushedAt: 0 }, man('shop/web', 2), man('shop/web', 3)] })), { 3: 'recent', 2: 'recent', 1: '-' });
});

test('repositories are independent', () => {
  const p = plan({ keep: 1, manifests: [man('shop/web', 1), man('shop/web', 2), man('shop/worker', 3), man('blog/web', 4)] });
  assert.deepEqual(table(p), { 2: 'recent', 1: '-', 3: 'recent', 4: 'recent' });
});

test('the table: current, running, rollback, in-flight, recent and deleted', () => {
  const cases: { name: string; input: Partial<RetentionInput>; manifests: number[]; want: Record<number, string> }[] = [
    {
      name: 'linear prod history: current + last keep releases, then keep newest others',
      manifests: [1, 2, 3, 4, 5, 6, 7],
      input: {
        releases: [1, 2, 3, 4, 5, 6, 7].map((n) => rel(`r${n}`, 'prod', n, n)),
        services: [{ app: 'shop', env: 'prod', service: 'web', releaseId: 'r7' }],
        runningReleaseIds: ['r7'],
      },
      want: { 7: 'current+running+rollback', 6: 'rollback', 5: 'recent', 4: 'recent', 3: '-', 2: '-', 1: '-' },
    },
    {
      name: 'rolled back to an old release: the current one stays however old it is',
      manifests: [1, 2, 3, 4, 5, 6],
      input: {
        releases: [...[1, 2, 3, 4, 5, 6].map((n) => rel(`r${n}`, 'prod', n, n)), rel('r7', 'prod', 7, 1)],
        services: [{ app: 'shop', env: 'prod', service: 'web', releaseId: 'r7' }],
        runningReleaseIds: ['r7'],
      },
      want: { 6: 'rollback', 5: 'recent', 4: 'recent', 3: '-', 2: '-', 1: 'current+running+rollback' },
    },
    {
      name: 'blue-green: the idle previous set is still run by instances; the routed release is current',
      manifests: [1, 2, 3, 4, 5],
      input: {
        keep: 1,
        releases: [1, 2, 3, 4, 5].map((n) => rel(`r${n}`, 'prod', n, n)),
        services: [{ app: 'shop', env: 'prod', service: 'web', releaseId: 'r5', routedReleaseId: 'r5' }],
        runningReleaseIds: ['r5', 'r3'],
      },
      want: { 5: 'current+running+rollback', 4: 'recent', 3: 'running', 2: '-', 1: '-' },
    },
    {
      name: 'blue-green switched back: routed release differs from the newest',
      manifests: [1, 2, 3],
      input: {
        keep: 1,
        releases: [1, 2, 3].map((n) => rel(`r${n}`, 'prod', n, n)),
        services: [{ app: 'shop', env: 'prod', service: 'web', releaseId: 'r3', routedReleaseId: 'r1' }],
        runningReleaseIds: [],
      },
      want: { 3: 'current+rollback', 2: 'recent', 1: 'current' },
    },
    {
      name: 'pre and prod: a promoted digest is one manifest, kept for both; pre builds not promoted are recent',
      manifests: [1, 2, 3, 4, 5, 6],
      input: {
        keep: 1,
        releases: [
          rel('p1', 'pre', 1, 1), rel('p2', 'pre', 2, 2), rel('p3', 'pre', 3, 3), rel('p4', 'pre', 4, 5),
          rel('q1', 'prod', 1, 2), rel('q2', 'prod', 2, 3),
        ],
        services: [
          { app: 'shop', env: 'pre', service: 'web', releaseId: 'p4' },
          { app: 'shop', env: 'prod', service: 'web', releaseId: 'q2' },
        ],
        runningReleaseIds: ['p4', 'q2'],
      },
      want: { 6: 'recent', 5: 'current+running+rollback', 4: '-', 3: 'current+running+rollback', 2: '-', 1: '-' },
    },
    {
      name: 'an unfinished build or deployment pins its image even when older than keep newest',
      manifests: [1, 2, 3, 4],
      input: { keep: 1, inFlightImages: [ref('shop/web', 2), 'berth/shop/web:abc', ref('shop/web', 9)] },
      want: { 4: 'recent', 3: '-', 2: 'in-flight', 1: '-' },
    },
    {
      name: 'a removed app (no services): no rollback material and no spares, everything goes',
      manifests: [1, 2, 3, 4],
      input: { keep: 1, releases: [1, 2, 3, 4].map((n) => rel(`r${n}`, 'prod', n, n)), services: [] },
      want: { 4: '-', 3: '-', 2: '-', 1: '-' },
    },
    {
      name: 'a removed app whose last container is still stopping: only what an instance runs stays',
      manifests: [1, 2, 3, 4],
      input: { keep: 1, releases: [1, 2, 3, 4].map((n) => rel(`r${n}`, 'prod', n, n)), services: [], runningReleaseIds: ['r4'] },
      want: { 4: 'running', 3: '-', 2: '-', 1: '-' },
    },
    {
      name: 'a removed app being pushed again: its in-flight image stays, the old ones go',
      manifests: [1, 2, 3],
      input: { keep: 1, services: [], inFlightImages: [ref('shop/web', 3)] },
      want: { 3: 'in-flight', 2: '-', 1: '-' },
    },
    {
      name: 'references to another registry, by tag or by image id do not count',
      manifests: [1, 2, 3],
      input: {
        keep: 1,
        releases: [rel('a', 'prod', 1, 1, { image: ref('shop/web', 1, '127.0.0.1:6000') }), rel('b', 'prod', 2, 2, { image: 'berth/shop/web:abc' })],
        services: [{ app: 'shop', env: 'prod', service: 'web', releaseId: 'b' }],
        runningReleaseIds: ['a', 'b'],
      },
      want: { 3: 'recent', 2: '-', 1: '-' },
    },
    {
      name: 'config-only releases share an image: last keep releases may cover fewer digests',
      manifests: [1, 2, 3, 4],
      input: {
        keep: 2,
        releases: [rel('r1', 'prod', 1, 1), rel('r2', 'prod', 2, 2), rel('r3', 'prod', 3, 3), rel('r4', 'prod', 4, 3)],
        services: [{ app: 'shop', env: 'prod', service: 'web', releaseId: 'r4' }],
        runningReleaseIds: ['r4'],
      },
      want: { 4: 'recent', 3: 'current+running+rollback', 2: 'recent', 1: '-' },
    },
  ];
  for (const c of cases) {
    const p = plan({ manifests: c.manifests.map((n) => man('shop/web', n)), ...c.input });
    assert.deepEqual(table(p), c.want, c.name);
  }
});

test('releases that use a manifest are listed with env, seq and whether current/running', () => {
  const p = plan({
    manifests: [man('shop/web', 1)],
    releases: [rel('p1', 'pre', 4, 1), rel('q1', 'prod', 2, 1), rel('q0', 'prod', 1, 1)],
    services: [{ app: 'shop', env: 'prod', service: 'web', releaseId: 'q1' }],
    runningReleaseIds: ['q1', 'p1'],
  });
  assert.deepEqual(p.decisions[0]!.usedBy, [
    { releaseId: 'p1', env: 'pre', service: 'web', seq: 4, current: false, running: true },
    { releaseId: 'q1', env: 'prod', service: 'web', seq: 2, current: true, running: true },
    { releaseId: 'q0', env: 'prod', service: 'web', seq: 1, current: false, running: false },
  ]);
});

test('protected image ids: the ids of current, running and rollback releases', () => {
  const p = plan({
    keep: 1,
    manifests: [1, 2, 3].map((n) => man('shop/web', n)),
    releases: [rel('r1', 'prod', 1, 1), rel('r2', 'prod', 2, 2), rel('r3', 'prod', 3, 3)],
    services: [{ app: 'shop', env: 'prod', service: 'web', releaseId: 'r3' }],
    runningReleaseIds: ['r2'],
  });
  assert.deepEqual([...p.protectedImageIds].sort(), ['sha256:id2', 'sha256:id3']);
});

test('a digest listed twice (by tag and from storage) is decided once; ties in build time order by digest', () => {
  const p = plan({ keep: 1, manifests: [{ ...man('shop/web', 1), createdAt: 0 }, { ...man('shop/web', 1), tags: [] }, { ...man('shop/web', 2), createdAt: 0 }] });
  assert.equal(p.decisions.length, 2);
  assert.deepEqual(table(p), { 1: 'recent', 2: '-' });
});

test('keep must be a whole number of at least 1', () => {
  assert.throws(() => plan({ keep: 0, manifests: [] }), /at least 1/);
  assert.throws(() => checkKeep(1.5), /whole number/);
  assert.equal(checkKeep(3), 3);
});

test('parseDigestRef and imageView', () => {
  assert.deepEqual(parseDigestRef(ref('shop/web', 1)), { host: HOST, repo: 'shop/web', digest: d(1) });
  assert.equal(parseDigestRef('berth/shop/web:abc'), undefined);
  assert.equal(parseDigestRef('sha256:abc'), undefined);
  const v = imageView({ ...man('shop/web', 1), keep: true, reasons: ['recent'], usedBy: [] });
  assert.equal(v.app, 'shop');
  assert.equal(v.service, 'web');
});

test('spares are per deployed service: a service removed from the app keeps none, the others keep theirs', () => {
  const p = plan({
    keep: 1,
    manifests: [man('shop/web', 1), man('shop/web', 2), man('shop/worker', 3), man('shop/worker', 4)],
    services: [{ app: 'shop', env: 'pre', service: 'web', releaseId: 'none' }],
  });
  assert.deepEqual(table(p), { 2: 'recent', 1: '-', 4: '-', 3: '-' });
});
