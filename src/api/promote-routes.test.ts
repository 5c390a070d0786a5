/**
 * In-process contract tests of the promote routes (src/api/promote-routes.ts): no token → 401, bad input → 400 naming the field, unknown →
 * 404, conflict → 409, the happy path; a refused request changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, withTestApi } from '../../test/helpers/api-inject.ts';

test('promote: 401, 400 for the same environment twice, 404 for an unknown one, 409 while a release is not healthy, 202 deploys', () => withTestApi(async (t) => {
  t.addService('shop', 'staging', 'web');
  await expectError(t.anon('POST', '/v1/apps/shop/promote', { from: 'staging', to: 'prod' }), 401);
  await expectError(t.req('POST', '/v1/apps/shop/promote', { from: 'staging' }), 400, /^to: /);
  await expectError(t.req('POST', '/v1/apps/shop/promote', { from: 'prod', to: 'prod' }), 400, /both "prod"/);
  await expectError(t.req('POST', '/v1/apps/shop/promote', { from: 'stagng', to: 'prod' }), 404, /did you mean "staging"/);
  t.addService('shop', 'staging', 'worker', { status: 'progressing' });
  await expectError(t.req('POST', '/v1/apps/shop/promote', { from: 'staging', to: 'prod' }), 409, /refusing to promote shop from staging to prod/);
  assert.deepEqual(t.calls, []);
  t.store.updateService({ app: 'shop', env: 'staging', service: 'worker' }, { replicas: 1 });
  const rel = t.store.getService({ app: 'shop', env: 'staging', service: 'worker' })!.releaseId;
  t.store.updateRelease(rel, { status: 'healthy' });
  const ok = await t.req('POST', '/v1/apps/shop/promote', { from: 'staging', to: 'prod' });
  assert.equal(ok.statusCode, 202, ok.body);
  const id = ok.json().deployment.id as string;
  assert.deepEqual(ok.json().deployment, { id, app: 'shop', env: 'prod', from: 'staging' });
  // Through the one deploy path: a deployment of prod recorded and handed to the controller.
  const dep = t.store.getDeployment(id)!;
  assert.deepEqual([dep.app, dep.env, dep.status, Object.keys(dep.spec.services).sort()], ['shop', 'prod', 'pending', ['web', 'worker']]);
  assert.deepEqual(t.calls, [`deployment ${id}`]);
}));
