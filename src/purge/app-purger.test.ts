import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../store/index.ts';
import { silentLogger } from '../lib/logger.ts';
import type { PurgeRecord, ReleaseRecord, ServiceRecord } from '../core/store.ts';
import { AppPurger, parsePurgeKey, purgeKey, type PurgeStep } from './app-purger.ts';

const clock = { now: () => 5000 };

function withStore(fn: (s: SqliteStore) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-purge-'));
  const s = new SqliteStore(join(dir, 'berth.db'), clock);
  return fn(s).finally(() => {
    s.close();
    rmSync(dir, { recursive: true, force: true });
  });
}

const rel = (app: string, env: string, id: string, seq: number): ReleaseRecord => ({
  id, app, env, service: 'web', seq, spec: {} as never, specHash: `h${id}`, image: 'i', imageId: 'sha256:x',
  status: 'healthy', message: '', createdAt: seq, createdBy: 'admin',
});
const svc = (app: string, env: string, releaseId: string): ServiceRecord => ({
  app, env, name: 'web', replicas: 1, releaseId, failures: 0, nextStartAt: 0, updatedAt: 0,
});
const request = (app: string): PurgeRecord => ({ app, state: 'purging', requestedAt: 1, requestedBy: 'admin', volumes: ['berth_shop_prod_data'], removed: {} });

function seed(s: SqliteStore): void {
  s.putService(svc('shop', 'prod', 'r1'), rel('shop', 'prod', 'r1', 1));
  s.putService(svc('shop', 'prod', 'r2'), rel('shop', 'prod', 'r2', 2));
  s.putService(svc('shop', 'pre', 'p1'), rel('shop', 'pre', 'p1', 1));
  s.putService(svc('blog', 'prod', 'b1'), rel('blog', 'prod', 'b1', 1));
  s.addEvent({ app: 'shop', env: 'prod', service: 'web', instance: '', kind: 'deployment.created', message: 'x' });
  s.putSource('src-shop', 'shop', {} as never);
  s.putSource('src-blog', 'blog', {} as never);
}

test('purge keys', () => {
  assert.equal(purgeKey('shop'), 'purge/shop');
  assert.equal(parsePurgeKey('purge/shop'), 'shop');
  assert.equal(parsePurgeKey('svc/shop/prod/web'), undefined);
});

test('startPurge deletes the services and records the purge in one go; a second ask keeps the first record', () => withStore(async (s) => {
  seed(s);
  const gone = s.startPurge(request('shop'));
  assert.deepEqual(gone.map((x) => `${x.env}/${x.name}`).sort(), ['pre/web', 'prod/web']);
  assert.deepEqual(s.listServices({ app: 'shop' }), []);
  assert.equal(s.listServices({ app: 'blog' }).length, 1);
  s.startPurge({ ...request('shop'), requestedAt: 99 });
  assert.equal(s.getPurge('shop')?.requestedAt, 1);
  assert.deepEqual(s.listPurges().map((p) => p.app), ['shop']);
}));

test('waits for the containers, runs the steps in order once each, resumes after a failure, ends done with a global event', () => withStore(async (s) => {
  seed(s);
  s.startPurge(request('shop'));
  let containers = 1;
  const ran: string[] = [];
  let failOnce = true;
  const steps: PurgeStep[] = [
    { name: 'first', run: async () => (ran.push('first'), 'one thing') },
    { name: 'flaky', run: async () => {
      ran.push('flaky');
      if (failOnce) {
        failOnce = false;
        throw new Error('registry down');
      }
      return '';
    } },
    { name: 'releases', run: async (app) => {
      ran.push('releases');
      const r = s.purgeAppRecords(app);
      return `${r.releases} releases`;
    } },
    { name: 'events', run: async (app) => (ran.push('events'), `${s.deleteAppEvents(app)} events`) },
  ];
  const enqueued: string[] = [];
  const purger = new AppPurger({
    store: s, clock, logger: silentLogger, steps, pollMs: 7, enqueueService: (a, e, n) => enqueued.push(`${a}/${e}/${n}`),
    engine: { list: async (labels) => (labels['io.berth.app'] === 'shop' && containers > 0 ? [{ id: 'c' } as never] : []) },
  });

  assert.deepEqual(await purger.reconcile('shop'), { requeueAfterMs: 7 }, 'a container is still there');
  assert.deepEqual(ran, []);
  assert.match(s.getPurge('shop')!.waiting!, /waiting for 1 container/);

  containers = 0;
  await assert.rejects(purger.reconcile('shop'), /registry down/);
  assert.deepEqual(ran, ['first', 'flaky']);
  assert.match(s.getPurge('shop')!.waiting!, /^flaky: registry down/);
  assert.deepEqual(Object.keys(s.getPurge('shop')!.removed), ['first']);

  assert.equal(await purger.reconcile('shop'), undefined);
  assert.deepEqual(ran, ['first', 'flaky', 'flaky', 'releases', 'events'], 'a step already done is not run again');
  const done = s.getPurge('shop')!;
  assert.equal(done.state, 'done');
  assert.equal(done.finishedAt, 5000);
  assert.equal(done.waiting, undefined);
  assert.deepEqual(done.removed, { first: 'one thing', flaky: '', releases: '3 releases', events: '1 events' });
  assert.deepEqual(s.listReleases({ app: 'shop' }), []);
  assert.equal(s.getSource('src-shop'), undefined, 'what its deployments were made from goes too');
  assert.ok(s.getSource('src-blog'));
  assert.equal(s.nextReleaseSeq({ app: 'shop', env: 'prod', service: 'web' }), 1, 'numbering starts again');
  assert.equal(s.listReleases({ app: 'blog' }).length, 1, 'other apps keep theirs');
  assert.deepEqual(s.appEnvs().filter((x) => x.app === 'shop'), [], 'nothing says the app exists');
  const ev = s.listEvents({ limit: 10 }).filter((e) => e.kind === 'app.purged');
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.app, '');
  assert.match(ev[0]!.message, /^app shop purged: one thing; 3 releases; 1 events$/);

  // Done: a later round does nothing.
  assert.equal(await purger.reconcile('shop'), undefined);
  assert.equal(ran.length, 5);
  assert.deepEqual(enqueued, []);
}));

test('a service that reappears during a purge is removed again', () => withStore(async (s) => {
  seed(s);
  s.startPurge(request('shop'));
  s.putService(svc('shop', 'prod', 'r2'));
  const enqueued: string[] = [];
  const purger = new AppPurger({
    store: s, clock, logger: silentLogger, steps: [], enqueueService: (a, e, n) => enqueued.push(`${a}/${e}/${n}`), engine: { list: async () => [] },
  });
  await purger.reconcile('shop');
  assert.deepEqual(s.listServices({ app: 'shop' }), []);
  assert.deepEqual(enqueued, ['shop/prod/web']);
  assert.equal(s.getPurge('shop')?.state, 'done');
}));
