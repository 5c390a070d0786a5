/**
 * In-process contract tests of the volume routes (src/api/volume-routes.ts): no token → 401, bad input → 400 naming the field, unknown →
 * 404 with a did-you-mean, and the happy path (volumes of every release, users from the store, sizes from the engine port).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, withTestApi } from '../../test/helpers/api-inject.ts';

test('volume routes: 401, 400 naming the field, 404 for an unknown app or environment, sizes and users', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'db', { volumes: [{ type: 'volume', source: 'pgdata', target: '/var/lib/data', readOnly: false }] });
  t.addService('shop', 'prod', 'web', { volumes: [{ type: 'volume', source: 'pgdata', target: '/backup', readOnly: true },
    { type: 'bind', source: '/srv/static', target: '/static', readOnly: true }] });
  t.addService('shop', 'pre', 'db', { volumes: [{ type: 'volume', source: 'pgdata', target: '/var/lib/data', readOnly: false }] });
  t.addService('blog', 'prod', 'web');
  t.volumeSizes.berth_shop_prod_pgdata = 4096;
  await expectError(t.anon('GET', '/v1/volumes'), 401);
  await expectError(t.req('GET', '/v1/volumes?app=Shop!'), 400, /^app: /);
  await expectError(t.req('GET', '/v1/volumes?app=shpo'), 404, /did you mean "shop"/);
  await expectError(t.req('GET', '/v1/volumes?app=shop&env=staging'), 404, /staging/);
  const all = (await t.req('GET', '/v1/volumes')).json().volumes;
  assert.deepEqual(all.map((v: { app: string; env: string; name: string; volume: string; exists: boolean; sizeBytes: number | null }) =>
    [v.app, v.env, v.name, v.volume, v.exists, v.sizeBytes]), [
    ['shop', 'pre', 'pgdata', 'berth_shop_pre_pgdata', false, null],
    ['shop', 'prod', 'pgdata', 'berth_shop_prod_pgdata', true, 4096],
  ]);
  const prod = (await t.req('GET', '/v1/volumes?app=shop&env=prod')).json().volumes;
  assert.equal(prod.length, 1);
  assert.deepEqual(prod[0].services, [{ service: 'db', target: '/var/lib/data', readOnly: false }, { service: 'web', target: '/backup', readOnly: true }]);
  assert.deepEqual(prod[0].containers, []);
  assert.deepEqual((await t.req('GET', '/v1/volumes?app=blog')).json().volumes, []);
}));
