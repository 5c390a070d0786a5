import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidSpec, type SpecIssue } from '../errors.ts';
import { parseAppSpec, type ParseOptions, type ParseResult, type ServiceSpec, type SpecWarning } from './index.ts';
import { DEFAULT_UPDATE } from './types.ts';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/spec');

const OPTS: ParseOptions = {
  file: 'compose.yaml',
  env: {},
  baseDir: '/srv/apps/demo',
  readFile: () => undefined,
};

/** Strips the common indentation so YAML can be written inline, indented with the test code. */
function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ''), '').replace(/^\n/, '');
  const indent = Math.min(...text.split('\n').filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length));
  return text
    .split('\n')
    .map((l) => l.slice(indent))
    .join('\n');
}

function parse(text: string, opts: Partial<ParseOptions> = {}): ParseResult {
  return parseAppSpec(text, { ...OPTS, ...opts });
}

function service(text: string, name = 'web', opts: Partial<ParseOptions> = {}): ServiceSpec {
  const svc = parse(text, opts).spec.services[name];
  assert.ok(svc, `service ${name} present`);
  return svc;
}

function issues(text: string, opts: Partial<ParseOptions> = {}): SpecIssue[] {
  try {
    parseAppSpec(text, { ...OPTS, ...opts });
  } catch (e) {
    assert.ok(e instanceof InvalidSpec, `expected InvalidSpec, got ${String(e)}`);
    assert.equal(e.code, 'invalid_spec');
    return e.issues;
  }
  assert.fail('expected InvalidSpec, but the spec parsed');
}

function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8');
}

/** Compact form for table comparisons. */
const brief = (i: SpecIssue | SpecWarning): string => `${i.line}:${i.col} ${i.path}`.trim();

// ---------------------------------------------------------------------------------------------
// Fixtures (also used by the CLI tests)

test('fixture valid-basic.yaml parses into the expected spec', () => {
  const { spec, warnings } = parse(fixture('valid-basic.yaml'), { file: 'valid-basic.yaml' });
  assert.deepEqual(warnings, []);
  assert.equal(spec.name, 'shop');
  assert.deepEqual(Object.keys(spec.services), ['web', 'worker']);
  assert.deepEqual(spec.services.web, {
    name: 'web',
    image: 'registry.example.com/shop/web:1.4.2',
    command: ['node', 'server.js'],
    environment: { NODE_ENV: 'production', LOG_LEVEL: 'info' },
    ports: [],
    health: { type: 'http', path: '/healthz', intervalMs: 1000, timeoutMs: 1000, retries: 3, startPeriodMs: 0 },
    replicas: 2,
    limits: {},
    restart: { condition: 'any', delayMs: 1000 },
    labels: {},
    stopSignal: 'SIGTERM',
    stopGracePeriodMs: 10_000,
    volumes: [],
    dependsOn: [],
    port: 3000,
    routes: [{ host: 'shop.example.com', path: '/' }],
    update: DEFAULT_UPDATE,
  });
  assert.deepEqual(spec.services.worker?.command, ['node', 'worker.js', '--queue', 'orders']);
  assert.deepEqual(spec.services.worker?.dependsOn, ['web']);
  assert.deepEqual(spec.services.worker?.health, { type: 'none' });
});

test('fixture valid-full.yaml: anchors, build, env_file, volumes, limits, health, restart', () => {
  const baseDir = '/srv/apps/blog';
  const files: Record<string, string> = { [`${baseDir}/api.env`]: fixture('api.env') };
  const { spec, warnings } = parse(fixture('valid-full.yaml'), { file: 'valid-full.yaml', baseDir, readFile: (p) => files[p] });
  assert.equal(spec.name, 'blog');
  const api = spec.services.api!;
  assert.equal(api.image, 'berth-blog/api:latest');
  assert.deepEqual(api.build, { context: '/srv/apps/blog/api', dockerfile: 'Dockerfile.prod', args: { NODE_VERSION: '20' } });
  assert.deepEqual(api.environment, {
    API_LOG_LEVEL: 'info',
    SESSION_SECRET: 'dev only',
    DATABASE_URL: 'postgres://blog@db:5432/blog',
    CACHE_TTL: '60',
  });
  assert.deepEqual(api.health, { type: 'command', test: ['CMD', 'wget', '-qO-', 'http://127.0.0.1:8080/healthz'], intervalMs: 10_000, timeoutMs: 2_000, retries: 5, startPeriodMs: 90_000 });
  assert.deepEqual(api.limits, { nanoCpus: 500_000_000, memoryBytes: 512 * 1024 ** 2 });
  assert.deepEqual(api.restart, { condition: 'on-failure', maxAttempts: 5, delayMs: 500 });
  assert.equal(api.replicas, 3);
  assert.equal(api.stopSignal, 'SIGINT');
  assert.equal(api.stopGracePeriodMs, 30_000); // from the merged anchor
  assert.deepEqual(api.labels, { team: 'content' });
  assert.deepEqual(api.volumes, [{ type: 'volume', source: 'uploads', target: '/srv/uploads', readOnly: false }]);
  assert.deepEqual(api.dependsOn, ['db']);
  assert.deepEqual(api.routes, [{ host: 'blog.example.com', path: '/api' }, { host: 'admin.example.com', path: '/' }]);
  assert.deepEqual(api.ports, ['8080:8080']);

  const fe = spec.services.frontend!;
  assert.deepEqual(fe.health, { type: 'http', path: '/ready', intervalMs: 2000, timeoutMs: 1000, retries: 5, startPeriodMs: 0 });
  assert.deepEqual(fe.routes, [{ path: '/' }]);

  const db = spec.services.db!;
  assert.equal(db.environment.POSTGRES_PASSWORD, 'change-me');
  assert.equal(db.shmSizeBytes, 256 * 1024 ** 2);
  assert.deepEqual(db.health, { type: 'command', test: ['CMD-SHELL', 'pg_isready -U postgres'], intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 });
  assert.equal(db.restart.condition, 'any'); // restart: unless-stopped from the anchor

  assert.deepEqual(
    warnings.map((w) => `${brief(w)}: ${w.message}`),
    [
      '3:1 version: the `version` key is obsolete and ignored; remove it',
      '10:3 services.api.restart: ignored: deploy.restart_policy is also set and takes precedence; keep only one of them',
      '33:7 services.api.volumes: the 3 replicas all write to volume "uploads" at once (releases roll as usual): only software made to share one data directory works so; keep one replica for a database',
      '81:7 services.db.volumes: stateful: releases stop the old container before starting the new one (a short gap), so two processes never open volume "pgdata" at once; set x-berth.update.strategy to choose otherwise',
      '86:5 services.db.container_name: ignored: Berth names containers itself, one per instance',
    ],
  );
  for (const w of warnings) assert.equal(w.file, 'valid-full.yaml');
});

test('invalid fixtures each fail with a located, actionable issue', () => {
  const cases: Array<{ file: string; env?: Record<string, string>; want: Array<[string, RegExp]> }> = [
    {
      file: 'invalid-yaml-syntax.yaml',
      want: [['6:1 ', /^invalid YAML: /]],
    },
    {
      file: 'invalid-schema.yaml',
      want: [
        ['4:12 services.web.ports', /^expected a list, found a mapping$/],
        ['5:5 services.web.enviroment', /^unknown key `enviroment`: did you mean `environment`\?$/],
        ['7:1 servics', /^unknown top-level key `servics`: did you mean `services`\?$/],
      ],
    },
    {
      file: 'invalid-replicas-two.yaml',
      want: [['5:17 services.web.deploy.replicas', /^"two" is not a number: write a whole number such as 2$/]],
    },
    {
      file: 'invalid-depends-on.yaml',
      want: [
        ['5:9 services.web.depends_on[0]', /^unknown service "api": defined services: web, db$/],
        ['6:9 services.web.depends_on[1]', /^unknown service "dbb": did you mean "db"\?$/],
      ],
    },
    {
      file: 'invalid-interpolation.yaml',
      want: [
        ['3:12 services.web.image', /^unterminated variable reference "\$\{TAG": close it with "}" or write "\$\$" for a literal "\$"$/],
        ['5:15 services.web.environment.SECRET', /^required variable "SECRET" is not set: must be set$/],
      ],
    },
  ];
  for (const c of cases) {
    const found = issues(fixture(c.file), { file: c.file, env: c.env ?? {} });
    assert.equal(found.length, c.want.length, `${c.file}: ${JSON.stringify(found)}`);
    c.want.forEach(([where, message], i) => {
      assert.equal(brief(found[i]!), where.trim(), c.file);
      assert.match(found[i]!.message, message, c.file);
      assert.equal(found[i]!.file, c.file);
    });
  }
});

test('the InvalidSpec message lists file:line:col: path: message per issue, with no stack trace', () => {
  try {
    parse(fixture('invalid-depends-on.yaml'), { file: 'deploy/compose.yaml' });
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof InvalidSpec);
    assert.equal(
      e.message,
      'deploy/compose.yaml:5:9: services.web.depends_on[0]: unknown service "api": defined services: web, db\n' +
        'deploy/compose.yaml:6:9: services.web.depends_on[1]: unknown service "dbb": did you mean "db"?',
    );
    assert.deepEqual(e.details, { issues: e.issues });
  }
});

// ---------------------------------------------------------------------------------------------
// Normalization

test('normalizes service fields', () => {
  const cases: Array<{ name: string; yaml: string; opts?: Partial<ParseOptions>; pick: (s: ServiceSpec) => unknown; want: unknown }> = [
    {
      name: 'defaults',
      yaml: 'services: {web: {image: nginx}}',
      pick: (s) => [s.replicas, s.restart, s.stopSignal, s.stopGracePeriodMs, s.health, s.command, s.entrypoint, s.limits],
      want: [1, { condition: 'any', delayMs: 1000 }, 'SIGTERM', 10_000, { type: 'none' }, undefined, undefined, {}],
    },
    {
      name: 'command string is split like a shell',
      yaml: `services: {web: {image: x, command: "sh -c 'echo \\"hi\\" && sleep 1'"}}`,
      pick: (s) => s.command,
      want: ['sh', '-c', 'echo "hi" && sleep 1'],
    },
    { name: 'entrypoint list kept', yaml: 'services: {web: {image: x, entrypoint: [/bin/tini, --]}}', pick: (s) => s.entrypoint, want: ['/bin/tini', '--'] },
    { name: 'null command keeps the image default', yaml: 'services: {web: {image: x, command: null}}', pick: (s) => s.command, want: undefined },
    {
      name: 'environment list, with a bare KEY taken from the environment',
      yaml: 'services: {web: {image: x, environment: [A=1, B=x=y, HOME, EMPTY=]}}',
      opts: { env: { HOME: '/root' } },
      pick: (s) => s.environment,
      want: { A: '1', B: 'x=y', HOME: '/root', EMPTY: '' },
    },
    {
      name: 'environment map with typed scalars and a null taken from the environment',
      yaml: 'services: {web: {image: x, environment: {N: 3, B: true, S: "s", FROM: null}}}',
      opts: { env: { FROM: 'env' } },
      pick: (s) => s.environment,
      want: { N: '3', B: 'true', S: 's', FROM: 'env' },
    },
    {
      name: 'env_file then environment, later files and environment win',
      yaml: 'services: {web: {image: x, env_file: [a.env, {path: ./b.env, required: false}, {path: c.env, required: false}], environment: {C: env}}}',
      opts: { readFile: (p) => ({ '/srv/apps/demo/a.env': 'A=a\nB=a\nC=a\n', '/srv/apps/demo/b.env': 'B=b\nC=b\n' })[p] },
      pick: (s) => s.environment,
      want: { A: 'a', B: 'b', C: 'env' },
    },
    {
      name: 'labels list and map',
      yaml: 'services: {web: {image: x, labels: [a=1, "b.c=two", flag]}}',
      pick: (s) => s.labels,
      want: { a: '1', 'b.c': 'two', flag: '' },
    },
    {
      name: 'ports: short, numeric and long syntax rendered as strings',
      yaml: 'services: {web: {image: x, ports: ["8080:80", 9000, {target: 90, published: "9090", host_ip: 127.0.0.1, protocol: udp}], x-berth: {port: 80}}}',
      pick: (s) => s.ports,
      want: ['8080:80', '9000', '127.0.0.1:9090:90/udp'],
    },
    {
      name: 'healthcheck string test is CMD-SHELL, with Docker defaults',
      yaml: 'services: {web: {image: x, healthcheck: {test: "curl -f http://localhost/ || exit 1", retries: "5"}}}',
      pick: (s) => s.health,
      want: { type: 'command', test: ['CMD-SHELL', 'curl -f http://localhost/ || exit 1'], intervalMs: 30_000, timeoutMs: 30_000, retries: 5, startPeriodMs: 0 },
    },
    {
      name: 'healthcheck NONE falls back to TCP on x-berth.port',
      yaml: 'services: {web: {image: x, healthcheck: {test: [NONE]}, x-berth: {port: 8080}}}',
      pick: (s) => s.health,
      want: { type: 'tcp', intervalMs: 1000, timeoutMs: 1000, retries: 3, startPeriodMs: 0 },
    },
    {
      name: 'healthcheck disable: true without a port is none',
      yaml: 'services: {web: {image: x, healthcheck: {disable: true, test: [CMD, x]}}}',
      pick: (s) => s.health,
      want: { type: 'none' },
    },
    {
      name: 'x-berth.health string is an HTTP path',
      yaml: 'services: {web: {image: x, x-berth: {port: 3000, health: /healthz}}}',
      pick: (s) => s.health,
      want: { type: 'http', path: '/healthz', intervalMs: 1000, timeoutMs: 1000, retries: 3, startPeriodMs: 0 },
    },
    {
      name: 'x-berth.health http object with timings',
      yaml: 'services: {web: {image: x, x-berth: {port: 3000, health: {http: {path: /up, interval: 5s, timeout: 500ms, retries: 2, start_period: 1m}}}}}',
      pick: (s) => s.health,
      want: { type: 'http', path: '/up', intervalMs: 5000, timeoutMs: 500, retries: 2, startPeriodMs: 60_000 },
    },
    {
      name: 'x-berth.health {tcp: true}',
      yaml: 'services: {web: {image: x, x-berth: {port: 3000, health: {tcp: true}}}}',
      pick: (s) => s.health.type,
      want: 'tcp',
    },
    {
      name: 'x-berth.health {tcp: false} turns the default TCP check off',
      yaml: 'services: {web: {image: x, x-berth: {port: 3000, health: {tcp: false}}}}',
      pick: (s) => s.health,
      want: { type: 'none' },
    },
    {
      name: 'routes: HTTPS options keep only what differs from the default (tls and redirect on, no HSTS)',
      yaml: 'services: {web: {image: x, x-berth: {port: 3000, routes: [{host: a.example.com, tls: true, redirect: true, hsts: false}, {host: b.example.com, redirect: false, hsts: true}, {host: c.example.com, hsts: 2d}, {host: d.example.com, tls: false}]}}}',
      pick: (s) => s.routes,
      want: [
        { host: 'a.example.com', path: '/' },
        { host: 'b.example.com', path: '/', redirect: false, hstsSeconds: 31_536_000 },
        { host: 'c.example.com', path: '/', hstsSeconds: 172_800 },
        { host: 'd.example.com', path: '/', tls: false },
      ],
    },
    {
      name: 'routes: strings and objects, host lower-cased, path defaults to /',
      yaml: 'services: {web: {image: x, x-berth: {port: 3000, routes: [Example.COM/api, /admin, shop.example.com, {host: a.example.com}, {path: /v2}, "*.apps.example.com"]}}}',
      pick: (s) => s.routes,
      want: [
        { host: 'example.com', path: '/api' },
        { path: '/admin' },
        { host: 'shop.example.com', path: '/' },
        { host: 'a.example.com', path: '/' },
        { path: '/v2' },
        { host: '*.apps.example.com', path: '/' },
      ],
    },
    {
      name: 'routes in canonical form: host without its trailing dot, IDNA in ASCII, path without its trailing slash',
      yaml: 'services: {web: {image: x, x-berth: {port: 3000, routes: [SEC-CASE.LOCAL./, "Bücher.Example/Shop/", {host: "ｓｈｏｐ.example.", path: /api/v1/}]}}}',
      pick: (s) => s.routes,
      want: [
        { host: 'sec-case.local', path: '/' },
        { host: 'xn--bcher-kva.example', path: '/Shop' },
        { host: 'shop.example', path: '/api/v1' },
      ],
    },
    {
      name: 'restart: on-failure:N',
      yaml: 'services: {web: {image: x, restart: "on-failure:3"}}',
      pick: (s) => s.restart,
      want: { condition: 'on-failure', maxAttempts: 3, delayMs: 1000 },
    },
    { name: 'restart: "no"', yaml: 'services: {web: {image: x, restart: "no"}}', pick: (s) => s.restart.condition, want: 'none' },
    { name: 'restart: always', yaml: 'services: {web: {image: x, restart: always}}', pick: (s) => s.restart.condition, want: 'any' },
    {
      name: 'deploy.restart_policy defaults condition any, delay 1s; max_attempts 0 means no limit',
      yaml: 'services: {web: {image: x, deploy: {restart_policy: {max_attempts: 0}}}}',
      pick: (s) => s.restart,
      want: { condition: 'any', delayMs: 1000 },
    },
    { name: 'scale is an alias of deploy.replicas', yaml: 'services: {web: {image: x, scale: 4}}', pick: (s) => s.replicas, want: 4 },
    { name: 'replicas as an interpolated string', yaml: 'services: {web: {image: x, deploy: {replicas: "${N}"}}}', opts: { env: { N: '3' } }, pick: (s) => s.replicas, want: 3 },
    { name: 'replicas 0 is allowed', yaml: 'services: {web: {image: x, deploy: {replicas: 0}}}', pick: (s) => s.replicas, want: 0 },
    {
      name: 'limits: cpus and memory',
      yaml: 'services: {web: {image: x, deploy: {resources: {limits: {cpus: 1.5, memory: 1g}}}}}',
      pick: (s) => s.limits,
      want: { nanoCpus: 1_500_000_000, memoryBytes: 1024 ** 3 },
    },
    { name: 'stop signal without SIG prefix', yaml: 'services: {web: {image: x, stop_signal: quit}}', pick: (s) => s.stopSignal, want: 'SIGQUIT' },
    { name: 'stop_grace_period', yaml: 'services: {web: {image: x, stop_grace_period: 1m30s}}', pick: (s) => s.stopGracePeriodMs, want: 90_000 },
    { name: 'shm_size bytes as a number', yaml: 'services: {web: {image: x, shm_size: 67108864}}', pick: (s) => s.shmSizeBytes, want: 64 * 1024 ** 2 },
    {
      name: 'volumes: named, relative bind, absolute bind, long syntax read_only',
      yaml: yaml`
        services:
          web:
            image: x
            volumes:
              - data:/data
              - ./static:/srv/static:ro
              - /var/data/uploads:/uploads:rw
              - {type: bind, source: ../demo/conf, target: /conf, read_only: true}
              - {type: volume, source: data, target: /backup}
        volumes:
          data:
      `,
      pick: (s) => s.volumes,
      want: [
        { type: 'volume', source: 'data', target: '/data', readOnly: false },
        { type: 'bind', source: '/srv/apps/demo/static', target: '/srv/static', readOnly: true },
        { type: 'bind', source: '/var/data/uploads', target: '/uploads', readOnly: false },
        { type: 'bind', source: '/srv/apps/demo/conf', target: '/conf', readOnly: true },
        { type: 'volume', source: 'data', target: '/backup', readOnly: false },
      ],
    },
    {
      name: 'build string: context resolved, default Dockerfile, image named after app and service',
      yaml: 'name: shop\nservices: {web: {build: ./web}}',
      pick: (s) => [s.image, s.build],
      want: ['berth-shop/web:latest', { context: '/srv/apps/demo/web', dockerfile: 'Dockerfile', args: {} }],
    },
    {
      name: 'build object with args list; image given explicitly is the build tag',
      yaml: 'services: {web: {image: reg.local/web:dev, build: {context: ../other, dockerfile: docker/Dockerfile, args: [A=1, B]}}}',
      opts: { env: { B: 'from-env' } },
      pick: (s) => [s.image, s.build],
      want: ['reg.local/web:dev', { context: '/srv/apps/other', dockerfile: 'docker/Dockerfile', args: { A: '1', B: 'from-env' } }],
    },
    {
      name: 'depends_on map form with conditions',
      yaml: 'services: {web: {image: x, depends_on: {db: {condition: service_healthy}, cache: {condition: service_started, required: false}}}, db: {image: x}, cache: {image: x}}',
      pick: (s) => s.dependsOn,
      want: ['db', 'cache'],
    },
    {
      name: 'merge keys from an x- anchor',
      yaml: yaml`
        x-common: &common
          image: base:1
          environment: {SHARED: "yes"}
        services:
          web:
            <<: *common
            command: serve
      `,
      pick: (s) => [s.image, s.environment, s.command],
      want: ['base:1', { SHARED: 'yes' }, ['serve']],
    },
  ];
  for (const c of cases) {
    assert.deepEqual(c.pick(service(c.yaml, 'web', c.opts)), c.want, c.name);
  }
});

test('app name: --app, then x-berth.app, then name:, then the directory (sanitized)', () => {
  const cases: Array<[string, Partial<ParseOptions>, string]> = [
    ['name: from-name\nx-berth: {app: from-ext}\nservices: {web: {image: x}}', { appName: 'from-flag' }, 'from-flag'],
    ['name: from-name\nx-berth: {app: from-ext}\nservices: {web: {image: x}}', {}, 'from-ext'],
    ['name: from-name\nservices: {web: {image: x}}', {}, 'from-name'],
    ['services: {web: {image: x}}', { baseDir: '/home/me/My_Project.v2' }, 'my-project-v2'],
  ];
  for (const [text, opts, want] of cases) assert.equal(parse(text, opts).spec.name, want);
});

test('interpolation happens before validation and applies to values, not keys', () => {
  const text = yaml`
    services:
      web:
        image: "nginx:\${TAG:-1.27}"
        environment:
          $$KEY: "$$literal"
          URL: http://\${HOST}:\${PORT:-80}/
  `;
  const { spec, warnings } = parse(text, { env: { HOST: 'db' } });
  assert.equal(spec.services.web?.image, 'nginx:1.27');
  assert.deepEqual(spec.services.web?.environment, { $$KEY: '$literal', URL: 'http://db:80/' });
  assert.deepEqual(warnings, []);
});

test('an unset variable becomes an empty string with a warning, once per variable', () => {
  const { spec, warnings } = parse('services:\n  web:\n    image: "x:${TAG}"\n    environment:\n      - A=${TAG}\n      - B=${OTHER}\n');
  assert.equal(spec.services.web?.image, 'x:');
  assert.deepEqual(
    warnings.map((w) => `${brief(w)}: ${w.message}`),
    [
      '3:12 services.web.image: variable "TAG" is not set; using an empty string (set it in the environment or in the .env file)',
      '6:9 services.web.environment[1]: variable "OTHER" is not set; using an empty string (set it in the environment or in the .env file)',
    ],
  );
});

test('$PORT in a command is read when the file is parsed, where it is unset: the warning says to write $$PORT', () => {
  const { spec, warnings } = parse('services:\n  web:\n    image: x\n    command: sh -c "node server.js --port $PORT"\n    environment:\n      - P=$$PORT\n');
  assert.deepEqual(spec.services.web?.command, ['sh', '-c', 'node server.js --port ']);
  assert.deepEqual(spec.services.web?.environment, { P: '$PORT' });
  assert.deepEqual(warnings.map((w) => `${brief(w)}: ${w.message}`), [
    '4:14 services.web.command: variable "PORT" is not set; using an empty string. Berth sets PORT inside each container, not when it reads this file: ' +
      'write $$PORT to pass "$PORT" through to the container\'s shell (e.g. command: sh -c \'exec node server.js --port $$PORT\')',
  ]);
});

// ---------------------------------------------------------------------------------------------
// Errors

test('reports Berth-level errors at the offending node', () => {
  const cases: Array<{ name: string; yaml: string; opts?: Partial<ParseOptions>; want: Array<[string, RegExp]> }> = [
    { name: 'empty file', yaml: '# nothing here\n', want: [['1:1 ', /^the file is empty/]] },
    { name: 'no services key', yaml: 'name: x\n', want: [['1:1 ', /^no `services:` mapping/]] },
    { name: 'empty services', yaml: 'services: {}\n', want: [['1:11 services', /^no services defined/]] },
    { name: 'top level is a list', yaml: '- web\n', want: [['1:1 ', /^expected a mapping \(key: value\), found a list$/]] },
    { name: 'service is null', yaml: 'services:\n  web:\n', want: [['2:3 services.web', /^expected a mapping \(key: value\), found nothing \(null\)$/]] },
    { name: 'no image nor build', yaml: 'services:\n  web:\n    command: x\n', want: [['3:5 services.web', /^needs `image` \(an image to run\) or `build`/]] },
    {
      name: 'two Compose names that derive to one Berth name',
      yaml: 'services:\n  my_web:\n    image: x\n  My.Web:\n    image: x\n',
      want: [['4:3 services.My.Web', /^services "my_web" and "My.Web" both become "my-web" in DNS, container and upstream names .*rename one of them$/]],
    },
    {
      name: 'names that cannot become a DNS label: leading "_" or ".", "..", too long',
      yaml: `services:\n  _web:\n    image: x\n  ..:\n    image: x\n  ${'a'.repeat(64)}:\n    image: x\n`,
      want: [
        ['2:3 services._web', /^service name "_web" is invalid: it must start with a letter or digit .*e\.g\. "web"$/],
        ['4:3 services...', /^service name ".." is invalid: it must start with a letter or digit \(it is used in DNS names\)$/],
        ['6:3 services.' + 'a'.repeat(64), /^service name "a{64}" is too long: at most 63 characters/],
      ],
    },
    {
      name: 'service name the Compose schema rejects is reported once, by Berth',
      yaml: 'services:\n  my web:\n    image: x\n',
      want: [['2:3 services.my web', /^service name "my web" is invalid: use letters, digits, "\.", "_" and "-", e\.g\. "my-web"$/]],
    },
    {
      name: 'an unknown key in a service is named, with a suggestion',
      yaml: 'services:\n  web:\n    imag: x\n',
      want: [['3:5 services.web.imag', /^unknown key `imag`: did you mean `image`\?$/]],
    },
    { name: 'invalid app name from name:', yaml: 'name: My App\nservices: {web: {image: x}}\n', want: [['1:7 name', /^app name "My App" is invalid: .*e\.g\. "my-app"$/]] },
    { name: 'invalid app name from --app', yaml: 'services: {web: {image: x}}\n', opts: { appName: '-bad' }, want: [['1:1 ', /^app name "-bad" is invalid: .*\(given with --app\)$/]] },
    { name: 'negative replicas', yaml: 'services:\n  web:\n    image: x\n    deploy:\n      replicas: -1\n', want: [['5:17 services.web.deploy.replicas', /^-1 is not a whole number ≥ 0/]] },
    {
      name: 'scale and replicas disagree',
      yaml: 'services:\n  web:\n    image: x\n    scale: 2\n    deploy: {replicas: 3}\n',
      want: [['4:12 services.web.scale', /^scale \(2\) and deploy.replicas \(3\) disagree: keep only one of them$/]],
    },
    {
      name: 'bad durations, sizes, cpus',
      yaml: 'services:\n  web:\n    image: x\n    stop_grace_period: 10 seconds\n    shm_size: lots\n    deploy: {resources: {limits: {cpus: "0", memory: "0"}}}\n',
      want: [
        ['4:24 services.web.stop_grace_period', /^"10 seconds" is not a duration: write a duration such as 10s/],
        ['5:15 services.web.shm_size', /^"lots" is not a size/],
        ['6:41 services.web.deploy.resources.limits.cpus', /^0 CPUs is not positive/],
        ['6:54 services.web.deploy.resources.limits.memory', /^a memory limit must be larger than 0/],
      ],
    },
    {
      name: 'healthcheck test without CMD',
      yaml: 'services:\n  web:\n    image: x\n    healthcheck:\n      test: [curl, -f, http://localhost]\n',
      want: [['5:13 services.web.healthcheck.test', /^a health check list must start with "CMD", "CMD-SHELL" or "NONE"/]],
    },
    {
      name: 'restart policy values',
      yaml: 'services:\n  web:\n    image: x\n    restart: sometimes\n  api:\n    image: x\n    deploy: {restart_policy: {condition: never, delay: soon}}\n',
      want: [
        ['4:14 services.web.restart', /^"sometimes" is not a restart policy: use "no", always, on-failure, on-failure:N or unless-stopped$/],
        ['7:42 services.api.deploy.restart_policy.condition', /^"never" is not a restart condition: use none, on-failure or any$/],
        ['7:56 services.api.deploy.restart_policy.delay', /^"soon" is not a duration/],
      ],
    },
    {
      name: 'depends_on map form unknown service, self and cycles',
      yaml: yaml`
        services:
          a:
            image: x
            depends_on:
              b: {condition: service_healthy}
              nope: {condition: service_started}
          b:
            image: x
            depends_on: [a]
          c:
            image: x
            depends_on: [c]
      `,
      want: [
        ['5:7 services.a.depends_on', /^dependency cycle: a → b → a; remove one of these depends_on entries$/],
        ['6:7 services.a.depends_on.nope', /^unknown service "nope"/],
        ['12:18 services.c.depends_on[0]', /^service "c" cannot depend on itself$/],
      ],
    },
    {
      name: 'volumes: undeclared, relative target, anonymous long bind without source',
      yaml: yaml`
        services:
          web:
            image: x
            volumes:
              - cache:/cache
              - /etc:/host-etc:ro
              - data:relative
              - {type: bind, target: /y}
        volumes:
          data: {}
      `,
      want: [
        ['5:9 services.web.volumes[0]', /^named volume "cache" is not declared: add `cache:` under the top-level `volumes:` key$/],
        ['7:9 services.web.volumes[2]', /^target "relative" is not an absolute path/],
        ['8:9 services.web.volumes[3]', /^a bind mount needs `source`/],
      ],
    },
    {
      name: 'x-berth: unknown keys, bad port, routes without port',
      yaml: yaml`
        services:
          web:
            image: x
            x-berth:
              prot: 8080
              routes: [example.com]
          api:
            image: x
            x-berth:
              port: "http"
              helth: /up
      `,
      want: [
        ['5:7 services.web.x-berth.prot', /^unknown key `prot`: did you mean `port`\?$/],
        ['6:15 services.web.x-berth.routes', /^routes need a port: set `x-berth.port`/],
        ['10:13 services.api.x-berth.port', /^"http" is not a port: .*from 1 to 65535$/],
        ['11:7 services.api.x-berth.helth', /^unknown key `helth`: did you mean `health`\?$/],
      ],
    },
    {
      name: 'x-berth routes and health values',
      yaml: yaml`
        services:
          web:
            image: x
            x-berth:
              port: 3000
              routes: ["https://example.com/", "bad host/x", {path: api}, {host: ok.com, paht: /x}]
              health: {http: /up, tcp: true}
      `,
      want: [
        ['6:16 services.web.x-berth.routes[0]', /^"https:\/\/example.com\/": write the route without a scheme, e.g. "example.com\/"$/],
        ['6:40 services.web.x-berth.routes[1]', /^"bad host" is not a host name/],
        ['6:61 services.web.x-berth.routes[2].path', /^"api" is not a route path: it must start with "\/"/],
        ['6:82 services.web.x-berth.routes[3].paht', /^unknown key `paht`: did you mean `path`\?$/],
        ['7:15 services.web.x-berth.health', /^choose one of `http` and `tcp`, not both$/],
      ],
    },
    {
      name: 'health needs a port',
      yaml: 'services:\n  web:\n    image: x\n    x-berth: {health: /healthz}\n',
      want: [['4:23 services.web.x-berth.health', /^an HTTP health check needs a port: set `x-berth.port`/]],
    },
    {
      name: 'route paths nginx would read as its own syntax, and paths that could never match',
      yaml: yaml`
        services:
          web:
            image: x
            x-berth:
              port: 3000
              routes: ["/a;b", "/a'b", {path: "/a$$b"}, "/a/../b", "/a%20b", "x.com;/", {host: "a..b", path: /}]
      `,
      want: [
        ['6:16 services.web.x-berth.routes[0]', /^"\/a;b" is not a route path: ";" is not allowed in a route path \(nginx would read it as part of its own syntax\)/],
        ['6:24 services.web.x-berth.routes[1]', /^"\/a'b" is not a route path: "'" is not allowed/],
        ['6:39 services.web.x-berth.routes[2].path', /^"\/a\$b" is not a route path: "\$" is not allowed/],
        ['6:49 services.web.x-berth.routes[3]', /^"\/a\/..\/b" is not a route path: "." and ".." segments/],
        ['6:60 services.web.x-berth.routes[4]', /^"\/a%20b" is not a route path: "%" escapes are not allowed/],
        ['6:70 services.web.x-berth.routes[5]', /^"x.com;" is not a host name: ";" cannot be part of a host name/],
        ['6:88 services.web.x-berth.routes[6].host', /^"a..b" is not a host name: it has an empty label/],
      ],
    },
    {
      name: 'route conflicts between spellings of one route',
      yaml: 'services:\n  a: {image: x, x-berth: {port: 1, routes: [sec-case.local/api]}}\n  b: {image: x, x-berth: {port: 2, routes: [SEC-CASE.LOCAL./api/]}}\n',
      want: [['3:45 services.b.x-berth.routes[0]', /^route sec-case.local\/api is already taken by service "a"/]],
    },
    {
      name: 'route conflicts across services',
      yaml: 'services:\n  a: {image: x, x-berth: {port: 1, routes: [example.com/api]}}\n  b: {image: x, x-berth: {port: 2, routes: [{host: EXAMPLE.com, path: /api}]}}\n',
      want: [['3:45 services.b.x-berth.routes[0]', /^route example.com\/api is already taken by service "a"/]],
    },
    {
      name: 'top-level x-berth unknown key',
      yaml: 'x-berth:\n  ap: shop\nservices: {web: {image: x}}\n',
      want: [['2:3 x-berth.ap', /^unknown key `ap`: did you mean `app`\?$/]],
    },
    {
      name: 'required env_file missing',
      yaml: 'services:\n  web:\n    image: x\n    env_file: secrets.env\n',
      want: [['4:15 services.web.env_file', /^env file "secrets.env" not found \(looked for \/srv\/apps\/demo\/secrets.env\): create it, or add `required: false`$/]],
    },
    {
      name: 'reserved labels',
      yaml: 'services:\n  web:\n    image: x\n    labels: {berth.app: other}\n',
      want: [['4:14 services.web.labels.berth.app', /labels starting with "berth." are reserved/]],
    },
    {
      name: 'unterminated quote in command',
      yaml: `services:\n  web:\n    image: x\n    command: sh -c 'echo\n`,
      want: [['4:14 services.web.command', /^unterminated single quote/]],
    },
    {
      name: 'route HTTPS options: types, HSTS durations, contradictions, no host',
      yaml: 'services:\n  web:\n    image: x\n    x-berth:\n      port: 80\n      routes:\n        - {host: a.example.com, tls: yes}\n        - {host: b.example.com, hsts: 1 year}\n        - {host: c.example.com, tls: false, hsts: true}\n        - {path: /x, redirect: false}\n',
      want: [
        ['7:38 services.web.x-berth.routes[0].tls', /^expected true or false, got "yes"$/],
        ['8:39 services.web.x-berth.routes[1].hsts', /is not a duration.*or true \(one year\) or false$/],
        ['9:38 services.web.x-berth.routes[2].tls', /^tls: false serves this route over plain HTTP only/],
        ['10:11 services.web.x-berth.routes[3]', /^tls, redirect and hsts need a host/],
      ],
    },
    {
      name: 'remote build context',
      yaml: 'services:\n  web:\n    build: https://github.com/acme/web.git\n',
      want: [['3:12 services.web.build', /^remote build contexts are not supported yet/]],
    },
  ];
  for (const c of cases) {
    let found: SpecIssue[] = [];
    assert.doesNotThrow(() => (found = issues(c.yaml, c.opts)), c.name);
    assert.deepEqual(
      found.map(brief),
      c.want.map(([w]) => w.trim()),
      `${c.name}: ${JSON.stringify(found.map((i) => `${brief(i)}: ${i.message}`))}`,
    );
    c.want.forEach(([, re], i) => assert.match(found[i]!.message, re, c.name));
  }
});

test('schema errors are collapsed into one human message per location', () => {
  const text = yaml`
    services:
      web:
        image: [nginx]
        environment: 5
        command: {run: x}
        ports:
          - {target: 80, publishd: 8080}
        depends_on: {db: {condition: service_happy}}
        volumes: [{source: data}]
        healthcheck: {interval: 10}
      db:
        image: postgres
  `;
  const found = issues(text);
  assert.deepEqual(
    found.map((i) => `${brief(i)}: ${i.message}`),
    [
      '3:12 services.web.image: expected a string, found a list',
      '4:18 services.web.environment: expected a mapping (key: value) or a list, found the number 5',
      '5:14 services.web.command: expected a string or a list, found a mapping',
      '7:22 services.web.ports[0].publishd: unknown key `publishd`: did you mean `published`?',
      '8:34 services.web.depends_on.db.condition: "service_happy" is not allowed here: use one of "service_started", "service_healthy", "service_completed_successfully"',
      '9:15 services.web.volumes[0]: missing required key `type`',
      '10:29 services.web.healthcheck.interval: expected a string such as "10s", found the number 10',
    ],
  );
});

test('YAML syntax errors stop the pipeline and carry positions', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['services:\n  web: [\n', '3:1', /^invalid YAML: /],
    ['services:\n  web:\n    image: a\n    image: b\n', '4:5', /^duplicate key "image": each key may appear only once in a mapping/],
    ['services: {}\n---\nother: 1\n', '2:1', /several YAML documents/],
    ['services:\n\tweb: {}\n', '2:1', /tab used for indentation/],
  ];
  for (const [text, where, re] of cases) {
    const found = issues(text);
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.equal(`${found[0]!.line}:${found[0]!.col}`, where, text);
    assert.match(found[0]!.message, re);
  }
});

test('all issues are reported at once, sorted by line, across stages', () => {
  const text = yaml`
    services:
      web:
        image: "x:\${TAG"
        deploy: {replicas: two}
      api:
        image: y
        depends_on: [nope]
        restart: whenever
      worker:
        imag: z
  `;
  const found = issues(text);
  assert.deepEqual(found.map(brief), ['3:12 services.web.image', '7:18 services.api.depends_on[0]', '8:14 services.api.restart', '10:5 services.worker.imag']);
  // Interpolation broke `web`: its replicas are not checked again, which would only be follow-on noise.
});

test('errors inside an env file point into that file', () => {
  const found = issues('services:\n  web:\n    image: x\n    env_file: [conf/app.env]\n', {
    file: 'deploy/compose.yaml',
    readFile: (p) => (p === '/srv/apps/demo/conf/app.env' ? 'GOOD=1\nnot a valid line\n' : undefined),
  });
  assert.deepEqual(found, [
    {
      file: 'deploy/conf/app.env',
      line: 2,
      col: 1,
      path: 'services.web.env_file[0]',
      message: 'invalid line "not a valid line": expected KEY=VALUE where KEY has only letters, digits, "_", "." and "-"',
    },
  ]);
});

// ---------------------------------------------------------------------------------------------
// Warnings

test('every key Berth does not act on yields a located warning', () => {
  const text = yaml`
    version: "3.8"
    services:
      web:
        image: x
        container_name: web1
        networks: [front]
        expose: ["80"]
        ports: ["8080:80"]
        cpus: 2
        x-bert: {port: 1}
        x-team-notes: anything
        deploy:
          mode: global
          placement: {constraints: [node.role==manager]}
          resources:
            limits: {cpus: "1", pids: 100}
            reservations: {memory: 1g}
          restart_policy: {condition: any, window: 60s}
        healthcheck:
          test: [CMD, "true"]
          start_interval: 1s
        build: {context: ., target: prod, network: host}
        volumes:
          - /cache
          - data:/data:z
    volumes:
      data: {driver: local, external: false}
      logs: {driver: rexray}
    networks:
      front: {driver: bridge, external: false}
    secrets:
      token: {file: ./token, driver: vault}
    x-anything: {}
  `;
  const { warnings } = parse(text);
  assert.deepEqual(
    warnings.map((w) => `${brief(w)}: ${w.message}`),
    [
      '1:1 version: the `version` key is obsolete and ignored; remove it',
      '5:5 services.web.container_name: ignored: Berth names containers itself, one per instance',
      '8:12 services.web.ports: host port 8080 can be held by one container at a time: releases stop the old container before starting the new one (a short gap); drop the host port to get zero-downtime releases through the ingress',
      '9:5 services.web.cpus: not supported yet by Berth; ignored — set deploy.resources.limits.cpus instead',
      '10:5 services.web.x-bert: ignored; did you mean `x-berth`?',
      '13:7 services.web.deploy.mode: not supported yet by Berth; ignored',
      '18:40 services.web.deploy.restart_policy.window: not supported yet by Berth; ignored',
      '21:7 services.web.healthcheck.start_interval: not supported yet by Berth; ignored',
      '22:39 services.web.build.network: not supported yet by Berth; ignored',
      '25:9 services.web.volumes[1]: volume option "z" is not supported yet by Berth; ignored',
      '28:10 volumes.logs.driver: not supported yet by Berth; ignored — Berth creates app-scoped local volumes',
      '32:26 secrets.token.driver: not supported by Berth; ignored',
    ],
  );
  for (const w of warnings) assert.equal(w.file, 'compose.yaml');
});

test('warnings for keys merged from an anchor point at the anchor', () => {
  const text = yaml`
    x-base: &base
      container_name: one
    services:
      web:
        <<: *base
        image: x
  `;
  assert.deepEqual(parse(text).warnings.map(brief), ['2:3 services.web.container_name']);
});

test('no ports warning when x-berth.port is set; compose healthcheck wins over x-berth.health', () => {
  const text = 'services:\n  web:\n    image: x\n    ports: ["80"]\n    healthcheck: {test: "true"}\n    x-berth: {port: 80, health: /up}\n';
  const { spec, warnings } = parse(text);
  assert.equal(spec.services.web?.health.type, 'command');
  assert.deepEqual(
    warnings.map((w) => `${brief(w)}: ${w.message}`),
    ['6:33 services.web.x-berth.health: ignored: the service has a Compose `healthcheck`, which takes precedence; remove one of them'],
  );
});

test('parseAppSpec does no I/O beyond readFile, and only for env files', () => {
  const read: string[] = [];
  parse('services:\n  web:\n    build: .\n    env_file: [{path: .env.web, required: false}]\n    volumes: [./data:/data]\n', {
    readFile: (p) => {
      read.push(p);
      return undefined;
    },
  });
  assert.deepEqual(read, ['/srv/apps/demo/.env.web']);
});

test('x-berth.update: strategies and their knobs, with clear errors', () => {
  const svc = (update: string) => `services:\n  web:\n    image: x\n    x-berth:\n      port: 3000\n      update: ${update}\n`;
  const ok = parse(svc('{strategy: blue-green, keep_previous: 2m, deadline: 30s}')).spec.services.web!;
  assert.deepEqual(ok.update, { ...DEFAULT_UPDATE, strategy: 'blue-green', keepPreviousMs: 120_000, deadlineMs: 30_000 });
  const reload = parse(svc('{strategy: reload, signal: USR2, on_failure: restart}')).spec.services.web!;
  assert.equal(reload.update?.signal, 'SIGUSR2');
  assert.equal(reload.update?.onFailure, 'restart');
  assert.throws(() => parse(svc('{strategy: canary}')), /x-berth\.update\.strategy: "canary" is not a strategy: write one of rolling, blue-green, reload, recreate/);
  assert.throws(() => parse(svc('{max_surge: 0, max_unavailable: 0}')), /could never make progress/);
  assert.throws(() => parse(svc('{strategy: rolling, on_failure: restart}')), /on_failure: "restart" is not allowed here/);
  assert.throws(() => parse(svc('{stratgy: rolling}')), /stratgy/);
});

test('x-berth.pipeline.branches maps branches to environments, with clear errors', () => {
  const base = 'services:\n  web:\n    image: x\n';
  assert.deepEqual(parse(base + 'x-berth:\n  pipeline:\n    branches:\n      main: pre\n      release: prod\n').spec.pipeline,
    { branches: { main: 'pre', release: 'prod' }, checks: { maxChainDepth: 3, strict: [], warnOnly: [] } });
  assert.equal(parse(base).spec.pipeline, undefined);
  assert.throws(() => parse(base + 'x-berth:\n  pipeline:\n    branches:\n      main: Pre Prod\n'), /x-berth\.pipeline\.branches\.main: "Pre Prod" is not an environment name/);
  assert.throws(() => parse(base + 'x-berth:\n  pipeline:\n    brnaches: {}\n'), /brnaches/);
});

test('x-berth.pipeline.checks sets the image standards policy; bad values name file, line and column', () => {
  const base = 'services:\n  web:\n    image: x\n';
  assert.deepEqual(parse(base + 'x-berth:\n  pipeline:\n    checks:\n      max_chain_depth: 2\n      strict: [non-root, healthcheck]\n      warn_only: [pinned-from]\n').spec.pipeline?.checks,
    { maxChainDepth: 2, strict: ['non-root', 'healthcheck'], warnOnly: ['pinned-from'] });
  const cases: Array<[string, string, RegExp]> = [
    ['x-berth:\n  pipeline:\n    checks:\n      strict: [non_root]\n', '7:16', /"non_root" is not a check: did you mean non-root\?/],
    ['x-berth:\n  pipeline:\n    checks:\n      max_chain_depth: deep\n', '7:24', /"deep" is not a number of levels: write a whole number from 1 to 10/],
    ['x-berth:\n  pipeline:\n    checks:\n      strictly: []\n', '7:7', /unknown key `strictly`: did you mean `strict`\?/],
    ['x-berth:\n  pipeline:\n    checks:\n      strict: [size]\n      warn_only: [size]\n', '8:18', /size is both strict and warn_only/],
  ];
  for (const [tail, where, re] of cases) {
    const found = issues(base + tail);
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.equal(`${found[0]!.line}:${found[0]!.col}`, where, tail);
    assert.match(found[0]!.message, re);
  }
});

test('x-berth.test: the pipeline\'s test command, as shell words or a list', () => {
  const svc = (t: string) => parse(`services:\n  web:\n    image: x\n    x-berth:\n      test: ${t}\n`).spec.services.web!.test;
  assert.deepEqual(svc('npm test -- --grep "fast one"'), ['npm', 'test', '--', '--grep', 'fast one']);
  assert.deepEqual(svc('[sh, -c, "npm test && npm run lint"]'), ['sh', '-c', 'npm test && npm run lint']);
  assert.equal(parse('services:\n  web:\n    image: x\n').spec.services.web!.test, undefined);
  for (const [t, re] of [['"npm test \'unclosed"', /unterminated|quote/i], ['""', /the test command is empty/], ['{a: 1}', /expected a command/]] as const) {
    const found = issues(`services:\n  web:\n    image: x\n    x-berth:\n      test: ${t}\n`);
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.equal(`${found[0]!.line}:${found[0]!.col}`, '5:13');
    assert.match(found[0]!.message, re);
  }
});

test('user, read_only, cap_add, cap_drop, security_opt and tmpfs', () => {
  const svc = service(yaml`
    services:
      web:
        image: x
        user: "1000:1000"
        read_only: true
        cap_add: [net_raw, CAP_SYS_CHROOT]
        cap_drop: [CHOWN]
        security_opt: ["no-new-privileges:false"]
        tmpfs: [/tmp, "/run:size=16m,mode=1777"]
  `);
  assert.deepEqual(
    { user: svc.user, readOnly: svc.readOnly, capAdd: svc.capAdd, capDrop: svc.capDrop, noNewPrivileges: svc.noNewPrivileges, tmpfs: svc.tmpfs },
    { user: '1000:1000', readOnly: true, capAdd: ['NET_RAW', 'SYS_CHROOT'], capDrop: ['CHOWN'], noNewPrivileges: false, tmpfs: { '/tmp': '', '/run': 'size=16m,mode=1777' } },
  );
  // Defaults leave the spec as it was (a file without these keys keeps its release hash).
  const plain = service('services: {web: {image: x, security_opt: [no-new-privileges], read_only: false}}');
  for (const k of ['user', 'readOnly', 'capAdd', 'capDrop', 'noNewPrivileges', 'tmpfs'] as const) assert.equal(k in plain, false, k);
  assert.deepEqual(service('services: {web: {image: x, cap_drop: [NET_ADMIN, ALL]}}').capDrop, ['ALL']);
  assert.deepEqual(service('services: {web: {image: x, tmpfs: /tmp}}').tmpfs, { '/tmp': '' });
  // Unconfined profiles are read (the server's guardrail policy refuses them unless exempted); other options are warned about.
  const r = parse('services:\n  web:\n    image: x\n    security_opt: ["seccomp:unconfined", "apparmor=unconfined", "label=disable"]\n');
  assert.deepEqual(r.spec.services.web!.unconfined, ['seccomp', 'apparmor']);
  assert.deepEqual(r.warnings.map((x) => `${brief(x)}: ${x.message}`), ['4:65 services.web.security_opt[2]: "label=disable" is not supported yet by Berth; ignored (containers run with Docker\'s default seccomp and AppArmor profiles)']);
});

test('volumes of type tmpfs (long syntax) are tmpfs mounts, with size, mode and read_only', () => {
  const r = parse(yaml`
    services:
      web:
        image: x
        tmpfs: [/run]
        volumes:
          - {type: tmpfs, target: /cache, tmpfs: {size: 64m, mode: 1777}}
          - type: tmpfs
            target: /scratch/
            read_only: true
            tmpfs: {size: 1000000}
          - data:/data
    volumes: {data: {}}
  `);
  const web = r.spec.services.web!;
  assert.deepEqual(web.tmpfs, { '/run': '', '/cache': `size=${64 * 1024 * 1024},mode=1777`, '/scratch': 'size=1000000,ro' });
  assert.deepEqual(web.volumes.map((v) => v.target), ['/data'], 'not a volume too');
  assert.deepEqual(r.warnings.map((w) => w.path), ['services.web.volumes'], 'nothing ignored (the one warning: the named volume makes it stateful)');
  const cases: Array<[string, string, RegExp]> = [
    ['{type: tmpfs}', '5:15', /a tmpfs mount needs `target`/],
    ['{type: tmpfs, target: /run}', '5:15', /\/run is mounted twice/],
    ['{type: tmpfs, target: /c, tmpfs: {size: lots}}', '5:55', /"lots" is not a size/],
    ['{type: tmpfs, target: /c, tmpfs: {mode: rwx}}', '5:55', /"rwx" is not a file mode: write octal digits/],
  ];
  for (const [entry, where, re] of cases) {
    const found = issues(`services:\n  web:\n    image: x\n    tmpfs: [/run]\n    volumes: [${entry}]\n`);
    assert.equal(found.length, 1, `${entry}: ${JSON.stringify(found)}`);
    assert.equal(brief(found[0]!).split(' ')[0], where, entry);
    assert.match(found[0]!.message, re);
  }
});

test('expose: reachable on the app network; on the host network it is said to be ignored', () => {
  const r = parse('services:\n  my_db:\n    image: x\n    expose: ["5432"]\n    networks: {back: {aliases: [my_db]}}\n  host_svc:\n    image: x\n    network_mode: host\n    expose: [80]\nnetworks: {back: {}}\n');
  assert.deepEqual(r.spec.services['my-db']!.expose, ['5432']);
  assert.deepEqual(r.spec.services['my-db']!.networks, [{ name: 'back', aliases: ['my_db'] }]);
  assert.deepEqual(r.warnings.map((x) => `${brief(x)}: ${x.message}`),
    ['9:5 services.host_svc.expose: ignored: the service runs on the host network, where every port it listens on is reachable']);
});

test('a service with an error still has its ignored keys reported (all errors and all warnings together)', () => {
  let err: InvalidSpec | undefined;
  try {
    parse('services:\n  web:\n    image: x\n    enviroment: {A: "1"}\n    platform: linux/amd64\n    tty: true\n');
  } catch (e) {
    err = e as InvalidSpec;
  }
  assert.ok(err instanceof InvalidSpec);
  assert.deepEqual(err.issues.map((i) => `${brief(i)}: ${i.message}`), ['4:5 services.web.enviroment: unknown key `enviroment`: did you mean `environment`?']);
  assert.deepEqual(err.warnings.map((w) => `${brief(w)}: ${w.message}`), [
    '5:5 services.web.platform: not supported yet by Berth; ignored',
    '6:5 services.web.tty: not supported yet by Berth; ignored',
  ]);
});

test('bad user, capabilities and tmpfs name file, line and column', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['user: "root user"', '4:11', /"root user" is not a user: write a name or uid/],
    ['cap_add: [NET_RWA]', '4:15', /"NET_RWA" is not a Linux capability: did you mean NET_RAW\?/],
    ['cap_add: [ALL]', '4:15', /Berth does not give all capabilities/],
    ['cap_drop: [FOO_BAR_BAZ]', '4:16', /"FOO_BAR_BAZ" is not a Linux capability: write e\.g\. NET_BIND_SERVICE/],
    ['cap_add: [CHOWN]\n    cap_drop: [CHOWN]', '4:15', /CHOWN is both added and dropped/],
    ['security_opt: ["no-new-privileges:maybe"]', '4:20', /write no-new-privileges:true or no-new-privileges:false/],
    ['tmpfs: [tmp]', '4:13', /"tmp" is not a tmpfs mount: write an absolute path/],
    ['tmpfs: ["/tmp:exec,size=lots"]', '4:13', /tmpfs option "size=lots" is not one Berth passes on/],
    ['tmpfs: [/data]\n    volumes: [data:/data]', '4:13', /\/data is mounted twice/],
    ['read_only: perhaps', '4:16', /perhaps/],
  ];
  for (const [line, where, re] of cases) {
    const found = issues(`services:\n  web:\n    image: x\n    ${line}\nvolumes: {data: {}}\n`);
    assert.equal(found.length, 1, `${line}: ${JSON.stringify(found)}`);
    assert.equal(`${found[0]!.line}:${found[0]!.col}`, where, line);
    assert.match(found[0]!.message, re, line);
  }
});

test('host paths are resolved, not judged, and their positions are kept for the server\'s answer', () => {
  const r = parse(yaml`
    services:
      web:
        build: {context: ./web, dockerfile: Dockerfile.prod}
        volumes:
          - cache:/cache
          - /:/host
          - {type: bind, source: ./rootlink, target: /r}
    volumes:
      cache:
  `);
  assert.deepEqual(r.spec.services.web!.volumes.map((v) => v.source), ['cache', '/', '/srv/apps/demo/rootlink']);
  // Also noted: each service (where a guardrail refusal of something missing is shown).
  assert.deepEqual(r.hostPathSources['services.web'], { file: 'compose.yaml', line: 3, col: 5, path: 'services.web' });
  delete r.hostPathSources['services.web'];
  assert.deepEqual(r.hostPathSources, {
    'services.web.build.context': { file: 'compose.yaml', line: 3, col: 22, path: 'services.web.build.context' },
    'services.web.build.dockerfile': { file: 'compose.yaml', line: 3, col: 41, path: 'services.web.build.dockerfile' },
    'services.web.volumes[1]': { file: 'compose.yaml', line: 6, col: 9, path: 'services.web.volumes[1]' },
    'services.web.volumes[2]': { file: 'compose.yaml', line: 7, col: 30, path: 'services.web.volumes[2].source' },
  });
  assert.throws(() => parse('services: {web: {build: {context: ., dockerfile: ../Dockerfile}}}'), /"\.\.\/Dockerfile" is outside the build context/);
});

test('depends_on restart: true is kept (restartWith, Berth\'s names), not warned about; a non-boolean restart is an error', () => {
  const r = parse(yaml`
    name: shop
    services:
      web:
        image: shop/web
        depends_on:
          db_main: {condition: service_healthy, restart: true}
          cache: {condition: service_started, restart: false}
      db_main: {image: postgres}
      cache: {image: redis}
  `);
  assert.deepEqual(r.spec.services.web!.restartWith, ['db-main']);
  assert.equal(r.spec.services.cache!.restartWith, undefined);
  assert.deepEqual(r.warnings.filter((w) => /restart/.test(w.path)), []);
  const bad = issues(yaml`
    name: shop
    services:
      web: {image: x, depends_on: {db: {condition: service_started, restart: sometimes}}}
      db: {image: y}
  `);
  assert.equal(bad.length, 1);
  assert.match(`${brief(bad[0]!)}: ${bad[0]!.message}`, /^3:\d+ services\.web\.depends_on\.db\.restart: /);
});
