/**
 * Compose secrets and configs end to end (real Docker): a db-like service reads its password from
 * /run/secrets via a *_FILE variable; an external secret comes from `berth secret set` per
 * environment; files carry their uid/gid/mode; a changed secret is a new release; no value reaches
 * `docker inspect` (environment, labels), the data directory's files or the server's log; bad input
 * is refused naming the secret and changes nothing; after a crash and a lost tmpfs the files are
 * written again and running containers are adopted, not restarted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { waitFor } from '../src/lib/backoff.ts';
import { Harness, docker, type CliResult } from './helpers/harness.ts';

const exec = promisify(execFile);
const tag = () => randomBytes(6).toString('hex');
const DB_PW = `db-pw-${tag()}`;
const DB_PW2 = `db-pw-two-${tag()}`;
const PROD_KEY = `prod-key-${tag()}`;
const PRE_KEY = `pre-key-${tag()}`;
const ENV_TOKEN = `env-token-${tag()}`;

/** A database-like service: refuses to start without its password file, as postgres' images do with POSTGRES_PASSWORD_FILE. */
const COMPOSE = `
name: vault
services:
  db:
    image: berth/busybox
    user: "999:999"
    environment:
      DB_PASSWORD_FILE: /run/secrets/db_password
    command: ["sh", "-c", "test -s \\"$$DB_PASSWORD_FILE\\" || { echo 'no password in '$$DB_PASSWORD_FILE >&2; exit 1; }; exec sleep 100000"]
    stop_grace_period: 1s
    secrets:
      - source: db_password
        uid: "999"
        mode: 0400
      - api_key
      - source: token
        target: /etc/token
    configs:
      - source: app_ini
        target: /etc/app/app.ini
        gid: "999"
        mode: 0440
secrets:
  db_password:
    file: ./db_password.txt
  api_key:
    external: true
  token:
    environment: VAULT_TOKEN
configs:
  app_ini:
    content: |
      [db]
      host = db
`;

describe('secrets and configs', () => {
  let h: Harness;
  let dir: string;
  let file: string;
  let cluster: string;
  before(async () => {
    h = await Harness.create({ portRange: '19400-19499', env: { VAULT_TOKEN: ENV_TOKEN } });
    await h.startServer();
    dir = await mkdtemp(join(tmpdir(), 'berth-secrets-'));
    file = join(dir, 'compose.yaml');
    await writeFile(file, COMPOSE);
    await writeFile(join(dir, 'db_password.txt'), DB_PW);
    cluster = (await readFile(join(h.dataDir, 'cluster-id'), 'utf8')).trim();
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-8000));
    await h.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  const env = { VAULT_TOKEN: ENV_TOKEN };
  const deploy = (target: string, extra: string[] = []) => h.cli(['deploy', '-f', file, '--env', target, ...extra], { timeoutMs: 180_000, env });
  const cliStdin = (args: string[], input: string): Promise<CliResult> => h.cli(args, { input });

  /** The running container of `vault` in `target`, by its env label. */
  const container = async (target: string) => {
    const ids = (await docker('ps', '-q', '--no-trunc', '--filter', `label=io.berth.cluster=${cluster}`, '--filter', 'label=io.berth.app=vault',
      '--filter', `label=io.berth.env=${target}`)).split('\n').filter(Boolean);
    assert.equal(ids.length, 1, `one container of vault/${target}: ${ids.join(' ')}`);
    return ids[0]!;
  };
  const inContainer = async (id: string, ...cmd: string[]) => (await docker('exec', id, ...cmd)).trim();
  const status = async (target: string) => (await h.api('GET', `/v1/apps/vault?env=${target}`)).json;

  test('an external secret that is not set: the deploy is refused naming it and how to set it; nothing is created', async () => {
    const r = await deploy('prod');
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /secret "api_key" is external and reads API_KEY from Berth's configuration of vault\/prod, which is not set/);
    assert.match(r.stderr, /berth secret set vault API_KEY --env prod/);
    const s = await h.api('GET', '/v1/apps/vault?env=prod');
    assert.ok(s.status === 404 || (s.json.services ?? []).length === 0, JSON.stringify(s.json));
    assert.deepEqual(await h.containers('vault'), []);
  });

  test('deployed to prod and pre: the db reads its password through *_FILE; each environment gets its own external value', async () => {
    // The two environments are independent: set and deploy side by side.
    await Promise.all(([['prod', PROD_KEY], ['pre', PRE_KEY]] as const).map(async ([target, value]) => {
      const s = await cliStdin(['secret', 'set', 'vault', 'API_KEY', '--env', target, '--create', '--no-wait'], value);
      assert.equal(s.code, 0, s.stderr);
      const d = await deploy(target);
      assert.equal(d.code, 0, d.stdout + d.stderr);
    }));
    await Promise.all(([['prod', PROD_KEY], ['pre', PRE_KEY]] as const).map(async ([target, key]) => {
      const id = await container(target);
      const [pw, apiKey, token, ini, pwStat, iniStat, keyStat] = await Promise.all([
        inContainer(id, 'sh', '-c', 'cat "$DB_PASSWORD_FILE"'), inContainer(id, 'cat', '/run/secrets/api_key'), inContainer(id, 'cat', '/etc/token'),
        inContainer(id, 'cat', '/etc/app/app.ini'), inContainer(id, 'stat', '-c', '%u %g %a', '/run/secrets/db_password'),
        inContainer(id, 'stat', '-c', '%u %g %a', '/etc/app/app.ini'), inContainer(id, 'stat', '-c', '%u %g %a', '/run/secrets/api_key')]);
      assert.equal(pw, DB_PW, 'the process (uid 999) reads its password');
      assert.equal(apiKey, key);
      assert.equal(token, ENV_TOKEN);
      assert.equal(ini, '[db]\nhost = db');
      assert.equal(pwStat, '999 0 400');
      assert.equal(iniStat, '0 999 440');
      assert.equal(keyStat, '0 0 444');
      // Read-only: the container cannot change the value it was given.
      await assert.rejects(docker('exec', '-u', '0', id, 'sh', '-c', 'echo x > /run/secrets/api_key'));
    }));
  });

  test('no value in docker inspect (environment, labels), nor in the data directory\'s files, nor in the server log; files come from a tmpfs', async () => {
    const id = await container('prod');
    const inspect = JSON.parse(await docker('inspect', id))[0];
    const shown = JSON.stringify({ env: inspect.Config.Env, labels: inspect.Config.Labels, cmd: inspect.Config.Cmd });
    for (const v of [DB_PW, PROD_KEY, ENV_TOKEN]) assert.ok(!JSON.stringify(inspect).includes(v), `docker inspect shows ${v}`);
    assert.ok(!/API_KEY=/.test(shown), 'a configuration key mounted as a secret is not also an environment variable');
    const root = join('/run/berth', cluster, 'secrets');
    const sources = (inspect.Mounts as Array<{ Source: string; Destination: string }>).filter((m) => ['/run/secrets/db_password', '/etc/app/app.ini'].includes(m.Destination));
    assert.equal(sources.length, 2);
    for (const m of sources) assert.ok(m.Source.startsWith(root + '/'), m.Source);
    const fs = (await exec('findmnt', ['-n', '-o', 'FSTYPE', '--target', sources[0]!.Source])).stdout.trim();
    assert.equal(fs, 'tmpfs');
    for (const v of [DB_PW, PROD_KEY, PRE_KEY, ENV_TOKEN]) assert.deepEqual(await h.filesWith(v), [], `plaintext of a secret found`);
  });

  test('a changed secret file is a new release with the new value; an unchanged deploy is no release', async () => {
    const seq = (await status('prod')).services[0].release.seq;
    const same = await deploy('prod');
    assert.equal(same.code, 0, same.stderr);
    assert.equal((await status('prod')).services[0].release.seq, seq, 'the same values make the same release');
    await writeFile(join(dir, 'db_password.txt'), DB_PW2);
    const d = await deploy('prod');
    assert.equal(d.code, 0, d.stdout + d.stderr);
    const s = (await status('prod')).services[0];
    assert.equal(s.release.seq, seq + 1);
    assert.equal(s.release.status, 'healthy');
    assert.equal(await inContainer(await container('prod'), 'cat', '/run/secrets/db_password'), DB_PW2);
    assert.equal(await inContainer(await container('pre'), 'cat', '/run/secrets/db_password'), DB_PW, 'pre keeps its release');
    assert.deepEqual(await h.filesWith(DB_PW2), []);
  });

  test('an external secret changed with `berth secret set` rolls out as a new release', async () => {
    const seq = (await status('pre')).services[0].release.seq;
    const next = `pre-key-two-${tag()}`;
    const r = await cliStdin(['secret', 'set', 'vault', 'API_KEY', '--env', 'pre'], next);
    assert.equal(r.code, 0, r.stderr);
    const s = (await status('pre')).services[0];
    assert.equal(s.release.seq, seq + 1);
    assert.equal(await inContainer(await container('pre'), 'cat', '/run/secrets/api_key'), next);
    assert.deepEqual(await h.filesWith(next), []);
  });

  test('bad input is refused at file:line:col and changes nothing', async () => {
    const seq = (await status('prod')).services[0].release.seq;
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, COMPOSE.replace('./db_password.txt', './nope.txt').replace('      - api_key\n', '      - api_kee\n'));
    const r = await h.cli(['deploy', '-f', bad, '--env', 'prod'], { env });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /bad\.yaml:\d+:\d+.*undefined secret "api_kee": did you mean "api_key"\?/);
    assert.match(r.stderr, /bad\.yaml:\d+:\d+.*file "\.\/nope\.txt" not found/);
    assert.equal((await status('prod')).services[0].release.seq, seq, 'a refused deploy makes no release');
    const unset = await h.cli(['deploy', '-f', file, '--env', 'prod'], { env: { VAULT_TOKEN: '' } });
    assert.equal(unset.code, 0, 'an empty variable is a value (as in Compose)');
    assert.equal((await status('prod')).services[0].release.seq, seq + 1);
    const back = await deploy('prod');
    assert.equal(back.code, 0, back.stderr);
  });

  test('after a crash and a lost tmpfs (a reboot) the files are written again; running containers are adopted, not restarted', async () => {
    const before = await h.containers('vault');
    await h.killServer('SIGKILL');
    const root = join('/run/berth', cluster, 'secrets');
    // What a reboot leaves: no tmpfs, no files. The running containers keep the files they mounted.
    await exec('umount', ['-l', root]);
    await h.startServer();
    const after = await h.containers('vault');
    assert.deepEqual(after.map((c) => [c.id, c.startedAt]).sort(), before.map((c) => [c.id, c.startedAt]).sort());
    assert.equal((await exec('findmnt', ['-n', '-o', 'FSTYPE', root])).stdout.trim(), 'tmpfs');
    const id = await container('prod');
    const src = JSON.parse(await docker('inspect', id))[0].Mounts.find((m: { Destination: string }) => m.Destination === '/run/secrets/db_password').Source;
    assert.equal(await readFile(src, 'utf8'), DB_PW2, 'the release\'s file is back on the new tmpfs');
    // A replaced instance mounts it.
    await docker('rm', '-f', id);
    await waitFor(async () => {
      const now = (await h.containers('vault')).filter((c) => c.running && c.id !== id);
      return now.length === 2;
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'the removed db instance to be replaced' });
    assert.equal(await inContainer(await container('prod'), 'cat', '/run/secrets/db_password'), DB_PW2);
  });
});
