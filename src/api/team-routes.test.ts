/**
 * In-process contract tests of teams, grants and API tokens (src/api/team-routes.ts): 401, 400 naming
 * the field, 404, 409, the happy paths; nobody grants or mints more than they hold; tokens are shown
 * once, stored hashed, capped by their creator, expire and are revoked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashToken } from '../auth/index.ts';
import { expectError, NOW, withTestApi, actAs } from '../../test/helpers/api-inject.ts';

test('teams: 401, 400 naming the field, 409, 404, assign and unassign; only teams one has a role in are listed', () => withTestApi(async (t) => {
  await expectError(t.anon('GET', '/v1/teams'), 401);
  await expectError(t.anon('POST', '/v1/teams', { name: 'web' }), 401);
  await expectError(t.req('POST', '/v1/teams', { name: 'Web Team' }), 400, /^name: /);
  assert.equal((await t.req('POST', '/v1/teams', { name: 'web' })).statusCode, 201);
  assert.equal((await t.req('POST', '/v1/teams', { name: 'data' })).statusCode, 201);
  await expectError(t.req('POST', '/v1/teams', { name: 'web' }), 409, /team "web" exists/);
  t.addService('shop', 'prod', 'web');
  await expectError(t.req('PUT', '/v1/teams/web/apps/shpo'), 404, /did you mean "shop"/);
  await expectError(t.req('PUT', '/v1/teams/nope/apps/shop'), 404, /no team "nope"/);
  assert.deepEqual((await t.req('PUT', '/v1/teams/web/apps/shop')).json(), { app: 'shop', team: 'web' });
  assert.deepEqual((await t.req('PUT', '/v1/teams/data/apps/shop')).json(), { app: 'shop', team: 'data', previous: 'web' });
  await expectError(t.req('DELETE', '/v1/teams/data'), 409, /owns shop/);
  await expectError(t.req('DELETE', '/v1/teams/web/apps/shop'), 404, /does not own/);
  assert.equal((await t.req('DELETE', '/v1/teams/data/apps/shop')).statusCode, 204);
  assert.equal(t.auth.appTeam('shop'), undefined);
  assert.equal((await t.req('DELETE', '/v1/teams/data')).statusCode, 204);
  const ann = actAs(t, 'ann', [{ role: 'viewer', team: 'web' }]);
  assert.deepEqual((await ann('GET', '/v1/teams')).json().teams.map((x: { name: string }) => x.name), ['web']);
  await expectError(ann('POST', '/v1/teams', { name: 'mine' }), 403, /owner/);
}));

test('grants: owners grant anything; a team admin within the team and what they hold; maintainers none; 404 for what one cannot see', () => withTestApi(async (t) => {
  for (const name of ['web', 'data']) t.auth.addTeam({ name, createdAt: 0, createdBy: 'admin' });
  t.auth.addUser({ id: 'u-bob', name: 'bob', passwordHash: '', createdAt: 0, createdBy: 'admin' });
  await expectError(t.anon('POST', '/v1/grants', { user: 'bob', role: 'viewer', team: 'web' }), 401);
  await expectError(t.req('POST', '/v1/grants', { user: 'bob', role: 'king', team: 'web' }), 400, /^role: /);
  await expectError(t.req('POST', '/v1/grants', { user: 'bob', role: 'owner', team: 'web' }), 400, /role owner goes with team/);
  await expectError(t.req('POST', '/v1/grants', { user: 'bob', role: 'viewer', team: 'web', env: 'Prod!' }), 400, /^env: /);
  await expectError(t.req('POST', '/v1/grants', { user: 'nobody', role: 'viewer', team: 'web' }), 404, /no user "nobody"/);
  await expectError(t.req('POST', '/v1/grants', { user: 'bob', role: 'viewer', team: 'nope' }), 404, /no team "nope"/);
  const r = await t.req('POST', '/v1/grants', { user: 'bob', role: 'deployer', team: 'web', env: 'test' });
  assert.equal(r.statusCode, 201, r.body);
  assert.deepEqual({ ...r.json().grant, id: 'x', createdAt: 0 }, { id: 'x', user: 'bob', role: 'deployer', team: 'web', app: '*', env: 'test', createdAt: 0, createdBy: 'admin' });
  await expectError(t.req('POST', '/v1/grants', { user: 'bob', role: 'deployer', team: 'web', env: 'test' }), 409, /already holds/);

  const lead = actAs(t, 'lead', [{ role: 'admin', team: 'web', env: 'test' }]);
  assert.equal((await lead('POST', '/v1/grants', { user: 'bob', role: 'maintainer', team: 'web', env: 'test' })).statusCode, 201);
  await expectError(lead('POST', '/v1/grants', { user: 'bob', role: 'deployer', team: 'web', env: 'prod' }), 403, /only owners, and team admins within what they hold/);
  await expectError(lead('POST', '/v1/grants', { user: 'bob', role: 'viewer', team: 'data' }), 404, /no team "data"/);
  await expectError(lead('POST', '/v1/grants', { user: 'bob', role: 'owner', team: '*' }), 403);
  const maint = actAs(t, 'maint', [{ role: 'maintainer', team: 'web' }]);
  await expectError(maint('POST', '/v1/grants', { user: 'bob', role: 'viewer', team: 'web' }), 403);
  // Lists: the lead sees the grants of the team they administer; bob's own; nothing of data's.
  const dataGrant = (await t.req('POST', '/v1/grants', { user: 'bob', role: 'viewer', team: 'data' })).json().grant.id;
  const seen = (await lead('GET', '/v1/grants')).json().grants.map((g: { team: string; env: string }) => `${g.team}/${g.env}`);
  assert.ok(!seen.includes('data/*'), JSON.stringify(seen));
  await expectError(lead('DELETE', `/v1/grants/${dataGrant}`), 404);
  await expectError(t.req('GET', '/v1/grants?user=nobody'), 404);
  assert.equal((await t.req('DELETE', `/v1/grants/${dataGrant}`)).statusCode, 204);
  await expectError(t.req('DELETE', `/v1/grants/${dataGrant}`), 404);
}));

test('API tokens: shown once, stored hashed, scoped, capped by the creator, expiring, revocable; a token mints none', () => withTestApi(async (t) => {
  t.auth.addTeam({ name: 'web', createdAt: 0, createdBy: 'admin' });
  t.addService('shop', 'test', 'web');
  t.addService('shop', 'prod', 'web');
  t.auth.setAppTeam('shop', 'web');
  const dev = actAs(t, 'dev', [{ role: 'deployer', team: 'web', env: 'test' }]);
  await expectError(t.anon('POST', '/v1/tokens', { name: 'ci', grants: [{ role: 'deployer', team: 'web' }] }), 401);
  await expectError(dev('POST', '/v1/tokens', { name: 'ci', grants: [] }), 400, /^grants: a token needs at least one grant/);
  await expectError(dev('POST', '/v1/tokens', { name: 'ci', expires: '2y', grants: [{ role: 'viewer', team: 'web' }] }), 400, /^expires: /);
  await expectError(dev('POST', '/v1/tokens', { name: 'ci', grants: [{ role: 'viewer', team: 'nope' }] }), 400, /grants\.0\.team: no team "nope"/);
  await expectError(dev('POST', '/v1/tokens', { name: 'ci', grants: [{ role: 'deployer', team: 'web', env: 'prod' }] }), 403, /^grants\.0: dev does not hold deployer/);
  assert.deepEqual(t.auth.listApiTokens(), []);
  const r = await dev('POST', '/v1/tokens', { name: 'ci shop', expires: '1h', grants: [{ role: 'operator', team: 'web', app: 'shop', env: 'test' }] });
  assert.equal(r.statusCode, 201, r.body);
  const { token, id } = r.json();
  assert.match(token, /^bertht_/);
  assert.equal(r.json().expiresAt, NOW + 3600_000);
  assert.ok(!JSON.stringify(t.auth.listApiTokens()).includes(token), 'only the hash is stored');
  const listed = (await dev('GET', '/v1/tokens')).json().tokens;
  assert.equal(listed.length, 1);
  assert.equal(listed[0].token, undefined, 'a list never shows the secret');
  const ci = (method: 'GET' | 'POST', url: string, payload?: object) =>
    t.api.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
  assert.equal((await ci('POST', '/v1/apps/shop/restart', { env: 'test' })).statusCode, 202);
  await expectError(ci('POST', '/v1/apps/shop/restart', { env: 'prod' }), 403);
  await expectError(ci('POST', '/v1/apps/shop/rollback', { env: 'test' }), 403, /deployer/);
  await expectError(ci('POST', '/v1/tokens', { name: 'x', grants: [{ role: 'viewer', team: 'web' }] }), 403, /cannot make tokens/);
  // The creator loses the role: the token loses it too.
  t.auth.deleteGrant('g-dev-0');
  await expectError(ci('POST', '/v1/apps/shop/restart', { env: 'test' }), 404);
  t.auth.addGrant({ id: 'g-dev-1', subject: 'user:u-dev', role: 'deployer', team: 'web', app: '*', env: 'test', createdAt: 0, createdBy: 'admin' });
  // Another user cannot see or revoke it; its creator can.
  const other = actAs(t, 'other', [{ role: 'viewer', team: 'web' }]);
  await expectError(other('DELETE', `/v1/tokens/${id}`), 404);
  assert.deepEqual((await other('GET', '/v1/tokens')).json().tokens, []);
  assert.deepEqual((await dev('DELETE', `/v1/tokens/${id}`)).json(), { id, revoked: true });
  await expectError(ci('GET', '/v1/apps/shop'), 401, /revoked/);
  // Expired tokens are refused.
  const secret = 'bertht_an-expired-token-of-dev';
  t.auth.addApiToken({ id: 'old', name: 'old', hash: hashToken(secret), createdBy: 'user:u-dev', createdAt: 0, expiresAt: NOW, revokedAt: 0, lastUsedAt: 0 });
  await expectError(t.api.inject({ method: 'GET', url: '/v1/apps', headers: { authorization: `Bearer ${secret}` } }), 401, /expired/);
}));
