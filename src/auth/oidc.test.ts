/**
 * The OIDC relying party (auth/oidc.ts, openid-client) against a provider the test controls on
 * 127.0.0.1: discovery, JWKS and a token endpoint that answers with the ID token each case crafts
 * (RS256, signed with node:crypto). What an attacker would try: a token signed by another key, an
 * expired one, one for another client or from another issuer, a nonce or state that is not the login's.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { OidcProvider } from './oidc.ts';
import { Unauthorized } from '../core/errors.ts';
import { startMiniIdp } from '../../test/helpers/mini-idp.ts';

const idp = await startMiniIdp();
after(() => idp.close());
const issuer = idp.issuer;
const jwt = idp.jwt;
const b64 = (x: unknown) => Buffer.from(JSON.stringify(x)).toString('base64url');
const rogue = { privateKey: idp.rogueKey };
let lastNonce = '';
let idToken: (nonce: string) => string = () => '';
idp.idToken = () => idToken(lastNonce);

const redirectUri = 'http://127.0.0.1:7070/v1/sso/corp/callback';
const rp = new OidcProvider({ settings: { issuer, clientId: 'berth', scopes: ['profile'], groupsClaim: 'groups', usernameClaim: 'preferred_username' }, clientSecret: 'secret', redirectUri, clock: { now: () => Date.now() } });
const now = () => Math.floor(Date.now() / 1000);
const good = (nonce: string) => ({ iss: issuer, aud: 'berth', sub: 'u-1', nonce, iat: now(), exp: now() + 300, preferred_username: 'ann', groups: ['devs'] });

async function login(token: (nonce: string) => string, o: { state?: string } = {}) {
  const { url, pending } = await rp.start();
  const u = new URL(url);
  assert.equal(u.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(u.searchParams.get('redirect_uri'), redirectUri);
  assert.equal(u.searchParams.get('state'), pending.state);
  lastNonce = pending.nonce;
  idToken = token;
  return rp.finish(new URL(`${redirectUri}?code=c1&state=${encodeURIComponent(o.state ?? pending.state)}`), pending);
}

const refused = (re: RegExp) => (e: unknown) => e instanceof Unauthorized && /single sign-on failed/.test(e.message) && re.test(e.message);

test('a valid ID token (signature from the JWKS, iss, aud, exp, nonce) gives its claims', async () => {
  const claims = await login((n) => jwt(good(n)));
  assert.equal(claims.preferred_username, 'ann');
  assert.deepEqual(claims.groups, ['devs']);
});

test('a forged ID token (signed by a key not in the JWKS) is refused', async () => {
  await assert.rejects(login((n) => jwt(good(n), rogue.privateKey)), refused(/signature/i));
});

test('an expired ID token is refused', async () => {
  await assert.rejects(login((n) => jwt({ ...good(n), iat: now() - 7200, exp: now() - 3600 })), refused(/exp/i));
});

test('an ID token for another client (aud) or from another issuer is refused', async () => {
  await assert.rejects(login((n) => jwt({ ...good(n), aud: 'someone-else' })), refused(/aud/i));
  await assert.rejects(login((n) => jwt({ ...good(n), iss: 'https://evil.example' })), refused(/iss/i));
});

test('a nonce that is not the login\'s is refused', async () => {
  await assert.rejects(login(() => jwt(good('another-nonce'))), refused(/nonce/i));
});

test('a callback whose state is not the login\'s is refused before the code is spent', async () => {
  let spent = false;
  await assert.rejects(login((n) => {
    spent = true;
    return jwt(good(n));
  }, { state: 'forged-state' }), refused(/state/i));
  assert.equal(spent, false);
});

test('an unsigned ("alg": "none") ID token is refused', async () => {
  await assert.rejects(login((n) => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(good(n))}.`), refused(/./));
});
