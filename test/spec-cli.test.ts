/**
 * Bad Compose files: `berth validate` and `berth deploy` exit 2 with file:line:col, say what is wrong,
 * and change nothing in the store or on the engine.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, ROOT } from './helpers/harness.ts';

const FIX = join(ROOT, 'test/fixtures/spec');

const CASES: { file: string; expect: RegExp }[] = [
  { file: 'invalid-yaml-syntax.yaml', expect: /invalid-yaml-syntax\.yaml:\d+:\d+: .*YAML/ },
  { file: 'invalid-schema.yaml', expect: /invalid-schema\.yaml:\d+:\d+: .*(servics|enviroment|ports)/ },
  { file: 'invalid-replicas-two.yaml', expect: /invalid-replicas-two\.yaml:5:\d+: services\.web\.deploy\.replicas: "two" is not a number/ },
  { file: 'invalid-depends-on.yaml', expect: /invalid-depends-on\.yaml:\d+:\d+: .*depends_on.*(api|dbb)/ },
  { file: 'invalid-interpolation.yaml', expect: /invalid-interpolation\.yaml:\d+:\d+: .*(unterminated|\$\{TAG)/ },
];

describe('invalid specs', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.create({ portRange: '32000-32099' });
    await h.startServer();
  });
  after(async () => h.cleanup());

  for (const c of CASES) {
    test(`${c.file}: validate and deploy exit 2 with file:line:col, nothing changes`, async () => {
      const v = await h.cli(['validate', '-f', join(FIX, c.file)]);
      assert.equal(v.code, 2, v.stderr);
      assert.match(v.stderr, c.expect);
      assert.doesNotMatch(v.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
      const d = await h.cli(['deploy', '-f', join(FIX, c.file)]);
      assert.equal(d.code, 2, d.stderr);
      assert.match(d.stderr, c.expect);
      const apps = await h.api('GET', '/v1/apps');
      assert.deepEqual(apps.json.apps, []);
      assert.deepEqual(await h.containers(), []);
      const ev = await h.api('GET', '/v1/events');
      assert.deepEqual(ev.json.events, [], 'not even a deployment record');
    });
  }

  test('the API rejects a structurally bad spec with 400 naming the field, and records nothing', async () => {
    const r = await h.api('POST', '/v1/apps/x/deployments', { env: 'prod', spec: { name: 'x', services: { web: { name: 'web', replicas: 'two' } } } });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'invalid_input');
    assert.match(r.json.error.message, /spec\.services\.web\.(image|replicas)/);
    assert.deepEqual((await h.api('GET', '/v1/apps')).json.apps, []);
  });

  test('a missing file is a clear error', async () => {
    const r = await h.cli(['validate', '-f', join(FIX, 'nope.yaml')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /nope\.yaml: no such file/);
  });

  test('the .env beside the file follows the env_file rules of a push: comments, quotes, escapes; a bad line is file:line:col', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-dotenv-'));
    try {
      await writeFile(join(dir, 'compose.yaml'), [
        'name: dotenv',
        'services:',
        '  web:',
        '    image: berth/busybox',
        '    command: ["sleep", "1000"]',
        '    environment:',
        '      DOMAIN: ${DOMAIN}',
        '      MULTI: ${MULTI}',
        '      TABBED: ${TABBED}',
        '      LITERAL: ${LITERAL}',
        '',
      ].join('\n'));
      await writeFile(join(dir, '.env'), [
        '# where the shop answers',
        'DOMAIN=shop.test   # the public name',
        'export MULTI="line one',
        'line two"',
        'TABBED="a\\tb"',
        "LITERAL='x\\ty' # single quotes keep it",
        '',
      ].join('\n'));
      const ok = await h.cli(['--json', 'validate', '-f', join(dir, 'compose.yaml')]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(JSON.parse(ok.stdout).spec.services.web.environment,
        { DOMAIN: 'shop.test', MULTI: 'line one\nline two', TABBED: 'a\tb', LITERAL: 'x\\ty' });
      await writeFile(join(dir, '.env'), 'DOMAIN=shop.test\nthis is not a variable\n');
      for (const verb of ['validate', 'deploy']) {
        const bad = await h.cli([verb, '-f', join(dir, 'compose.yaml')]);
        assert.equal(bad.code, 2, bad.stderr);
        assert.match(bad.stderr, /\.env:2:1: invalid line "this is not a variable": expected KEY=VALUE/);
      }
      assert.deepEqual((await h.api('GET', '/v1/apps')).json.apps, []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('valid files parse, warnings name key and line', async () => {
    const r = await h.cli(['validate', '-f', join(FIX, 'valid-full.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /valid-full\.yaml:\d+:\d+: services\.db\.container_name: ignored: Berth names containers itself/);
    const j = await h.cli(['--json', 'validate', '-f', join(FIX, 'valid-basic.yaml')]);
    assert.equal(j.code, 0, j.stderr);
    assert.equal(JSON.parse(j.stdout).valid, true);
  });
});
