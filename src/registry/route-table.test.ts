import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RouteSpec, ServiceSpec } from '../core/spec/types.ts';
import type { ReleaseRecord } from '../core/store.ts';
import { checkRoutes } from '../ingress/render.ts';
import { SqliteStore } from '../store/index.ts';
import { buildRouteTable } from './route-table.ts';

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
