/**
 * Configuration center end to end: a config change rolls out as a new release to every instance; a
 * secret reaches the containers' environment but never the SQLite files, the server log, events,
 * history or listings; a bad key name changes nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Harness, ROOT, docker, type CliResult } from './helpers/harness.ts';

const WEB = join(ROOT, 'test/fixtures/apps/web/compose.yaml');
const SECRET = `s3cr3t-value-${randomBytes(6).toString('hex')}`;

describe('configuration center', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.create({ portRange: '10900-10999' });
    await h.startServer();
    const d = await h.cli(['deploy', '-f', WEB], { timeoutMs: 180_000 });
    assert.equal(d.code, 0, d.stderr);
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-8000));
    await h.cleanup();
  });

  /** The CLI with `input` piped on stdin (the harness's cli() gives none). */
  const cliStdin = (args: string[], input: string): Promise<CliResult> => h.cli(args, { input });

  const running = async () => (await h.containers('e2e')).filter((c) => c.running);
  /** A variable as the container's processes see it (`docker exec … env`: the base image's busybox has no printenv). */
  const printenv = async (id: string, key: string) => {
    for (const line of (await docker('exec', id, 'env')).split('\n')) {
      if (line.startsWith(key + '=')) return line.slice(key.length + 1);
    }
    return undefined;
  };
  const service = async () => (await h.status('e2e')).services[0];

  test('config set rolls out a new release: new containers, the value in every instance', async () => {
    const before = new Set((await running()).map((c) => c.id));
    assert.equal(before.size, 3);
    const seq = (await service()).release.seq;
    const r = await h.cli(['config', 'set', 'e2e', 'GREETING=hello']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /e2e\/prod: configuration version 1: set GREETING=hello/);
    assert.match(r.stdout + r.stderr, /rolled out/);
    const s = await service();
    assert.equal(s.release.seq, seq + 1, 'a config change is a new release');
    assert.equal(s.release.status, 'healthy');
    const now = await running();
    assert.equal(now.length, 3);
    assert.ok(now.every((c) => !before.has(c.id)), 'every instance was replaced');
    for (const c of now) assert.equal(await printenv(c.id, 'GREETING'), 'hello', `instance ${c.instance}`);
  });

  test('a re-deploy with unchanged configuration makes no new release', async () => {
    const seq = (await service()).release.seq;
    const d = await h.cli(['deploy', '-f', WEB], { timeoutMs: 180_000 });
    assert.equal(d.code, 0, d.stderr);
    assert.equal((await service()).release.seq, seq);
    // Setting the same value again is no change either: no version, no rollout.
    const r = await h.cli(['config', 'set', 'e2e', 'GREETING=hello']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /no change \(configuration version 1\)/);
    assert.equal((await service()).release.seq, seq);
  });

  test('a secret from stdin reaches the containers and nowhere else', async () => {
    const seq = (await service()).release.seq;
    const r = await cliStdin(['secret', 'set', 'e2e', 'DB_PASSWORD'], SECRET);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!(r.stdout + r.stderr).includes(SECRET));
    assert.equal((await service()).release.seq, seq + 1);
    const cs = await running();
    assert.equal(cs.length, 3);
    for (const c of cs) {
      assert.equal(await printenv(c.id, 'DB_PASSWORD'), SECRET, `instance ${c.instance}`);
      assert.equal(await printenv(c.id, 'GREETING'), 'hello');
    }

    assert.deepEqual(await h.filesWith(SECRET), [], 'no plaintext of the secret in the data dir (config.db, berth.db, WAL, ...) or the log');

    const ls = await h.cli(['config', 'ls', 'e2e']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /DB_PASSWORD\s+\*{8}/);
    assert.match(ls.stdout, /GREETING\s+hello/);
    assert.ok(!ls.stdout.includes(SECRET));
    const lsJson = await h.cli(['config', 'ls', 'e2e', '--json']);
    const entries = JSON.parse(lsJson.stdout);
    assert.deepEqual(entries.map((e: any) => [e.key, e.kind, e.value]), [['DB_PASSWORD', 'secret', undefined], ['GREETING', 'value', 'hello']]);

    const masked = await h.cli(['secret', 'get', 'e2e', 'DB_PASSWORD']);
    assert.equal(masked.code, 0, masked.stderr);
    assert.ok(!masked.stdout.includes(SECRET));
    const revealed = await h.cli(['secret', 'get', 'e2e', 'DB_PASSWORD', '--reveal']);
    assert.equal(revealed.code, 0, revealed.stderr);
    assert.equal(revealed.stdout, SECRET + '\n');
    const viaConfigGet = await h.cli(['config', 'get', 'e2e', 'DB_PASSWORD']);
    assert.equal(viaConfigGet.code, 2);
    assert.ok(!(viaConfigGet.stdout + viaConfigGet.stderr).includes(SECRET));

    const hist = await h.cli(['config', 'history', 'e2e']);
    assert.equal(hist.code, 0, hist.stderr);
    assert.match(hist.stdout, /^2\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+admin\s+set DB_PASSWORD \(secret\)$/m);
    assert.match(hist.stdout, /^1\s+.*admin\s+set GREETING=hello$/m);
    assert.ok(!hist.stdout.includes(SECRET));
    const histJson = await h.cli(['config', 'history', 'e2e', '--json']);
    assert.ok(!histJson.stdout.includes(SECRET));

    const events = await h.cli(['events', 'e2e', '-n', '1000']);
    assert.equal(events.code, 0, events.stderr);
    assert.match(events.stdout, /config\.changed/);
    assert.ok(!events.stdout.includes(SECRET));
    assert.ok(!(await h.cli(['events', 'e2e', '-n', '1000', '--json'])).stdout.includes(SECRET));
    assert.ok(!JSON.stringify((await h.api('GET', '/v1/apps/e2e/releases')).json).includes(SECRET), 'release records hold no secret');
  });

  test('bad input changes nothing: a bad key name exits 2, a secret on argv is refused', async () => {
    const seq = (await service()).release.seq;
    const version = (await h.api('GET', '/v1/apps/e2e/config')).json.version;
    const bad = await h.cli(['config', 'set', 'e2e', 'bad-key=1', 'OK_KEY=2']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /config key "bad-key" is invalid.*e\.g\. "BAD_KEY"/);
    const reserved = await h.cli(['config', 'set', 'e2e', 'PORT=1']);
    assert.equal(reserved.code, 2, reserved.stderr);
    const argv = await h.cli(['secret', 'set', 'e2e', 'API_TOKEN', 'on-the-command-line']);
    assert.equal(argv.code, 2);
    assert.match(argv.stderr, /refusing a secret value on the command line/);
    const badSecret = await cliStdin(['secret', 'set', 'e2e', 'db-password'], SECRET);
    assert.equal(badSecret.code, 2);
    assert.ok(!(badSecret.stdout + badSecret.stderr).includes(SECRET));
    const unsetMissing = await h.cli(['config', 'unset', 'e2e', 'GREETING', 'NOT_THERE']);
    assert.equal(unsetMissing.code, 3, unsetMissing.stderr);
    const cfg = (await h.api('GET', '/v1/apps/e2e/config')).json;
    assert.equal(cfg.version, version);
    assert.deepEqual(cfg.entries.map((e: any) => e.key), ['DB_PASSWORD', 'GREETING']);
    assert.equal((await service()).release.seq, seq, 'no release for a refused change');
  });

  test('unset rolls out too: the variable is gone from every instance', async () => {
    const r = await h.cli(['config', 'unset', 'e2e', 'GREETING']);
    assert.equal(r.code, 0, r.stderr);
    const cs = await running();
    assert.equal(cs.length, 3);
    for (const c of cs) {
      assert.equal(await printenv(c.id, 'GREETING'), undefined);
      assert.equal(await printenv(c.id, 'DB_PASSWORD'), SECRET);
    }
    const rm = await h.cli(['secret', 'rm', 'e2e', 'DB_PASSWORD']);
    assert.equal(rm.code, 0, rm.stderr);
    for (const c of await running()) assert.equal(await printenv(c.id, 'DB_PASSWORD'), undefined);
    assert.deepEqual(await h.filesWith(SECRET), []);
  });
});
