import assert from 'node:assert/strict';
import { test } from 'node:test';
import type Docker from 'dockerode';
import { EngineUnavailable, InvalidInput } from '../../core/errors.ts';
import { createLogger } from '../../lib/logger.ts';
import { HostEngines, SwarmDataPlane, endpointUrl, engineEndpoint, withHostEngines } from './host-engines.ts';
import type { SwarmNode } from './docker-hosts.ts';

const node = (o: { labels?: Record<string, string>; addr?: string; manager?: string; state?: string; message?: string } = {}): SwarmNode => ({
  ID: 'n1abcdef', Version: { Index: 1 }, Spec: { Labels: o.labels ?? {} }, Description: { Hostname: 'h1' },
  Status: { State: o.state ?? 'ready', ...(o.message ? { Message: o.message } : {}), ...(o.addr !== undefined ? { Addr: o.addr } : {}) },
  ...(o.manager ? { ManagerStatus: { Addr: o.manager } } : {}),
});

test('engine endpoint: the io.berth.engine label wins, else the Swarm address on 2376', () => {
  assert.deepEqual(engineEndpoint(node({ addr: '10.0.0.5' })), { host: '10.0.0.5', port: 2376 });
  // A manager that advertises 0.0.0.0 as its node address: its manager address, without the Raft port.
  assert.deepEqual(engineEndpoint(node({ addr: '0.0.0.0', manager: '10.0.0.6:2377' })), { host: '10.0.0.6', port: 2376 });
  assert.deepEqual(engineEndpoint(node({ addr: '10.0.0.5', labels: { 'io.berth.engine': '192.168.1.9:12376' } })), { host: '192.168.1.9', port: 12376 });
  assert.deepEqual(engineEndpoint(node({ labels: { 'io.berth.engine': 'h1.internal' } })), { host: 'h1.internal', port: 2376 });
  assert.deepEqual(engineEndpoint(node({ labels: { 'io.berth.engine': '[fd00::5]:2376' } })), { host: 'fd00::5', port: 2376 });
  assert.equal(endpointUrl({ host: 'fd00::5', port: 2376 }), 'tcp://[fd00::5]:2376');
  assert.equal(endpointUrl({ host: '10.0.0.5', port: 2376 }), 'tcp://10.0.0.5:2376');
  assert.equal(engineEndpoint(node({ addr: '0.0.0.0' })), undefined);
  for (const bad of ['10.0.0.5:99999', 'a b', 'tcp://10.0.0.5:2376', '[10.0.0.5]:2376', '10.0.0.5:', ':2376']) {
    assert.throws(() => engineEndpoint(node({ labels: { 'io.berth.engine': bad } })), (e: unknown) => {
      assert.ok(e instanceof InvalidInput);
      assert.match((e as Error).message, /host h1: label io\.berth\.engine=".*" is not HOST\[:PORT\]/);
      return true;
    }, bad);
  }
});

const tls = { ca: 'x', cert: 'x', key: 'x' };
const logger = createLogger('silent');

test('a node the Swarm reports down is not dialled: EngineUnavailable naming it, and its health is down', () => {
  const engines = new HostEngines({ tls, logger, now: () => 1000 });
  assert.throws(() => engines.forNode(node({ addr: '10.0.0.5', state: 'down', message: 'heartbeat failure' })), (e: unknown) => {
    assert.ok(e instanceof EngineUnavailable);
    assert.match((e as Error).message, /host h1 is down \(heartbeat failure\): its engine at tcp:\/\/10\.0\.0\.5:2376 is not asked/);
    return true;
  });
  assert.deepEqual(engines.health().map((h) => [h.host, h.up, h.endpoint, h.at]), [['h1', false, 'tcp://10.0.0.5:2376', 1000]]);
  assert.throws(() => engines.forNode(node({ addr: '0.0.0.0' })), /no address the control plane can reach its engine on: label it io\.berth\.engine=ADDR\[:PORT\]/);
  // One client per node and endpoint: reused, and replaced when the endpoint changes.
  const a = engines.forNode(node({ addr: '10.0.0.5' })).engine;
  assert.equal(engines.forNode(node({ addr: '10.0.0.5' })).engine, a);
  assert.notEqual(engines.forNode(node({ addr: '10.0.0.7' })).engine, a);
});

test('withHostEngines: SIGKILL stays the containers role\'s (scale to 0), other signals, logs, stats and exec go to the host', async () => {
  const calls: string[] = [];
  const base = { hostName: 'm', kill: async (id: string, s: string) => void calls.push(`base ${id} ${s}`), inspect: async () => undefined };
  const dp = Object.assign(Object.create(SwarmDataPlane.prototype) as SwarmDataPlane, {
    kill: async (id: string, s: string) => void calls.push(`host ${id} ${s}`),
    stats: async () => undefined, exec: async () => ({ exitCode: 0 }), logs: async () => undefined,
  });
  const e = withHostEngines(base, dp);
  await e.kill('s1', 'SIGKILL');
  await e.kill('s1', 'KILL');
  await e.kill('s1', 'SIGHUP');
  await e.kill('s1', 'SIGUSR1');
  assert.deepEqual(calls, ['base s1 SIGKILL', 'base s1 KILL', 'host s1 SIGHUP', 'host s1 SIGUSR1']);
  assert.equal(e.hostName, 'm');
  assert.equal(await e.inspect(), undefined);
});

test('the data plane finds the latest task with a container and its node; no running task: nothing to signal, exec refused', async () => {
  const tasks = [
    { ID: 't2', NodeID: 'n2', CreatedAt: '2026-01-01T00:00:02Z', Status: { State: 'shutdown', ContainerStatus: { ContainerID: 'c2' } } },
    { ID: 't1', NodeID: 'n1', CreatedAt: '2026-01-01T00:00:01Z', Status: { State: 'complete', ContainerStatus: { ContainerID: 'c1' } } },
  ];
  const manager = { listTasks: async () => tasks, listNodes: async () => [] } as unknown as Docker;
  const dp = new SwarmDataPlane(manager, 'mgr', new HostEngines({ tls, logger }));
  await dp.kill('svc', 'SIGHUP'); // nothing runs: fine
  await assert.rejects(dp.exec('svc', ['true'], { stdout: () => {}, stderr: () => {} }), /has no running container to exec in/);
  // The latest task's node left the Swarm: a clear error, not a crash.
  await assert.rejects(dp.stats('svc'), /the node of instance svc is no longer in the Swarm/);
});
