import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkProviderBody, domainAllowed, externalUserName, grantsForGroups, groupsOf, ldapDnValue, ldapFilterValue, providerBodySchema, safeReturnPath,
} from './sso.ts';
import { InvalidInput } from './errors.ts';

test('ldapFilterValue: the filter specials become \\XX, so an injected user name stays one literal value', () => {
  assert.equal(ldapFilterValue('ann'), 'ann');
  assert.equal(ldapFilterValue('*)(uid=*'), '\\2a\\29\\28uid=\\2a');
  assert.equal(ldapFilterValue('a\\b\0c'), 'a\\5cb\\00c');
  assert.equal(`(uid=${ldapFilterValue('*')})`, '(uid=\\2a)', 'no wildcard survives');
});

test('ldapDnValue: the DN specials are escaped; a leading # or space too', () => {
  assert.equal(ldapDnValue('ann'), 'ann');
  assert.equal(ldapDnValue('a,ou=admins'), 'a\\,ou\\=admins');
  assert.equal(ldapDnValue('#x'), '\\#x');
  assert.equal(ldapDnValue(' x '), '\\ x\\ ');
  assert.equal(ldapDnValue('a+b"<>;'), 'a\\+b\\"\\<\\>\\;');
});

test('grantsForGroups: by full name or a DN\'s first RDN value, case-insensitive, deduplicated; unknown groups give nothing', () => {
  const mappings = [
    { group: 'devs', team: 'web', role: 'deployer' as const, app: '*', env: 'test' },
    { group: 'cn=ops,ou=groups,dc=example,dc=com', team: 'web', role: 'operator' as const, app: '*', env: '*' },
    { group: 'Devs', team: 'web', role: 'deployer' as const, app: '*', env: 'test' },
    { group: 'admins', team: '*', role: 'owner' as const, app: '*', env: '*' },
  ];
  assert.deepEqual(grantsForGroups(mappings, ['cn=devs,ou=groups,dc=example,dc=com']), [{ role: 'deployer', team: 'web', app: '*', env: 'test' }]);
  assert.deepEqual(grantsForGroups(mappings, ['CN=OPS,ou=groups,dc=example,dc=com']), [{ role: 'operator', team: 'web', app: '*', env: '*' }]);
  assert.deepEqual(grantsForGroups(mappings, ['nobody', 'ops']), [], '"ops" alone is not the DN mapping');
  assert.deepEqual(grantsForGroups(mappings, []), []);
  assert.equal(grantsForGroups(mappings, ['admins'])[0]!.role, 'owner');
});

test('domainAllowed: none listed allows all; otherwise the exact domain after the last @', () => {
  assert.ok(domainAllowed('', []));
  assert.ok(domainAllowed('ann@Example.com', ['example.com']));
  assert.ok(!domainAllowed('ann@evil-example.com', ['example.com']));
  assert.ok(!domainAllowed('ann@example.com.evil.io', ['example.com']));
  assert.ok(!domainAllowed('example.com', ['example.com']));
  assert.ok(!domainAllowed('', ['example.com']));
});

test('safeReturnPath: only a path of this site; absolute, protocol-relative, backslash and scheme URLs become /', () => {
  assert.equal(safeReturnPath('/apps/web?env=prod'), '/apps/web?env=prod');
  for (const bad of ['https://evil.example', '//evil.example', '/\\evil.example', 'javascript:alert(1)', 'evil', '', undefined, 7, '/a\nb', '/a\\b', `/${'x'.repeat(2001)}`]) {
    assert.equal(safeReturnPath(bad), '/', String(bad));
  }
});

test('externalUserName and groupsOf: lower-cased names that fit NAME_PATTERN; an e-mail claim gives its local part', () => {
  assert.equal(externalUserName('Ann', 'preferred_username'), 'ann');
  assert.equal(externalUserName('ann.lee@example.com', 'email'), 'ann.lee');
  assert.throws(() => externalUserName('ann lee', 'preferred_username'), (e: unknown) => e instanceof InvalidInput && /not a Berth user name/.test(e.message));
  assert.throws(() => externalUserName(undefined, 'preferred_username'), /no "preferred_username" claim/);
  assert.deepEqual(groupsOf('devs'), ['devs']);
  assert.deepEqual(groupsOf(['a', 1, 'b']), ['a', 'b']);
  assert.deepEqual(groupsOf({}), []);
});

test('checkProviderBody: each refusal names the field and what would be right', () => {
  const body = (x: unknown) => providerBodySchema.parse(x);
  const oidc = { kind: 'oidc', oidc: { issuer: 'https://idp.example.com', clientId: 'berth' }, secret: 's' };
  checkProviderBody(body(oidc), { hasStoredSecret: false });
  const refuses = (x: unknown, re: RegExp, stored = false) => assert.throws(() => checkProviderBody(body(x), { hasStoredSecret: stored }), (e: unknown) => e instanceof InvalidInput && re.test(e.message));
  refuses({ kind: 'oidc' }, /^oidc: /);
  refuses({ ...oidc, oidc: { issuer: 'http://idp.example.com', clientId: 'x' } }, /^oidc.issuer: must be https/);
  checkProviderBody(body({ ...oidc, oidc: { issuer: 'http://127.0.0.1:9000', clientId: 'x' } }), { hasStoredSecret: false });
  refuses({ kind: 'oidc', oidc: oidc.oidc }, /^secret: /);
  checkProviderBody(body({ kind: 'oidc', oidc: oidc.oidc }), { hasStoredSecret: true });
  refuses({ kind: 'ldap', ldap: { url: 'ldap://127.0.0.1:389' } }, /^ldap.userDn: /);
  refuses({ kind: 'ldap', ldap: { url: 'ldap://h', userDn: 'uid=x,dc=e' } }, /must contain \{user\}/);
  refuses({ kind: 'ldap', ldap: { url: 'ldap://h', userSearchBase: 'dc=e' } }, /^ldap.bindDn: /);
  refuses({ kind: 'ldap', ldap: { url: 'ldap://h', userSearchBase: 'dc=e', bindDn: 'cn=svc,dc=e' } }, /^secret: /);
  refuses({ kind: 'ldap', ldap: { url: 'ldaps://h', userDn: 'uid={user},dc=e', startTls: true } }, /^ldap.startTls: /);
  refuses({ ...oidc, mappings: [{ group: 'g', team: '*', role: 'admin' }] }, /^mappings.0.team: name a team/);
  refuses({ ...oidc, mappings: [{ group: 'g', team: 'web', role: 'owner' }] }, /^mappings.0.team: an owner mapping/);
  assert.throws(() => body({ kind: 'ldap', ldap: { url: 'http://h' } }), /ldap:\/\/HOST/);
});
