/**
 * Many hosts on a real Swarm (issue 13): three test hosts (network namespaces with a dockerd each,
 * test/helpers/swarm-hosts.ts), the engine's hosts role against the manager's API.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Conflict, NotFound } from '../src/core/errors.ts';
import { DockerEngine } from '../src/engine/docker/index.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { Harness } from './helpers/harness.ts';
import { startTestHosts, type TestHosts } from './helpers/swarm-hosts.ts';

let th: TestHosts;
/** Host i's name and address (1-based): th1/10.77.0.11 in slot 0 (scripts/testhosts.sh BERTH_TESTHOSTS_SLOT). */
const hn = (i: number): string => th.hosts[i - 1]!.name;
const ad = (i: number): string => th.hosts[i - 1]!.address;
let engine: DockerEngine;
let h: Harness | undefined;

before(async () => {
  // Hosts die here: the Swarm marks one down after ~3 heartbeats (2 s each, not 5).
  th = await startTestHosts(3, { heartbeatS: 2 });
  engine = new DockerEngine({ socketPath: th.manager, logger: silentLogger, hostName: hn(1) });
});

after(async () => {
  // The server and its local leftovers, and the test hosts: independent, so both at once.
  await Promise.all([h?.cleanup(), th?.down()]);
});

test('test hosts: three engines, one Swarm, set up within the budget; the plain engine stays one-host', async () => {
  assert.ok(th.setupS < 60, `setup took ${th.setupS} s`);
  assert.equal(await engine.clusterMode(), 'swarm');
  const hosts = await engine.hosts();
  assert.deepEqual(hosts.map((h) => [h.name, h.address, h.state, h.role, h.pool]).sort(), [
    [hn(1), ad(1), 'ready', 'manager', 'default'],
    [hn(2), ad(2), 'ready', 'worker', 'default'],
    [hn(3), ad(3), 'ready', 'worker', 'default'],
  ]);
  for (const h of hosts) {
    assert.ok(h.capacity.nanoCpus >= 1e9, `${h.name} reports its CPUs`);
    assert.ok(h.capacity.memoryBytes > 256 * 1024 ** 2, `${h.name} reports its memory`);
  }
  // Each host has the base images (loaded by the harness) under the same ids: releases run images by id.
  const ids = await Promise.all([1, 2, 3].map(async (i) => (await th.docker(i, 'image', 'inspect', '-f', '{{.Id}}', 'berth/busybox')).trim()));
  assert.equal(new Set(ids).size, 1);

  const plain = new DockerEngine({ logger: silentLogger, hostName: 'solo' });
  assert.equal(await plain.clusterMode(), 'single');
  const [solo] = await plain.hosts();
  assert.equal(solo?.name, 'solo');
  assert.equal(solo?.state, 'ready');
  await assert.rejects(plain.labelHost('solo', { zone: 'a' }), (e: unknown) => e instanceof Conflict && /berth cluster init/.test(e.message));
});

test('labels make pools; drain and activate; unknown hosts are not found; a worker engine says to use a manager', async () => {
  const a = await engine.labelHost(hn(2), { 'io.berth.pool': 'a', zone: 'z1' });
  assert.equal(a.pool, 'a');
  assert.equal(a.labels.zone, 'z1');
  const cleared = await engine.labelHost(a.id, { zone: null });
  assert.deepEqual(cleared.labels, { 'io.berth.pool': 'a' });
  assert.equal((await engine.drainHost(hn(2), true)).state, 'draining');
  assert.equal((await engine.hosts()).find((h) => h.name === hn(2))?.state, 'draining');
  assert.equal((await engine.drainHost(hn(2), false)).state, 'ready');
  await assert.rejects(engine.drainHost('nosuch', true), NotFound);
  await assert.rejects(engine.removeHost(hn(3), { force: false }), (e: unknown) => e instanceof Conflict && /drain it first/.test(e.message));

  const worker = new DockerEngine({ socketPath: th.hosts[1]!.socket, logger: silentLogger, hostName: hn(2) });
  await assert.rejects(worker.hosts(), (e: unknown) => e instanceof Conflict && /Swarm worker: point Berth at a manager/.test(e.message));
});

/** The newest event of this kind about this host after event `afterId` (waits for the server's host monitor, which reads the hosts every 5 s). */
async function hostEvent(kind: string, host: string, says = '', afterId = 0): Promise<{ id: number; message: string }> {
  return waitFor(async () => {
    const events = (await h!.api('GET', '/v1/events?limit=500')).json.events as { id: number; kind: string; message: string }[];
    return events.filter((e) => e.id > afterId && e.kind === kind && e.message.startsWith(`host ${host} (`) && e.message.includes(says)).at(-1);
  }, { timeoutMs: 20_000, intervalMs: 250, what: `a ${kind} event of ${host}` });
}

test('berth hosts / host label / drain / add / rm on a server whose engine is the Swarm manager; errors exit 2, 3, 4', async () => {
  h = await Harness.create({ portRange: '19700-19799', env: { BERTH_DOCKER_SOCKET: th.manager } });
  await h.startServer();
  const list = await h.cli(['--json', 'hosts']);
  assert.equal(list.code, 0, list.stderr);
  const doc = JSON.parse(list.stdout);
  assert.equal(doc.mode, 'swarm');
  assert.deepEqual(doc.hosts.map((x: { name: string }) => x.name).sort(), [hn(1), hn(2), hn(3)]);
  const human = await h.cli(['hosts']);
  assert.match(human.stdout, /^HOST\s+ADDRESS\s+POOL\s+STATE/m);
  assert.match(human.stdout, new RegExp(`^${hn(2)}\\s+${ad(2).replace(/\./g, '\\.')}\\s+\\S+\\s+ready`, 'm'));

  const lab = await h.cli(['host', 'label', hn(3), 'io.berth.pool=b', 'rack=r1']);
  assert.equal(lab.code, 0, lab.stderr);
  assert.match(lab.stdout, new RegExp(`${hn(3)}: pool b, labels io\\.berth\\.pool=b rack=r1`));
  assert.equal((await h.cli(['host', 'label', hn(3), 'rack-'])).code, 0);
  assert.deepEqual((await engine.hosts()).find((x) => x.name === hn(3))?.labels, { 'io.berth.pool': 'b' });
  const bad = await h.cli(['host', 'label', hn(3), 'rack']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /KEY=VALUE to set a label or KEY- to remove one/);
  const badPool = await h.cli(['host', 'label', hn(3), 'io.berth.pool=Team A']);
  assert.equal(badPool.code, 2);
  assert.match(badPool.stderr, /a pool name/);
  assert.equal((await h.cli(['host', 'drain', 'nosuch'])).code, 3);

  const drain = await h.cli(['host', 'drain', hn(3)]);
  assert.equal(drain.code, 0, drain.stderr);
  assert.match(drain.stdout, new RegExp(`${hn(3)} is draining`));
  assert.match(await th.docker(1, 'node', 'inspect', '-f', '{{.Spec.Availability}}', hn(3)), /pause/);
  // The timeline says so (the server's host monitor), and that it is ready again after the undo.
  const draining = await hostEvent('host.draining', hn(3));
  assert.match((await h.cli(['host', 'drain', hn(3), '--undo'])).stdout, new RegExp(`${hn(3)} is ready`));
  await hostEvent('host.ready', hn(3), 'is ready', draining.id);
  const rm = await h.cli(['host', 'rm', hn(3)]);
  assert.equal(rm.code, 4);
  assert.match(rm.stderr, /drain it first/);

  const add = await h.cli(['host', 'add', '--pool', 'b']);
  assert.equal(add.code, 0, add.stderr);
  const token = (await th.docker(1, 'swarm', 'join-token', '-q', 'worker')).trim();
  assert.ok(add.stdout.includes(`docker swarm join --token ${token} ${ad(1)}:2377`), add.stdout);
  assert.match(add.stdout, /berth host label HOSTNAME io\.berth\.pool=b/);
  const init = await h.cli(['cluster', 'init', '--advertise-addr', ad(1)]);
  assert.equal(init.code, 4);
  assert.match(init.stderr, /in a Swarm already/);
  for (const verb of [['hosts'], ['host', 'add'], ['host', 'label'], ['host', 'drain'], ['host', 'rm'], ['cluster', 'init']]) {
    const help = await h.cli([...verb, '--help']);
    assert.equal(help.code, 0, `${verb.join(' ')} --help`);
  }
});

test('a host that dies is down with the engine\'s reason, returns ready, and can be removed once down', async () => {
  await th.kill(3);
  const down = await waitFor(async () => (await engine.hosts()).find((h) => h.name === hn(3) && h.state === 'down'), { timeoutMs: 60_000, intervalMs: 250, what: 'th3 reported down' });
  assert.ok(down.message, 'a down host says why');
  // The server (started by the previous test) puts it on the timeline.
  let ev: { id: number; kind: string; message: string } | undefined;
  if (h) {
    ev = await waitFor(async () => {
      const r = await h!.api('GET', '/v1/events');
      return (r.json.events as { id: number; kind: string; message: string }[]).find((e) => e.kind === 'host.down');
    }, { timeoutMs: 20_000, intervalMs: 250, what: 'a host.down event' });
    assert.match(ev.message, new RegExp(`^host ${hn(3)} \\(${ad(3).replace(/\./g, '\\.')}, pool b\\) is down`));
  }
  await th.revive(3);
  await waitFor(async () => (await engine.hosts()).find((h) => h.name === hn(3) && h.state === 'ready'), { timeoutMs: 60_000, intervalMs: 250, what: 'th3 ready again' });
  // A host.ready event after the host.down one (the drain test's earlier host.ready does not count).
  if (h) assert.match((await hostEvent('host.ready', hn(3), '', ev!.id)).message, /is ready/);

  await th.kill(3);
  await waitFor(async () => (await engine.hosts()).find((h) => h.name === hn(3) && h.state === 'down'), { timeoutMs: 60_000, intervalMs: 250, what: 'th3 down again' });
  await engine.removeHost(hn(3), { force: false });
  assert.deepEqual((await engine.hosts()).map((h) => h.name).sort(), [hn(1), hn(2)]);
  await assert.rejects(engine.removeHost(hn(1), { force: false }), Conflict);
});
