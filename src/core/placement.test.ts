import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidInput } from './errors.ts';
import { formatResources, parseConstraint, planPlacement, poolOf, satisfies, type PlacementRequest } from './placement.ts';
import type { HostInfo, Placement } from './ports.ts';

const GIB = 1024 ** 3;
const host = (name: string, over: Partial<HostInfo> = {}): HostInfo => ({
  id: `id-${name}`,
  name,
  address: `10.0.0.${name.slice(1)}`,
  role: 'worker',
  pool: 'a',
  labels: { 'io.berth.pool': 'a' },
  state: 'ready',
  capacity: { nanoCpus: 2e9, memoryBytes: 4 * GIB },
  reserved: { nanoCpus: 0, memoryBytes: 0 },
  instances: 0,
  ...over,
});
const placement = (over: Partial<Placement> = {}): Placement => ({
  pool: 'a',
  constraints: [],
  spread: [],
  reservation: { nanoCpus: 0.5e9, memoryBytes: 512 * 1024 ** 2 },
  ...over,
});
const req = (count: number, over: Partial<Placement> = {}, existing?: Record<string, number>): PlacementRequest => ({ name: 'web', placement: placement(over), count, existing });
const tally = (names: string[]): Record<string, number> => names.reduce<Record<string, number>>((m, n) => ({ ...m, [n]: (m[n] ?? 0) + 1 }), {});

test('six replicas over three hosts of the pool spread 2/2/2; other pools and non-ready hosts get none', () => {
  const hosts = [host('h1'), host('h2'), host('h3'), host('h4', { pool: 'b' }), host('h5', { state: 'draining' }), host('h6', { state: 'down' })];
  const r = planPlacement(hosts, [req(6)]);
  assert.ok(r.ok);
  assert.deepEqual(tally(r.hosts[0]!), { h1: 2, h2: 2, h3: 2 });
});

test('spread counts instances already running, and prefers the host with the most free memory on a tie', () => {
  const hosts = [host('h1'), host('h2', { reserved: { nanoCpus: 0, memoryBytes: GIB } }), host('h3')];
  const r = planPlacement(hosts, [req(2, {}, { h1: 1 })]);
  assert.ok(r.ok);
  assert.deepEqual(r.hosts[0]!.sort(), ['h2', 'h3']);
  const tie = planPlacement(hosts, [req(1)]);
  assert.ok(tie.ok);
  assert.equal(tie.hosts[0]![0], 'h1');
});

test('on a tie of the service\'s own spread, the host with the fewest instances of all services wins (before free memory), as Swarm spreads', () => {
  const hosts = [host('h1', { instances: 5 }), host('h2', { instances: 1, reserved: { nanoCpus: 0, memoryBytes: GIB } }), host('h3', { instances: 3 })];
  const one = planPlacement(hosts, [req(1)]);
  assert.ok(one.ok);
  assert.equal(one.hosts[0]![0], 'h2');
  // Fifty services of 10 replicas without reservations over 100 hosts: every host gets 5, not the first ten hosts 50 each.
  const many = Array.from({ length: 100 }, (_, i) => host(`h${i + 1}`));
  const r = planPlacement(many, Array.from({ length: 50 }, () => req(10, { reservation: { nanoCpus: 0, memoryBytes: 0 } })));
  assert.ok(r.ok);
  const perHost = Object.values(tally(r.hosts.flat()));
  assert.deepEqual([perHost.length, Math.min(...perHost), Math.max(...perHost)], [100, 5, 5]);
  for (const placed of r.hosts) assert.equal(new Set(placed).size, 10, 'each service still spreads its own replicas');
});

test('spread over a zone label first, then over hosts', () => {
  const z = (name: string, zone: string): HostInfo => host(name, { labels: { 'io.berth.pool': 'a', zone } });
  const hosts = [z('h1', 'x'), z('h2', 'x'), z('h3', 'y')];
  const r = planPlacement(hosts, [req(4, { spread: ['node.labels.zone'] })]);
  assert.ok(r.ok);
  const t = tally(r.hosts[0]!);
  assert.equal(t.h3, 2, 'zone y holds half the replicas');
  assert.equal((t.h1 ?? 0) + (t.h2 ?? 0), 2);
});

test('constraints and max_replicas_per_node are honoured', () => {
  const hosts = [host('h1', { labels: { 'io.berth.pool': 'a', disk: 'ssd' } }), host('h2'), host('h3', { role: 'manager' })];
  const ssd = planPlacement(hosts, [req(2, { constraints: ['node.labels.disk==ssd'] })]);
  assert.ok(ssd.ok);
  assert.deepEqual(ssd.hosts[0], ['h1', 'h1']);
  const notMgr = planPlacement(hosts, [req(4, { constraints: ['node.role != manager'] })]);
  assert.ok(notMgr.ok);
  assert.deepEqual(tally(notMgr.hosts[0]!), { h1: 2, h2: 2 });
  const max = planPlacement(hosts, [req(4, { maxReplicasPerNode: 1 })]);
  assert.equal(max.ok, false);
  assert.match(!max.ok ? max.reason : '', /at most 1 of web per host/);
  const none = planPlacement(hosts, [req(1, { constraints: ['node.labels.gpu==yes'] })]);
  assert.equal(none.ok, false);
  assert.match(!none.ok ? none.reason : '', /no ready host of pool a satisfies web's placement constraints node\.labels\.gpu==yes/);
});

test('a deploy that does not fit is refused naming the pool, what it asks and what is free', () => {
  const hosts = [host('h1', { reserved: { nanoCpus: 1.5e9, memoryBytes: 2 * GIB } }), host('h2', { reserved: { nanoCpus: 1.5e9, memoryBytes: 2 * GIB } }), host('h3', { reserved: { nanoCpus: 1e9, memoryBytes: 3 * GIB } })];
  const r = planPlacement(hosts, [req(3, { reservation: { nanoCpus: 1e9, memoryBytes: GIB } })]);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, 'pool a: asks 3 CPUs / 3 GiB, free 2 CPUs / 5 GiB on 3 hosts; web (1 CPU / 1 GiB each) does not fit');
});

test('requests of one pool share its capacity; a pool without hosts says how to make one', () => {
  const hosts = [host('h1', { capacity: { nanoCpus: 1e9, memoryBytes: 4 * GIB } })];
  const r = planPlacement(hosts, [req(1, { reservation: { nanoCpus: 1e9, memoryBytes: 0 } }), { name: 'worker', placement: placement({ reservation: { nanoCpus: 1e9, memoryBytes: 0 } }), count: 1 }]);
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /^pool a: asks 2 CPUs \/ 0 MiB, free 1 CPU \/ 4 GiB on 1 host; worker/);
  const b = planPlacement(hosts, [req(1, { pool: 'b' })]);
  assert.match(!b.ok ? b.reason : '', /pool b has no hosts: label one with berth host label HOST io\.berth\.pool=b/);
  const down = planPlacement([host('h1', { state: 'down' })], [req(1)]);
  assert.match(!down.ok ? down.reason : '', /pool a has no ready host \(h1 down\)/);
});

test('zero reservations fit anywhere in the pool; an empty request places nothing', () => {
  const r = planPlacement([host('h1', { capacity: { nanoCpus: 0, memoryBytes: 0 } })], [req(3, { reservation: { nanoCpus: 0, memoryBytes: 0 } }), req(0)]);
  assert.ok(r.ok);
  assert.deepEqual(r.hosts, [['h1', 'h1', 'h1'], []]);
});

test('constraints: parsing, matching and refusals', () => {
  assert.deepEqual(parseConstraint(' node.labels.zone == eu-1 '), { key: 'node.labels.zone', op: '==', value: 'eu-1' });
  for (const bad of ['zone==a', 'node.labels.zone=a', 'node.labels.zone==', 'engine.labels.x==1', '']) {
    assert.throws(() => parseConstraint(bad), (e: unknown) => e instanceof InvalidInput && /node\.labels\.NAME==VALUE/.test(e.message), bad);
  }
  const h = host('h1', { labels: { zone: 'a' } });
  assert.equal(satisfies(h, parseConstraint('node.labels.zone==a')), true);
  assert.equal(satisfies(h, parseConstraint('node.labels.rack!=r1')), true, 'a missing label is unequal');
  assert.equal(satisfies(h, parseConstraint('node.labels.rack==r1')), false);
  assert.equal(satisfies(h, parseConstraint('node.hostname==h1')), true);
  assert.equal(satisfies(h, parseConstraint('node.id!=id-h1')), false);
  assert.equal(poolOf({}), 'default');
  assert.equal(poolOf({ 'io.berth.pool': 'b' }), 'b');
  assert.equal(formatResources({ nanoCpus: 0.5e9, memoryBytes: 512 * 1024 ** 2 }), '0.5 CPUs / 512 MiB');
});
