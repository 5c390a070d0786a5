/**
 * Stateful services end to end (real Docker): a service with a named volume keeps its data across
 * releases and a server crash; its releases stop the old container before starting the new one (and
 * deploy and status say so); `berth volumes` lists the volume with its size and users; `berth rm
 * --purge` removes it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../src/lib/backoff.ts';
import { Harness, docker } from './helpers/harness.ts';

const APP = 'stateful-e2e';
const VOLUME = `berth_${APP}_prod_data`;
/** Each container notes its start and its stop in the volume: the log shows whether two ever overlapped. */
const compose = (version: string) => `
name: ${APP}
services:
  db:
    image: berth/busybox
    environment:
      VERSION: "${version}"
    command: ["sh", "-c", "trap 'echo stop $$VERSION >> /data/log; exit 0' TERM; echo start $$VERSION >> /data/log; sleep 100000 & wait $$!"]
    stop_grace_period: 5s
    volumes:
      - data:/data
volumes:
  data: {}
`;

describe('stateful services', () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    h = await Harness.create({ portRange: '19500-19599' });
    await h.startServer();
    dir = await mkdtemp(join(tmpdir(), 'berth-volumes-'));
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-8000));
    await h.cleanup();
    await docker('volume', 'rm', '-f', VOLUME).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  const deploy = async (version: string) => {
    const file = join(dir, 'compose.yaml');
    await writeFile(file, compose(version));
    return h.cli(['deploy', '-f', file], { timeoutMs: 180_000 });
  };
  const running = async () => (await h.containers(APP)).filter((c) => c.running);
  const read = async (path: string) => (await docker('exec', (await running())[0]!.id, 'cat', path)).trim();

  test('deploy says releases stop first; the data written survives a new release, which never overlaps the old one', async () => {
    const first = await deploy('1');
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /services\.db\.volumes: stateful: releases stop the old container before starting the new one/);
    const st = (await h.status(APP)).services[0];
    assert.equal(st.strategy, 'recreate');
    assert.match(st.strategyReason, /keeps data in volume data/);
    const human = await h.cli(['status', APP]);
    assert.match(human.stdout, /prod\/db: releases stop the old container first: it keeps data in volume data/);
    const [before] = await running();
    await docker('exec', before!.id, 'sh', '-c', 'echo precious > /data/value');

    const second = await deploy('2');
    assert.equal(second.code, 0, second.stderr);
    const now = await running();
    assert.equal(now.length, 1);
    assert.notEqual(now[0]!.id, before!.id, 'a new container');
    assert.equal(await read('/data/value'), 'precious');
    assert.deepEqual((await read('/data/log')).split('\n'), ['start 1', 'stop 1', 'start 2'], 'the old container stopped before the new one started');
  });

  test('the data survives a server crash; the container is adopted, not restarted', async () => {
    const before = await running();
    await h.killServer('SIGKILL');
    await h.startServer();
    const after = await running();
    assert.deepEqual(after.map((c) => [c.id, c.startedAt]), before.map((c) => [c.id, c.startedAt]));
    assert.equal(await read('/data/value'), 'precious');
    // And a restart of the service (a release) keeps it too.
    const r = await h.cli(['restart', APP], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await read('/data/value'), 'precious');
  });

  test('berth volumes lists the volume with its size and users (--json and table); unknown apps are a 404 with a did-you-mean', async () => {
    const j = await h.cli(['--json', 'volumes', APP]);
    assert.equal(j.code, 0, j.stderr);
    const { volumes } = JSON.parse(j.stdout);
    assert.equal(volumes.length, 1);
    const v = volumes[0];
    assert.deepEqual([v.app, v.env, v.name, v.volume, v.exists], [APP, 'prod', 'data', VOLUME, true]);
    assert.ok(v.sizeBytes > 0, `size ${v.sizeBytes}`);
    assert.deepEqual(v.services, [{ service: 'db', target: '/data', readOnly: false }]);
    assert.equal(v.containers.length, 1);
    assert.equal(v.containers[0].state, 'running');
    assert.equal(v.containers[0].containerId, (await running())[0]!.id);
    const t = await h.cli(['volumes']);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, new RegExp(`${APP}\\s+prod\\s+data\\s+[\\d.]+ kB\\s+db:/data\\s+\\S+\\(db#\\d+\\)\\s+${VOLUME}`));
    const bad = await h.cli(['volumes', 'stateful-e2', '--json']);
    assert.equal(bad.code, 3, bad.stdout + bad.stderr);
    assert.match(JSON.parse(bad.stdout.trim() || bad.stderr).error.message, /no app "stateful-e2": did you mean "stateful-e2e"\?/);
  });

  test('rm --purge removes the volume', async () => {
    const r = await h.cli(['rm', APP, '--purge'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await waitFor(async () => (await docker('volume', 'ls', '-q', '--filter', `name=^${VOLUME}$`)).trim() === '',
      { timeoutMs: 60_000, intervalMs: 200, what: `volume ${VOLUME} to be removed` });
  });
});
