/**
 * In-process contract tests of the service routes (src/api/service-routes.ts): no token → 401, bad input → 400 naming the field, unknown →
 * 404, conflict → 409, the happy path; a refused request changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, withTestApi } from '../../test/helpers/api-inject.ts';

test('scale: 400 for a body that is neither form, 404 for an unknown service, 409 past host memory, 202 and enqueued', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web', { memoryBytes: 256 * 2 ** 20 });
  await expectError(t.req('POST', '/v1/apps/shop/scale', { service: 'web', replicas: 5 }), 409, /refusing to scale/);
  await expectError(t.req('POST', '/v1/apps/shop/scale', { service: 'web' }), 400, /give either service and replicas/);
  await expectError(t.req('POST', '/v1/apps/shop/scale', { service: 'web', replicas: -1 }), 400, /^replicas: /);
  await expectError(t.req('POST', '/v1/apps/shop/scale', { service: 'wbe', replicas: 2 }), 404, /did you mean "web"/);
  await expectError(t.req('POST', '/v1/apps/shop/scale', { services: { web: 2, nope: 1 } }), 404, /nope/);
  assert.equal(t.store.getService({ app: 'shop', env: 'prod', service: 'web' })!.replicas, 1, 'all or nothing');
  const r = await t.req('POST', '/v1/apps/shop/scale', { service: 'web', replicas: 3 });
  assert.deepEqual([r.statusCode, r.json()], [202, { service: 'web', from: 1, to: 3 }]);
  assert.deepEqual(t.calls, ['svc shop/prod/web']);
}, { hostMemoryBytes: 1024 * 2 ** 20 }));

test('rollback, reload, restart: 404 unknown, 409 when there is nothing to go back to or it is rolling out, 202 when done', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  await expectError(t.req('POST', '/v1/apps/shop/rollback', { env: 'staging' }), 404, /staging/);
  await expectError(t.req('POST', '/v1/apps/shop/rollback', { service: 'web' }), 404, /web has no earlier healthy release to roll back to/);
  await expectError(t.req('POST', '/v1/apps/shop/rollback', { service: 'web', to: '1' }), 409, /web already runs release 1/);
  await expectError(t.req('POST', '/v1/apps/shop/reload', {}), 400, /^service: /);
  await expectError(t.req('POST', '/v1/apps/shop/reload', { service: 'wbe' }), 404, /did you mean "web"/);
  const reload = await t.req('POST', '/v1/apps/shop/reload', { service: 'web' });
  assert.equal(reload.statusCode, 202, reload.body);
  assert.equal(reload.json().service, 'web');
  await expectError(t.req('POST', '/v1/apps/nope/restart', {}), 404, /nope/);
  const restart = await t.req('POST', '/v1/apps/shop/restart', {});
  assert.equal(restart.statusCode, 202, restart.body);
  assert.deepEqual(restart.json().restarts.map((x: { service: string; from: number; release: number }) => [x.service, x.from, x.release]), [['web', 1, 2]]);
  // Release 2 is rolling out now: a second restart waits for it.
  await expectError(t.req('POST', '/v1/apps/shop/restart', {}), 409, /rolling out release 2/);
  assert.deepEqual(t.calls, ['svc shop/prod/web', 'svc shop/prod/web']);
}));

test('exec: 400 without a command, 404 for an unknown service, 409 when the server cannot exec', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  await expectError(t.req('POST', '/v1/apps/shop/exec', { service: 'web', cmd: [] }), 400, /^cmd: give the command to run/);
  // This harness has no exec port (as a server without an engine): the route says so before anything runs.
  await expectError(t.req('POST', '/v1/apps/shop/exec', { service: 'web', cmd: ['ls'] }), 409, /cannot run commands/);
}));

test('restart of one instance: 401 without a token, 400 for a bad env, 404 for an instance of another app or env, 409 when it cannot restart now, 202 marks it and enqueues', () => withTestApi(async (t) => {
  const svc = t.addService('shop', 'prod', 'web', { replicas: 2 });
  t.addService('blog', 'prod', 'web');
  let n = 0;
  const mk = (app: string, releaseId: string, state: 'running' | 'pending' = 'running') => t.store.createInstance({
    id: `${app}-web-${++n}`, app, env: 'prod', service: 'web', releaseId, host: 'local', address: '127.0.0.1', state, health: 'healthy', createdAt: 1,
  }, { min: 41000, max: 41100, isFree: () => true });
  const [a, b] = [mk('shop', svc.releaseId), mk('shop', svc.releaseId)];
  const other = mk('blog', t.store.getService({ app: 'blog', env: 'prod', service: 'web' })!.releaseId);
  const url = (id: string) => `/v1/apps/shop/instances/${id}/restart`;
  assert.equal((await t.anon('POST', url(a.id), {})).statusCode, 401);
  await expectError(t.req('POST', url(a.id), { env: 'Not An Env!' }), 400, /^env: /);
  await expectError(t.req('POST', url(other.id), {}), 404, /shop\/prod has no instance/);
  await expectError(t.req('POST', url('nope'), {}), 404, /no instance nope/);
  await expectError(t.req('POST', url(a.id), { env: 'staging' }), 404, /staging/);
  const r = await t.req('POST', url(a.id), {});
  assert.deepEqual([r.statusCode, r.json()], [202, { instance: a.id, service: 'web', requestedAt: t.store.getInstance(a.id)!.replaceRequestedAt }]);
  assert.ok(t.store.getInstance(a.id)!.replaceRequestedAt);
  assert.equal(t.store.getInstance(b.id)!.replaceRequestedAt, undefined, 'the other instance is untouched');
  assert.deepEqual(t.calls, ['svc shop/prod/web']);
  assert.equal(t.store.listEvents({ app: 'shop' }).at(-1)?.kind, 'instance.restart_requested');
  await expectError(t.req('POST', url(a.id), {}), 409, /being restarted already/);
  const pending = mk('shop', svc.releaseId, 'pending');
  await expectError(t.req('POST', url(pending.id), {}), 409, /is pending, not running/);
  // A rollout in progress: its instances are being replaced already.
  const restart = await t.req('POST', '/v1/apps/shop/restart', {});
  assert.equal(restart.statusCode, 202, restart.body);
  await expectError(t.req('POST', url(b.id), {}), 409, /replacing its instances/);
  assert.equal(t.store.getInstance(b.id)!.replaceRequestedAt, undefined, 'a refused request changes nothing');
}));
