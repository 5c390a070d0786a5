/**
 * Single sign-on against real servers, started once for the file: a `berth server`, an OpenID
 * provider (the `oidc-provider` package, with its development login and consent pages, on
 * 127.0.0.1) and Debian's `slapd` (own config, a slapadd'ed tree, StartTLS with a test CA, on
 * 127.0.0.1). A small cookie-keeping HTTP client plays the browser. Covered: `berth sso set/list`,
 * the portal's "Sign in with" flow, `berth login --sso` (loopback), a replayed callback, group →
 * team mapping and its removal, a user of team A not seeing team B, LDAP logins through
 * `berth login` with group search, LDAP injection, an empty password, and the audit trail.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import Provider from 'oidc-provider';
import { Harness, ROOT, freePort } from './helpers/harness.ts';
import { makeCa, makeLeaf } from './helpers/certs.ts';
import { launch } from './helpers/browser.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { LdapDirectory } from '../src/auth/index.ts';
import { Unauthorized } from '../src/core/errors.ts';

/** A browser without JavaScript: keeps cookies per host, follows redirects, submits the one form of a page (filling login and password). */
class Browser {
  private readonly jar = new Map<string, Map<string, string>>();
  visited: URL[] = [];

  private cookieHeader(u: URL): string {
    return [...(this.jar.get(u.host) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private keep(u: URL, res: Response): void {
    const jar = this.jar.get(u.host) ?? new Map<string, string>();
    for (const c of res.headers.getSetCookie()) {
      const [kv] = c.split(';');
      const i = kv!.indexOf('=');
      const name = kv!.slice(0, i).trim();
      if (/max-age=0/i.test(c) || /expires=thu, 01 jan 1970/i.test(c)) jar.delete(name);
      else jar.set(name, kv!.slice(i + 1).trim());
    }
    this.jar.set(u.host, jar);
  }

  cookie(host: string, name: string): string | undefined {
    return this.jar.get(host)?.get(name);
  }

  /** Goes to `start` and on until a page without a form, or a redirect to where `stop` says. Returns the last URL and response body. */
  async browse(start: string, o: { login?: { login: string; password: string }; stop?: (u: URL) => boolean } = {}): Promise<{ url: URL; status: number; body: string }> {
    let url = new URL(start);
    let method = 'GET';
    let body: string | undefined;
    for (let hop = 0; hop < 25; hop++) {
      this.visited.push(url);
      const res = await fetch(url, {
        method, redirect: 'manual', signal: AbortSignal.timeout(15_000),
        headers: { cookie: this.cookieHeader(url), ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
        ...(body !== undefined ? { body } : {}),
      });
      this.keep(url, res);
      const text = await res.text();
      if (res.status >= 300 && res.status < 400) {
        const next = new URL(res.headers.get('location')!, url);
        if (o.stop?.(next)) return { url: next, status: res.status, body: text };
        url = next;
        method = 'GET';
        body = undefined;
        continue;
      }
      const form = /<form[^>]*action="([^"]+)"[^>]*method="post"/i.exec(text);
      if (res.status !== 200 || !form) return { url, status: res.status, body: text };
      const fields = new URLSearchParams();
      for (const m of text.matchAll(/<input[^>]*>/gi)) {
        const name = /name="([^"]+)"/.exec(m[0])?.[1];
        if (!name) continue;
        const value = /value="([^"]*)"/.exec(m[0])?.[1] ?? '';
        fields.set(name, name === 'login' ? o.login?.login ?? value : name === 'password' ? o.login?.password ?? value : value);
      }
      url = new URL(form[1]!.replace(/&amp;/g, '&'), url);
      method = 'POST';
      body = fields.toString();
    }
    throw new Error(`more than 25 hops from ${start}: ${this.visited.map((u) => u.href).join(' → ')}`);
  }
}

/** People of the test IdP: the groups claim is read at each login, so a test can take someone out of a group. */
const PEOPLE: Record<string, { email: string; groups: string[] }> = {
  alice: { email: 'alice@example.com', groups: ['devs'] },
  dana: { email: 'dana@example.com', groups: ['data-devs'] },
};

describe('single sign-on (OIDC, LDAP) against real servers', () => {
  let h: Harness;
  let dir: string;
  let idp: Server;
  const idpSockets = new Set<Socket>();
  let issuer: string;
  let slapd: ChildProcess | undefined;
  let ldapPort: number;
  /** slapd's ldaps:// port (TLS from the first byte, the certificate of the CA made here). */
  let ldapsPort: number;
  let caPem: string;
  let cliEnv: Record<string, string>;
  const started = Date.now();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-sso-'));
    cliEnv = { BERTH_CONFIG_DIR: join(dir, 'cli') };
    h = await Harness.create({ portRange: '19800-19899' });
    const serverStart = h.startServer();

    // The OpenID provider: a confidential client for Berth's callback, the groups claim in the ID token.
    const idpPort = await freePort();
    issuer = `http://127.0.0.1:${idpPort}`;
    const provider = new Provider(issuer, {
      clients: [{
        client_id: 'berth', client_secret: 'berth-client-secret-123', redirect_uris: [`${apiUrl(h)}/v1/sso/corp/callback`],
        grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic',
      }],
      async findAccount(_ctx: unknown, id: string) {
        const p = PEOPLE[id];
        if (!p) return undefined;
        return { accountId: id, claims: async () => ({ sub: id, preferred_username: id, email: p.email, email_verified: true, groups: [...p.groups] }) };
      },
      claims: { openid: ['sub'], profile: ['preferred_username'], email: ['email', 'email_verified'], groups: ['groups'] },
      scopes: ['openid', 'profile', 'email', 'groups'],
      conformIdTokenClaims: false,
      cookies: { keys: ['test-cookie-key-of-the-idp'] },
      pkce: { required: () => true },
    } as never);
    idp = createServer(provider.callback());
    idp.on('connection', (s) => {
      idpSockets.add(s);
      s.on('close', () => idpSockets.delete(s));
    });
    await new Promise<void>((r) => idp.listen(idpPort, '127.0.0.1', r));

    // slapd: own config, own database, StartTLS with a certificate of a CA made here.
    const ca = await makeCa('Berth SSO Test CA');
    caPem = ca.certPem;
    const leaf = await makeLeaf(ca, ['127.0.0.1', 'localhost']);
    const ldapDir = join(dir, 'ldap');
    await mkdir(join(ldapDir, 'db'), { recursive: true });
    await writeFile(join(ldapDir, 'ca.pem'), ca.certPem);
    await writeFile(join(ldapDir, 'cert.pem'), leaf.leafPem);
    await writeFile(join(ldapDir, 'key.pem'), leaf.keyPem, { mode: 0o600 });
    await writeFile(join(ldapDir, 'slapd.conf'), [
      ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include /etc/ldap/schema/${s}.schema`),
      'modulepath /usr/lib/ldap', 'moduleload back_mdb', 'moduleload memberof', `pidfile ${join(ldapDir, 'slapd.pid')}`,
      `TLSCACertificateFile ${join(ldapDir, 'ca.pem')}`, `TLSCertificateFile ${join(ldapDir, 'cert.pem')}`, `TLSCertificateKeyFile ${join(ldapDir, 'key.pem')}`,
      'database mdb', 'suffix "dc=example,dc=com"', 'rootdn "cn=admin,dc=example,dc=com"', 'rootpw admin-pass-123',
      `directory ${join(ldapDir, 'db')}`, 'maxsize 10485760',
      // memberOf on people, kept by the overlay for groups written over LDAP (slapadd does not run it).
      'overlay memberof',
      'access to attrs=userPassword by self =xw by anonymous auth by * none', 'access to * by users read by * none', '',
    ].join('\n'));
    const person = (uid: string, pass: string) => [`dn: uid=${uid},ou=people,dc=example,dc=com`, 'objectClass: inetOrgPerson', `uid: ${uid}`, `cn: ${uid}`, `sn: ${uid}`,
      `mail: ${uid}@example.com`, `userPassword: ${pass}`, ''];
    const group = (cn: string, members: string[]) => [`dn: cn=${cn},ou=groups,dc=example,dc=com`, 'objectClass: groupOfNames', `cn: ${cn}`,
      ...members.map((m) => `member: uid=${m},ou=people,dc=example,dc=com`), ''];
    await writeFile(join(ldapDir, 'tree.ldif'), [
      'dn: dc=example,dc=com', 'objectClass: dcObject', 'objectClass: organization', 'o: Example', 'dc: example', '',
      'dn: ou=people,dc=example,dc=com', 'objectClass: organizationalUnit', 'ou: people', '',
      'dn: ou=groups,dc=example,dc=com', 'objectClass: organizationalUnit', 'ou: groups', '',
      'dn: ou=roles,dc=example,dc=com', 'objectClass: organizationalUnit', 'ou: roles', '',
      ...person('lee', 'lee-pass-123'), ...person('kim', 'kim-pass-123'), ...person('sam', 'sam-pass-123'),
      ...group('devs', ['lee']), ...group('data-devs', ['sam']), ...group('other', ['kim']),
    ].join('\n'));
    await run('slapadd', ['-f', join(ldapDir, 'slapd.conf'), '-l', join(ldapDir, 'tree.ldif')]);
    ldapPort = await freePort();
    ldapsPort = await freePort();
    // -d 0: in the foreground (a child of this test, stopped by its pid), logging nothing.
    slapd = spawn('slapd', ['-f', join(ldapDir, 'slapd.conf'), '-h', `ldap://127.0.0.1:${ldapPort}/ ldaps://127.0.0.1:${ldapsPort}/`, '-d', '0'], { stdio: 'ignore' });
    await waitFor(() => run('ldapsearch', ['-x', '-H', `ldap://127.0.0.1:${ldapPort}`, '-D', 'cn=admin,dc=example,dc=com', '-w', 'admin-pass-123',
      '-b', 'dc=example,dc=com', '-s', 'base', 'dn']).then(() => true, () => false), { timeoutMs: 15_000, what: 'slapd answers' });
    // A group written over LDAP (outside the group search's base): the memberof overlay puts memberOf on its members (lee).
    await writeFile(join(ldapDir, 'ops.ldif'), ['dn: cn=ops,ou=roles,dc=example,dc=com', 'objectClass: groupOfNames', 'cn: ops',
      'member: uid=lee,ou=people,dc=example,dc=com', ''].join('\n'));
    await run('ldapadd', ['-x', '-H', `ldap://127.0.0.1:${ldapPort}`, '-D', 'cn=admin,dc=example,dc=com', '-w', 'admin-pass-123', '-f', join(ldapDir, 'ops.ldif')]);

    await serverStart;
    for (const team of ['web', 'data']) assert.equal((await h.api('POST', '/v1/teams', { name: team })).status, 201);
    for (const [app, team] of [['shop', 'web'], ['lake', 'data']] as const) {
      assert.equal((await h.api('PUT', `/v1/apps/${app}/config`, { env: 'prod', create: true, entries: [{ key: 'GREETING', value: 'hi' }] })).status, 200);
      assert.equal((await h.api('PUT', `/v1/teams/${team}/apps/${app}`)).status, 200);
    }
  });

  after(async () => {
    if (slapd?.pid) slapd.kill('SIGTERM');
    for (const s of idpSockets) s.destroy();
    await new Promise<void>((r) => (idp ? idp.close(() => r()) : r()));
    await h?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
    process.stderr.write(`sso.test.ts: ${((Date.now() - started) / 1000).toFixed(1)} s with server, IdP and slapd\n`);
  });

  test('berth sso set / list: an OIDC and an LDAP provider from YAML files, secrets from stdin and never listed', async () => {
    await writeFile(join(dir, 'corp.yaml'), [
      'kind: oidc', 'displayName: Corp SSO', 'oidc:', `  issuer: ${issuer}`, '  clientId: berth', '  scopes: [profile, email, groups]',
      'mappings:', '  - { group: devs, team: web, role: deployer }', '  - { group: data-devs, team: data, role: deployer }', 'allowedDomains: [example.com]', '',
    ].join('\n'));
    const corp = await cliStdin(h, ['sso', 'set', 'corp', '-f', join(dir, 'corp.yaml'), '--secret-stdin'], 'berth-client-secret-123\n', cliEnv);
    assert.equal(corp.code, 0, corp.stderr);
    assert.match(corp.stdout, /register this redirect URI at the provider: <berth URL>\/v1\/sso\/corp\/callback/);
    await writeFile(join(dir, 'dir.json'), JSON.stringify({
      kind: 'ldap', displayName: 'Directory',
      ldap: {
        url: `ldap://127.0.0.1:${ldapPort}`, startTls: true, caPem, userSearchBase: 'ou=people,dc=example,dc=com', userSearchFilter: '(uid={user})',
        bindDn: 'cn=admin,dc=example,dc=com', groupSearchBase: 'ou=groups,dc=example,dc=com', groupSearchFilter: '(member={dn})',
      },
    }));
    const bad = await h.cli(['sso', 'set', 'dir', '-f', join(dir, 'dir.json')], { env: cliEnv });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /secret: give the service account's password/);
    const ldapSet = await cliStdin(h, ['sso', 'set', 'dir', '-f', join(dir, 'dir.json'), '--secret-stdin', '--map', 'cn=devs,ou=groups,dc=example,dc=com=web:deployer',
      '--map', 'data-devs=data:viewer'], 'admin-pass-123\n', cliEnv);
    assert.equal(ldapSet.code, 0, ldapSet.stderr);
    const list = await h.cli(['sso', 'list', '--json'], { env: cliEnv });
    assert.equal(list.code, 0, list.stderr);
    const providers = JSON.parse(list.stdout) as { name: string; kind: string; secretSet: boolean; mappings: unknown[] }[];
    assert.deepEqual(providers.map((p) => [p.name, p.kind, p.secretSet, p.mappings.length]), [['corp', 'oidc', true, 2], ['dir', 'ldap', true, 2]]);
    assert.ok(!list.stdout.includes('berth-client-secret-123') && !list.stdout.includes('admin-pass-123'), 'no secret listed');
    const human = await h.cli(['sso', 'list'], { env: cliEnv });
    assert.match(human.stdout, /corp\s+oidc\s+Corp SSO\s+yes/);
    const none = await h.cli(['sso', 'rm', 'nobody'], { env: cliEnv });
    assert.equal(none.code, 3, none.stderr);
  });

  test('portal: "Sign in with Corp SSO" → the provider\'s login → a cookie session of team web; team data\'s app is not there; a replayed callback logs nobody in', async () => {
    const options = await fetch(`${apiUrl(h)}/v1/sso/options`).then((r) => r.json()) as { providers: { kind: string; displayName: string }[] };
    assert.deepEqual(options.providers.map((p) => `${p.kind}:${p.displayName}`), ['oidc:Corp SSO', 'ldap:Directory']);
    const b = new Browser();
    const api = new URL(apiUrl(h));
    let callbackUrl: URL | undefined;
    const end = await b.browse(`${apiUrl(h)}/v1/sso/corp/start?return=${encodeURIComponent('/apps/shop')}`, {
      login: { login: 'alice', password: 'any' },
      stop: (u) => {
        if (u.host === api.host && u.pathname === '/v1/sso/corp/callback') callbackUrl = u;
        return u.host === api.host && !u.pathname.startsWith('/v1/');
      },
    });
    assert.equal(end.url.href, `${apiUrl(h)}/apps/shop`, b.visited.map((u) => u.href).join('\n'));
    assert.ok(b.visited.some((u) => u.host === new URL(issuer).host), 'the browser went through the provider');
    const session = b.cookie(api.host, 'berth_session');
    assert.match(session ?? '', /^berths_/);
    const asAlice = (path: string) => fetch(`${apiUrl(h)}${path}`, { headers: { cookie: `berth_session=${session}` } });
    const me = await (await asAlice('/v1/session')).json() as { name: string; grants: { role: string; team: string }[] };
    assert.equal(me.name, 'alice');
    assert.deepEqual(me.grants.map((g) => `${g.role}@${g.team}`), ['deployer@web']);
    assert.equal((await asAlice('/v1/events?app=shop')).status, 200);
    const other = await asAlice('/v1/events?app=lake');
    assert.equal(other.status, 404, "team data's app is invisible to team web");
    assert.equal((await asAlice('/v1/apps/lake/config?env=prod')).status, 404);
    // The callback again, with its code and state, from the same browser: nothing.
    assert.ok(callbackUrl);
    const replay = await new Browser().browse(callbackUrl!.href, { stop: () => true });
    assert.match(decodeURIComponent(replay.url.href), /\/login\?sso_error=single sign-on failed: this login is unknown, already finished/);
    const users = await h.api('GET', '/v1/users');
    assert.deepEqual(users.json.users.map((u: { name: string }) => u.name), ['alice']);
  });

  test('the login page in a real browser (chromium): "Sign in with Corp SSO" → the provider → back on the page asked for, signed in', async () => {
    const browser = await launch();
    try {
      const page = await browser.newPage();
      await page.goto(`${apiUrl(h)}/login?next=${encodeURIComponent('/events')}`);
      await page.getByRole('link', { name: 'Sign in with Corp SSO' }).click();
      await page.waitForURL((u) => u.host === new URL(issuer).host);
      await page.fill('input[name=login]', 'alice');
      await page.fill('input[name=password]', 'any');
      await page.click('button[type=submit]');
      // The provider asks for consent once per browser: confirm until the browser is back at Berth.
      for (let i = 0; i < 3 && new URL(page.url()).host !== new URL(apiUrl(h)).host; i++) {
        await page.waitForLoadState();
        if (new URL(page.url()).host === new URL(apiUrl(h)).host) break;
        await page.click('button[type=submit]');
        await page.waitForURL((u) => u.host === new URL(apiUrl(h)).host || u.pathname.includes('/interaction/'), { timeout: 10_000 }).catch(() => undefined);
      }
      await page.waitForURL(`${apiUrl(h)}/events`, { timeout: 15_000 });
      const cookies = await page.context().cookies(apiUrl(h));
      assert.ok(cookies.some((c) => c.name === 'berth_session' && c.httpOnly && c.sameSite === 'Strict'), JSON.stringify(cookies.map((c) => c.name)));
      assert.ok(!cookies.some((c) => c.name === 'berth_sso'), 'the binding cookie is cleared after the callback');
      await page.getByText('alice').first().waitFor({ timeout: 10_000 });
    } finally {
      await browser.close();
    }
  });

  test('berth login --sso corp: the CLI waits on 127.0.0.1, the browser comes back with a code only that CLI can spend; taken out of the group, access is gone', async () => {
    const child = spawn(join(ROOT, 'bin/berth'), ['login', '--sso', 'corp', '--json', '--timeout', '60'], { env: { ...h.env, ...cliEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const exited = new Promise<number>((r) => child.on('exit', (code) => r(code ?? 1)));
    const link = await waitFor(async () => /https?:\/\/\S+\/v1\/sso\/corp\/start\?\S+/.exec(stderr)?.[0], { timeoutMs: 30_000, what: 'the CLI prints the link' });
    const cliPort = Number(new URL(link).searchParams.get('port'));
    const b = new Browser();
    const end = await b.browse(link, { login: { login: 'dana', password: 'any' } });
    assert.equal(end.url.host, `127.0.0.1:${cliPort}`, b.visited.map((u) => u.href).join('\n'));
    assert.match(end.body, /signed in/);
    assert.equal(await exited, 0, stderr);
    assert.equal(JSON.parse(stdout).user, 'dana');
    const who = await h.cli(['whoami', '--json'], { env: cliEnv });
    assert.equal(who.code, 0, who.stderr);
    assert.deepEqual((JSON.parse(who.stdout) as { grants: { role: string; team: string }[] }).grants.map((g) => `${g.role}@${g.team}`), ['deployer@data']);
    const lake = await h.cli(['events', 'lake', '--json'], { env: cliEnv });
    assert.equal(lake.code, 0, lake.stderr);
    const shop = await h.cli(['events', 'shop', '--json'], { env: cliEnv });
    assert.equal(shop.code, 3, `team web's app is not found for dana: ${shop.stderr}`);

    // Out of her group at the provider: the next login is refused, her grants and the CLI session are gone.
    PEOPLE.dana!.groups = [];
    const again = await new Browser().browse(`${apiUrl(h)}/v1/sso/corp/start`, { login: { login: 'dana', password: 'any' }, stop: (u) => u.pathname === '/login' });
    assert.match(decodeURIComponent(again.url.href), /sso_error=single sign-on refused: "dana" is in none of the groups/);
    const after = await h.cli(['events', 'lake'], { env: cliEnv });
    assert.equal(after.code, 5, after.stderr);
  });

  test('LDAP: berth login with a directory user (StartTLS, group search); injection, an empty or wrong password, an unmapped user are refused', async () => {
    const lee = await cliStdin(h, ['login', '-u', 'lee', '--password-stdin', '--json'], 'lee-pass-123\n', cliEnv);
    assert.equal(lee.code, 0, lee.stderr);
    const who = await h.cli(['whoami', '--json'], { env: cliEnv });
    assert.deepEqual((JSON.parse(who.stdout) as { grants: { role: string; team: string }[] }).grants.map((g) => `${g.role}@${g.team}`), ['deployer@web']);
    const sam = await h.api('POST', '/v1/session', { user: 'sam', password: 'sam-pass-123', client: 'cli' }, null);
    assert.equal(sam.status, 201);
    assert.equal(sam.json.provider, 'dir');

    const wrong = await h.api('POST', '/v1/session', { user: 'lee', password: 'not-his-password' }, null);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error.message, 'wrong user name or password');
    // `*)(uid=*` would match everyone in an unescaped filter: here it is a name nobody has.
    for (const user of ['*)(uid=*', '*', 'le*', 'lee)(|(uid=*']) {
      const inj = await h.api('POST', '/v1/session', { user, password: 'lee-pass-123' }, null);
      assert.equal(inj.status, 401, `${user}: ${JSON.stringify(inj.json)}`);
    }
    // An empty password never reaches the directory (an unauthenticated bind proves nothing) ...
    assert.equal((await h.api('POST', '/v1/session', { user: 'lee', password: '' }, null)).status, 400);
    // ... nor does the directory client bind with one.
    const directory = new LdapDirectory({
      settings: {
        url: `ldap://127.0.0.1:${ldapPort}`, startTls: true, caPem, userDn: 'uid={user},ou=people,dc=example,dc=com', userSearchBase: '', userSearchFilter: '',
        bindDn: '', groupSearchBase: '', groupSearchFilter: '', groupNameAttribute: 'cn', mailAttribute: 'mail',
      }, bindPassword: '',
    });
    await assert.rejects(directory.login('lee', ''), Unauthorized);
    await assert.rejects(directory.login('*', 'lee-pass-123'), Unauthorized);
    // With a user search, an unescaped "le*" would find lee and bind as him with his password: escaped, it finds nobody.
    const searchSettings = {
      url: `ldap://127.0.0.1:${ldapPort}`, startTls: true, caPem, userDn: '', userSearchBase: 'ou=people,dc=example,dc=com', userSearchFilter: '(uid={user})',
      bindDn: 'cn=admin,dc=example,dc=com', groupSearchBase: 'ou=groups,dc=example,dc=com', groupSearchFilter: '(member={dn})', groupNameAttribute: 'cn', mailAttribute: 'mail',
    };
    const searching = new LdapDirectory({ settings: searchSettings, bindPassword: 'admin-pass-123' });
    assert.deepEqual((await searching.login('lee', 'lee-pass-123')).groups, ['cn=devs,ou=groups,dc=example,dc=com', 'devs']);
    for (const injected of ['le*', '*)(uid=lee', 'l*e']) await assert.rejects(searching.login(injected, 'lee-pass-123'), Unauthorized, injected);
    // Without StartTLS's CA the directory's certificate is not trusted: no login over an unverified channel.
    const untrusted = new LdapDirectory({ settings: { ...searchSettings, caPem: '' }, bindPassword: 'admin-pass-123' });
    await assert.rejects(untrusted.login('lee', 'lee-pass-123'), /refused StartTLS or its certificate/);
    assert.equal((await directory.login('lee', 'lee-pass-123')).email, 'lee@example.com');
    // In the directory but in no mapped group: refused, named.
    const kim = await h.api('POST', '/v1/session', { user: 'kim', password: 'kim-pass-123' }, null);
    assert.equal(kim.status, 403);
    assert.match(kim.json.error.message, /"kim" is in none of the groups provider "dir" maps to a team/);
  });

  test('the audit log has every SSO login and failed login, and no secret', async () => {
    const audit = await h.api('GET', '/v1/audit?limit=10000');
    const entries = audit.json.entries as { action: string; actorName: string; status: number; result: string; request: string }[];
    const sso = entries.filter((e) => e.action === 'sso.login');
    assert.deepEqual(sso.map((e) => `${e.actorName}:${e.status}`), ['alice:302', ':401', 'alice:302', 'dana:302', ':403']);
    const logins = entries.filter((e) => e.action === 'POST /v1/session');
    assert.ok(logins.some((e) => e.actorName === 'lee' && e.status === 201 && /"provider":"dir"/.test(e.result)), JSON.stringify(logins));
    assert.ok(logins.some((e) => e.actorName === '*)(uid=*' && e.status === 401));
    assert.ok(logins.some((e) => e.actorName === 'kim' && e.status === 403));
    const text = JSON.stringify(entries);
    for (const secret of ['berth-client-secret-123', 'admin-pass-123', 'lee-pass-123', 'berths_']) assert.ok(!text.includes(secret), `no ${secret} in the audit log`);
  });

  test('LDAP over ldaps:// (the CA made here) with groups from memberOf: berth login maps the memberOf group to a team; an untrusted or unnamed CA, or plain LDAP on the TLS port, logs nobody in', async () => {
    const settings = {
      url: `ldaps://127.0.0.1:${ldapsPort}`, startTls: false, caPem, userDn: '', userSearchBase: 'ou=people,dc=example,dc=com', userSearchFilter: '(uid={user})',
      bindDn: 'cn=admin,dc=example,dc=com', groupSearchBase: '', groupSearchFilter: '', groupNameAttribute: 'cn', mailAttribute: 'mail',
    };
    // memberOf (no group search): lee's entry names the group the overlay recorded; the search-only groups (devs) are not there.
    const lee = await new LdapDirectory({ settings, bindPassword: 'admin-pass-123' }).login('lee', 'lee-pass-123');
    assert.deepEqual([lee.groups, lee.email, lee.subject], [['cn=ops,ou=roles,dc=example,dc=com'], 'lee@example.com', 'uid=lee,ou=people,dc=example,dc=com']);
    assert.deepEqual((await new LdapDirectory({ settings, bindPassword: 'admin-pass-123' }).login('sam', 'sam-pass-123')).groups, [], 'sam is in no group written over LDAP');
    await assert.rejects(new LdapDirectory({ settings, bindPassword: 'admin-pass-123' }).login('lee', 'wrong-pass'), Unauthorized);
    // The certificate must chain to the CA given: none (the system's roots) or another CA is no login, and never a bind over it.
    const other = await makeCa('Some Other CA');
    for (const ca of ['', other.certPem]) {
      await assert.rejects(new LdapDirectory({ settings: { ...settings, caPem: ca }, bindPassword: 'admin-pass-123' }).login('lee', 'lee-pass-123'),
        (err: Error) => !(err instanceof Unauthorized) && /certificate|self.signed|unable to (get|verify)/i.test(err.message), ca ? 'another CA' : 'no CA');
    }
    // Plain LDAP spoken to the TLS port is not a way around it.
    await assert.rejects(new LdapDirectory({ settings: { ...settings, url: `ldap://127.0.0.1:${ldapsPort}` }, bindPassword: 'admin-pass-123', timeoutMs: 3000 }).login('lee', 'lee-pass-123'),
      (err: Error) => !(err instanceof Unauthorized));

    // Through the server: provider dir switched to ldaps:// and memberOf, the group's DN mapped to team data (the stored service password kept).
    await writeFile(join(dir, 'dir-ldaps.json'), JSON.stringify({ kind: 'ldap', displayName: 'Directory', ldap: { ...settings, groupNameAttribute: undefined, mailAttribute: undefined } }));
    const set = await h.cli(['sso', 'set', 'dir', '-f', join(dir, 'dir-ldaps.json'), '--map', 'cn=ops,ou=roles,dc=example,dc=com=data:viewer']);
    assert.equal(set.code, 0, set.stderr);
    const login = await cliStdin(h, ['login', '-u', 'lee', '--password-stdin', '--json'], 'lee-pass-123\n', cliEnv);
    assert.equal(login.code, 0, login.stderr);
    const who = await h.cli(['whoami', '--json'], { env: cliEnv });
    assert.deepEqual((JSON.parse(who.stdout) as { grants: { role: string; team: string }[] }).grants.map((g) => `${g.role}@${g.team}`), ['viewer@data'],
      'the memberOf group maps to team data; the search-only group devs no longer counts');
    const sam = await h.api('POST', '/v1/session', { user: 'sam', password: 'sam-pass-123', client: 'cli' }, null);
    assert.equal(sam.status, 403, JSON.stringify(sam.json));
    assert.match(sam.json.error.message, /"sam" is in none of the groups provider "dir" maps to a team/);
  });
});

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((res, rej) => execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) => (err ? rej(new Error(`${cmd}: ${stderr || err.message}`)) : res(stdout))));
}

/** The CLI with something on stdin (a secret, a password), with this file's CLI config dir. */
function cliStdin(h: Harness, args: string[], stdin: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = execFile(join(ROOT, 'bin/berth'), args, { env: { ...h.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      res({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
    });
    p.stdin!.end(stdin);
  });
}

const apiUrl = (h: Harness) => `http://127.0.0.1:${h.apiPort}`;
