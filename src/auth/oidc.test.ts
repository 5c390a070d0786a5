/**
 * The OIDC relying party (auth/oidc.ts, openid-client) against a provider the test controls on
 * 127.0.0.1: discovery, JWKS and a token endpoint that answers with the ID token each case crafts
 * (RS256, signed with node:crypto). What an attacker would try: a token signed by another key, an
 * expired one, one for another client or from another issuer, a nonce or state that is not the login's.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { OidcProvider } from './oidc.ts';
import { Unauthorized } from '../core/errors.ts';

const key = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rogue = generateKeyPairSync('rsa', { modulusLength: 2048 });
const b64 = (x: unknown) => Buffer.from(JSON.stringify(x)).toString('base64url');
function jwt(claims: Record<string, unknown>, privateKey: KeyObject = key.privateKey): string {
  const data = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'k1' })}.${b64(claims)}`;
  return `${data}.${sign('sha256', Buffer.from(data), privateKey).toString('base64url')}`;
}

let idToken: (nonce: string) => string = () => '';
let lastNonce = '';
const server = createServer((req, res) => {
  const url = new URL(req.url!, issuer);
  const json = (x: unknown) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(x));
  };
  if (url.pathname === '/.well-known/openid-configuration') {
    return json({
      issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, response_types_supported: ['code'],
      subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'], code_challenge_methods_supported: ['S256'],
    });
  }
  if (url.pathname === '/jwks') return json({ keys: [{ ...key.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }] });
  if (url.pathname === '/token') {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      assert.match(new URLSearchParams(body).get('code_verifier') ?? '', /^[A-Za-z0-9_-]{43,}$/, 'PKCE verifier sent');
      json({ access_token: 'at', token_type: 'Bearer', expires_in: 60, id_token: idToken(lastNonce) });
    });
    return;
  }
  res.statusCode = 404;
  res.end();
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
after(() => server.close());

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
