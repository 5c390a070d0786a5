/**
 * In-process contract tests of single sign-on (src/api/sso-routes.ts): providers (401, 400 naming the
 * field, 404, 409, the happy path; the secret sealed, never listed, never audited), and the OIDC flow
 * against a provider on 127.0.0.1 that the test controls (test/helpers/mini-idp.ts): the portal's
 * cookie session, the CLI's one-time code, a replayed callback, a callback from another browser, an
 * open redirect, group → team mapping re-evaluated at the next login, and the audit entries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { expectError, withTestApi, type TestApi } from '../../test/helpers/api-inject.ts';
import { startMiniIdp, type MiniIdp } from '../../test/helpers/mini-idp.ts';

const ldap = { kind: 'ldap', ldap: { url: 'ldap://127.0.0.1:1', userDn: 'uid={user},ou=people,dc=example,dc=com' }, mappings: [{ group: 'devs', team: 'web', role: 'deployer' }] };

function oidcBody(idp: MiniIdp, o: Record<string, unknown> = {}) {
  return {
    kind: 'oidc', displayName: 'Example SSO', oidc: { issuer: idp.issuer, clientId: 'berth' }, secret: 'the-client-secret-123',
    mappings: [{ group: 'devs', team: 'web', role: 'deployer' }, { group: 'viewers', team: 'web', role: 'viewer' }], ...o,
  };
}

function setCookies(r: LightMyRequestResponse): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of [r.headers['set-cookie'] ?? []].flat()) {
    const [kv] = c.split(';');
    const i = kv!.indexOf('=');
    out[kv!.slice(0, i)] = decodeURIComponent(kv!.slice(i + 1));
  }
  return out;
}

/** Starts a login as a browser would; returns the provider's URL (with state, nonce) and the binding cookie. */
async function start(t: TestApi, idp: MiniIdp, query = '') {
  const r = await t.api.inject({ method: 'GET', url: `/v1/sso/corp/start${query}` });
  assert.equal(r.statusCode, 302, r.body);
  const to = new URL(r.headers.location!);
  assert.equal(to.origin + to.pathname, `${idp.issuer}/auth`);
  idp.nonce = to.searchParams.get('nonce')!;
  const binding = setCookies(r).berth_sso!;
  assert.ok(binding, 'a binding cookie');
  assert.match(String(r.headers['set-cookie']), /HttpOnly; SameSite=Lax/);
  return { state: to.searchParams.get('state')!, redirectUri: new URL(to.searchParams.get('redirect_uri')!), binding };
}

function callback(t: TestApi, s: { state: string; redirectUri: URL; binding?: string }) {
  return t.api.inject({
    method: 'GET', url: `${s.redirectUri.pathname}?code=c-${randomBytes(4).toString('hex')}&state=${encodeURIComponent(s.state)}`,
    ...(s.binding ? { headers: { cookie: `berth_sso=${s.binding}` } } : {}),
  });
}

test('providers: 401 without a token, 400 naming the field, 404, 409, create and replace; the secret is sealed, never listed nor audited', () => withTestApi(async (t) => {
  const idp = await startMiniIdp();
  try {
    await expectError(t.anon('GET', '/v1/sso/providers'), 401);
    await expectError(t.anon('PUT', '/v1/sso/providers/corp', oidcBody(idp)), 401);
    await expectError(t.anon('DELETE', '/v1/sso/providers/corp'), 401);
    await expectError(t.req('PUT', '/v1/sso/providers/corp', { kind: 'oidc' }), 400, /^oidc: give the issuer/);
    await expectError(t.req('PUT', '/v1/sso/providers/corp', oidcBody(idp, { secret: undefined })), 400, /^secret: /);
    await expectError(t.req('PUT', '/v1/sso/providers/corp', oidcBody(idp, { oidc: { issuer: 'http://idp.example.com', clientId: 'b' } })), 400, /^oidc.issuer: must be https/);
    await expectError(t.req('PUT', '/v1/sso/providers/corp', oidcBody(idp, { mappings: [{ group: 'g', team: 'web', role: 'boss' }] })), 400, /^mappings.0.role: /);
    await expectError(t.req('PUT', '/v1/sso/providers/Corp!', oidcBody(idp)), 400, /^name: /);
    await expectError(t.req('PUT', '/v1/sso/providers/options', oidcBody(idp)), 400, /^name: /);
    assert.deepEqual(t.auth.listProviders(), [], 'nothing stored by a refused request');
    const made = await t.req('PUT', '/v1/sso/providers/corp', oidcBody(idp));
    assert.equal(made.statusCode, 201, made.body);
    assert.equal(made.json().provider.secretSet, true);
    // Replaced without a secret: the stored one is kept.
    const again = await t.req('PUT', '/v1/sso/providers/corp', oidcBody(idp, { secret: undefined, displayName: 'Corp' }));
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.json().provider.secretSet, true);
    await expectError(t.req('PUT', '/v1/sso/providers/corp', ldap), 409, /of kind "oidc": remove it first/);
    const list = await t.req('GET', '/v1/sso/providers');
    assert.equal(list.json().providers[0].displayName, 'Corp');
    assert.ok(!list.body.includes('the-client-secret-123'), 'no secret in the list');
    assert.ok(!readFileSync(join(t.dir, 'auth.db')).includes('the-client-secret-123'), 'the secret is sealed in auth.db');
    assert.ok(!JSON.stringify(t.audit.list({})).includes('the-client-secret-123'), 'the audit log redacts it');
    assert.equal(t.audit.list({ action: 'PUT /v1/sso/providers/:name' }).length >= 2, true);
    // The login page's list is public: enabled providers only, names and kinds.
    assert.equal((await t.req('PUT', '/v1/sso/providers/dir', { ...ldap, enabled: false })).statusCode, 201);
    const opts = await t.anon('GET', '/v1/sso/options');
    assert.deepEqual(opts.json(), { providers: [{ name: 'corp', kind: 'oidc', displayName: 'Corp' }] });
    await expectError(t.req('DELETE', '/v1/sso/providers/nobody'), 404, /no single sign-on provider "nobody"/);
    const gone = await t.req('DELETE', '/v1/sso/providers/dir');
    assert.deepEqual(gone.json(), { name: 'dir', grantsRevoked: 0, sessionsEnded: 0 });
    await expectError(t.anon('GET', '/v1/sso/dir/start'), 404, /no enabled OpenID Connect provider "dir"/);
    await expectError(t.anon('GET', '/v1/sso/corp/start?port=5000'), 400, /^port: /);
    await expectError(t.anon('GET', '/v1/sso/corp/start?port=80&challenge=x'), 400);
  } finally {
    await idp.close();
  }
}));

test('OIDC in the portal: a cookie session for the mapped user; a replayed or foreign-browser callback, a wrong token and an open redirect all fail; each attempt is audited', () => withTestApi(async (t) => {
  const idp = await startMiniIdp();
  try {
    for (const team of ['web', 'data']) assert.equal((await t.req('POST', '/v1/teams', { name: team })).statusCode, 201);
    t.addService('shop', 'prod', 'web');
    t.addService('lake', 'prod', 'etl');
    assert.equal((await t.req('PUT', '/v1/teams/web/apps/shop')).statusCode, 200);
    assert.equal((await t.req('PUT', '/v1/teams/data/apps/lake')).statusCode, 200);
    assert.equal((await t.req('PUT', '/v1/sso/providers/corp', oidcBody(idp))).statusCode, 201);
    idp.idToken = (n) => idp.jwt(idp.claims(n));

    // An absolute return address is not followed: the login lands on the portal's home.
    const s = await start(t, idp, `?return=${encodeURIComponent('https://evil.example/phish')}`);
    const cb = await callback(t, s);
    assert.equal(cb.statusCode, 302, cb.body);
    assert.equal(cb.headers.location, '/');
    const c = setCookies(cb);
    assert.match(c.berth_session!, /^berths_/);
    assert.ok(c.berth_csrf);
    const ann = t.auth.userByName('ann')!;
    assert.equal(ann.external, 'corp:u-1');
    assert.equal(ann.passwordHash, '', 'an external user has no password');
    const asAnn = (url: string) => t.api.inject({ method: 'GET', url, headers: { cookie: `berth_session=${c.berth_session}` } });
    assert.equal((await asAnn('/v1/apps/shop')).statusCode, 200, 'team web (devs → deployer)');
    assert.equal((await asAnn('/v1/apps/lake')).statusCode, 404, "team data's app is not even visible");
    assert.deepEqual((await asAnn('/v1/apps')).json().apps.map((a: { name: string }) => a.name), ['shop']);

    // The same callback again (a replayed state and code): nothing.
    const replay = await callback(t, s);
    assert.equal(replay.statusCode, 302);
    assert.match(decodeURIComponent(replay.headers.location!), /^\/login\?sso_error=single sign-on failed: this login is unknown, already finished/);
    assert.equal(setCookies(replay).berth_session, undefined);
    // A callback without the starting browser's cookie (login CSRF): refused, and the login is spent.
    const s2 = await start(t, idp, '?return=/apps/shop');
    const foreign = await callback(t, { ...s2, binding: 'someone-elses-cookie' });
    assert.match(decodeURIComponent(foreign.headers.location!), /started in another browser/);
    assert.match(decodeURIComponent((await callback(t, s2)).headers.location!), /unknown, already finished/);
    // A token signed by a key not in the provider's JWKS.
    idp.idToken = (n) => idp.jwt(idp.claims(n), idp.rogueKey);
    const forged = await callback(t, await start(t, idp));
    assert.match(decodeURIComponent(forged.headers.location!), /sso_error=single sign-on failed: .*signature/);
    // A path of this site is where the person goes.
    idp.idToken = (n) => idp.jwt(idp.claims(n));
    const s3 = await start(t, idp, '?return=/apps/shop%3Fenv%3Dprod');
    assert.equal((await callback(t, s3)).headers.location, '/apps/shop?env=prod');

    const entries = t.audit.list({ action: 'sso.login' });
    assert.deepEqual(entries.map((e) => e.status), [302, 401, 401, 401, 401, 302]);
    assert.equal(entries[0]!.actorName, 'ann');
    assert.match(entries[0]!.result, /user created/);
    assert.match(entries[4]!.result, /signature/);
    assert.ok(!JSON.stringify(entries).includes('berths_'), 'no session token in the audit log');
  } finally {
    await idp.close();
  }
}));

test('OIDC: groups are re-evaluated at every login; out of every mapped group the login is refused and the sessions end; an allowed-domain list is enforced', () => withTestApi(async (t) => {
  const idp = await startMiniIdp();
  try {
    assert.equal((await t.req('POST', '/v1/teams', { name: 'web' })).statusCode, 201);
    t.addService('shop', 'prod', 'web');
    assert.equal((await t.req('PUT', '/v1/teams/web/apps/shop')).statusCode, 200);
    assert.equal((await t.req('PUT', '/v1/sso/providers/corp', oidcBody(idp, { allowedDomains: ['example.com'] }))).statusCode, 201);
    // A grant an owner gave by hand is not the provider's to take.
    idp.idToken = (n) => idp.jwt(idp.claims(n, { groups: ['devs', 'viewers'] }));
    const first = setCookies(await callback(t, await start(t, idp)));
    const ann = t.auth.userByName('ann')!;
    const roles = () => t.auth.listGrants({ subject: `user:${ann.id}` }).map((g) => `${g.role}@${g.team}/${g.createdBy}`).sort();
    assert.deepEqual(roles(), ['deployer@web/sso:corp', 'viewer@web/sso:corp']);
    t.auth.addGrant({ id: 'manual', subject: `user:${ann.id}`, role: 'operator', team: 'web', app: '*', env: '*', createdAt: 1, createdBy: 'admin' });
    idp.idToken = (n) => idp.jwt(idp.claims(n, { groups: ['viewers'] }));
    setCookies(await callback(t, await start(t, idp)));
    assert.deepEqual(roles(), ['operator@web/admin', 'viewer@web/sso:corp'], 'deployer went with the group');
    t.auth.deleteGrant('manual');
    // Out of every group: refused, and the first session is over.
    idp.idToken = (n) => idp.jwt(idp.claims(n, { groups: ['elsewhere'] }));
    const out = await callback(t, await start(t, idp));
    assert.match(decodeURIComponent(out.headers.location!), /in none of the groups provider "corp" maps to a team/);
    assert.deepEqual(roles(), []);
    const old = await t.api.inject({ method: 'GET', url: '/v1/session', headers: { cookie: `berth_session=${first.berth_session}` } });
    assert.equal(old.statusCode, 401, 'the earlier session ended');
    // Another domain: refused.
    idp.idToken = (n) => idp.jwt(idp.claims(n, { email: 'ann@evil.example', sub: 'u-2', preferred_username: 'eve' }));
    const evil = await callback(t, await start(t, idp));
    assert.match(decodeURIComponent(evil.headers.location!), /e-mail domain of ann@evil.example is not allowed/);
    assert.equal(t.auth.userByName('eve'), undefined);
    // A local user's name is never taken over by an identity that claims it.
    assert.equal((await t.req('POST', '/v1/users', { name: 'bob', password: 'correct horse battery' })).statusCode, 201);
    idp.idToken = (n) => idp.jwt(idp.claims(n, { sub: 'u-3', preferred_username: 'bob' }));
    const takeover = await callback(t, await start(t, idp));
    assert.match(decodeURIComponent(takeover.headers.location!), /belongs to a local user/);
    // Owners see who signs on through a provider; such a user gets no Berth password.
    const users = (await t.req('GET', '/v1/users')).json().users as { name: string; sso?: string }[];
    assert.deepEqual(users.map((u) => `${u.name}:${u.sso ?? 'password'}`), ['ann:corp', 'bob:password']);
    await expectError(t.req('PUT', '/v1/users/ann/password', { password: 'a long new password' }), 409, /signs on through provider "corp"/);
    // Removing the provider takes its grants and ends its users' sessions.
    idp.idToken = (n) => idp.jwt(idp.claims(n));
    const again = setCookies(await callback(t, await start(t, idp)));
    assert.ok(again.berth_session);
    const rm = await t.req('DELETE', '/v1/sso/providers/corp');
    assert.deepEqual(rm.json(), { name: 'corp', grantsRevoked: 1, sessionsEnded: 1 });
    assert.equal((await t.api.inject({ method: 'GET', url: '/v1/session', headers: { cookie: `berth_session=${again.berth_session}` } })).statusCode, 401);
  } finally {
    await idp.close();
  }
}));

test('OIDC for the CLI: the callback hands a one-time code to 127.0.0.1:PORT; only the verifier behind the challenge spends it, once', () => withTestApi(async (t) => {
  const idp = await startMiniIdp();
  try {
    assert.equal((await t.req('POST', '/v1/teams', { name: 'web' })).statusCode, 201);
    assert.equal((await t.req('PUT', '/v1/sso/providers/corp', oidcBody(idp))).statusCode, 201);
    idp.idToken = (n) => idp.jwt(idp.claims(n));
    const login = async () => {
      const verifier = randomBytes(32).toString('base64url');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      const cb = await callback(t, await start(t, idp, `?port=49152&challenge=${challenge}`));
      const to = new URL(cb.headers.location!);
      assert.equal(to.origin, 'http://127.0.0.1:49152', 'only ever the loopback address');
      assert.equal(setCookies(cb).berth_session, undefined, 'no cookie session for a CLI login');
      return { code: to.searchParams.get('code')!, verifier };
    };
    await expectError(t.anon('POST', '/v1/sso/cli-session', { code: 'x' }), 400, /^verifier: /);
    const a = await login();
    await expectError(t.anon('POST', '/v1/sso/cli-session', { code: a.code, verifier: randomBytes(32).toString('base64url') }), 401, /not yours/);
    await expectError(t.anon('POST', '/v1/sso/cli-session', a), 401, /already used/);
    const b = await login();
    const ok = await t.anon('POST', '/v1/sso/cli-session', b);
    assert.equal(ok.statusCode, 201, ok.body);
    assert.equal(ok.json().user, 'ann');
    const me = await t.api.inject({ method: 'GET', url: '/v1/session', headers: { authorization: `Bearer ${ok.json().token}` } });
    assert.equal(me.json().name, 'ann');
    assert.equal(me.json().grants[0].team, 'web');
  } finally {
    await idp.close();
  }
}));
