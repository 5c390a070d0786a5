/**
 * What Berth writes is private: the data directory 0700 with nothing in it readable by others
 * (databases and their WAL, tokens, build logs, repositories); configuration files under the run
 * directory 0750/0640 of the config group — still read by a container running as uid 1000 — and gone
 * with the app; template destinations 0600 unless the admin opened one up. Bad `since`/`before`
 * values for the logs API are 400s naming the parameter, not 500s.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, docker } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const IMAGE = 'berth-e2e/busybox-uid1000:latest';
const CONFIG_GID = 65533;

describe('file permissions and logs input', () => {
  let h: Harness;
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-privacy-'));
    // An image whose process is not root (USER 1000): it must still read its configuration files.
    await writeFile(join(work, 'Dockerfile'), 'FROM berth/busybox:latest\nUSER 1000:1000\n');
    await docker('build', '-q', '-t', IMAGE, work);
    h = await Harness.create({ portRange: '18500-18599' });
    await h.startServer();
    await writeFile(join(work, 'compose.yaml'), `name: priv
services:
  worker:
    image: ${IMAGE}
    # Starts only if it can read its configuration (once there is some): a crash fails the release.
    command: ["sh", "-c", "if [ -e /run/berth/config/GREETING ]; then cat /run/berth/config/GREETING || exit 1; fi; exec sleep 600"]
    stop_grace_period: 1s
`);
    const d = await h.cli(['deploy', '-f', join(work, 'compose.yaml')], { timeoutMs: 180_000 });
    assert.equal(d.code, 0, d.stderr + d.stdout);
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-5000));
    await h.cleanup();
    await rm(work, { recursive: true, force: true });
    await docker('rmi', IMAGE).catch(() => undefined);
  });

  const mode = async (p: string) => (await stat(p)).mode & 0o777;
  const configDir = async () => join('/run/berth', (await readFile(join(h.dataDir, 'cluster-id'), 'utf8')).trim(), 'config', 'priv', 'prod');

  test('configuration files: 0750/0640 of the config group, read by a uid-1000 container, gone after rm', async () => {
    const set = await h.cli(['config', 'set', 'priv', 'GREETING=hello-from-config']);
    assert.equal(set.code, 0, set.stderr);
    // The config change rolls out a new release whose container reads the file at start.
    await waitFor(async () => {
      const st = await h.status('priv');
      return st.services[0].release.seq === 2 && st.services[0].release.status === 'healthy';
    }, { timeoutMs: 60_000, what: 'the release with the configuration healthy' });
    const [c] = (await h.containers('priv')).filter((x) => x.running);
    assert.ok(c, 'a running container');
    assert.equal(await docker('exec', c.id, 'cat', '/run/berth/config/GREETING'), 'hello-from-config');
    assert.match(await docker('exec', c.id, 'id'), new RegExp(`uid=1000 .*groups=.*\\b${CONFIG_GID}\\b`));

    const dir = await configDir();
    assert.equal(await mode(dir), 0o750);
    assert.equal((await stat(dir)).gid, CONFIG_GID);
    const files = await readdir(dir);
    assert.deepEqual(files.sort(), ['GREETING', 'env']);
    for (const f of files) {
      assert.equal(await mode(join(dir, f)), 0o640, `${f} is 0640`);
      assert.equal((await stat(join(dir, f))).gid, CONFIG_GID);
    }

    const rmApp = await h.cli(['rm', 'priv']);
    assert.equal(rmApp.code, 0, rmApp.stderr);
    await waitFor(async () => (await stat(join(dir, '..')).catch(() => undefined)) === undefined,
      { timeoutMs: 30_000, what: 'the configuration files of the removed app to go' });
    assert.deepEqual(await h.containers('priv'), []);
  });

  test('the data directory is 0700 and nothing in it is readable by others', async () => {
    // Something in every corner: a git repository, a build record, logs, metrics, tokens, databases.
    // (git's first request of a push creates the app's repository and its hook)
    const refs = await fetch(`http://127.0.0.1:${h.apiPort}/git/priv.git/info/refs?service=git-receive-pack`,
      { headers: { authorization: `Bearer ${await h.token()}` } });
    assert.equal(refs.status, 200, await refs.text());
    await refs.arrayBuffer().catch(() => undefined);
    await stat(join(h.dataDir, 'git', 'priv.git', 'hooks', 'pre-receive'));
    assert.equal(await mode(h.dataDir), 0o700);
    const open: string[] = [];
    let dbs = 0;
    for (const e of await readdir(h.dataDir, { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      const p = join(e.parentPath, e.name);
      const m = await mode(p).catch(() => undefined);
      if (m === undefined) continue;
      if (/\.db(-wal|-shm)?$/.test(e.name)) {
        dbs++;
        assert.equal(m, 0o600, `${p} is 0600`);
      }
      // resolv.conf files are bind-mounted into containers as /etc/resolv.conf: meant to be read.
      if ((m & 0o007) !== 0 && !/^dns\/resolv-/.test(p.slice(h.dataDir.length + 1))) open.push(`${p} ${m.toString(8)}`);
    }
    assert.ok(dbs >= 4, `berth.db, config.db, logs.db, metrics.db (found ${dbs})`);
    assert.deepEqual(open, [], 'files readable by others');
  });

  test('a new template destination is 0600; one the admin opened up keeps its mode', async () => {
    const dest = join(work, 'rendered.conf');
    await writeFile(join(work, 't.tmpl'), 'greeting={{key "priv/prod/GREETING"}}\n');
    const put = await h.api('PUT', '/v1/templates/privacy', { source: await readFile(join(work, 't.tmpl'), 'utf8'), dest, check: [], reload: [] });
    assert.ok(put.status < 300, JSON.stringify(put.json));
    await waitFor(async () => (await readFile(dest, 'utf8').catch(() => '')) === 'greeting=hello-from-config\n', { timeoutMs: 20_000, what: 'the template rendered' });
    assert.equal(await mode(dest), 0o600);
    await chmod(dest, 0o644);
    const set = await h.cli(['config', 'set', 'priv', 'GREETING=second']);
    assert.equal(set.code, 0, set.stderr);
    await waitFor(async () => (await readFile(dest, 'utf8').catch(() => '')) === 'greeting=second\n', { timeoutMs: 20_000, what: 'the template rendered again' });
    assert.equal(await mode(dest), 0o644);
    await h.api('DELETE', '/v1/templates/privacy');
  });

  test('logs: a since that overflows, or a cursor that is not one, is a 400 naming the parameter', async () => {
    const q = async (qs: string) => h.api('GET', `/v1/apps/priv/logs?${qs}`);
    for (const [qs, param] of [
      ['since=99999999999999999999d', 'since'],
      ['since=999999999999999999999', 'since'],
      ['until=99999999999999999999d', 'until'],
      ['before=99999999999999999999', 'before'],
      ['before=9999999999999999999', 'before'],
      ['before=abc', 'before'],
    ] as const) {
      const r = await q(qs);
      assert.equal(r.status, 400, `${qs}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.code, 'invalid_input');
      assert.match(r.json.error.message, new RegExp(`\\b${param}\\b`), qs);
    }
    // Far-future bounds are fine: clamped, not an overflow.
    for (const qs of ['until=2300-01-01T00:00:00Z', 'since=2300-01-01T00:00:00Z', 'before=9223372036854775807']) {
      const r = await q(qs);
      assert.equal(r.status, 200, `${qs}: ${JSON.stringify(r.json)}`);
    }
    const cli = await h.cli(['logs', 'priv', '--since', '99999999999999999999d']);
    assert.equal(cli.code, 2, cli.stderr);
    assert.match(cli.stderr, /since/);
  });
});
