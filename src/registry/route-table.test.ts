import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RouteSpec, ServiceSpec } from '../core/spec/types.ts';
import type { ReleaseRecord } from '../core/store.ts';
import { checkRoutes } from '../ingress/render.ts';
import { SqliteStore } from '../store/index.ts';
import { RouteTable, buildRouteTable } from './route-table.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function store(): { store: SqliteStore; clock: { t: number; now(): number } } {
  const dir = mkdtempSync(join(tmpdir(), 'berth-route-table-'));
  dirs.push(dir);
  const clock = { t: 1_700_000_000_000, now() { return this.t; } };
  return { store: new SqliteStore(join(dir, 'berth.db'), clock), clock };
}

function spec(routes: RouteSpec[]): ServiceSpec {
  return {
    name: 'web', image: 'x', environment: {}, ports: [], health: { type: 'none' }, replicas: 1, limits: {},
    restart: { condition: 'any', delayMs: 1000 }, labels: {}, stopSignal: 'SIGTERM', stopGracePeriodMs: 1000, volumes: [], dependsOn: [], routes,
  };
}

let seq = 0;
function release(s: SqliteStore, at: number, app: string, env: string, routes: RouteSpec[]): void {
  const rel: ReleaseRecord = {
    id: `r${++seq}`, app, env, service: 'web', seq, spec: spec(routes), specHash: `h${seq}`, image: 'x', imageId: 'sha256:x',
    status: 'healthy', message: '', createdAt: at, createdBy: 'test',
  };
  s.putService({ app, env, name: 'web', replicas: 1, releaseId: rel.id, failures: 0, nextStartAt: 0, updatedAt: at }, rel);
}

test('upstream names are unambiguous: app a env b-c and app a-b env c get different names, each with its owner', () => {
  const { store: s } = store();
  release(s, 1, 'a', 'b-c', [{ host: 'one.local', path: '/' }]);
  release(s, 2, 'a-b', 'c', [{ host: 'two.local', path: '/' }, { path: '/x' }]);
  const t = buildRouteTable(s);
  assert.deepEqual(t.map((r) => [r.upstream, r.owner]), [
    ['a.b-c.web.0', { app: 'a', env: 'b-c', service: 'web' }],
    ['a-b.c.web.0', { app: 'a-b', env: 'c', service: 'web' }],
    ['a-b.c.web.1', { app: 'a-b', env: 'c', service: 'web' }],
  ]);
  assert.equal(checkRoutes(t).problems.length, 0);
  s.close();
});

test('two services claiming one host and path: the first to claim it keeps it, even after the other redeploys or sorts first', () => {
  const { store: s } = store();
  // `zed` took the host first; `aaa` (sorting first by name) got it in stored data written before
  // hosts were normalised, and deploys a newer release after that.
  release(s, 1000, 'zed', 'prod', [{ host: 'sec-case.local', path: '/' }]);
  release(s, 2000, 'aaa', 'prod', [{ host: 'SEC-CASE.LOCAL.', path: '/' }]);
  release(s, 3000, 'zed', 'prod', [{ host: 'sec-case.local', path: '/' }, { path: '/more' }]);
  const t = buildRouteTable(s);
  assert.deepEqual(t.filter((r) => r.claimedAt !== undefined).map((r) => [r.owner?.app, r.claimedAt]), [['aaa', 2000], ['zed', 1000]]);
  assert.equal(t.find((r) => r.path === '/more')!.claimedAt, undefined, 'routes nobody else claims carry no claim time');
  const checked = checkRoutes(t);
  assert.deepEqual(checked.routes.filter((r) => r.host === 'sec-case.local').map((r) => r.owner?.app), ['zed']);
  assert.deepEqual(checked.problems.map((p) => p.owner?.app), ['aaa']);
  s.close();
});

test('backends: each route gets its own service\'s running, healthy instances only (grouped in one pass, never another app\'s or env\'s)', () => {
  const { store: s } = store();
  release(s, 1, 'a', 'b-c', [{ path: '/x' }]);
  release(s, 2, 'a-b', 'c', [{ path: '/y' }]);
  const range = { min: 21000, max: 21010, isFree: () => true };
  const add = (id: string, app: string, env: string, state: 'running' | 'stopping', health: 'healthy' | 'unhealthy') => {
    s.createInstance({ id, app, env, service: 'web', releaseId: 'x', host: 'h', address: '127.0.0.1', state, health, createdAt: 1 }, range);
  };
  add('i1', 'a', 'b-c', 'running', 'healthy');
  add('i2', 'a-b', 'c', 'running', 'healthy');
  add('i3', 'a', 'b-c', 'running', 'unhealthy');
  add('i4', 'a', 'b-c', 'stopping', 'healthy');
  add('i5', 'a', 'b-c', 'running', 'healthy');
  add('i6', 'a', 'prod', 'running', 'healthy');
  const byPath = Object.fromEntries(buildRouteTable(s).map((r) => [r.path, r.backends.map((b) => b.instance)]));
  assert.deepEqual(byPath, { '/x': ['i1', 'i5'], '/y': ['i2'] });
  s.close();
});

/** After the store's change feed (delivered in a microtask) has run. */
const settled = () => new Promise<void>((r) => setImmediate(r));

test('RouteTable follows the store: after every change it gives what a full rebuild gives, recomputing only the services that changed', async () => {
  const { store: s } = store();
  release(s, 1, 'a', 'prod', [{ host: 'a.local', path: '/' }]);
  release(s, 2, 'b', 'prod', [{ host: 'b.local', path: '/' }, { path: '/b' }]);
  release(s, 3, 'c', 'prod', [{ host: 'c.local', path: '/' }]);
  const range = { min: 21000, max: 21100, isFree: () => true };
  const add = (id: string, app: string) => s.createInstance({ id, app, env: 'prod', service: 'web', releaseId: 'x', host: 'h', address: '127.0.0.1', state: 'running', health: 'healthy', createdAt: 1 }, range);
  for (const app of ['a', 'b', 'c']) for (let n = 0; n < 3; n++) add(`${app}${n}`, app);
  const direct = new Map<string, { address: string; port: number }>();
  const t = new RouteTable(s, direct);
  await settled();
  assert.deepEqual(t.routes(), buildRouteTable(s, direct));
  const before = t.recomputed;

  // A health flip: one service recomputed, and its backends no longer have the instance.
  s.updateInstance('b1', { health: 'unhealthy' });
  await settled();
  const after = t.routes();
  assert.deepEqual(after, buildRouteTable(s, direct));
  assert.equal(t.recomputed - before, 1, 'one service recomputed for one instance written');
  assert.deepEqual(after.filter((r) => r.owner?.app === 'b').map((r) => r.backends.map((b) => b.instance)), [['b0', 'b2'], ['b0', 'b2']]);
  // Nothing changed: nothing recomputed, the same table.
  assert.deepEqual(t.routes(), after);
  assert.equal(t.recomputed - before, 1);

  // A service removed and one added (its routes in the store's order, app then env then name).
  s.deleteService({ app: 'a', env: 'prod', service: 'web' });
  release(s, 4, 'aa', 'prod', [{ host: 'aa.local', path: '/' }]);
  add('aa0', 'aa');
  await settled();
  assert.deepEqual(t.routes(), buildRouteTable(s, direct));
  assert.deepEqual([...new Set(t.routes().map((r) => r.owner?.app))], ['aa', 'b', 'c']);

  // A direct address (app-network instance) set, changed and removed by a reconciler in place: no
  // store write, and still followed.
  direct.set('c0', { address: '172.30.0.5', port: 8080 });
  assert.deepEqual(t.routes(), buildRouteTable(s, direct));
  assert.ok(t.routes().some((r) => r.backends.some((b) => b.instance === 'c0' && b.address === '172.30.0.5')));
  direct.set('c0', { address: '172.30.0.6', port: 8080 });
  assert.deepEqual(t.routes(), buildRouteTable(s, direct));
  direct.delete('c0');
  assert.deepEqual(t.routes(), buildRouteTable(s, direct));
  assert.ok(t.routes().some((r) => r.backends.some((b) => b.instance === 'c0' && b.address === '127.0.0.1')));

  t.close();
  s.close();
});

test('RouteTable: routes handed out are not changed by later changes (a caller may keep the last table)', async () => {
  const { store: s } = store();
  release(s, 1, 'a', 'prod', [{ path: '/' }]);
  const range = { min: 21000, max: 21100, isFree: () => true };
  s.createInstance({ id: 'i1', app: 'a', env: 'prod', service: 'web', releaseId: 'x', host: 'h', address: '127.0.0.1', state: 'running', health: 'healthy', createdAt: 1 }, range);
  const t = new RouteTable(s);
  await settled();
  const first = t.routes();
  const copy = structuredClone(first);
  s.updateInstance('i1', { health: 'unhealthy' });
  await settled();
  assert.deepEqual(t.routes()[0]!.backends, []);
  assert.deepEqual(first, copy, 'the earlier table is as it was');
  t.close();
  s.close();
});

test('RouteTable under a random sequence of writes matches a full rebuild after each', async () => {
  const { store: s } = store();
  const apps = ['p', 'q', 'r', 's'];
  const range = { min: 22000, max: 22999, isFree: () => true };
  let at = 10;
  for (const app of apps) release(s, at++, app, 'prod', [{ host: `${app}.local`, path: '/' }]);
  const t = new RouteTable(s);
  let rnd = 42;
  const next = (n: number) => ((rnd = (rnd * 1103515245 + 12345) % 2 ** 31), rnd % n);
  let ids = 0;
  for (let step = 0; step < 200; step++) {
    const live = s.listInstances();
    const op = next(5);
    const app = apps[next(apps.length)]!;
    if (op === 0 || live.length === 0) {
      s.createInstance({ id: `x${ids++}`, app, env: 'prod', service: 'web', releaseId: 'x', host: 'h', address: '127.0.0.1', state: 'running', health: next(2) ? 'healthy' : 'starting', createdAt: step }, range);
    } else if (op === 1) {
      s.deleteInstance(live[next(live.length)]!.id);
    } else if (op === 2) {
      s.updateInstance(live[next(live.length)]!.id, { health: next(2) ? 'healthy' : 'unhealthy' });
    } else if (op === 3) {
      s.updateInstance(live[next(live.length)]!.id, { state: next(2) ? 'running' : 'stopping' });
    } else if (next(3) === 0) {
      if (s.getService({ app, env: 'prod', service: 'web' })) s.deleteService({ app, env: 'prod', service: 'web' });
      else release(s, at++, app, 'prod', [{ host: `${app}.local`, path: '/' }, ...(next(2) ? [{ path: `/${app}` }] : [])]);
    }
    if (next(3) === 0) continue; // several writes between two reads
    await settled();
    assert.deepEqual(t.routes(), buildRouteTable(s), `step ${step}`);
  }
  t.close();
  s.close();
});
