/**
 * In-process contract tests of the registry-login routes (src/api/registry-login-routes.ts): no token → 401, bad input → 400 naming
 * the field, unknown → 404, the happy path; a password never comes back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, withTestApi } from '../../test/helpers/api-inject.ts';

test('registry-login routes: 401, 400 naming the field or the host, 404 for a host without a login; the password is never returned', () => withTestApi(async (t) => {
  await expectError(t.anon('GET', '/v1/registry-logins'), 401);
  await expectError(t.anon('PUT', '/v1/registry-logins/ghcr.io', { username: 'a', password: 'b' }), 401);
  await expectError(t.anon('DELETE', '/v1/registry-logins/ghcr.io'), 401);
  await expectError(t.req('PUT', '/v1/registry-logins/ghcr.io', { username: 'a' }), 400, /^password: /);
  await expectError(t.req('PUT', '/v1/registry-logins/ghcr.io', { username: '', password: 'p' }), 400, /^username: username must not be empty/);
  await expectError(t.req('PUT', '/v1/registry-logins/ghcr.io', { username: 'a', password: 'p', extra: 1 }), 400, /extra/);
  await expectError(t.req('PUT', `/v1/registry-logins/${encodeURIComponent('https://ghcr.io')}`, { username: 'a', password: 'p' }), 400, /without a scheme: ghcr\.io/);
  await expectError(t.req('DELETE', '/v1/registry-logins/ghcr.io'), 404, /no login for registry ghcr\.io/);
  assert.deepEqual((await t.req('GET', '/v1/registry-logins')).json(), { logins: [] }, 'nothing stored by the refusals');
  const put = await t.req('PUT', '/v1/registry-logins/127.0.0.1:5001', { username: 'alice', password: 's3cret-pw' });
  assert.equal(put.statusCode, 200, put.body);
  assert.equal(put.body.includes('s3cret-pw'), false);
  const list = await t.req('GET', '/v1/registry-logins');
  assert.deepEqual(list.json().logins.map((l: { host: string; username: string }) => [l.host, l.username]), [['127.0.0.1:5001', 'alice']]);
  assert.equal(list.body.includes('s3cret-pw'), false);
  assert.equal((await t.req('DELETE', '/v1/registry-logins/127.0.0.1:5001')).statusCode, 204);
  assert.deepEqual((await t.req('GET', '/v1/registry-logins')).json(), { logins: [] });
}));
