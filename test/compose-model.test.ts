/**
 * Compose files as teams have them: an override file merged over the base (replicas, environment),
 * `extends` from another file, a profile-only service, a build target, a one-shot init service that
 * its dependent waits for (service_completed_successfully), names with capitals and underscores,
 * working_dir, ulimits, sysctls, extra_hosts, an anonymous volume and tmpfs seen inside the container;
 * and the machine-readable report of a refused file. Real server, real Docker.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker, Harness } from './helpers/harness.ts';

const APP = 'cmodel';

/** Running containers of one service of the app, with their environment and HostConfig.Init. */
async function serviceContainers(service: string): Promise<Array<{ env: string[]; init: boolean; id: string }>> {
  const ids = (await docker('ps', '-q', '--no-trunc', '--filter', `label=io.berth.app=${APP}`, '--filter', `label=io.berth.service=${service}`)).split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  const out = JSON.parse(await docker('inspect', ...ids)) as Array<{ Id: string; Config: { Env: string[] }; HostConfig: { Init?: boolean | null } }>;
  return out.map((c) => ({ id: c.Id, env: c.Config.Env, init: c.HostConfig.Init === true }));
}

describe('Compose model: overrides, extends, profiles, build target, one-shot init', { concurrency: true }, () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    h = await Harness.create({ portRange: '32300-32399' });
    await h.startServer();
    dir = await mkdtemp(join(tmpdir(), 'berth-cmodel-'));
    await mkdir(join(dir, 'common'));
    await mkdir(join(dir, 'web'));
    await writeFile(join(dir, 'common', 'base.yaml'), [
      'services:',
      '  base:',
      '    image: berth/busybox',
      '    init: true',
      '    environment: {FROM_BASE: "1", MODE: dev}',
      '',
    ].join('\n'));
    await writeFile(join(dir, 'web', 'Dockerfile'), [
      'FROM berth/busybox AS dev',
      'RUN echo dev > /stage',
      'FROM berth/busybox AS prod',
      'RUN echo prod > /stage',
      '',
    ].join('\n'));
    await writeFile(join(dir, 'compose.yaml'), [
      `name: ${APP}`,
      'services:',
      '  serviceA:',
      '    extends: {file: common/base.yaml, service: base}',
      // Exits (and, restart "no", stays exited: the deployment fails) unless db_init ran first.
      '    command: ["sh", "-c", "test -f /shared/ready && exec sleep 3600"]',
      '    restart: "no"',
      '    volumes: [shared:/shared]',
      '    depends_on:',
      '      db_init: {condition: service_completed_successfully}',
      '  db_init:',
      '    image: berth/busybox',
      '    command: ["sh", "-c", "sleep 1; echo ok > /shared/ready"]',
      '    volumes: [shared:/shared]',
      '  web:',
      '    build: {context: ./web, target: dev}',
      '    command: ["sleep", "3600"]',
      '  debug_tools:',
      '    image: berth/busybox',
      '    command: ["sleep", "3600"]',
      '    profiles: [debug]',
      // Runtime keys Compose users set, checked inside the running container.
      '  knobs:',
      '    image: berth/busybox',
      '    command: ["sleep", "3600"]',
      '    working_dir: /srv/work',
      '    ulimits: {nofile: {soft: 1000, hard: 2000}}',
      '    sysctls: {net.core.somaxconn: 1234}',
      '    extra_hosts: ["legacy.internal=10.1.2.3"]',
      '    volumes: [/var/cache/anon]',
      '    tmpfs: [/scratch]',
      '    stop_grace_period: 1s',
      'volumes:',
      '  shared: {}',
      // web is built FROM the only busybox tag there is.
      'x-berth:',
      '  pipeline:',
      '    checks:',
      '      warn_only: [pinned-from]',
      '',
    ].join('\n'));
    await writeFile(join(dir, 'compose.prod.yaml'), [
      'services:',
      '  serviceA:',
      '    deploy: {replicas: 2}',
      '    environment: {MODE: prod}',
      '',
    ].join('\n'));
  });
  after(async () => {
    await h.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  // The tests below use apps of their own (the first two share one, in order) and mostly wait on the
  // engine and on deadlines: they run side by side.
  describe('the cmodel app', { concurrency: 1 }, () => {
    test('deploy -f compose.yaml -f compose.prod.yaml: override, extends, build target and the init service, in order', async () => {
      const r = await h.cli(['deploy', '-f', join(dir, 'compose.yaml'), '-f', join(dir, 'compose.prod.yaml'), '--timeout', '240'], { timeoutMs: 300_000 });
      assert.equal(r.code, 0, r.stderr);
      const a = await serviceContainers('servicea');
      assert.equal(a.length, 2, 'the override file set 2 replicas');
      for (const c of a) {
        assert.ok(c.env.includes('MODE=prod'), `override environment: ${c.env.join(' ')}`);
        assert.ok(c.env.includes('FROM_BASE=1'), 'extends from common/base.yaml');
        assert.equal(c.init, true, 'init: true from the base service');
      }
      // The init service completed: exited 0, not restarted, not crash-looping.
      const init = (await h.api('GET', `/v1/apps/${APP}?env=prod`)).json;
      const dbInit = (init.services as Array<{ name: string; instances: Array<{ state: string }> }>).find((s) => s.name === 'db-init');
      assert.ok(dbInit, JSON.stringify(init));
      assert.deepEqual(dbInit.instances.map((i) => i.state), ['exited']);
      const events = (await h.api('GET', `/v1/events?app=${APP}&limit=1000`)).json.events as Array<{ kind: string; service: string }>;
      assert.ok(events.some((e) => e.kind === 'instance.completed' && e.service === 'db-init'), 'the one-shot completed');
      assert.ok(!events.some((e) => e.kind === 'instance.crashed' && e.service === 'servicea'), 'serviceA never started before db_init completed');
      // build.target: the dev stage, not the last one.
      const [web] = await serviceContainers('web');
      assert.ok(web);
      assert.equal(await docker('exec', web.id, 'cat', '/stage'), 'dev');
      assert.deepEqual(await serviceContainers('debug-tools'), [], 'a profile-only service does not run without --profile');
      // working_dir, ulimits, sysctls (app network), extra_hosts, an anonymous volume and tmpfs reach the container.
      const [knobs] = await serviceContainers('knobs');
      assert.ok(knobs);
      const inside = (script: string) => docker('exec', knobs.id, 'sh', '-c', script);
      assert.equal(await inside('pwd'), '/srv/work');
      assert.match(await inside('cat /proc/1/limits'), /^Max open files\s+1000\s+2000\s+files\s*$/m);
      assert.equal(await inside('cat /proc/sys/net/core/somaxconn'), '1234');
      assert.match(await inside('cat /etc/hosts'), /^10\.1\.2\.3\s+legacy\.internal$/m);
      assert.match(await inside('grep " /scratch " /proc/mounts'), /^tmpfs \/scratch tmpfs /);
      const mounts = JSON.parse(await docker('inspect', knobs.id, '--format', '{{json .Mounts}}')) as Array<{ Type: string; Name?: string; Destination: string }>;
      const anon = mounts.find((m) => m.Destination === '/var/cache/anon');
      assert.equal(anon?.Type, 'volume', JSON.stringify(mounts));
      assert.match(anon.Name ?? '', /^[0-9a-f]{64}$/, 'an anonymous volume (Docker names it), not a named one');
    });

    test('--profile debug starts the profile-only service; nothing else is replaced', async () => {
      const before = (await serviceContainers('servicea')).map((c) => c.id).sort();
      const r = await h.cli(['deploy', '-f', join(dir, 'compose.yaml'), '-f', join(dir, 'compose.prod.yaml'), '--profile', 'debug', '--timeout', '120'], { timeoutMs: 180_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await serviceContainers('debug-tools')).length, 1);
      assert.deepEqual((await serviceContainers('servicea')).map((c) => c.id).sort(), before);
    });
  });

  test('compose.override.yaml is picked up next to compose.yaml when no -f is given', async () => {
    const d = await mkdtemp(join(tmpdir(), 'berth-cmodel-ovr-'));
    try {
      await writeFile(join(d, 'compose.yaml'), 'name: ovr\nservices:\n  web: {image: berth/busybox, environment: {A: base}}\n');
      await writeFile(join(d, 'compose.override.yaml'), 'services:\n  web: {deploy: {replicas: 3}, environment: {A: override}}\n');
      const r = await h.cli(['--json', 'validate'], { cwd: d });
      assert.equal(r.code, 0, r.stderr);
      const web = JSON.parse(r.stdout).spec.services.web;
      assert.equal(web.replicas, 3);
      assert.deepEqual(web.environment, { A: 'override' });
      const only = await h.cli(['--json', 'validate', '-f', 'compose.yaml'], { cwd: d });
      assert.equal(JSON.parse(only.stdout).spec.services.web.replicas, 1, 'with -f, only the files given (as docker compose)');
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  test('a refused file: --json validate and deploy print the report (errors, then warnings) on stdout; nothing changes', async () => {
    const d = await mkdtemp(join(tmpdir(), 'berth-cmodel-bad-'));
    try {
      await writeFile(join(d, 'compose.yaml'), 'name: refused\nservices:\n  web:\n    image: berth/busybox\n    deploy: {replicas: "${REPLICAS}"}\n    sysctls: [kernel.shmmax=1]\n');
      for (const verb of ['validate', 'deploy']) {
        const r = await h.cli(['--json', verb, '-f', join(d, 'compose.yaml')], { env: { REPLICAS: '' } });
        assert.equal(r.code, 2, r.stderr);
        const report = JSON.parse(r.stdout) as { valid: boolean; errors: Array<{ file: string; line: number; path: string; message: string }>; warnings: Array<{ message: string }> };
        assert.equal(report.valid, false);
        assert.deepEqual(report.errors.map((e) => `${e.line} ${e.path}`), ['5 services.web.deploy.replicas', '6 services.web.sysctls[0]']);
        assert.match(report.errors[1]!.message, /sysctl "kernel\.shmmax" is refused/);
        assert.ok(report.warnings.length === 0 || report.warnings.every((w) => typeof w.message === 'string'));
        assert.equal(JSON.parse(r.stderr).error.code, 'invalid_spec');
      }
      const unset = await h.cli(['--json', 'validate', '-f', join(d, 'compose.yaml')], { env: {} });
      assert.match(JSON.parse(unset.stdout).warnings[0].message, /variable "REPLICAS" is not set/, 'the warning that explains the error is kept');
      const apps = (await h.api('GET', '/v1/apps')).json.apps as Array<{ name: string }>;
      assert.ok(!apps.some((a) => a.name === 'refused'));
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  test('depends_on restart: true — redeploying db restarts web after the new db is healthy; the deploy says what web waits for', async () => {
    const d = await mkdtemp(join(tmpdir(), 'berth-cmodel-rst-'));
    const app = 'cmodel-rst';
    const file = (version: string) => [
      `name: ${app}`,
      'services:',
      '  db:',
      '    image: berth/busybox',
      '    command: ["sleep", "3600"]',
      `    environment: {VERSION: "${version}"}`,
      '    stop_grace_period: 1s',
      // Healthy only after its first check, so web has something to wait for.
      '    healthcheck: {test: ["CMD", "true"], interval: 1s, start_period: 0s}',
      '  web:',
      '    image: berth/busybox',
      '    command: ["sleep", "3600"]',
      '    stop_grace_period: 1s',
      '    depends_on:',
      '      db: {condition: service_healthy, restart: true}',
      '',
    ].join('\n');
    const ids = async (service: string) => (await docker('ps', '-q', '--no-trunc', '--filter', `label=io.berth.app=${app}`, '--filter', `label=io.berth.service=${service}`))
      .split('\n').filter(Boolean);
    try {
      await writeFile(join(d, 'compose.yaml'), file('1'));
      const first = await h.cli(['deploy', '-f', join(d, 'compose.yaml'), '--timeout', '120'], { timeoutMs: 180_000 });
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, /dependency\.waiting\s+web waiting for db \(healthy\)/, first.stderr);
      const [web1] = await ids('web');
      assert.ok(web1);

      await writeFile(join(d, 'compose.yaml'), file('2'));
      const second = await h.cli(['deploy', '-f', join(d, 'compose.yaml'), '--timeout', '120'], { timeoutMs: 180_000 });
      assert.equal(second.code, 0, second.stderr);
      const [web2] = await ids('web');
      assert.ok(web2 && web2 !== web1, 'web runs in a new container');
      const events = ((await h.api('GET', `/v1/events?app=${app}&limit=1000`)).json.events as Array<{ id: number; kind: string; service: string; message: string }>)
        .sort((a, b) => a.id - b.id);
      const restart = events.find((e) => e.kind === 'service.restarting' && e.service === 'web');
      assert.ok(restart, events.map((e) => `${e.kind} ${e.message}`).join('\n'));
      assert.match(restart.message, /db was replaced by this deploy \(depends_on restart: true\)/);
      const dbHealthy = events.filter((e) => e.kind === 'release.healthy' && e.service === 'db').at(-1);
      assert.ok(dbHealthy && dbHealthy.id < restart.id, 'web restarted after the new db was healthy');

      // A third deploy of the same file changes nothing: web is not restarted again.
      const third = await h.cli(['deploy', '-f', join(d, 'compose.yaml'), '--timeout', '60'], { timeoutMs: 120_000 });
      assert.equal(third.code, 0, third.stderr);
      assert.deepEqual(await ids('web'), [web2]);
    } finally {
      await h.cli(['rm', app]).catch(() => undefined);
      await rm(d, { recursive: true, force: true });
    }
  });

  test('a dependency that never becomes healthy: the deploy fails naming it and its last health check output', async () => {
    const d = await mkdtemp(join(tmpdir(), 'berth-cmodel-dep-'));
    const app = 'cmodel-dep';
    try {
      await writeFile(join(d, 'compose.yaml'), [
        `name: ${app}`,
        'services:',
        '  db:',
        '    image: berth/busybox',
        '    command: ["sleep", "3600"]',
        '    stop_grace_period: 1s',
        '    healthcheck: {test: ["CMD", "sh", "-c", "echo db is still recovering; exit 1"], interval: 1s}',
        '  web:',
        '    image: berth/busybox',
        '    command: ["sleep", "3600"]',
        '    stop_grace_period: 1s',
        '    depends_on:',
        '      db: {condition: service_healthy}',
        '    x-berth:',
        // Room for a loaded machine: db's container created and started, then its first check run (CI
        // once had not run one 8 s after the deploy began).
        '      update: {deadline: 15s}',
        '',
      ].join('\n'));
      const r = await h.cli(['deploy', '-f', join(d, 'compose.yaml'), '--timeout', '120'], { timeoutMs: 180_000 });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /web waiting for db \(healthy\)/);
      assert.match(r.stderr, /db did not become healthy in 15s: healthcheck exit 1: db is still recovering/);
      assert.deepEqual((await docker('ps', '-q', '--filter', `label=io.berth.app=${app}`, '--filter', 'label=io.berth.service=web')).trim(), '', 'web never started');
    } finally {
      await h.cli(['rm', app]).catch(() => undefined);
      await rm(d, { recursive: true, force: true });
    }
  });
});
