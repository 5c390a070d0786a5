/**
 * In-process contract tests of the registry routes (src/api/registry-routes.ts): no token → 401, bad input → 400 naming the field, unknown →
 * 404, conflict → 409, the happy path; a refused request changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, withTestApi } from '../../test/helpers/api-inject.ts';

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
