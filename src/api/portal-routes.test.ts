/**
 * In-process contract tests of the portal routes (src/api/portal-routes.ts): login codes (401 without
 * a token, 400 naming the field, a code works once), the session token working as a bearer token, and
 * the static bundle's headers, caching and client-side-route fallback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NOW, expectError, withTestApi } from '../../test/helpers/api-inject.ts';
import { Authenticator } from '../auth/index.ts';

test('portal login: a code needs a person\'s credential, works once, and opens a cookie session with CSRF', () => withTestApi(async (t) => {
  await expectError(t.anon('POST', '/v1/portal/codes'), 401);
  await expectError(t.anon('POST', '/v1/portal/session', {}), 400, /^code: /);
  await expectError(t.anon('POST', '/v1/portal/session', { code: 'guessed' }), 401, /berth portal/);
  const issued = await t.req('POST', '/v1/portal/codes');
  assert.equal(issued.statusCode, 201, issued.body);
  const { code, path } = issued.json() as { code: string; path: string; expiresAt: number };
  assert.equal(path, `/login#code=${code}`);
  const ok = await t.anon('POST', '/v1/portal/session', { code });
  assert.equal(ok.statusCode, 201, ok.body);
  const { csrf, user } = ok.json() as { csrf: string; user: string };
  assert.equal(user, 'admin');
  const cookies = [ok.headers['set-cookie']].flat() as string[];
  const session = cookies.find((c) => c.startsWith('berth_session='))!;
  assert.match(session, /HttpOnly/);
  assert.match(session, /SameSite=Strict/);
  assert.ok(cookies.some((c) => c.startsWith(`berth_csrf=${encodeURIComponent(csrf)};`)));
  await expectError(t.anon('POST', '/v1/portal/session', { code }), 401, /already used/);
  const jar = cookies.map((c) => c.split(';')[0]).join('; ');
  const asBrowser = (method: 'GET' | 'POST' | 'DELETE', url: string, o: { csrf?: string; payload?: object } = {}) =>
    t.api.inject({ method, url, headers: { cookie: jar, ...(o.csrf ? { 'x-berth-csrf': o.csrf } : {}) }, ...(o.payload ? { payload: o.payload } : {}) });
  assert.equal((await asBrowser('GET', '/v1/apps')).statusCode, 200);
  assert.equal((await asBrowser('GET', '/v1/session')).json().name, 'admin');
  // A change without the CSRF token is refused (a forged cross-site form cannot send the header).
  t.addService('shop', 'prod', 'web');
  await expectError(asBrowser('POST', '/v1/apps/shop/scale', { payload: { env: 'prod', service: 'web', replicas: 2 } }), 403, /CSRF/);
  assert.equal((await asBrowser('POST', '/v1/apps/shop/scale', { csrf, payload: { env: 'prod', service: 'web', replicas: 2 } })).statusCode, 202);
  assert.equal((await asBrowser('DELETE', '/v1/session', { csrf })).statusCode, 200);
  await expectError(asBrowser('GET', '/v1/apps'), 401);
}));

test('portal login: a user gets a link for themselves; an API token gets none', () => withTestApi(async (t) => {
  const made = await t.req('POST', '/v1/users', { name: 'ann', password: 'a long enough password 1' });
  assert.equal(made.statusCode, 201, made.body);
  const login = await t.anon('POST', '/v1/session', { user: 'ann', password: 'a long enough password 1', client: 'cli' });
  assert.equal(login.statusCode, 201, login.body);
  const as = (token: string) => t.api.inject({ method: 'POST', url: '/v1/portal/codes', headers: { authorization: `Bearer ${token}` } });
  const { code } = (await as(login.json().token)).json() as { code: string };
  const ok = await t.anon('POST', '/v1/portal/session', { code });
  assert.equal(ok.json().user, 'ann');
  const { token, hash } = Authenticator.newApiToken();
  t.auth.addApiToken({ id: 'tok1', name: 'ci', hash, createdBy: 'admin', createdAt: NOW, expiresAt: NOW + 3_600_000, revokedAt: 0, lastUsedAt: 0 });
  await expectError(as(token), 403, /API token "ci" cannot open portal sessions/);
}));

test('portal files: security headers, caching, client-side routes fall back to the page, /v1 stays the API', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-web-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Berth</title><script type="module" src="/assets/index-abc.js"></script>');
  writeFileSync(join(dir, 'assets', 'index-abc.js'), `export const filler = ${JSON.stringify('x'.repeat(2000))};`);
  try {
    await withTestApi(async (t) => {
      const page = await t.anon('GET', '/');
      assert.equal(page.statusCode, 200);
      assert.match(page.headers['content-type'] as string, /^text\/html/);
      assert.match(page.headers['content-security-policy'] as string, /frame-ancestors 'none'/);
      assert.match(page.headers['content-security-policy'] as string, /script-src 'self'/);
      assert.equal(page.headers['x-content-type-options'], 'nosniff');
      assert.equal(page.headers['cache-control'], 'no-cache');
      // A revalidated page keeps the page's CSP (a browser applies the 304's headers to its cached copy).
      const again304 = await t.api.inject({ method: 'GET', url: '/apps/shop', headers: { 'if-none-match': page.headers.etag as string } });
      assert.equal(again304.statusCode, 304);
      assert.match(again304.headers['content-security-policy'] as string, /script-src 'self'/);
      // A deep link of the app is the page itself; the browser's router takes it from there.
      for (const route of ['/apps/shop', '/login', '/apps/shop/releases?env=prod']) {
        const r = await t.anon('GET', route);
        assert.equal(r.statusCode, 200, route);
        assert.equal(r.body, page.body);
      }
      const js = await t.api.inject({ method: 'GET', url: '/assets/index-abc.js', headers: { 'accept-encoding': 'gzip, br' } });
      assert.equal(js.statusCode, 200);
      assert.equal(js.headers['content-encoding'], 'gzip');
      assert.match(js.headers['cache-control'] as string, /immutable/);
      assert.ok(Number(js.headers['content-length']) < 200, 'compressed');
      const again = await t.api.inject({ method: 'GET', url: '/assets/index-abc.js', headers: { 'if-none-match': js.headers.etag as string } });
      assert.equal(again.statusCode, 304);
      assert.equal((await t.anon('GET', '/assets/missing.js')).statusCode, 404);
      assert.equal((await t.anon('GET', '/favicon.ico')).statusCode, 404);
      // No way out of the bundle's directory.
      for (const evil of ['/../package.json', '/%2e%2e/%2e%2e/etc/passwd', '/assets/..%2f..%2fetc%2fpasswd']) {
        const r = await t.anon('GET', evil);
        assert.ok(r.statusCode === 200 ? r.body === page.body : r.statusCode === 404 || r.statusCode === 400, `${evil}: ${r.statusCode} ${r.body.slice(0, 80)}`);
        assert.doesNotMatch(r.body, /root:|"name": "berth"/);
      }
      assert.equal((await t.anon('GET', '/%E0%A4%A')).statusCode, 400);
      // The API keeps its answers: an unknown API path needs a token, then is a JSON 404.
      await expectError(t.anon('GET', '/v1/nope'), 401);
      await expectError(t.req('GET', '/v1/nope'), 404, /no such endpoint/);
      await expectError(t.anon('GET', '/v1/apps'), 401);
    }, { webDir: dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('portal files: an unbuilt portal says how to build it', () => withTestApi(async (t) => {
  const r = await t.anon('GET', '/');
  assert.equal(r.statusCode, 503);
  assert.match(r.body, /npm run build:web/);
}, { webDir: join(tmpdir(), 'berth-no-such-web-dir') }));
