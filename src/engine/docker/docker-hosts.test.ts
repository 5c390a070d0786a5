import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeInfo, type SwarmTask } from './docker-hosts.ts';

const node = (over: Record<string, unknown> = {}): Parameters<typeof nodeInfo>[0] => ({
  ID: 'n1',
  Version: { Index: 7 },
  Spec: { Labels: { 'io.berth.pool': 'a', zone: 'z1' }, Role: 'worker', Availability: 'active' },
  Description: { Hostname: 'h1', Resources: { NanoCPUs: 2e9, MemoryBytes: 4e9 } },
  Status: { State: 'ready', Addr: '10.77.0.11' },
  ...over,
});

test('a Swarm node as a host: pool, state, capacity, reservations of Berth tasks only', () => {
  const tasks: SwarmTask[] = [
    { NodeID: 'n1', DesiredState: 'running', Spec: { Resources: { Reservations: { NanoCPUs: 5e8, MemoryBytes: 1e9 } }, ContainerSpec: { Labels: { 'io.berth.managed': 'true' } } } },
    { NodeID: 'n1', DesiredState: 'shutdown', Spec: { Resources: { Reservations: { NanoCPUs: 5e8 } }, ContainerSpec: { Labels: { 'io.berth.managed': 'true' } } } },
    { NodeID: 'n1', DesiredState: 'running', Spec: { Resources: { Reservations: { NanoCPUs: 1e9 } }, ContainerSpec: { Labels: {} } } },
    { NodeID: 'n2', DesiredState: 'running', Spec: { ContainerSpec: { Labels: { 'io.berth.managed': 'true' } } } },
  ];
  const h = nodeInfo(node(), tasks);
  assert.deepEqual(h, {
    id: 'n1', name: 'h1', address: '10.77.0.11', role: 'worker', pool: 'a', labels: { 'io.berth.pool': 'a', zone: 'z1' }, state: 'ready',
    capacity: { nanoCpus: 2e9, memoryBytes: 4e9 }, reserved: { nanoCpus: 5e8, memoryBytes: 1e9 }, instances: 1,
  });
});

test('node states: paused or drained is draining, not ready is down with the reason; a manager at 0.0.0.0 uses its manager address', () => {
  assert.equal(nodeInfo(node({ Spec: { Availability: 'pause' } }), []).state, 'draining');
  assert.equal(nodeInfo(node({ Spec: { Availability: 'drain' } }), []).pool, 'default');
  const down = nodeInfo(node({ Status: { State: 'down', Message: 'heartbeat failure', Addr: '10.77.0.11' } }), []);
  assert.equal(down.state, 'down');
  assert.equal(down.message, 'heartbeat failure');
  const mgr = nodeInfo(node({ Spec: { Role: 'manager' }, Status: { State: 'ready', Addr: '0.0.0.0' }, ManagerStatus: { Addr: '10.77.0.10:2377' } }), []);
  assert.equal(mgr.address, '10.77.0.10');
  assert.equal(mgr.role, 'manager');
});
