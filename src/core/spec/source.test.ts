import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidSpec } from '../errors.ts';
import { parseAppSpec, parseSource, parseWithSource, type ParseOptions } from './index.ts';

const OPTS: ParseOptions = { file: 'compose.yaml', env: {}, baseDir: '/srv/apps/demo', readFile: () => undefined };

const COMPOSE = `name: shop
services:
  web:
    image: shop/web
    environment:
      SITE: \${BERTH_APP}.\${BERTH_ENV}
      GREETING: \${GREETING:-hi}
    x-berth:
      port: 3000
      routes:
        - host: shop-\${BERTH_ENV}.\${DOMAIN}
          path: /
`;

test('BERTH_ENV and BERTH_APP are interpolated for the environment, over the caller\'s variables of those names', () => {
  const r = parseAppSpec(COMPOSE, { ...OPTS, environment: 'staging', env: { DOMAIN: 'example.com', BERTH_ENV: 'shell', HOME: '/root' } });
  const web = r.spec.services.web!;
  assert.deepEqual(web.routes, [{ host: 'shop-staging.example.com', path: '/' }]);
  assert.equal(web.environment.SITE, 'shop.staging');
  // Only what the file looked up, and not Berth's own names.
  assert.deepEqual(r.variablesUsed, ['DOMAIN', 'GREETING']);
});

test('BERTH_APP is the app\'s name from --app, x-berth.app, name: or the directory', () => {
  const site = (text: string, o: Partial<ParseOptions> = {}) => parseAppSpec(text, { ...OPTS, environment: 'prod', ...o }).spec.services.web!.environment.SITE;
  const body = 'services:\n  web:\n    image: x\n    environment: {SITE: "${BERTH_APP}"}\n';
  assert.equal(site(body), 'demo', 'the directory');
  assert.equal(site(`name: named\n${body}`), 'named');
  assert.equal(site(`name: \${PROJECT}\n${body}`, { env: { PROJECT: 'fromvar' } }), 'fromvar', 'name: interpolated on its own');
  assert.equal(site(`name: named\nx-berth: {app: ext}\n${body}`), 'ext');
  assert.equal(site(`name: named\n${body}`, { appName: 'given' }), 'given');
});

test('without an environment, BERTH_ENV is the caller\'s variable like any other (unset: a warning)', () => {
  const r = parseAppSpec('services:\n  web:\n    image: x\n    environment: {E: "${BERTH_ENV}"}\n', OPTS);
  assert.equal(r.spec.services.web!.environment.E, '');
  assert.match(r.warnings.map((w) => w.message).join('\n'), /variable "BERTH_ENV" is not set/);
  assert.deepEqual(r.variablesUsed, ['BERTH_ENV']);
});

test('a variable named like an Object property is just unset', () => {
  const r = parseAppSpec('services:\n  web:\n    image: "x${constructor}"\n', { ...OPTS, environment: 'prod' });
  assert.equal(r.spec.services.web!.image, 'x');
});

test('parseWithSource keeps the text, the env_files read and only the referenced variables; parseSource re-interpolates it for another environment', () => {
  const text = COMPOSE.replace('    environment:\n', '    env_file: [web.env]\n    environment:\n');
  const files: Record<string, string> = { '/srv/apps/demo/web.env': 'FROM_FILE=1\n' };
  const first = parseWithSource(text, { ...OPTS, environment: 'pre', readFile: (p) => files[p] },
    { variables: { DOMAIN: 'example.com', SECRET_TOKEN: 'never-kept', GREETING: 'hello' } });
  assert.deepEqual(first.spec.services.web!.routes, [{ host: 'shop-pre.example.com', path: '/' }]);
  assert.deepEqual(first.source, {
    file: 'compose.yaml', text, baseDir: '/srv/apps/demo', files: { '/srv/apps/demo/web.env': 'FROM_FILE=1\n' },
    variables: { DOMAIN: 'example.com', GREETING: 'hello' },
  });
  const prod = parseSource(first.source, 'shop', 'prod');
  const web = prod.spec.services.web!;
  assert.deepEqual(web.routes, [{ host: 'shop-prod.example.com', path: '/' }]);
  assert.deepEqual(web.environment, { FROM_FILE: '1', SITE: 'shop.prod', GREETING: 'hello' });
  // The app comes from the caller (the app being promoted), whatever the file says.
  assert.equal(parseSource(first.source, 'other', 'prod').spec.name, 'other');
});

test('a pushed build\'s source takes the target environment\'s configuration values over the commit\'s .env', () => {
  const first = parseWithSource(COMPOSE, { ...OPTS, environment: 'pre' }, { variables: { DOMAIN: 'dotenv.test' }, config: { DOMAIN: 'pre.test', GREETING: 'pre' } });
  assert.deepEqual(first.spec.services.web!.routes, [{ host: 'shop-pre.pre.test', path: '/' }]);
  assert.equal(first.source.environmentConfig, true);
  assert.deepEqual(first.source.variables, { DOMAIN: 'dotenv.test' }, 'configuration values are read again per environment, not kept');
  const prod = parseSource(first.source, 'shop', 'prod', { DOMAIN: 'prod.test' });
  assert.deepEqual(prod.spec.services.web!.routes, [{ host: 'shop-prod.prod.test', path: '/' }]);
  assert.equal(prod.spec.services.web!.environment.GREETING, 'hi', 'pre\'s GREETING is not prod\'s');
  assert.deepEqual(parseSource(first.source, 'shop', 'dev').spec.services.web!.routes, [{ host: 'shop-dev.dotenv.test', path: '/' }], 'the .env value when the environment has none');
});

test('parseSource reports a file that does not hold for the target environment', () => {
  const first = parseWithSource('services:\n  web:\n    image: "x:${TAG:?set TAG}"\n', { ...OPTS, environment: 'pre' }, { variables: {}, config: { TAG: '1' } });
  assert.throws(() => parseSource(first.source, 'shop', 'prod'), (e: unknown) => e instanceof InvalidSpec && /required variable "TAG" is not set: set TAG/.test(e.message));
});

test('a multi-file source (override files, extends and include, profiles) round-trips: promote parses the same merge for the target', () => {
  const disk: Record<string, string> = {
    '/srv/apps/demo/common.yaml': 'services:\n  base: {image: shop/base, environment: {FROM: common}}\n',
    '/srv/apps/demo/db/compose.yaml': 'services:\n  db: {image: "postgres:${PG}"}\n',
    '/srv/apps/demo/db/.env': 'PG=16\n',
  };
  const main = 'name: shop\ninclude: [{path: db/compose.yaml, env_file: db/.env}]\nservices:\n  web:\n    extends: {file: common.yaml, service: base}\n    environment: {HOST: "web-${BERTH_ENV}"}\n  tools: {image: x, profiles: [ops]}\n';
  const prod = 'services:\n  web: {deploy: {replicas: 3}}\n';
  const first = parseWithSource(main, { file: 'compose.yaml', baseDir: '/srv/apps/demo', environment: 'staging', readFile: (p) => disk[p],
    moreFiles: [{ file: 'compose.prod.yaml', text: prod }], profiles: ['ops'] }, { variables: {} });
  assert.deepEqual(first.source.moreFiles, [{ file: 'compose.prod.yaml', text: prod }]);
  assert.deepEqual(first.source.profiles, ['ops']);
  assert.deepEqual(Object.keys(first.source.files).sort(), ['/srv/apps/demo/common.yaml', '/srv/apps/demo/db/.env', '/srv/apps/demo/db/compose.yaml']);
  // The server re-parses from the stored source only (no disk): same merge, the target's BERTH_ENV.
  const again = parseSource(JSON.parse(JSON.stringify(first.source)), 'shop', 'prod');
  const web = again.spec.services.web!;
  assert.equal(web.replicas, 3);
  assert.deepEqual(web.environment, { FROM: 'common', HOST: 'web-prod' });
  assert.equal(again.spec.services.db!.image, 'postgres:16');
  assert.ok(again.spec.services.tools, 'the profile stays active');
});
