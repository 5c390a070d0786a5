import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from './sqlite-store.ts';
import type { InstanceRecord } from '../core/store.ts';
import type { ServiceSpec } from '../core/spec/types.ts';

const clock = { now: () => 1000 };
const inst = (id: string): Omit<InstanceRecord, 'port'> => ({
  id, app: 'a', env: 'prod', service: 'web', releaseId: 'r1', host: 'h', address: '127.0.0.1', state: 'pending', health: 'starting', createdAt: 1,
});

function withStore(fn: (s: SqliteStore, path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'berth-store-'));
  try {
    const s = new SqliteStore(join(dir, 'berth.db'), clock);
    fn(s, join(dir, 'berth.db'));
    s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('port allocator skips ports in use on the host and held by instances, and does not reuse a just-freed port', () => {
  withStore((s) => {
    const range = { min: 5000, max: 5004, isFree: (p: number) => p !== 5001 };
    assert.equal(s.createInstance(inst('i1'), range).port, 5000);
    assert.equal(s.createInstance(inst('i2'), range).port, 5002, '5001 is in use on the host');
    s.deleteInstance('i2');
    assert.equal(s.createInstance(inst('i3'), range).port, 5003, 'the port just freed is not handed out again at once');
    assert.equal(s.createInstance(inst('i4'), range).port, 5004);
    assert.equal(s.createInstance(inst('i5'), range).port, 5002, 'wraps around to the freed port later');
    assert.throws(() => s.createInstance(inst('i6'), range), /no free port in 5000-5004/);
  });
});

test('state survives reopening the database (migrations run once)', () => {
  withStore((s, path) => {
    s.createInstance(inst('i1'), { min: 6000, max: 6010, isFree: () => true });
    s.addEvent({ app: 'a', env: 'prod', service: 'web', instance: 'i1', kind: 'x', message: 'm' });
    const again = new SqliteStore(path, clock);
    assert.equal(again.getInstance('i1')?.port, 6000);
    assert.equal(again.listEvents({ app: 'a' }).length, 1);
    assert.equal(again.createInstance(inst('i2'), { min: 6000, max: 6010, isFree: () => true }).port, 6001, 'cursor persisted');
    again.close();
  });
});

test('putService with a new release supersedes the previous progressing one', () => {
  withStore((s) => {
    const rel = (id: string, seq: number) => ({
      id, app: 'a', env: 'prod', service: 'web', seq, spec: {} as never, specHash: 'h' + seq, image: 'i', imageId: 'sha256:x',
      status: 'progressing' as const, message: '', createdAt: seq, createdBy: 'admin',
    });
    const svc = (releaseId: string) => ({ app: 'a', env: 'prod', name: 'web', replicas: 2, releaseId, failures: 0, nextStartAt: 0, updatedAt: 0 });
    s.putService(svc('r1'), rel('r1', 1));
    s.putService(svc('r2'), rel('r2', 2));
    assert.equal(s.getRelease('r1')?.status, 'superseded');
    assert.equal(s.getRelease('r2')?.status, 'progressing');
    assert.equal(s.getService({ app: 'a', env: 'prod', service: 'web' })?.releaseId, 'r2');
    assert.equal(s.nextReleaseSeq({ app: 'a', env: 'prod', service: 'web' }), 3);
  });
});

test('rolloutStartedAt: set when the current release changes (deploy or rollback), kept by any other update', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-store-'));
  const c = { t: 1000, now() { return this.t; } };
  const s = new SqliteStore(join(dir, 'berth.db'), c);
  try {
    const k = { app: 'a', env: 'prod', service: 'web' };
    const rel = (id: string, seq: number) => ({
      id, app: 'a', env: 'prod', service: 'web', seq, spec: {} as never, specHash: 'h' + seq, image: 'i', imageId: 'sha256:x',
      status: 'progressing' as const, message: '', createdAt: seq, createdBy: 'admin',
    });
    const svc = (releaseId: string) => ({ app: 'a', env: 'prod', name: 'web', replicas: 2, releaseId, failures: 0, nextStartAt: 0, updatedAt: 0 });
    s.putService(svc('r1'), rel('r1', 1));
    assert.equal(s.getService(k)?.rolloutStartedAt, 1000, 'a new service starts its rollout now');
    c.t = 2000;
    s.putService(svc('r1'));
    s.updateService(k, { replicas: 3, failures: 1 });
    assert.equal(s.getService(k)?.rolloutStartedAt, 1000, 'same release: unchanged');
    c.t = 3000;
    s.putService(svc('r2'), rel('r2', 2));
    assert.equal(s.getService(k)?.rolloutStartedAt, 3000, 'a new release: now');
    c.t = 4000;
    s.updateService(k, { releaseId: 'r1' });
    assert.equal(s.getService(k)?.rolloutStartedAt, 4000, 'a rollback to an older release: now, not when r1 was created');
    c.t = 5000;
    s.updateService(k, { releaseId: 'r1', failures: 0 });
    assert.equal(s.getService(k)?.rolloutStartedAt, 4000);
  } finally {
    s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('appEnvs: every app/env with services, releases, deployments or app events; latestDeployments; events since a time', () => {
  withStore((s) => {
    const spec = { name: 'web' } as never;
    s.putService({ app: 'shop', env: 'prod', name: 'web', replicas: 1, releaseId: 'r1', failures: 0, nextStartAt: 0, updatedAt: 1 },
      { id: 'r1', app: 'shop', env: 'prod', service: 'web', seq: 1, spec, specHash: 'h', image: 'i', imageId: 'sha256:x', status: 'healthy',
        message: '', createdAt: 1, createdBy: 'admin' });
    for (const [id, env, at] of [['d1', 'staging', 10], ['d2', 'staging', 20], ['d3', 'prod', 5]] as const) {
      s.createDeployment({ id, app: 'api', env, spec: { name: 'api', services: {} }, warnings: [], status: 'succeeded', message: '', createdAt: at,
        createdBy: 'admin', releases: {} });
    }
    s.addEvent({ app: 'gone', env: 'prod', service: 'web', instance: '', kind: 'service.removed', message: 'x', ts: 100 });
    s.addEvent({ app: '', env: '', service: '', instance: '', kind: 'engine.connected', message: 'x', ts: 200 });
    const key = (r: { app: string; env: string }) => `${r.app}/${r.env}`;
    assert.deepEqual(s.appEnvs().map(key).sort(), ['api/prod', 'api/staging', 'gone/prod', 'shop/prod']);
    for (const r of s.appEnvs()) assert.ok(s.hasApp(r.app, r.env) && s.hasApp(r.app), key(r));
    assert.equal(s.hasApp('api', 'qa'), false);
    assert.equal(s.hasApp('shpo'), false);
    assert.equal(s.hasApp(''), true, 'app-wide events (engine) have app ""; the API never asks for it');
    assert.deepEqual(s.latestDeployments().map((d) => [d.app, d.env, d.id]), [['api', 'prod', 'd3'], ['api', 'staging', 'd2']]);
    assert.deepEqual(s.listEvents({ since: 150 }).map((e) => e.kind), ['engine.connected']);
    assert.deepEqual(s.listEvents({ since: 0 }).map((e) => e.kind), ['service.removed', 'engine.connected']);
  });
});

test('deployment sources are stored once per id, read back, and survive reopening', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-store-'));
  try {
    const src = { file: 'compose.yaml', text: 'services: {}\n', baseDir: '/srv/shop', files: {}, variables: { DOMAIN: 'example.com' } };
    const s = new SqliteStore(join(dir, 'berth.db'), clock);
    s.putSource('abc', 'shop', src);
    s.putSource('abc', 'shop', { ...src, text: 'ignored: same id' });
    assert.deepEqual(s.getSource('abc'), src);
    assert.equal(s.getSource('nope'), undefined);
    s.close();
    const again = new SqliteStore(join(dir, 'berth.db'), clock);
    assert.deepEqual(again.getSource('abc'), src);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeBatch: one step\'s instance patches, deletions, service and release patches and events land together, or none of them', () => {
  withStore((s) => {
    const range = { min: 7000, max: 7010, isFree: () => true };
    s.createInstance(inst('i1'), range);
    s.createInstance(inst('i2'), range);
    s.putService({ app: 'a', env: 'prod', name: 'web', replicas: 2, releaseId: 'r1', failures: 0, nextStartAt: 0, updatedAt: 0 }, {
      id: 'r1', app: 'a', env: 'prod', service: 'web', seq: 1, spec: {} as never, specHash: 'h', image: 'i', imageId: 'sha256:x',
      status: 'progressing', message: '', createdAt: 1, createdBy: 'admin',
    });
    const key = { app: 'a', env: 'prod', service: 'web' };
    const evs = s.writeBatch({
      instances: [{ id: 'i1', patch: { health: 'healthy' } }, { id: 'gone', patch: { health: 'healthy' } }],
      deleteInstances: ['i2'],
      service: { key, patch: { failures: 2 } },
      releases: [{ id: 'r1', patch: { status: 'healthy', finishedAt: 5 } }],
      events: [{ ...key, instance: 'i1', kind: 'health.healthy', message: 'one' }, { ...key, instance: '', kind: 'release.healthy', message: 'two' }],
    });
    assert.deepEqual(evs.map((e) => e.message), ['one', 'two']);
    assert.ok(evs[0]!.id < evs[1]!.id, 'events recorded in order');
    assert.equal(s.getInstance('i1')?.health, 'healthy');
    assert.equal(s.getInstance('i2'), undefined);
    assert.equal(s.getInstance('gone'), undefined, 'a patch of a missing instance changes nothing');
    assert.equal(s.getService(key)?.failures, 2);
    assert.equal(s.getRelease('r1')?.status, 'healthy');
    // All or nothing: an event that cannot be written (NOT NULL message) undoes the instance patch before it.
    assert.throws(() => s.writeBatch({ instances: [{ id: 'i1', patch: { health: 'unhealthy' } }], events: [{ ...key, instance: 'i1', kind: 'x', message: null as never }] }));
    assert.equal(s.getInstance('i1')?.health, 'healthy', 'the failed batch left nothing behind');
    assert.equal(s.listEvents({ app: 'a' }).length, 2);
  });
});

test('writeBatch observed: written and read back like any batch, and every later write waits for the disk again (also after a failed one)', () => {
  withStore((s) => {
    const range = { min: 7000, max: 7010, isFree: () => true };
    s.createInstance(inst('i1'), range);
    const key = { app: 'a', env: 'prod', service: 'web' };
    const sync = () => (s as unknown as { db: { pragma(p: string, o: { simple: true }): number } }).db.pragma('synchronous', { simple: true });
    assert.equal(sync(), 2, 'FULL by default');
    s.writeBatch({ observed: true, instances: [{ id: 'i1', patch: { health: 'healthy' } }], events: [{ ...key, instance: 'i1', kind: 'health.healthy', message: 'up' }] });
    assert.equal(s.getInstance('i1')?.health, 'healthy');
    assert.equal(s.listEvents({ app: 'a' }).at(-1)?.message, 'up');
    assert.equal(sync(), 2, 'FULL again after an observed batch');
    assert.throws(() => s.writeBatch({ observed: true, instances: [{ id: 'i1', patch: { health: 'unhealthy' } }], events: [{ ...key, instance: 'i1', kind: 'x', message: null as never }] }));
    assert.equal(s.getInstance('i1')?.health, 'healthy', 'the failed batch left nothing behind');
    assert.equal(sync(), 2, 'FULL again after a failed observed batch');
  });
});

test('watch: each committed write is one change with its key, delivered after the transaction, in order; unwatch stops it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-store-'));
  const s = new SqliteStore(join(dir, 'berth.db'), clock);
  try {
    const seen: string[] = [];
    const name = (c: import('../core/store.ts').StoreChange) => c.kind === 'event' ? `event ${c.event.kind} #${c.event.id}`
      : c.kind === 'deployment' ? `deployment ${c.id} ${c.app}/${c.env}` : c.kind === 'purge' ? `purge ${c.app}` : `${c.kind} ${c.app}/${c.env}/${c.service}`;
    // A listener that throws stops neither the writer nor the others.
    s.watch(() => {
      throw new Error('a broken follower');
    });
    const unwatch = s.watch((c) => seen.push(name(c)));
    const ports = { min: 20000, max: 20010, isFree: () => true };
    s.createDeployment({ id: 'd1', app: 'a', env: 'prod', spec: { name: 'a', services: {} } as never, warnings: [], status: 'pending', message: '', createdAt: 1, createdBy: 'x', releases: {} });
    const [i1] = s.createInstances([inst('i1')], ports);
    s.writeBatch({ instances: [{ id: i1!.id, patch: { state: 'running' } }], events: [{ app: 'a', env: 'prod', service: 'web', instance: 'i1', kind: 'instance.started', message: '' }] });
    assert.deepEqual(seen, [], 'nothing is delivered inside the writer\'s own call stack');
    s.deleteInstance('i1');
    s.deleteInstance('i1');
    s.updateDeployment('d1', { status: 'succeeded' });
    s.updateDeployment('missing', { status: 'failed' });
    s.putPurge({ app: 'a', state: 'purging', requestedAt: 1, requestedBy: 'x', volumes: [], removed: {} });
    await Promise.resolve();
    assert.deepEqual(seen, ['deployment d1 a/prod', 'instance a/prod/web', 'instance a/prod/web', 'event instance.started #1', 'instance a/prod/web',
      'deployment d1 a/prod', 'purge a'], 'a delete of nothing and an update of nothing are no change');
    unwatch();
    s.addEvent({ app: 'a', env: 'prod', service: '', instance: '', kind: 'late', message: '' });
    await Promise.resolve();
    assert.equal(seen.length, 7);
  } finally {
    s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listEvents take: oldest reads on from a cursor page by page; the default is the newest page', () => {
  withStore((s) => {
    for (let i = 1; i <= 5; i++) s.addEvent({ app: 'a', env: 'prod', service: '', instance: '', kind: `k${i}`, message: '' });
    assert.deepEqual(s.listEvents({ afterId: 1, limit: 2 }).map((e) => e.kind), ['k4', 'k5']);
    assert.deepEqual(s.listEvents({ afterId: 1, limit: 2, take: 'oldest' }).map((e) => e.kind), ['k2', 'k3']);
  });
});

test('createInstances: a batch gets distinct free ports (those taken before it and by its own earlier rows are skipped), all or none', () => {
  withStore((s) => {
    const range = { min: 5100, max: 5105, isFree: (p: number) => p !== 5102 };
    s.createInstance(inst('i0'), range);
    const batch = s.createInstances([inst('i1'), inst('i2'), inst('i3')], range);
    assert.deepEqual(batch.map((i) => i.port), [5101, 5103, 5104], '5100 held by i0, 5102 in use on the host');
    assert.throws(() => s.createInstances([inst('i4'), inst('i5')], range), /no free port in 5100-5105/);
    assert.equal(s.getInstance('i4'), undefined, 'the batch that did not fit left no row');
    assert.deepEqual(s.listInstances().map((i) => i.port), [5100, 5101, 5103, 5104]);
  });
});

test('listInstances: every write to an instance is in the next read, filters match the query\'s, callers get copies, a rolled-back write is not seen', () => {
  withStore((s) => {
    const range = { min: 5200, max: 5210, isFree: () => true };
    s.createInstance(inst('i1'), range);
    s.createInstance({ ...inst('i2'), service: 'api' }, range);
    s.createInstance({ ...inst('i3'), env: 'dev' }, range);
    s.createInstance({ ...inst('i4'), app: 'b' }, range);
    assert.deepEqual(s.listInstances().map((i) => i.id), ['i1', 'i2', 'i3', 'i4']);
    assert.deepEqual(s.listInstances({ app: 'a' }).map((i) => i.id), ['i1', 'i2', 'i3']);
    assert.deepEqual(s.listInstances({ app: 'a', env: 'prod' }).map((i) => i.id), ['i1', 'i2']);
    assert.deepEqual(s.listInstances({ app: 'a', env: 'prod', service: 'web' }).map((i) => i.id), ['i1']);
    // A caller changing what it got changes nothing for the next caller.
    const mine = s.listInstances({ app: 'a', env: 'prod', service: 'web' })[0]!;
    mine.health = 'healthy';
    assert.equal(s.listInstances()[0]!.health, 'starting');
    s.updateInstance('i1', { health: 'healthy', check: { ok: true, text: 'GET / → 200', since: 1 } });
    const got = s.listInstances({ service: 'web', env: 'prod', app: 'a' })[0]!;
    assert.equal(got.health, 'healthy');
    got.check!.text = 'changed by a caller';
    assert.equal(s.listInstances()[0]!.check?.text, 'GET / → 200');
    s.deleteInstance('i2');
    assert.deepEqual(s.listInstances().map((i) => i.id), ['i1', 'i3', 'i4']);
    s.writeBatch({ instances: [{ id: 'i3', patch: { state: 'running' } }], deleteInstances: ['i4'] });
    assert.deepEqual(s.listInstances().map((i) => `${i.id}:${i.state}`), ['i1:pending', 'i3:running']);
    // A batch that fails after its instance patch: the patch is not seen, before or after a reopen.
    assert.throws(() => s.writeBatch({ instances: [{ id: 'i1', patch: { health: 'unhealthy' } }], events: [{ app: 'a', env: 'prod', service: 'web', instance: 'i1', kind: 'x', message: null as never }] }));
    assert.equal(s.listInstances()[0]!.health, 'healthy');
    // A snapshot (a read transaction) and a purge.
    assert.deepEqual(s.serviceSnapshot({ app: 'a', env: 'dev', service: 'web' }).instances.map((i) => i.id), ['i3']);
    s.purgeAppRecords('a');
    assert.deepEqual(s.listInstances(), []);
  });
});

test('listInstances and getInstance: after any mix of writes (some rolled back) the kept table reads as the database does', () => {
  withStore((s, path) => {
    const range = { min: 7000, max: 7999, isFree: () => true };
    // A fixed-seed mix of inserts (created out of order), patches that set and clear optional fields,
    // deletes and failing batches; each step compared with what a fresh reader of the file sees.
    let seed = 42;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) >>> 16) % n;
    const ids: string[] = [];
    for (let step = 0; step < 300; step++) {
      const op = rnd(10);
      const id = ids[rnd(Math.max(1, ids.length))];
      if (op < 3 || id === undefined) {
        const nid = `i${step}`;
        s.createInstance({ ...inst(nid), app: ['a', 'b'][rnd(2)]!, service: ['web', 'api'][rnd(2)]!, createdAt: rnd(50) }, range);
        ids.push(nid);
      } else if (op < 7) {
        s.updateInstance(id, rnd(2) ? { health: 'healthy', reason: 'x', containerId: `c${step}`, check: { ok: true, text: 't', since: step } }
          : { health: 'unhealthy', reason: undefined, containerId: undefined, check: undefined, state: 'running', startedAt: step });
      } else if (op < 8) {
        s.deleteInstance(id);
        ids.splice(ids.indexOf(id), 1);
      } else {
        assert.throws(() => s.writeBatch({ instances: [{ id, patch: { state: 'stopping' } }], events: [{ app: 'a', env: 'prod', service: 'web', instance: id, kind: 'x', message: null as never }] }));
      }
      if (step % 25 === 0 || step === 299) {
        const fresh = new SqliteStore(path, clock);
        assert.deepEqual(s.listInstances(), fresh.listInstances(), `step ${step}`);
        assert.deepEqual(s.listInstances({ app: 'b' }), fresh.listInstances({ app: 'b' }));
        assert.deepEqual(s.listInstances({ app: 'a', env: 'prod', service: 'api' }), fresh.listInstances({ app: 'a', env: 'prod', service: 'api' }));
        if (id !== undefined) assert.deepEqual(s.getInstance(id), fresh.getInstance(id));
        fresh.close();
      }
    }
    const one = s.getInstance(ids[0]!)!;
    one.state = 'stopping';
    assert.notEqual(s.getInstance(ids[0]!)!.state, 'stopping', 'getInstance hands out a copy');
  });
});

test('releases: the spec is parsed once and shared (frozen: nobody may change it); status, message and finishedAt are read fresh; a purge forgets the specs', () => {
  withStore((s) => {
    const spec = { name: 'web', image: 'i', routes: [{ host: 'a.test', path: '/' }], environment: { A: '1' } } as unknown as ServiceSpec;
    s.putService({ app: 'a', env: 'prod', name: 'web', replicas: 1, releaseId: 'r1', failures: 0, nextStartAt: 0, updatedAt: 0 }, {
      id: 'r1', app: 'a', env: 'prod', service: 'web', seq: 1, spec, specHash: 'h1', image: 'i', imageId: 'sha256:x', status: 'progressing', message: '', createdAt: 1, createdBy: 'admin',
    });
    const first = s.getRelease('r1')!;
    assert.deepEqual(first.spec, spec);
    assert.equal(s.getRelease('r1')!.spec, first.spec, 'the same parsed spec');
    assert.equal(s.listReleases({ app: 'a' })[0]!.spec, first.spec, 'listReleases shares it too');
    assert.ok(Object.isFrozen(first.spec) && Object.isFrozen(first.spec.routes[0]) && Object.isFrozen(first.spec.environment));
    assert.throws(() => {
      (first.spec.environment as Record<string, string>).A = '2';
    }, TypeError);
    s.updateRelease('r1', { status: 'healthy', message: 'ok', finishedAt: 5 });
    assert.deepEqual([s.getRelease('r1')!.status, s.getRelease('r1')!.message, s.getRelease('r1')!.finishedAt], ['healthy', 'ok', 5]);
    assert.equal(first.status, 'progressing', 'a record read earlier is the caller\'s own');
    // A rolled-back write of a release's status is not seen.
    assert.throws(() => s.writeBatch({ releases: [{ id: 'r1', patch: { status: 'failed' } }], events: [{ app: 'a', env: 'prod', service: 'web', instance: '', kind: 'x', message: null as never }] }));
    assert.equal(s.getRelease('r1')!.status, 'healthy');
    s.purgeAppRecords('a');
    assert.equal(s.getRelease('r1'), undefined);
    assert.deepEqual(s.listReleases({ app: 'a' }), []);
  });
});
