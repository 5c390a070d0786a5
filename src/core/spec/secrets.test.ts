import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidSpec, type SpecIssue } from '../errors.ts';
import { parseAppSpec, type ParseOptions, type ParseResult } from './index.ts';
import { parseWithSource, parseSource } from './source.ts';
import { externalKeyOf, parseMode } from './secrets.ts';

const FILES: Record<string, string> = {
  '/srv/shop/secrets/db_password.txt': 's3cret-pw\n',
  '/srv/shop/nginx.conf': 'server {}\n',
  '/srv/shop/.env': 'X=1\n',
};

const OPTS: ParseOptions = {
  file: 'compose.yaml', env: { API_TOKEN: 'tok-123' }, baseDir: '/srv/shop',
  readFile: (p) => FILES[p],
};

function parse(text: string, opts: Partial<ParseOptions> = {}): ParseResult {
  return parseAppSpec(text, { ...OPTS, ...opts });
}

function issues(text: string, opts: Partial<ParseOptions> = {}): SpecIssue[] {
  try {
    parse(text, opts);
  } catch (e) {
    assert.ok(e instanceof InvalidSpec, String(e));
    return e.issues;
  }
  assert.fail('expected InvalidSpec');
}

const DB = `
services:
  db:
    image: berth/busybox
    environment:
      DB_PASSWORD_FILE: /run/secrets/db_password
    secrets:
      - db_password
      - source: api_token
        target: token
        uid: "999"
        gid: "999"
        mode: 0440
      - source: shared
        target: /etc/shared/pw
    configs:
      - nginx_conf
      - source: inline
        target: /etc/app/app.ini
        mode: "0400"
secrets:
  db_password:
    file: ./secrets/db_password.txt
  api_token:
    environment: API_TOKEN
  shared:
    external: true
  unused:
    file: ./no/such/file
configs:
  nginx_conf:
    file: ./nginx.conf
  inline:
    content: |
      [app]
      debug = false
`;

test('short and long syntax: targets, owners, octal modes and values from file, environment, content and the store', () => {
  const r = parse(DB);
  const db = r.spec.services.db!;
  assert.deepEqual(db.secrets, [
    { name: 'db_password', target: '/run/secrets/db_password', uid: 0, gid: 0, mode: 0o444, from: 'file', value: 's3cret-pw\n' },
    { name: 'api_token', target: '/run/secrets/token', uid: 999, gid: 999, mode: 0o440, from: 'environment', value: 'tok-123' },
    { name: 'shared', target: '/etc/shared/pw', uid: 0, gid: 0, mode: 0o444, from: 'external', key: 'SHARED' },
  ]);
  assert.deepEqual(db.configs, [
    { name: 'nginx_conf', target: '/nginx_conf', uid: 0, gid: 0, mode: 0o444, from: 'file', value: 'server {}\n' },
    { name: 'inline', target: '/etc/app/app.ini', uid: 0, gid: 0, mode: 0o400, from: 'content', value: '[app]\ndebug = false\n' },
  ]);
  // Secrets and configs are understood: no "not supported" warning; an unused secret's missing file is no error.
  assert.deepEqual(r.warnings.filter((w) => /secrets|configs/.test(w.path)), []);
});

test('a secret read from a variable is not recorded as a variable the file used (the source would keep its value)', () => {
  const r = parse(DB);
  assert.ok(!r.variablesUsed.includes('API_TOKEN'), r.variablesUsed.join(','));
});

test('the source kept for promote holds neither secret files nor secret variables; promoting one is refused naming it', () => {
  const p = parseWithSource(DB, { file: 'compose.yaml', baseDir: '/srv/shop', environment: 'pre', readFile: (f) => FILES[f] },
    { variables: { API_TOKEN: 'tok-123' } });
  assert.deepEqual(Object.keys(p.source.files), []);
  assert.deepEqual(p.source.variables, {});
  assert.ok(!JSON.stringify(p.source).includes('s3cret-pw'));
  assert.throws(() => parseSource(p.source, 'shop', 'prod'), (e: unknown) => e instanceof InvalidSpec &&
    e.issues.some((i) => i.path === 'secrets.db_password.file' && /not found/.test(i.message)) &&
    e.issues.some((i) => i.path === 'secrets.api_token.environment' && /API_TOKEN is not set/.test(i.message)));
});

test('external secrets read the key named by `name:` (or external.name), else the upper-cased secret name', () => {
  const r = parse(`
services:
  a:
    image: x
    secrets: [one, two, three.key]
secrets:
  one: {external: true, name: DB_PW}
  two: {external: {name: OLD_STYLE}}
  three.key: {external: true}
`);
  assert.deepEqual(r.spec.services.a!.secrets!.map((s) => s.key), ['DB_PW', 'OLD_STYLE', 'THREE_KEY']);
  assert.equal(externalKeyOf('9lives'), '_9LIVES');
});

test('bad input is refused at its line and column with what would be right', () => {
  const found = issues(`
services:
  a:
    image: x
    secrets:
      - db_pasword
      - source: missing_file
      - source: env_unset
      - source: ext_bad
      - source: ok
        target: ../etc/passwd
      - source: ok
        uid: postgres
      - source: ok
        target: /x
        mode: 0999
      - source: ok
        target: /y
        mode: 0200
      - source: ok
        target: /etc/resolv.conf
      - ok
    configs:
      - source: ok
        target: /run/secrets/ok
secrets:
  db_password: {file: ./secrets/db_password.txt}
  missing_file: {file: ./secrets/nope.txt}
  env_unset: {environment: NOT_SET_ANYWHERE}
  ext_bad: {external: true, name: lower-case}
  ok: {file: ./secrets/db_password.txt}
  empty: {labels: {a: b}}
  both: {file: ./a, environment: B}
configs:
  ok: {content: hi}
`);
  const by = (path: string) => found.find((i) => i.path === path);
  assert.match(by('services.a.secrets[0]')!.message, /undefined secret "db_pasword": did you mean "db_password"\?/);
  assert.equal(by('services.a.secrets[0]')!.line, 6);
  assert.match(by('secrets.missing_file.file')!.message, /file "\.\/secrets\/nope\.txt" not found \(looked for \/srv\/shop\/secrets\/nope\.txt\)/);
  assert.match(by('secrets.env_unset.environment')!.message, /NOT_SET_ANYWHERE is not set/);
  assert.match(by('secrets.ext_bad.name')!.message, /upper-case letters.*LOWER_CASE/);
  assert.match(by('services.a.secrets[4].target')!.message, /not a file path inside the container/);
  assert.match(by('services.a.secrets[5].uid')!.message, /must be a number/);
  assert.match(by('services.a.secrets[6].mode')!.message, /not an octal file mode/);
  assert.match(by('services.a.secrets[7].mode')!.message, /lets nobody read/);
  assert.match(by('services.a.secrets[8].target')!.message, /where Berth mounts the DNS configuration/);
  assert.match(by('services.a.configs[0].target')!.message, /already the target of secret "ok"/);
  assert.match(by('secrets.empty')!.message, /says nothing about its value/);
  assert.match(by('secrets.both.environment')!.message, /both `file` and `environment`/);
  // No message carries a value.
  assert.ok(!found.some((i) => i.message.includes('s3cret')));
});

test('a service referring to secrets when none are defined says how to define one', () => {
  const found = issues(`
services:
  a:
    image: x
    configs: [app_conf]
`);
  assert.match(found[0]!.message, /undefined config "app_conf": define it under a top-level `configs:`/);
});

test('modes are octal as written, whatever YAML made of them', () => {
  assert.equal(parseMode(440), 0o440);
  assert.equal(parseMode('0440'), 0o440);
  assert.equal(parseMode('0o600'), 0o600);
  assert.equal(parseMode(288), undefined);
  assert.equal(parseMode('rw'), undefined);
});

test('build secrets must name a defined secret; each carries its value for the build (no warning)', () => {
  const found = issues(`
services:
  a:
    build: {context: ., secrets: [npm_tokn]}
secrets:
  npm_token: {environment: API_TOKEN}
`);
  assert.match(found.find((i) => i.path === 'services.a.build.secrets[0]')!.message, /undefined secret "npm_tokn": did you mean "npm_token"\?/);
  const ok = parse(`
services:
  a:
    build: {context: ., secrets: [npm_token]}
secrets:
  npm_token: {environment: API_TOKEN}
`);
  assert.deepEqual(ok.warnings.filter((w) => w.path.includes('secrets')), []);
  assert.deepEqual(ok.spec.services.a!.build!.secrets, [{ source: 'npm_token', target: 'npm_token',
    mount: { name: 'npm_token', target: '/run/secrets/npm_token', uid: 0, gid: 0, mode: 0o400, from: 'environment', value: 'tok-123' } }]);
  const ext = parse(`
services:
  a:
    build: {context: ., secrets: [{source: gh, target: github}]}
secrets:
  gh: {external: true}
`);
  assert.deepEqual(ext.spec.services.a!.build!.secrets![0]!.mount, { name: 'gh', target: '/run/secrets/github', uid: 0, gid: 0, mode: 0o400, from: 'external', key: 'GH' });
});
