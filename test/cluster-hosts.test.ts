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
import { startTestHosts, type TestHosts } from './helpers/swarm-hosts.ts';

let th: TestHosts;
let engine: DockerEngine;

before(async () => {
  th = await startTestHosts(3);
  engine = new DockerEngine({ socketPath: th.manager, logger: silentLogger, hostName: 'th1' });
});

after(async () => {
  await th?.down();
});

test('test hosts: three engines, one Swarm, set up within the budget; the plain engine stays one-host', async () => {
  assert.ok(th.setupS < 60, `setup took ${th.setupS} s`);
  assert.equal(await engine.clusterMode(), 'swarm');
  const hosts = await engine.hosts();
  assert.deepEqual(hosts.map((h) => [h.name, h.address, h.state, h.role, h.pool]).sort(), [
    ['th1', '10.77.0.11', 'ready', 'manager', 'default'],
    ['th2', '10.77.0.12', 'ready', 'worker', 'default'],
    ['th3', '10.77.0.13', 'ready', 'worker', 'default'],
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
  const a = await engine.labelHost('th2', { 'io.berth.pool': 'a', zone: 'z1' });
  assert.equal(a.pool, 'a');
  assert.equal(a.labels.zone, 'z1');
  const cleared = await engine.labelHost(a.id, { zone: null });
  assert.deepEqual(cleared.labels, { 'io.berth.pool': 'a' });
  assert.equal((await engine.drainHost('th2', true)).state, 'draining');
  assert.equal((await engine.hosts()).find((h) => h.name === 'th2')?.state, 'draining');
  assert.equal((await engine.drainHost('th2', false)).state, 'ready');
  await assert.rejects(engine.drainHost('nosuch', true), NotFound);
  await assert.rejects(engine.removeHost('th3', { force: false }), (e: unknown) => e instanceof Conflict && /drain it first/.test(e.message));

  const worker = new DockerEngine({ socketPath: th.hosts[1]!.socket, logger: silentLogger, hostName: 'th2' });
  await assert.rejects(worker.hosts(), (e: unknown) => e instanceof Conflict && /Swarm worker: point Berth at a manager/.test(e.message));
});

test('a host that dies is down with the engine\'s reason, returns ready, and can be removed once down', async () => {
  await th.kill(3);
  const down = await waitFor(async () => (await engine.hosts()).find((h) => h.name === 'th3' && h.state === 'down'), { timeoutMs: 60_000, intervalMs: 250, what: 'th3 reported down' });
  assert.ok(down.message, 'a down host says why');
  await th.revive(3);
  await waitFor(async () => (await engine.hosts()).find((h) => h.name === 'th3' && h.state === 'ready'), { timeoutMs: 60_000, intervalMs: 250, what: 'th3 ready again' });

  await th.kill(3);
  await waitFor(async () => (await engine.hosts()).find((h) => h.name === 'th3' && h.state === 'down'), { timeoutMs: 60_000, intervalMs: 250, what: 'th3 down again' });
  await engine.removeHost('th3', { force: false });
  assert.deepEqual((await engine.hosts()).map((h) => h.name).sort(), ['th1', 'th2']);
  await assert.rejects(engine.removeHost('th1', { force: false }), Conflict);
});
