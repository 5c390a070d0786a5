/**
 * In-process contract tests of sessions and users (src/api/auth-routes.ts) and of the auth hook's
 * credentials: login → cookie session + CSRF (portal) or bearer session (CLI), logout, users.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, withTestApi, type TestApi } from '../../test/helpers/api-inject.ts';

async function addUser(t: TestApi, name: string, password = 'correct horse battery'): Promise<void> {
  const r = await t.req('POST', '/v1/users', { name, password });
  assert.equal(r.statusCode, 201, r.body);
}

function cookies(setCookie: string | string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of [setCookie ?? []].flat()) {
    const [kv] = c.split(';');
    const i = kv!.indexOf('=');
    out[kv!.slice(0, i)] = decodeURIComponent(kv!.slice(i + 1));
  }
  return out;
}

test('users: 401 without a token, 400 naming the field, 409 for a taken name, 404 for an unknown one, the happy path', () => withTestApi(async (t) => {
  await expectError(t.anon('GET', '/v1/users'), 401);
  await expectError(t.anon('POST', '/v1/users', { name: 'ann', password: 'correct horse battery' }), 401);
  await expectError(t.anon('DELETE', '/v1/users/ann'), 401);
  await expectError(t.anon('PUT', '/v1/users/ann/password', { password: 'x' }), 401);
  await expectError(t.req('POST', '/v1/users', { name: 'Ann!', password: 'correct horse battery' }), 400, /^name: /);
  await expectError(t.req('POST', '/v1/users', { name: 'ann', password: 'short' }), 400, /^password: at least 10 characters/);
  assert.deepEqual(t.auth.listUsers(), []);
  await addUser(t, 'ann');
  await expectError(t.req('POST', '/v1/users', { name: 'ann', password: 'another long one' }), 409, /user "ann" exists/);
  // Without a password, one is generated and shown once.
  const gen = await t.req('POST', '/v1/users', { name: 'bob' });
  assert.equal(gen.statusCode, 201);
  assert.ok(gen.json().password.length >= 20);
  const list = (await t.req('GET', '/v1/users')).json().users;
  assert.deepEqual(list.map((u: { name: string }) => u.name), ['ann', 'bob']);
  assert.ok(!JSON.stringify(list).includes('scrypt'), 'no password hash in the list');
  await expectError(t.req('DELETE', '/v1/users/nobody'), 404, /no user "nobody"/);
  await expectError(t.req('PUT', '/v1/users/nobody/password', { password: 'a long new password' }), 404);
  await expectError(t.req('PUT', '/v1/users/ann/password', { password: 'short' }), 400, /^password: /);
  assert.equal((await t.req('DELETE', '/v1/users/bob')).statusCode, 204);
  assert.deepEqual(t.auth.listUsers().map((u) => u.name), ['ann']);
}));

test('login: a wrong password or an unknown user is the same 401; the CLI gets a bearer session; a new password ends it', () => withTestApi(async (t) => {
  await addUser(t, 'ann');
  await expectError(t.anon('POST', '/v1/session', { user: 'ann' }), 400, /^password: /);
  const wrong = await t.anon('POST', '/v1/session', { user: 'ann', password: 'wrong password!' });
  const nobody = await t.anon('POST', '/v1/session', { user: 'nobody', password: 'wrong password!' });
  assert.equal(wrong.statusCode, 401);
  assert.deepEqual(wrong.json(), nobody.json(), 'the answer does not say whether the user exists');
  const r = await t.anon('POST', '/v1/session', { user: 'ann', password: 'correct horse battery', client: 'cli' });
  assert.equal(r.statusCode, 201, r.body);
  const { token } = r.json();
  assert.match(token, /^berths_/);
  assert.equal(r.headers['set-cookie'], undefined, 'the CLI gets no cookie');
  const me = await t.api.inject({ method: 'GET', url: '/v1/session', headers: { authorization: `Bearer ${token}` } });
  assert.deepEqual([me.statusCode, me.json().name, me.json().kind, me.json().grants], [200, 'ann', 'user', []]);
  // The session token is stored only as a hash.
  assert.equal(t.auth.getSession(token), undefined);
  // A user without grants is no owner: installation routes are 403, apps are invisible.
  const asAnn = (method: 'GET' | 'POST', url: string, payload?: object) =>
    t.api.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) });
  await expectError(asAnn('GET', '/v1/users'), 403, /owner/);
  t.addService('shop', 'prod', 'web');
  await expectError(asAnn('GET', '/v1/apps/shop'), 404, /no app "shop"/);
  assert.deepEqual((await asAnn('GET', '/v1/apps')).json().apps, [], 'lists show only what the caller may see');
  t.store.addEvent({ app: 'shop', env: 'prod', service: 'web', instance: '', kind: 'x', message: 'm' });
  assert.deepEqual((await asAnn('GET', '/v1/events')).json().events, []);
  assert.equal((await t.req('GET', '/v1/events')).json().events.length, 1);
  await expectError(asAnn('POST', '/v1/apps/shop/scale', { service: 'web', replicas: 5 }), 404);
  assert.equal(t.store.getService({ app: 'shop', env: 'prod', service: 'web' })!.replicas, 1);
  // A new password ends every session.
  assert.equal((await t.req('PUT', '/v1/users/ann/password', { password: 'a brand new password' })).json().sessionsEnded, 1);
  await expectError(asAnn('GET', '/v1/session'), 401, /log in again/);
  // Logout ends just that session.
  const again = (await t.anon('POST', '/v1/session', { user: 'ann', password: 'a brand new password', client: 'cli' })).json().token;
  const out = await t.api.inject({ method: 'DELETE', url: '/v1/session', headers: { authorization: `Bearer ${again}` } });
  assert.deepEqual(out.json(), { loggedOut: true });
  await expectError(t.api.inject({ method: 'GET', url: '/v1/session', headers: { authorization: `Bearer ${again}` } }), 401);
  // The admin token still works (the bootstrap owner); logging it "out" ends nothing.
  assert.deepEqual((await t.req('DELETE', '/v1/session')).json(), { loggedOut: false });
  assert.equal((await t.req('GET', '/v1/session')).json().kind, 'admin');
}));

test('portal login: HttpOnly SameSite=Strict cookie + CSRF cookie; a mutating request without X-Berth-CSRF is 403 and changes nothing', () => withTestApi(async (t) => {
  await addUser(t, 'ann');
  const r = await t.anon('POST', '/v1/session', { user: 'ann', password: 'correct horse battery' });
  assert.equal(r.statusCode, 201, r.body);
  const set = [r.headers['set-cookie'] ?? []].flat();
  const session = set.find((c) => c.startsWith('berth_session='))!;
  assert.match(session, /; HttpOnly/);
  assert.match(session, /; SameSite=Strict/);
  assert.doesNotMatch(session, /; Secure/, 'not Secure over plain HTTP (the API is not TLS here)');
  assert.doesNotMatch(set.find((c) => c.startsWith('berth_csrf='))!, /HttpOnly/, 'the page must read the CSRF cookie');
  const c = cookies(r.headers['set-cookie']);
  assert.equal(r.json().csrf, c.berth_csrf);
  assert.equal(r.json().token, undefined, 'the session token is never in a portal answer body');
  const cookie = `berth_session=${encodeURIComponent(c.berth_session!)}; berth_csrf=${encodeURIComponent(c.berth_csrf!)}`;
  // Reads need only the cookie.
  const me = await t.api.inject({ method: 'GET', url: '/v1/session', headers: { cookie } });
  assert.deepEqual([me.statusCode, me.json().via], [200, 'cookie']);
  // Make ann an owner so that the write below would succeed with the CSRF header.
  t.auth.addGrant({ id: 'g1', subject: `user:${t.auth.userByName('ann')!.id}`, role: 'owner', team: '*', app: '*', env: '*', createdAt: 0, createdBy: 'admin' });
  const body = { name: 'carl', password: 'correct horse battery' };
  await expectError(t.api.inject({ method: 'POST', url: '/v1/users', headers: { cookie }, payload: body }), 403, /X-Berth-CSRF/i);
  await expectError(t.api.inject({ method: 'POST', url: '/v1/users', headers: { cookie, 'x-berth-csrf': 'forged' }, payload: body }), 403, /CSRF/);
  assert.equal(t.auth.userByName('carl'), undefined);
  const ok = await t.api.inject({ method: 'POST', url: '/v1/users', headers: { cookie, 'x-berth-csrf': c.berth_csrf! }, payload: body });
  assert.equal(ok.statusCode, 201, ok.body);
  // A cookie session's token is not a bearer token (and a CLI token is no cookie).
  await expectError(t.api.inject({ method: 'GET', url: '/v1/session', headers: { authorization: `Bearer ${c.berth_session}` } }), 401);
  // Logout clears both cookies.
  const out = await t.api.inject({ method: 'DELETE', url: '/v1/session', headers: { cookie, 'x-berth-csrf': c.berth_csrf! } });
  assert.equal(out.statusCode, 200);
  assert.deepEqual(Object.values(cookies(out.headers['set-cookie'])), ['', '']);
  await expectError(t.api.inject({ method: 'GET', url: '/v1/session', headers: { cookie } }), 401);
}));

test('hardening: login attempts per user and per address, wrong credentials per address → 429 with Retry-After; 413 for a huge body; security headers', () => withTestApi(async (t) => {
  await addUser(t, 'ann');
  const login = (password: string, remoteAddress = '10.0.0.1', user = 'ann') =>
    t.api.inject({ method: 'POST', url: '/v1/session', remoteAddress, payload: { user, password, client: 'cli' } });
  for (let i = 0; i < 10; i++) assert.equal((await login('wrong password!', `10.0.1.${i}`)).statusCode, 401);
  // The eleventh try for ann — from yet another address, with the right password — waits.
  const limited = await login('correct horse battery', '10.0.2.1');
  assert.equal(limited.statusCode, 429, limited.body);
  assert.match(limited.json().error.message, /too many login attempts for this user: try again in \d+ s/);
  assert.ok(Number(limited.headers['retry-after']) >= 1);
  // Per address: 30 attempts, whatever the user.
  for (let i = 0; i < 30; i++) await login('wrong password!', '10.0.3.1', `u${i}`);
  assert.equal((await login('x', '10.0.3.1', 'zed')).statusCode, 429);
  // Wrong tokens from one address: after 30, even a good token from there waits; other addresses do not.
  const bearer = (token: string, remoteAddress: string) => t.api.inject({ method: 'GET', url: '/v1/ping', remoteAddress, headers: { authorization: `Bearer ${token}` } });
  for (let i = 0; i < 30; i++) assert.equal((await bearer(`guess-${i}`, '10.0.4.1')).statusCode, 401);
  const blocked = await bearer('test-token', '10.0.4.1');
  assert.equal(blocked.statusCode, 429);
  assert.ok(Number(blocked.headers['retry-after']) >= 1);
  assert.equal((await bearer('test-token', '10.0.4.2')).statusCode, 200);
  // No credential at all is not a wrong one.
  for (let i = 0; i < 40; i++) await t.api.inject({ method: 'GET', url: '/v1/ping', remoteAddress: '10.0.5.1' });
  assert.equal((await bearer('test-token', '10.0.5.1')).statusCode, 200);
  // Bodies: 16 KiB for credentials.
  const huge = await t.anon('POST', '/v1/session', { user: 'ann', password: 'x'.repeat(20_000) });
  assert.equal(huge.statusCode, 413, huge.body);
  assert.equal(huge.json().error.code, 'invalid_input');
  // Headers on answers, errors included.
  for (const r of [await t.req('GET', '/v1/ping'), huge, limited]) {
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(r.headers['referrer-policy'], 'no-referrer');
  }
}));
