/**
 * Failover in the service reconciler (issue 13 item 3) against the fake engine's simulated hosts:
 * a lost host's instances are unrouted at once, removed (no duplicate when it returns) and replaced in
 * the same pool; a draining host's instances are moved start-first; a task that stays pending fails its
 * release with the reason; a stateful instance pinned to its host is not moved silently.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LABEL, type HostState, type IngressRoute } from '../core/ports.ts';
import { DEFAULT_UPDATE, type ServiceSpec } from '../core/spec/types.ts';
import type { ReleaseRecord, ServiceKey } from '../core/store.ts';
import { FakeEngine } from '../engine/fake/index.ts';
import { buildRouteTable } from '../registry/index.ts';
import { SqliteStore } from '../store/index.ts';
import { silentLogger } from '../lib/logger.ts';
import { ServiceReconciler } from './service-reconciler.ts';

const K: ServiceKey = { app: 'shop', env: 'prod', service: 'web' };
const T0 = 1_700_000_000_000;

function spec(o: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name: 'web', image: 'shop/web:1', environment: {}, ports: [], health: { type: 'none' }, replicas: 3, limits: {},
    restart: { condition: 'any', delayMs: 1000 }, labels: {}, stopSignal: 'SIGTERM', stopGracePeriodMs: 10_000,
    volumes: [], dependsOn: [], routes: [{ path: '/' }], ...o,
  };
}

const open: Array<() => void> = [];
afterEach(() => {
  for (const close of open.splice(0)) close();
});

/** h1..h3 in the default pool, h4 in pool b (nothing of this app may ever land there). */
function setup(o: { pendingBoundMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'berth-failover-'));
  const clock = { t: T0, now() { return this.t; } };
  const store = new SqliteStore(join(dir, 'berth.db'), clock);
  const engine = new FakeEngine({ clock, images: ['shop/web:1'], hosts: [{ name: 'h1' }, { name: 'h2' }, { name: 'h3' }, { name: 'h4', pool: 'b' }] });
  const states = new Map<string, HostState>();
  /** The tables the ingress was given, in order, with the engine calls made before each. */
  const tables: Array<{ atCall: number; table: IngressRoute[] }> = [];
  let ids = 0;
  const reconciler = new ServiceReconciler({
    store, engine, clock, logger: silentLogger, newId: () => `i${++ids}`, hostAddress: '127.0.0.1', portRange: { min: 20000, max: 20099 },
    isPortFree: () => true, routesChanged: async () => void tables.push({ atCall: engine.calls.length, table: buildRouteTable(store) }),
    instancesChanged: () => {}, releaseFinished: () => {}, probe: async () => ({ ok: false, text: 'no probe' }),
    hostState: (h) => states.get(h), ...(o.pendingBoundMs ? { pendingBoundMs: o.pendingBoundMs } : {}),
  });
  open.push(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let rels = 0;
  const h = {
    store, engine, clock, tables, reconciler,
    /** What HostMonitor would have read: the engine's hosts now. */
    async readHosts() {
      for (const x of await engine.hosts()) states.set(x.name, x.state);
    },
    async release(s: ServiceSpec): Promise<ReleaseRecord> {
      const imageId = (await engine.imageId(s.image))!;
      const rel: ReleaseRecord = {
        id: `r${++rels}`, app: K.app, env: K.env, service: K.service, seq: rels, spec: s, specHash: `h${rels}`, image: s.image,
        imageId, status: 'progressing', message: '', createdAt: clock.now(), createdBy: 'test',
      };
      store.putService({ app: K.app, env: K.env, name: K.service, replicas: s.replicas, releaseId: rel.id, failures: 0, nextStartAt: 0, updatedAt: clock.now() }, rel);
      return rel;
    },
    async settle(max = 30) {
      await h.readHosts();
      for (let n = 0; n < max; n++) {
        const res = await reconciler.reconcile(K);
        if (!res || res.requeueAfterMs !== 0) return res;
      }
      throw new Error(`no steady state after ${max} rounds`);
    },
    /** Rounds with the clock moving 1 s each, until nothing moves (health "up for 2 s" needs time). */
    async converge(rounds = 10) {
      for (let n = 0; n < rounds; n++) {
        await h.settle();
        clock.t += 1000;
      }
      await h.settle();
    },
    async containers() {
      return engine.list({ [LABEL.app]: K.app, [LABEL.env]: K.env, [LABEL.service]: K.service });
    },
    routed: (table = buildRouteTable(store)) => table.filter((r) => r.owner?.service === K.service).flatMap((r) => r.backends.map((b) => b.instance)),
    events: (kind: string) => store.listEvents({ app: K.app }).filter((e) => e.kind === kind),
  };
  return h;
}

test('a lost host: its instance is unrouted at once, removed, replaced on another host of the pool; when the host returns there is no duplicate', async () => {
  const h = setup();
  const rel = await h.release(spec());
  await h.converge();
  assert.equal(h.store.getRelease(rel.id)?.status, 'healthy');
  const before = await h.containers();
  assert.deepEqual(before.map((c) => c.host).sort(), ['h1', 'h2', 'h3'], 'spread one per host, never on pool b\'s h4');
  assert.equal(h.reconciler.pinnedHost(K), undefined, 'no named volume: not pinned');
  const lost = before.find((c) => c.host === 'h2')!;
  const lostInstance = lost.labels[LABEL.instance]!;
  assert.ok(h.routed().includes(lostInstance));

  h.engine.hostDown('h2');
  const firstTable = h.tables.length;
  await h.settle();
  // The very first table the ingress got after the loss already leaves it out; it is never routed again.
  const after = h.tables.slice(firstTable);
  assert.ok(after.length > 0);
  for (const t of after) assert.ok(!h.routed(t.table).includes(lostInstance), 'the lost instance is not routed');
  assert.equal(h.store.getInstance(lostInstance), undefined, 'its row is gone');
  assert.ok(!(await h.containers()).some((c) => c.id === lost.id), 'its engine object is removed (no duplicate can come back)');
  const failover = h.events('instance.failover');
  assert.equal(failover.length, 1);
  assert.match(failover[0]!.message, new RegExp(`instance ${lostInstance} on host h2 is lost`));

  await h.converge();
  const now = await h.containers();
  assert.equal(now.filter((c) => c.running).length, 3);
  assert.deepEqual(now.map((c) => c.host).filter((x) => x === 'h2' || x === 'h4'), [], 'replaced on h1/h3, never on the down host or another pool');
  assert.equal(h.routed().length, 3, 'three routed again');
  assert.equal(h.events('instance.crashed').length, 0, 'a lost host is not a crash (no crash-loop backoff)');

  h.engine.hostUp('h2');
  await h.converge();
  const back = await h.containers();
  assert.equal(back.length, 3, `no duplicate after the host returned: ${back.map((c) => `${c.name}@${c.host}`).join(', ')}`);
  assert.equal(back.filter((c) => c.running).length, 3);
});

test('a lost instance the reconciler could not remove yet (host returns first) is removed, never routed twice for one slot', async () => {
  const h = setup();
  await h.release(spec({ replicas: 2 }));
  await h.converge();
  const victim = (await h.containers())[0]!;
  h.engine.hostDown(victim.host);
  // The engine refuses the removal this round: the row stays `stopping`, out of the upstreams.
  h.engine.failNext('remove');
  await h.settle().catch(() => undefined);
  const row = h.store.getInstance(victim.labels[LABEL.instance]!);
  assert.equal(row?.state, 'stopping');
  assert.ok(!h.routed().includes(row.id));
  h.engine.hostUp(victim.host);
  await h.converge();
  const all = await h.containers();
  assert.equal(all.length, 2, 'the returned container was removed, its replacement serves');
  assert.ok(!all.some((c) => c.id === victim.id));
  assert.equal(h.routed().length, 2);
});

test('draining: each instance of the host is replaced elsewhere (started, healthy, routed) before it is unrouted and removed', async () => {
  const h = setup();
  await h.release(spec({ replicas: 3 }));
  await h.converge();
  const onH3 = (await h.containers()).filter((c) => c.host === 'h3');
  assert.equal(onH3.length, 1);
  const old = onH3[0]!;
  const oldInstance = old.labels[LABEL.instance]!;

  await h.engine.drainHost('h3', true);
  const firstTable = h.tables.length;
  await h.converge();
  const now = await h.containers();
  assert.equal(now.length, 3);
  assert.ok(!now.some((c) => c.host === 'h3'), 'nothing left on the draining host');
  assert.ok(!now.some((c) => c.host === 'h4'), 'nothing moved to another pool');
  // Every table the ingress got during the move had at least 3 healthy backends: nothing was dropped.
  for (const t of h.tables.slice(firstTable)) assert.ok(h.routed(t.table).length >= 3, `routed: ${h.routed(t.table).join(',')}`);
  // The old one was stopped only after its replacement was routed.
  const stopAt = h.engine.calls.findIndex((c) => c === `stop ${old.id}`);
  assert.ok(stopAt > 0);
  const tableAtStop = [...h.tables].reverse().find((t) => t.atCall <= stopAt)!;
  assert.ok(!h.routed(tableAtStop.table).includes(oldInstance), 'unrouted before its stop');
  assert.equal(h.routed(tableAtStop.table).length, 3, 'its replacement serves when it stops');
  const stopping = h.events('instance.stopping').find((e) => e.instance === oldInstance);
  assert.match(stopping?.message ?? '', /moved off draining host h3/);
  assert.equal(h.events('instance.crashed').length, 0);
});

test('a task that stays pending past the bound fails the release with the reason, never healthy', async () => {
  const h = setup({ pendingBoundMs: 30_000 });
  h.engine.pendStarts('no suitable node (host-mode port already in use on 3 nodes)');
  const rel = await h.release(spec({ replicas: 2 }));
  await h.converge(5);
  assert.equal(h.store.getRelease(rel.id)?.status, 'progressing', 'within the bound: still progressing, not healthy');
  assert.equal((await h.containers()).filter((c) => c.pending).length, 2);
  assert.equal(h.events('instance.crashed').length, 0, 'a pending task is not a crash');
  h.clock.t += 30_000;
  await h.settle();
  const failed = h.store.getRelease(rel.id)!;
  assert.equal(failed.status, 'failed');
  assert.match(failed.message, /waited 3\ds to run: its host port is taken on the hosts that could run it; the engine says: no suitable node \(host-mode port already in use on 3 nodes\)/);
  assert.match(h.events('release.failed')[0]!.message, /port is taken/);
});

test('a pending task that is placed within the bound: the release becomes healthy', async () => {
  const h = setup({ pendingBoundMs: 30_000 });
  h.engine.pendStarts('no suitable node (insufficient resources on 3 nodes)');
  const rel = await h.release(spec({ replicas: 2 }));
  await h.converge(3);
  h.engine.pendStarts(undefined);
  await h.converge(5);
  assert.equal(h.store.getRelease(rel.id)?.status, 'healthy');
  assert.equal(h.routed().length, 2);
});

test('a stateful instance pinned to its host (named volume) is not moved when the host dies: unrouted, said, kept; back when it returns', async () => {
  const h = setup();
  await h.release(spec({ replicas: 1, volumes: [{ type: 'volume', source: 'data', target: '/data', readOnly: false }], routes: [{ path: '/' }] }));
  await h.converge();
  const [db] = await h.containers();
  const inst = db!.labels[LABEL.instance]!;
  assert.deepEqual(h.routed(), [inst]);
  assert.equal(h.reconciler.pinnedHost(K), db!.host, 'the pin status shows: learned from where it runs');
  h.engine.hostDown(db!.host);
  await h.converge();
  const all = await h.containers();
  assert.equal(all.length, 1, 'nothing started elsewhere with an empty volume');
  assert.equal(h.store.getInstance(inst)?.state, 'running', 'the record is kept');
  assert.deepEqual(h.routed(), [], 'not routed while its host is down');
  const lost = h.events('instance.lost');
  assert.equal(lost.length, 1);
  assert.match(lost[0]!.message, new RegExp(`pinned to ${db!.host} \\(volume data\\): not moved .*berth failover shop web --env prod --to HOST`));
  assert.equal(h.events('instance.failover').length, 0);

  h.engine.hostUp(db!.host);
  await h.converge();
  assert.deepEqual(h.routed(), [inst], 'the same instance serves again');
  assert.equal((await h.containers()).length, 1);
});

test('berth failover of a pinned service: the lost instance is removed and started on the named host, its volume empty there; later instances stay pinned there', async () => {
  const h = setup();
  const volumes = [{ type: 'volume' as const, source: 'data', target: '/data', readOnly: false }];
  await h.release(spec({ replicas: 1, volumes }));
  await h.converge();
  const [db] = await h.containers();
  const first = db!.host;
  const target = ['h1', 'h2', 'h3'].filter((x) => x !== first).at(-1)!;
  h.engine.hostDown(first);
  await h.converge();
  assert.equal(h.events('instance.failover').length, 0, 'not moved on its own');

  // What the API does for `berth failover shop web --to TARGET`.
  assert.equal(h.reconciler.pinnedHost(K), first);
  h.reconciler.failoverTo(K, target);
  assert.equal(h.reconciler.pinnedHost(K), target);
  const inst = db!.labels[LABEL.instance]!;
  h.store.updateInstance(inst, { replaceRequestedAt: h.clock.now() });
  await h.converge();
  const now = await h.containers();
  assert.deepEqual(now.map((c) => c.host), [target], 'started on the named host (not where spread would put it)');
  assert.ok(now[0]!.running);
  const ev = h.events('instance.failover');
  assert.equal(ev.length, 1);
  assert.match(ev[0]!.message, new RegExp(`replaced on ${target} as asked \\(berth failover\\); volume data starts empty there`));
  assert.equal(h.routed().length, 1);

  // A new release (recreate, as a service with a volume gets) stays on the new host, even once the old one is back.
  h.engine.hostUp(first);
  await h.release(spec({ replicas: 1, volumes, environment: { V: '2' }, update: { ...DEFAULT_UPDATE, strategy: 'recreate' } }));
  await h.converge();
  const after = await h.containers();
  assert.deepEqual(after.map((c) => c.host), [target]);
  assert.notEqual(after[0]!.id, now[0]!.id);
});
