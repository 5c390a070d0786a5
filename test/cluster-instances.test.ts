/**
 * Instances on a real Swarm (issue 13): the containers role in cluster mode (engine/docker/
 * swarm-containers.ts: one Swarm service per instance) on four test hosts, th1..th3 in pool a and th4
 * in pool b. Prints the figures docs/DESIGN.md records (deploy time, Swarm API calls, loss detection).
 */
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { after, before, test } from 'node:test';
import Docker from 'dockerode';
import { LABEL, type ContainerSpec } from '../src/core/ports.ts';
import { SwarmContainers } from '../src/engine/docker/swarm-containers.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { startTestHosts, type TestHosts } from './helpers/swarm-hosts.ts';

let th: TestHosts;
/** Host i's name and address (1-based): th1/10.77.0.11 in slot 0 (scripts/testhosts.sh BERTH_TESTHOSTS_SLOT). */
const hn = (i: number): string => th.hosts[i - 1]!.name;
const ad = (i: number): string => th.hosts[i - 1]!.address;
let swarm: SwarmContainers;
let imageId: string;
const GIB = 1024 ** 3;

before(async () => {
  // Hosts die here: the Swarm marks one down after ~3 heartbeats (2 s each, not 5).
  th = await startTestHosts(4, { heartbeatS: 2 });
  for (const [i, pool] of [[1, 'a'], [2, 'a'], [3, 'a'], [4, 'b']] as const) await th.docker(1, 'node', 'update', '--label-add', `io.berth.pool=${pool}`, hn(i));
  swarm = new SwarmContainers(new Docker({ socketPath: th.manager }), th.manager, hn(1), { logMaxSize: '1m', logMaxFile: 2 });
  imageId = (await th.docker(1, 'image', 'inspect', '-f', '{{.Id}}', 'berth/busybox')).trim();
});

after(async () => {
  await th?.down();
});

const spec = (name: string, port: number, pool: string): ContainerSpec => ({
  name, image: imageId, labels: { [LABEL.managed]: 'true', [LABEL.cluster]: 'ctest', [LABEL.app]: 'shop', [LABEL.service]: name.replace(/-\d+$/, '') },
  env: { PORT: String(port) }, cmd: ['httpd', '-f', '-p', String(port), '-h', '/'], mounts: [], stopTimeoutS: 2,
  placement: { pool, constraints: [], spread: [], reservation: { nanoCpus: 0.1e9, memoryBytes: GIB / 16 } },
});

function status(address: string, port: number): Promise<number> {
  return new Promise((res) => {
    const req = get({ host: address, port, path: '/', timeout: 2000 }, (r) => {
      r.resume();
      res(r.statusCode ?? 0);
    });
    req.on('error', () => res(0));
    req.on('timeout', () => req.destroy());
  });
}

test('six instances of pool a spread 2/2/2 over its three hosts and answer on hostAddress:port; pool b stays on th4', async () => {
  const t0 = Date.now();
  swarm.calls = 0;
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push(await swarm.create(spec(`web-${i}`, 19701 + i, 'a')));
  for (const id of ids) await swarm.start(id);
  const infos = await waitFor(async () => {
    const all = await swarm.list({ [LABEL.cluster]: 'ctest', [LABEL.service]: 'web' });
    return all.length === 6 && all.every((c) => c.running) ? all : undefined;
  }, { timeoutMs: 90_000, intervalMs: 200, what: 'six instances running' });
  const deployMs = Date.now() - t0;
  const tally: Record<string, number> = {};
  for (const c of infos) tally[c.host] = (tally[c.host] ?? 0) + 1;
  assert.deepEqual(tally, { [hn(1)]: 2, [hn(2)]: 2, [hn(3)]: 2 });
  for (const c of infos) {
    const port = 19701 + Number(c.name.split('-')[1]);
    assert.match(c.hostAddress ?? '', new RegExp(`^(${[1, 2, 3].map((i) => ad(i).replace(/\./g, '\\.')).join('|')})$`));
    assert.notEqual(await waitFor(async () => (await status(c.hostAddress!, port)) || undefined, { timeoutMs: 10_000, intervalMs: 100, what: `${c.name} answering` }), 0);
  }
  console.log(`# figures: 6 instances created+started+running in ${deployMs} ms with ${swarm.calls} Swarm API calls (incl. polling)`);

  const b = [await swarm.create(spec('db-0', 19711, 'b')), await swarm.create(spec('db-1', 19712, 'b'))];
  for (const id of b) await swarm.start(id);
  const dbs = await waitFor(async () => {
    const all = await swarm.list({ [LABEL.cluster]: 'ctest', [LABEL.service]: 'db' });
    return all.length === 2 && all.every((c) => c.running) ? all : undefined;
  }, { timeoutMs: 60_000, intervalMs: 200, what: 'pool b running' });
  assert.deepEqual(dbs.map((c) => c.host), [hn(4), hn(4)]);

  // Stop, then remove: the instance is gone from the engine.
  await swarm.stop(ids[0]!, 2);
  await waitFor(async () => (await swarm.inspect(ids[0]!))?.state === 'exited', { timeoutMs: 30_000, intervalMs: 200, what: 'web-0 exited' });
  await swarm.remove(ids[0]!);
  await swarm.remove(ids[0]!); // missing: fine
  assert.equal(await swarm.inspect(ids[0]!), undefined);
  await assert.rejects(swarm.kill(ids[1]!, 'SIGHUP'), /cannot send SIGHUP .* in cluster mode/);
});

test('a host that dies: its instances are lost as soon as the Swarm marks it down (figure: detection time)', async () => {
  const before = await swarm.list({ [LABEL.cluster]: 'ctest', [LABEL.service]: 'web' });
  // A worker (th1 is the manager Berth talks to) with two instances still (web-0 was removed above).
  const victim = before.filter((c) => c.host === hn(2)).length === 2 ? 2 : 3;
  const onTh2 = before.filter((c) => c.host === hn(victim)).map((c) => c.id);
  assert.equal(onTh2.length, 2);
  const t0 = Date.now();
  await th.kill(victim);
  await waitFor(async () => {
    const now = await swarm.list({ [LABEL.cluster]: 'ctest', [LABEL.service]: 'web' });
    return onTh2.every((id) => now.find((c) => c.id === id)?.state === 'lost');
  }, { timeoutMs: 60_000, intervalMs: 250, what: 'the dead host\'s instances lost' });
  console.log(`# figures: host loss detected (instances lost) after ${Date.now() - t0} ms`);
  // Restart policy none: Swarm does not run them elsewhere by itself; Berth replaces them.
  const others = (await swarm.list({ [LABEL.cluster]: 'ctest', [LABEL.service]: 'web' })).filter((c) => !onTh2.includes(c.id));
  assert.ok(others.every((c) => c.running && c.host !== hn(victim)));
});
