/**
 * The validator over a corpus of real-world-shaped Compose files (test/fixtures/compose-corpus):
 * every valid one parses (0 false rejections), every invalid one is refused at the file, line and
 * column named in invalid/expect.json, with the right cause. `X.override.yaml` is merged over `X.yaml`
 * (as `-f X.yaml -f X.override.yaml`); files in subdirectories are only read through include/extends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidSpec } from '../errors.ts';
import { parseAppSpec, type ParseResult } from './index.ts';

const CORPUS = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/compose-corpus');

function parseCorpusFile(dir: string, file: string, env: Record<string, string> = {}): ParseResult {
  const override = file.replace(/\.yaml$/, '.override.yaml');
  const more = existsSync(join(dir, override)) ? [{ file: override, text: readFileSync(join(dir, override), 'utf8') }] : [];
  return parseAppSpec(readFileSync(join(dir, file), 'utf8'), {
    file, env, baseDir: dir, environment: 'prod', ...(more.length ? { moreFiles: more } : {}),
    readFile: (p) => (existsSync(p) ? readFileSync(p, 'utf8') : undefined),
  });
}

const topFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.yaml') && !f.endsWith('.override.yaml')).sort();

test('corpus: every valid file is accepted (no false rejections), and its services are all there', () => {
  const dir = join(CORPUS, 'valid');
  const files = topFiles(dir);
  assert.ok(files.length >= 10, `corpus has ${files.length} valid files`);
  const rejected: string[] = [];
  for (const f of files) {
    try {
      const r = parseCorpusFile(dir, f, { NPM_TOKEN: 'x' });
      assert.ok(Object.keys(r.spec.services).length > 0, f);
    } catch (e) {
      rejected.push(`${f}: ${(e as Error).message}`);
    }
  }
  assert.deepEqual(rejected, []);
});

test('corpus: what the valid files mean', () => {
  const dir = join(CORPUS, 'valid');
  const names = parseCorpusFile(dir, 'names-as-compose-allows.yaml').spec.services;
  assert.deepEqual(Object.keys(names), ['servicea', 'with-depends-on', 'api-v2', 'service-b-2']);
  assert.deepEqual(names.servicea!.dependsOn, ['with-depends-on', 'api-v2']);
  const ext = parseCorpusFile(dir, 'extends.yaml').spec.services;
  assert.deepEqual(ext.web!.environment, { FROM_BASE_ENV: '1', NODE_ENV: 'production', LOG_LEVEL: 'debug' });
  assert.equal(ext.web!.volumes[0]!.source, join(dir, 'common/assets'));
  assert.deepEqual(ext.worker!.command, ['node', 'worker.js']);
  assert.deepEqual(ext.admin!.command, ['node', 'admin.js']);
  assert.equal(ext.admin!.environment.LOG_LEVEL, 'debug');
  const inc = parseCorpusFile(dir, 'include.yaml').spec.services;
  assert.equal(inc.postgres!.image, 'postgres:16');
  const ovr = parseCorpusFile(dir, 'override.yaml').spec.services;
  assert.equal(ovr.web!.replicas, 3);
  assert.deepEqual(ovr.web!.environment, { MODE: 'prod' });
  assert.deepEqual(ovr.web!.ports, []);
  assert.deepEqual(ovr.web!.command, ['node', 'server.js']);
  assert.deepEqual(ovr.cache!.command, ['redis-server', '--save', '']);
  assert.deepEqual(Object.keys(parseCorpusFile(dir, 'profiles.yaml').spec.services), ['app']);
  const mig = parseCorpusFile(dir, 'migrations.yaml').spec.services;
  assert.equal(mig.migrate!.oneShot, true);
  assert.deepEqual(mig.migrate!.restart.condition, 'on-failure');
  assert.deepEqual(mig.seed!.restart.condition, 'on-failure', 'its own restart: on-failure');
  assert.deepEqual(mig.app!.dependsOnConditions, { migrate: 'service_completed_successfully', seed: 'service_completed_successfully' });
  assert.deepEqual(mig.migrate!.dependsOnConditions, { db: 'service_healthy' });
  const builds = parseCorpusFile(dir, 'builds.yaml', { NPM_TOKEN: 'x' }).spec.services;
  assert.equal(builds.api!.build!.target, 'prod');
  assert.deepEqual(builds.api!.build!.secrets?.map((x) => [x.source, x.target, x.mount?.value]), [['npm_token', 'npm_token', 'x']]);
  assert.match(builds.tool!.build!.dockerfileInline!, /^FROM berth\/busybox\nRUN echo built/);
  const es = parseCorpusFile(dir, 'runtime.yaml').spec.services.es!;
  assert.equal(es.init, true);
  assert.deepEqual(es.ulimits, [{ name: 'memlock', soft: -1, hard: -1 }, { name: 'nofile', soft: 65536, hard: 65536 }]);
  assert.deepEqual(es.extraHosts, ['host.docker.internal:host-gateway', 'legacy:10.1.2.3']);
  assert.deepEqual(es.volumes, [{ type: 'anonymous', source: '', target: '/usr/share/elasticsearch/data', readOnly: false }]);

  // Gitea: its network and bind mounts as written; Compose's defaults (external: false) are not warned about.
  const gitea = parseCorpusFile(dir, 'gitea-postgres.yaml');
  assert.deepEqual(gitea.spec.services.server!.networks, [{ name: 'gitea', aliases: [] }]);
  assert.deepEqual(gitea.spec.services.server!.publish, [{ target: 3000, published: 3000, protocol: 'tcp' }, { target: 22, published: 222, protocol: 'tcp' }]);
  assert.deepEqual(gitea.spec.services.server!.volumes.map((v) => [v.type, v.source, v.readOnly]),
    [['bind', join(dir, 'gitea'), false], ['bind', '/etc/timezone', true], ['bind', '/etc/localtime', true]]);
  assert.deepEqual(gitea.warnings.map((w) => w.path), ['version', 'services.server.container_name', 'services.server.ports']);
  // Nextcloud: secrets as files for the *_FILE variables, one volume shared by three services (read-only in one).
  const nc = parseCorpusFile(dir, 'nextcloud-fpm.yaml').spec.services;
  assert.deepEqual(nc.db!.secrets?.map((x) => x.target), ['/run/secrets/db_root_password', '/run/secrets/db_password']);
  assert.deepEqual(nc.db!.command, ['--transaction-isolation=READ-COMMITTED', '--log-bin=binlog', '--binlog-format=ROW']);
  assert.equal(nc.app!.environment.MYSQL_PASSWORD_FILE, '/run/secrets/db_password');
  assert.deepEqual(['app', 'web', 'cron'].map((s) => nc[s]!.volumes[0]), [false, true, false].map((readOnly) => ({ type: 'volume', source: 'nextcloud', target: '/var/www/html', readOnly })));
  assert.deepEqual(nc.cron!.entrypoint, ['/cron.sh']);
  assert.deepEqual(nc.web!.publish, [{ target: 80, published: 8080, hostIp: '127.0.0.1', protocol: 'tcp' }]);
  // A production stack: everything it sets is mapped or named in a warning.
  const stack = parseCorpusFile(dir, 'stack-healthchecks.yaml');
  const { proxy, api, worker, migrate, db, cache } = stack.spec.services;
  assert.deepEqual(Object.keys(stack.spec.services), ['proxy', 'api', 'worker', 'migrate', 'db', 'cache'], 'adminer only with --profile debug');
  assert.deepEqual(proxy!.tmpfs, { '/var/cache/nginx': '', '/run': `size=${64 * 1024 * 1024}` });
  assert.equal(proxy!.readOnly, true);
  assert.deepEqual([proxy!.capDrop, proxy!.capAdd], [['ALL'], ['NET_BIND_SERVICE', 'CHOWN', 'SETUID', 'SETGID']]);
  assert.deepEqual(proxy!.configs?.map((c) => [c.target, c.mode]), [['/etc/nginx/conf.d/default.conf', 0o440]]);
  assert.deepEqual(proxy!.networks, [{ name: 'frontend', aliases: ['edge'] }]);
  assert.deepEqual([proxy!.dependsOnConditions, proxy!.restartWith], [{ api: 'service_healthy' }, ['api']]);
  assert.deepEqual(proxy!.labels, { 'com.example.team': 'web' });
  assert.deepEqual(api!.secrets?.map((x) => [x.target, x.uid, x.gid, x.mode]), [['/run/secrets/db_pass', 1000, 1000, 0o400]]);
  assert.deepEqual([api!.user, api!.workingDir, api!.stopSignal, api!.stopGracePeriodMs, api!.replicas], ['1000:1000', '/app', 'SIGINT', 30_000, 2]);
  assert.deepEqual([api!.build?.target, api!.expose, api!.health.type], ['runtime', ['3000'], 'command']);
  assert.deepEqual(worker!.dependsOnConditions, { db: 'service_healthy', migrate: 'service_completed_successfully' });
  assert.equal(migrate!.oneShot, true);
  assert.deepEqual(db!.networks, [{ name: 'backend', aliases: ['postgres'] }]);
  assert.equal(db!.shmSizeBytes, 128 * 1024 * 1024);
  assert.deepEqual(cache!.sysctls, { 'net.core.somaxconn': '1024' });
  assert.deepEqual(stack.warnings.map((w) => w.path), [
    'services.proxy.logging', 'services.api.logging', 'services.worker.logging', 'services.proxy.ports', 'services.db.volumes', 'services.cache.volumes',
  ], 'the ignored logging driver is named; driver: local / bridge are not');
});

test('corpus: every invalid file is refused at file:line:col with the right cause', () => {
  const dir = join(CORPUS, 'invalid');
  const expect = JSON.parse(readFileSync(join(dir, 'expect.json'), 'utf8')) as Record<string, string[]>;
  assert.deepEqual(topFiles(dir), Object.keys(expect).sort(), 'every invalid file has its expectation');
  for (const [file, wanted] of Object.entries(expect)) {
    let err: unknown;
    try {
      parseCorpusFile(dir, file);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof InvalidSpec, `${file} must be refused`);
    const got = err.issues.map((i) => `${i.file}:${i.line}:${i.col} ${i.path}: ${i.message}`.replace(dir, '/CORPUS'));
    assert.equal(got.length, wanted.length, `${file}:\n${got.join('\n')}`);
    wanted.forEach((w, i) => assert.ok(got[i]!.startsWith(w), `${file}: expected\n  ${w}\ngot\n  ${got[i]}`));
    if (file === 'unset-variable.yaml') assert.match(err.warnings.map((w) => w.message).join('\n'), /variable "GRACE" is not set/);
  }
});
