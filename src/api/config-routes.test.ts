/**
 * In-process contract tests of the config routes (src/api/config-routes.ts): no token → 401, bad input → 400 naming the field, unknown →
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
