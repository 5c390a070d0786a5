/**
 * In-process contract tests of the resource route modules (config, templates, alerts, registry,
 * builds, images, promote, metrics): no token → 401, bad input → 400 naming the field, unknown →
 * 404, conflict → 409, the happy path; a refused request changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, withTestApi } from '../../test/helpers/api-inject.ts';

test('config routes: 401, 400 naming the field, 404 with --create hint, the happy path (set → list → get → history → unset)', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  for (const [m, u] of [['GET', '/v1/apps/shop/config'], ['PUT', '/v1/apps/shop/config'], ['DELETE', '/v1/apps/shop/config'],
    ['GET', '/v1/apps/shop/config/A'], ['GET', '/v1/apps/shop/config-history']] as const) await expectError(t.anon(m, u, m === 'GET' ? undefined : {}), 401);
  await expectError(t.req('PUT', '/v1/apps/shop/config', { entries: [] }), 400, /^entries: give at least one entry/);
  await expectError(t.req('PUT', '/v1/apps/shop/config', { entries: [{ key: 'A' }] }), 400, /^entries\.0\.value: /);
  await expectError(t.req('PUT', '/v1/apps/shpo/config', { entries: [{ key: 'A', value: '1' }] }), 404, /did you mean "shop".*--create/);
  await expectError(t.req('GET', '/v1/apps/Shop!/config'), 400, /app name "Shop!" is invalid/);
  assert.equal(t.config.version('shop', 'prod'), 0, 'nothing stored');
  const set = await t.req('PUT', '/v1/apps/shop/config', { entries: [{ key: 'A', value: '1' }, { key: 'S', value: 'secret-value', secret: true }] });
  assert.equal(set.statusCode, 200, set.body);
  assert.equal(set.json().changed, true);
  assert.deepEqual(t.calls, ['config shop/prod']);
  const list = (await t.req('GET', '/v1/apps/shop/config')).json();
  assert.deepEqual(list.entries.map((e: { key: string; value?: string }) => [e.key, e.value]), [['A', '1'], ['S', undefined]]);
  assert.equal((await t.req('GET', '/v1/apps/shop/config/S?reveal=true')).json().entry.value, 'secret-value');
  await expectError(t.req('GET', '/v1/apps/shop/config/S?reveal=yes'), 400, /^reveal: /);
  assert.equal((await t.req('GET', '/v1/apps/shop/config-history')).json().versions.length, 1);
  await expectError(t.req('DELETE', '/v1/apps/shop/config', { keys: [] }), 400, /^keys: give at least one key/);
  assert.equal((await t.req('DELETE', '/v1/apps/shop/config?keys=A')).json().changed, true);
  // Configure before the first deploy: --create.
  assert.equal((await t.req('PUT', '/v1/apps/blog/config', { create: true, entries: [{ key: 'A', value: '1' }] })).statusCode, 200);
}));

test('template routes: 401, 400 naming the field or the template line, 404, the happy path', () => withTestApi(async (t) => {
  await expectError(t.anon('PUT', '/v1/templates/t', {}), 401);
  await expectError(t.anon('GET', '/v1/templates'), 401);
  await expectError(t.anon('DELETE', '/v1/templates/t'), 401);
  await expectError(t.req('PUT', '/v1/templates/t', { source: 'x', dest: 'rel/path' }), 400, /^dest: an absolute path/);
  await expectError(t.req('PUT', '/v1/templates/Bad_Name', { source: 'x', dest: '/tmp/x' }), 400, /^name: /);
  await expectError(t.req('PUT', '/v1/templates/t', { source: '{{ range', dest: '/tmp/x' }), 400, /t:1:/);
  assert.deepEqual((await t.req('GET', '/v1/templates')).json(), { templates: [] });
  const ok = await t.req('PUT', '/v1/templates/t', { source: 'hello', dest: '/tmp/x' });
  assert.deepEqual([ok.statusCode, ok.json()], [200, { name: 't', dest: '/tmp/x' }]);
  assert.deepEqual(t.calls, ['templates']);
  assert.equal((await t.req('GET', '/v1/templates')).json().templates[0].name, 't');
  assert.equal((await t.req('DELETE', '/v1/templates/t')).statusCode, 204);
  await expectError(t.req('DELETE', '/v1/templates/t'), 404, /no template t/);
}));

test('alert routes: 401, 400 naming the field, 404, the happy path', () => withTestApi(async (t) => {
  await expectError(t.anon('PUT', '/v1/alerts/a', {}), 401);
  await expectError(t.anon('GET', '/v1/alerts'), 401);
  await expectError(t.anon('DELETE', '/v1/alerts/a'), 401);
  await expectError(t.req('PUT', '/v1/alerts/a', { metric: 'cpu', threshold: 1 }), 400, /^metric: /);
  await expectError(t.req('PUT', '/v1/alerts/a', { metric: 'restarts', threshold: 1, window: '5 minutes' }), 400, /^window: /);
  await expectError(t.req('PUT', '/v1/alerts/a', { metric: 'restarts', threshold: 1, webhook: 'ftp://x' }), 400, /^webhook: /);
  assert.deepEqual((await t.req('GET', '/v1/alerts')).json(), { alerts: [] });
  const ok = await t.req('PUT', '/v1/alerts/a', { metric: 'restarts', threshold: 3, window: '1m30s' });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.equal(ok.json().rule.windowMs, 90_000);
  assert.deepEqual(t.calls, ['alerts']);
  assert.equal((await t.req('DELETE', '/v1/alerts/a')).statusCode, 204);
  await expectError(t.req('DELETE', '/v1/alerts/a'), 404, /no alert a/);
}));

test('registry routes: 401, 400 naming the field, 404 for an unknown registration, register → heartbeat → deregister', () => withTestApi(async (t) => {
  for (const [m, u] of [['GET', '/v1/registry'], ['GET', '/v1/registry/prod/db'], ['GET', '/v1/registry/prod/db/stream'], ['POST', '/v1/registry/prod/db'],
    ['PUT', '/v1/registry/external/x/heartbeat'], ['DELETE', '/v1/registry/external/x']] as const) await expectError(t.anon(m, u, m === 'POST' ? {} : undefined), 401);
  await expectError(t.req('POST', '/v1/registry/prod/db', { address: '10.0.0.5', port: 70000 }), 400, /^port: /);
  await expectError(t.req('POST', '/v1/registry/prod/DB', { address: '10.0.0.5', port: 5432 }), 400, /^service: /);
  await expectError(t.req('GET', '/v1/registry/prod/db?wait=soon'), 400, /^wait: /);
  assert.deepEqual(t.calls, []);
  const reg = await t.req('POST', '/v1/registry/prod/db', { address: '10.0.0.5', port: 5432 });
  assert.equal(reg.statusCode, 201, reg.body);
  const { id } = reg.json();
  assert.equal((await t.req('PUT', `/v1/registry/external/${id}/heartbeat`)).json().id, id);
  assert.deepEqual((await t.req('GET', '/v1/registry')).json(), { index: 1, entries: [] });
  assert.equal((await t.req('GET', '/v1/registry/prod/db')).json().service, 'db');
  assert.equal((await t.req('DELETE', `/v1/registry/external/${id}`)).statusCode, 204);
  await expectError(t.req('DELETE', `/v1/registry/external/${id}`), 404, /no external registration/);
  await expectError(t.req('PUT', `/v1/registry/external/${id}/heartbeat`), 404, /register again/);
  assert.deepEqual(t.calls, ['registry', 'registry', 'registry']);
}));

test('build routes: 401, 400 naming the parameter, 404 for unknown builds and apps, 409 cancelling a finished build, the happy path', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  t.builds.push({ id: 'b1', app: 'shop', status: 'succeeded', message: 'deployed' }, { id: 'b2', app: 'shop', status: 'running', message: '' });
  for (const [m, u] of [['GET', '/v1/builds'], ['GET', '/v1/builds/b1'], ['POST', '/v1/builds/b1/cancel'], ['GET', '/v1/builds/b1/logs']] as const) {
    await expectError(t.anon(m, u), 401);
  }
  await expectError(t.req('GET', '/v1/builds?limit=0'), 400, /^limit: /);
  await expectError(t.req('GET', '/v1/builds?app=shpo'), 404, /did you mean "shop"/);
  await expectError(t.req('GET', '/v1/builds/nope'), 404, /no build nope/);
  await expectError(t.req('GET', '/v1/builds/b1/logs?follow=maybe'), 400, /^follow: /);
  await expectError(t.req('POST', '/v1/builds/b1/cancel'), 409, /build b1 succeeded before it could be cancelled/);
  assert.deepEqual((await t.req('GET', '/v1/builds?app=shop')).json().builds.map((b: { id: string }) => b.id), ['b1', 'b2']);
  assert.equal((await t.req('GET', '/v1/builds/b1')).json().build.status, 'succeeded');
  assert.equal((await t.req('GET', '/v1/builds/b1/logs')).body, 'log of b1\n');
  assert.equal((await t.req('POST', '/v1/builds/b2/cancel')).json().build.status, 'cancelled');
}));

test('image routes: 401, 400 naming the field, 404 for an unknown app, 409 without a registry', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  await expectError(t.anon('GET', '/v1/images'), 401);
  await expectError(t.anon('POST', '/v1/images/gc', {}), 401);
  await expectError(t.req('POST', '/v1/images/gc', { keep: 0 }), 400, /^keep: keep must be at least 1/);
  await expectError(t.req('POST', '/v1/images/gc', { kep: 2 }), 400, /kep/);
  await expectError(t.req('GET', '/v1/images?app=shpo'), 404, /did you mean "shop"/);
  // This harness runs no registry (as a server without docker-registry): the routes say so.
  await expectError(t.req('GET', '/v1/images'), 409, /image registry is not running/);
  await expectError(t.req('POST', '/v1/images/gc', {}), 409, /image registry is not running/);
}));

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

test('metrics routes: 401, 400 naming the parameter, 404 for an unknown app', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  await expectError(t.anon('GET', '/metrics'), 401);
  await expectError(t.anon('GET', '/v1/metrics/query?kind=cpu'), 401);
  await expectError(t.anon('GET', '/v1/top'), 401);
  await expectError(t.req('GET', '/v1/metrics/query?kind=nope'), 400, /^kind: /);
  await expectError(t.req('GET', '/v1/metrics/query?kind=cpu&app=shpo'), 404, /did you mean "shop"/);
  await expectError(t.req('GET', '/v1/top?app=shpo'), 404, /did you mean "shop"/);
}));
