import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidSpec, type SpecIssue } from '../errors.ts';
import { parseAppSpec, type ParseOptions, type ParseResult } from './index.ts';

/** Strips the common indentation so YAML can be written inline. */
function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ''), '').replace(/^\n/, '');
  const indent = Math.min(...text.split('\n').filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length));
  return text.split('\n').map((l) => l.slice(indent)).join('\n');
}

function opts(files: Record<string, string> = {}, more: Partial<ParseOptions> = {}): ParseOptions {
  return { file: 'compose.yaml', env: {}, baseDir: '/srv/shop', readFile: (p) => files[p], ...more };
}

function parse(text: string, o: ParseOptions): ParseResult {
  return parseAppSpec(text, o);
}

function issuesOf(fn: () => unknown): { issues: SpecIssue[]; warnings: SpecIssue[] } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof InvalidSpec, String(e));
    return { issues: e.issues, warnings: e.warnings };
  }
  assert.fail('expected an InvalidSpec');
}

const where = (i: SpecIssue): string => `${i.file}:${i.line}:${i.col} ${i.path}`;

const BASE = yaml`
  name: shop
  services:
    web:
      image: shop/web:1
      command: [node, server.js]
      environment:
        - LOG=info
        - MODE=dev
      ports: ["8000"]
      labels: {team: web}
    worker:
      image: shop/worker:1
`;

test('an override file merges as Compose does: maps by key, command replaced, lists appended, unique by target', () => {
  const prod = yaml`
    services:
      web:
        command: node server.js --prod
        environment: {MODE: prod, EXTRA: "1"}
        deploy: {replicas: 3}
        ports: ["8000", "9229"]
        labels: [tier=front]
  `;
  const r = parse(BASE, opts({}, { moreFiles: [{ file: 'compose.prod.yaml', text: prod }] }));
  const web = r.spec.services.web!;
  assert.equal(web.replicas, 3);
  assert.deepEqual(web.command, ['node', 'server.js', '--prod']);
  assert.deepEqual(web.environment, { LOG: 'info', MODE: 'prod', EXTRA: '1' });
  assert.deepEqual(web.ports, ['8000', '9229']);
  assert.deepEqual(web.labels, { team: 'web', tier: 'front' });
  assert.equal(r.spec.services.worker!.replicas, 1);
});

test('a problem in an override file is reported in that file, at its line; the base file\'s too, errors first then warnings', () => {
  const prod = yaml`
    services:
      web:
        deploy: {replicas: many}
        mem_limit: 1g
  `;
  const { issues, warnings } = issuesOf(() => parse(BASE, opts({}, { moreFiles: [{ file: 'compose.prod.yaml', text: prod }] })));
  assert.deepEqual(issues.map(where), ['compose.prod.yaml:3:24 services.web.deploy.replicas']);
  assert.ok(warnings.some((w) => where(w) === 'compose.prod.yaml:4:5 services.web.mem_limit'), JSON.stringify(warnings));
  const e = issuesOf(() => parse(BASE, opts({}, { moreFiles: [{ file: 'compose.prod.yaml', text: prod }] })));
  assert.equal(e.issues.length, 1);
});

test('!reset removes a value of the files before, !override replaces instead of merging', () => {
  const over = yaml`
    services:
      web:
        ports: !reset []
        environment: !override {ONLY: "1"}
        labels: !reset {}
  `;
  const web = parse(BASE, opts({}, { moreFiles: [{ file: 'o.yaml', text: over }] })).spec.services.web!;
  assert.deepEqual(web.ports, []);
  assert.deepEqual(web.environment, { ONLY: '1' });
  assert.deepEqual(web.labels, {});
  assert.deepEqual(parse(BASE, opts()).spec.services.web!.labels, { team: 'web' }, 'no tags: unchanged');
});

test('extends in the same file and from another file; relative paths of the other file resolve against its directory', () => {
  const common = yaml`
    services:
      base:
        build: {context: ./app, target: runtime}
        environment: {LOG: debug, FROM: common}
        volumes: ["./conf:/etc/app:ro"]
        env_file: [common.env]
  `;
  const main = yaml`
    services:
      api:
        extends: {file: ../lib/common.yaml, service: base}
        environment: {LOG: info}
      api_admin:
        extends: api
        command: admin
  `;
  const files = { '/srv/lib/common.yaml': common, '/srv/lib/common.env': 'COMMON=yes\n' };
  const r = parse(main, opts(files));
  const api = r.spec.services.api!;
  assert.equal(api.build?.context, '/srv/lib/app');
  assert.deepEqual(api.environment, { COMMON: 'yes', LOG: 'info', FROM: 'common' });
  assert.deepEqual(api.volumes, [{ type: 'bind', source: '/srv/lib/conf', target: '/etc/app', readOnly: true }]);
  const admin = r.spec.services['api-admin']!;
  assert.equal(admin.composeName, 'api_admin');
  assert.deepEqual(admin.command, ['admin']);
  assert.equal(admin.build?.context, '/srv/lib/app');
  // A problem of the base is reported in the base file.
  const bad = common.replace('FROM: common', 'FROM: [a, b]');
  const { issues } = issuesOf(() => parse(main, opts({ ...files, '/srv/lib/common.yaml': bad })));
  assert.deepEqual(issues.map(where), ['/srv/lib/common.yaml:4:37 services.api.environment.FROM', '/srv/lib/common.yaml:4:37 services.api_admin.environment.FROM']);
});

test('extends problems: unknown service (did you mean), missing file, cycle', () => {
  const { issues } = issuesOf(() => parse(yaml`
    services:
      a: {image: x, extends: {service: wbe}}
      web: {image: x}
      b: {image: x, extends: {file: nope.yaml, service: web}}
      c: {image: x, extends: d}
      d: {image: x, extends: c}
  `, opts()));
  const msgs = issues.map((i) => `${where(i)}: ${i.message}`);
  assert.ok(msgs.some((m) => /^compose\.yaml:2:36 services\.a\.extends\.service: extends: no service "wbe" in compose\.yaml; did you mean "web"\?/.test(m)), msgs.join('\n'));
  assert.ok(msgs.some((m) => /^compose\.yaml:4:33 services\.b\.extends\.file: cannot read \/srv\/shop\/nope\.yaml: no such file/.test(m)), msgs.join('\n'));
  assert.ok(msgs.some((m) => /services\.[cd]\.extends: extends cycle: /.test(m)), msgs.join('\n'));
});

test('include project_directory: the included file\'s relative paths resolve against it (relative to the including file), not the file\'s own directory', () => {
  const db = yaml`
    services:
      db:
        image: postgres
        build: {context: ./images/db}
        volumes: ["./init:/docker-entrypoint-initdb.d:ro"]
  `;
  const files = { '/srv/shop/stack/db/compose.yaml': db };
  const main = yaml`
    include:
      - path: stack/db/compose.yaml
        project_directory: ./data
    services:
      web: {image: x}
  `;
  const r = parse(main, opts(files));
  assert.equal(r.spec.services.db!.volumes[0]!.source, '/srv/shop/data/init');
  assert.equal(r.spec.services.db!.build!.context, '/srv/shop/data/images/db');
  assert.deepEqual(r.warnings, [], 'project_directory is honoured, not warned about');
  // Without it, the included file's own directory (as before).
  const plain = parse(main.replace(/\n\s*project_directory: \.\/data/, ''), opts(files));
  assert.equal(plain.spec.services.db!.volumes[0]!.source, '/srv/shop/stack/db/init');
  const bad = issuesOf(() => parse(main.replace('./data', '{a: 1}'), opts(files)));
  assert.deepEqual(bad.issues.map((x) => `${where(x)}: ${x.message}`), [
    'compose.yaml:3:24 include[0].project_directory: project_directory is a directory path, relative to this file (e.g. project_directory: ./db)',
  ]);
});

test('include adds another project\'s services with its own directory and env_file; a name defined twice is an error naming the file', () => {
  const db = yaml`
    services:
      db:
        image: postgres:\${PG_VERSION}
        volumes: ["./init:/docker-entrypoint-initdb.d:ro"]
  `;
  const files = { '/srv/shop/db/compose.yaml': db, '/srv/shop/db/.env': 'PG_VERSION=16\n' };
  const main = yaml`
    include:
      - path: db/compose.yaml
        env_file: db/.env
    services:
      web: {image: x, depends_on: [db]}
  `;
  const r = parse(main, opts(files));
  assert.equal(r.spec.services.db!.image, 'postgres:16');
  assert.equal(r.spec.services.db!.volumes[0]!.source, '/srv/shop/db/init');
  assert.deepEqual(r.spec.services.web!.dependsOn, ['db']);
  assert.deepEqual(r.warnings, []);
  const { issues } = issuesOf(() => parse(main + '  db: {image: y}\n', opts(files)));
  assert.deepEqual(issues.map((i) => `${where(i)}: ${i.message}`), [
    'compose.yaml:6:3 services.db: service "db" is defined here and in the included file db/compose.yaml: Compose does not merge included resources; rename or remove one of them',
  ]);
  const missing = issuesOf(() => parse('include: [nope/compose.yaml]\nservices: {web: {image: x}}\n', opts()));
  assert.match(missing.issues[0]!.message, /cannot read \/srv\/shop\/nope\/compose\.yaml: no such file/);
  assert.equal(where(missing.issues[0]!), 'compose.yaml:1:11 include[0]');
  const selfInclude = issuesOf(() => parse('include: [compose.yaml]\nservices: {web: {image: x}}\n', opts({ '/srv/shop/compose.yaml': 'include: [compose.yaml]\nservices: {x: {image: y}}\n' })));
  assert.match(selfInclude.issues.map((i) => i.message).join('\n'), /names itself/);
});

test('profiles: a service in a profile runs only when the profile is active; depending on it says which profile to activate', () => {
  const text = yaml`
    services:
      web: {image: x}
      debug: {image: y, profiles: [debug]}
      tools: {image: z, profiles: [ops, debug]}
  `;
  assert.deepEqual(Object.keys(parse(text, opts()).spec.services), ['web']);
  assert.deepEqual(parse(text, opts()).inactive, { debug: ['debug'], tools: ['ops', 'debug'] });
  assert.deepEqual(Object.keys(parse(text, opts({}, { profiles: ['debug'] })).spec.services), ['web', 'debug', 'tools']);
  assert.deepEqual(Object.keys(parse(text, opts({}, { profiles: ['ops'] })).spec.services), ['web', 'tools']);
  assert.deepEqual(Object.keys(parse(text, opts({}, { profiles: ['*'] })).spec.services), ['web', 'debug', 'tools']);
  const { issues } = issuesOf(() => parse(text.replace('web: {image: x}', 'web: {image: x, depends_on: [debug]}'), opts()));
  assert.deepEqual(issues.map((i) => `${where(i)}: ${i.message}`), [
    'compose.yaml:2:32 services.web.depends_on[0]: service "debug" is only in profile debug, which is not active: run with --profile debug, or mark the dependency `required: false`',
  ]);
  const optional = parse(text.replace('web: {image: x}', 'web: {image: x, depends_on: {debug: {condition: service_started, required: false}}}'), opts());
  assert.deepEqual(optional.spec.services.web!.dependsOn, []);
});

test('names: capitals, "_" and "." are Compose names; Berth derives DNS-safe names and maps depends_on', () => {
  const r = parse(yaml`
    services:
      serviceA: {image: x, depends_on: [with_depends_on]}
      with_depends_on: {image: y}
      api.v2: {build: .}
  `, opts());
  assert.deepEqual(Object.keys(r.spec.services), ['servicea', 'with-depends-on', 'api-v2']);
  assert.equal(r.spec.services.servicea!.composeName, 'serviceA');
  assert.deepEqual(r.spec.services.servicea!.dependsOn, ['with-depends-on']);
  assert.equal(r.spec.services['api-v2']!.image, 'berth-shop/api-v2:latest');
  assert.deepEqual(r.spec.services['with-depends-on']!.networks, [{ name: 'default', aliases: ['with_depends_on'] }], 'reachable by its Compose name on the app network');
});

test('warnings are kept when the file has errors: an unset variable explains the error it causes', () => {
  const { issues, warnings } = issuesOf(() => parse('services:\n  web:\n    image: x\n    deploy: {replicas: "${REPLICAS}"}\n', opts()));
  assert.equal(issues.length, 1);
  assert.match(warnings[0]!.message, /variable "REPLICAS" is not set/);
  try {
    parse('services:\n  web:\n    image: x\n    deploy: {replicas: "${REPLICAS}"}\n', opts());
  } catch (e) {
    const lines = (e as Error).message.split('\n');
    assert.match(lines[0]!, /^compose\.yaml:4:24: services\.web\.deploy\.replicas: /);
    assert.match(lines[1]!, /^warning: compose\.yaml:4:24: services\.web\.deploy\.replicas: variable "REPLICAS" is not set/);
  }
});
