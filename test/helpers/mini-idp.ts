/**
 * A minimal OpenID provider on 127.0.0.1 for in-process tests of the relying party: discovery, JWKS
 * and a token endpoint that answers with whatever ID token the test crafts (RS256, node:crypto), so
 * a test can be the attacker behind the token endpoint (forged, expired, wrong audience, wrong nonce).
 * The real provider (oidc-provider) runs in test/sso.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface MiniIdp {
  issuer: string;
  /** The ID token the next token request gets, given the nonce the test says the login has. */
  idToken: (nonce: string) => string;
  /** The nonce of the login in progress (the test reads it from the authorization URL). */
  nonce: string;
  /** Token requests answered. */
  tokenRequests: number;
  jwt(claims: Record<string, unknown>, key?: KeyObject): string;
  /** A key that is not in the JWKS. */
  rogueKey: KeyObject;
  /** Claims of a valid token for client `berth` (`sub`, `preferred_username`, `groups` as given). */
  claims(nonce: string, o?: Record<string, unknown>): Record<string, unknown>;
  close(): Promise<void>;
}

export async function startMiniIdp(): Promise<MiniIdp> {
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rogue = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const b64 = (x: unknown) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const idp = {
    issuer: '', nonce: '', tokenRequests: 0, rogueKey: rogue.privateKey,
    idToken: (() => '') as (nonce: string) => string,
    jwt(claims: Record<string, unknown>, k: KeyObject = key.privateKey): string {
      const data = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'k1' })}.${b64(claims)}`;
      return `${data}.${sign('sha256', Buffer.from(data), k).toString('base64url')}`;
    },
    claims(nonce: string, o: Record<string, unknown> = {}): Record<string, unknown> {
      const now = Math.floor(Date.now() / 1000);
      return { iss: idp.issuer, aud: 'berth', sub: 'u-1', nonce, iat: now, exp: now + 300, preferred_username: 'ann', email: 'ann@example.com', groups: ['devs'], ...o };
    },
    close: (async () => undefined) as () => Promise<void>,
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url!, idp.issuer);
    const json = (x: unknown) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(x));
    };
    if (url.pathname === '/.well-known/openid-configuration') {
      return json({
        issuer: idp.issuer, authorization_endpoint: `${idp.issuer}/auth`, token_endpoint: `${idp.issuer}/token`, jwks_uri: `${idp.issuer}/jwks`,
        response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'], code_challenge_methods_supported: ['S256'],
      });
    }
    if (url.pathname === '/jwks') return json({ keys: [{ ...key.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }] });
    if (url.pathname === '/token') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        idp.tokenRequests++;
        assert.match(new URLSearchParams(body).get('code_verifier') ?? '', /^[A-Za-z0-9_-]{43,}$/, 'PKCE verifier sent');
        json({ access_token: 'at', token_type: 'Bearer', expires_in: 60, id_token: idp.idToken(idp.nonce) });
      });
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  idp.issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  idp.close = () => new Promise<void>((r) => server.close(() => r()));
  return idp;
}
