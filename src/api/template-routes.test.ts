/**
 * In-process contract tests of the template routes (src/api/template-routes.ts): no token → 401, bad input → 400 naming the field, unknown →
 * 404, conflict → 409, the happy path; a refused request changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, withTestApi } from '../../test/helpers/api-inject.ts';

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
