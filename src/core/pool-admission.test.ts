import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Conflict, Forbidden } from './errors.ts';
import { admit, placementOfService, type CurrentInstance } from './pool-admission.ts';
import type { HostInfo } from './ports.ts';
import type { PoolRecord } from './pools.ts';
import type { AppSpec, ServiceSpec } from './spec/types.ts';

const GIB = 1024 ** 3;
const host = (name: string, pool: string, o: Partial<HostInfo> = {}): HostInfo => ({
  id: name, name, address: `10.0.0.${name.slice(1)}`, role: 'worker', pool, labels: pool === 'default' ? {} : { 'io.berth.pool': pool }, state: 'ready',
  capacity: { nanoCpus: 2e9, memoryBytes: 4 * GIB }, reserved: { nanoCpus: 0, memoryBytes: 0 }, instances: 0, ...o,
});
function svc(name: string, o: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name, image: 'x', environment: {}, ports: [], health: { type: 'none' }, replicas: 1, limits: {}, restart: { condition: 'any', delayMs: 1000 },
    labels: {}, stopSignal: 'SIGTERM', stopGracePeriodMs: 10_000, volumes: [], dependsOn: [], routes: [], ...o,
  };
}
const app = (...s: ServiceSpec[]): AppSpec => ({ name: 'shop', services: Object.fromEntries(s.map((x) => [x.name, x])) });
const HOSTS = [host('h1', 'a'), host('h2', 'a'), host('h3', 'a'), host('h4', 'b')];
/** The capacity part of the admission (cluster mode, no pools as objects): the app's services on these hosts. */
const fit = (o: { app: string; env: string; spec: AppSpec; hosts: HostInfo[]; current: CurrentInstance[] }) =>
  admit({ app: o.app, env: o.env, after: Object.values(o.spec.services).map((s) => ({ name: s.name, replicas: s.replicas, spec: s })), capacity: { hosts: o.hosts, current: o.current } });

test('six replicas of pool a: two per host of the pool, none on pool b\'s', () => {
  const r = fit({ app: 'shop', env: 'prod', spec: app(svc('web', { pool: 'a', replicas: 6, reservations: { nanoCpus: 0.5e9, memoryBytes: GIB } })), hosts: HOSTS, current: [] });
  assert.ok(r.ok);
  const t: Record<string, number> = {};
  for (const h of r.hosts.web!) t[h] = (t[h] ?? 0) + 1;
  assert.deepEqual(t, { h1: 2, h2: 2, h3: 2 });
});

test('a deploy that does not fit names the pool, what is asked and what is free', () => {
  const r = fit({ app: 'shop', env: 'prod', spec: app(svc('web', { pool: 'a', replicas: 7, reservations: { nanoCpus: 1e9, memoryBytes: GIB } })), hosts: HOSTS, current: [] });
  assert.equal(r.ok, false);
  assert.ok(!r.ok);
  assert.equal(r.pool, 'a');
  assert.equal(r.reason, 'shop in prod does not fit: pool a: asks 7 CPUs / 7 GiB, free 6 CPUs / 12 GiB on 3 hosts; web (1 CPU / 1 GiB each) does not fit');
  // A pool no host carries is refused at deploy (the parser allows any name).
  const none = fit({ app: 'shop', env: 'prod', spec: app(svc('web', { pool: 'gpu' })), hosts: HOSTS, current: [] });
  assert.ok(!none.ok);
  assert.equal(none.pool, 'gpu');
  assert.match(none.reason, /pool gpu has no hosts: label one with berth host label HOST io\.berth\.pool=gpu/);
  // Limits are the reservation when there is none; a draining or down host offers nothing.
  const busy = [host('h1', 'a', { state: 'draining' }), host('h2', 'a', { state: 'down' }), host('h3', 'a', { reserved: { nanoCpus: 1.5e9, memoryBytes: 3 * GIB } })];
  const lim = fit({ app: 'shop', env: 'prod', spec: app(svc('web', { pool: 'a', replicas: 3, limits: { memoryBytes: 512 * 1024 ** 2 } })), hosts: busy, current: [] });
  assert.ok(!lim.ok);
  assert.match(lim.reason, /pool a: asks 0 CPUs \/ 1\.5 GiB, free 0\.5 CPUs \/ 1 GiB on 1 host; web \(0 CPUs \/ 512 MiB each\) does not fit/);
});

test('a rolling release gives back what it replaces; blue-green needs room for both sets', () => {
  // Pool a full with the current release's six instances (1 CPU / 1 GiB each on 2-CPU hosts).
  const full = HOSTS.map((h) => (h.pool === 'a' ? { ...h, reserved: { nanoCpus: 2e9, memoryBytes: 2 * GIB }, instances: 2 } : h));
  const current = ['h1', 'h1', 'h2', 'h2', 'h3', 'h3'].map((h) => ({ service: 'web', host: h, reservation: { nanoCpus: 1e9, memoryBytes: GIB } }));
  const web = svc('web', { pool: 'a', replicas: 6, reservations: { nanoCpus: 1e9, memoryBytes: GIB } });
  assert.ok(fit({ app: 'shop', env: 'prod', spec: app(web), hosts: full, current }).ok);
  const bg = fit({ app: 'shop', env: 'prod', spec: app({ ...web, update: { strategy: 'blue-green', maxSurge: 1, maxUnavailable: 0, keepPreviousMs: 0, signal: 'SIGHUP', onFailure: 'rollback', deadlineMs: 60_000 } }), hosts: full, current });
  assert.ok(!bg.ok);
  assert.match(bg.reason, /free 0 CPUs \/ 6 GiB on 3 hosts/);
});

test('constraints, max_replicas_per_node and zone spread; a service scaled to 0 asks nothing', () => {
  const zoned = [host('h1', 'a', { labels: { 'io.berth.pool': 'a', zone: 'z1' } }), host('h2', 'a', { labels: { 'io.berth.pool': 'a', zone: 'z1' } }),
    host('h3', 'a', { labels: { 'io.berth.pool': 'a', zone: 'z2' } })];
  const spread = fit({ app: 'shop', env: 'prod', hosts: zoned, current: [],
    spec: app(svc('web', { pool: 'a', replicas: 4, placement: { constraints: [], spread: ['node.labels.zone'] } })) });
  assert.ok(spread.ok);
  // Two per zone: z2 has one host, so it takes two.
  assert.equal(spread.hosts.web!.filter((h) => h === 'h3').length, 2);
  const max = fit({ app: 'shop', env: 'prod', hosts: zoned, current: [], spec: app(svc('web', { pool: 'a', replicas: 4, placement: { constraints: [], spread: [], maxReplicasPerNode: 1 } })) });
  assert.ok(!max.ok);
  assert.match(max.reason, /at most 1 of web per host/);
  const c = fit({ app: 'shop', env: 'prod', hosts: zoned, current: [], spec: app(svc('web', { pool: 'a', replicas: 2, placement: { constraints: ['node.labels.zone==z9'], spread: [] } })) });
  assert.ok(!c.ok);
  assert.match(c.reason, /no ready host of pool a satisfies web's placement constraints node\.labels\.zone==z9/);
  assert.ok(fit({ app: 'shop', env: 'prod', hosts: [], current: [], spec: app(svc('web', { pool: 'a', replicas: 0 })) }).ok);
  assert.deepEqual(placementOfService(svc('db')).pool, 'default');
});

test('cluster mode refuses what a Swarm service cannot be, by name, before anything else', () => {
  const r = fit({ app: 'shop', env: 'prod', hosts: HOSTS, current: [], spec: app(svc('web', { pool: 'a', privileged: true, hostNamespaces: ['ipc'] })) });
  assert.ok(!r.ok);
  assert.equal(r.reason, 'services.web cannot run in cluster mode: a Swarm service cannot have privileged, ipc: host; remove them (or run the app on a single-host Berth)');
});

test('one admission: grants, then quotas, then what Swarm cannot be, then capacity — each refusal its own kind; one host checks no capacity', () => {
  const record = (name: string, teams: string[], quota: PoolRecord['quota'] = {}): PoolRecord => ({ name, teams, quota, createdAt: 0, createdBy: 'admin' });
  const rules = (records: PoolRecord[]) => ({ team: 'web', actor: { name: 'ann', owner: false, teams: ['web'] }, before: [], others: [], pool: (n: string) => records.find((r) => r.name === n) });
  // Does not fit pool a (7 × 1 CPU on 6 CPUs), is privileged, and pool a has an instance quota of 2.
  const big = svc('web', { pool: 'a', replicas: 7, privileged: true, reservations: { nanoCpus: 1e9, memoryBytes: GIB } });
  const after = [{ name: 'web', replicas: 7, spec: big }];
  const capacity = { hosts: HOSTS, current: [] };
  const notGranted = admit({ app: 'shop', env: 'prod', after, rules: rules([]), capacity });
  assert.ok(!notGranted.ok);
  assert.ok(notGranted.error instanceof Forbidden, 'not granted: learns nothing of the pool\'s usage or room');
  assert.match(notGranted.reason, /^pool a is not granted to team web/);
  const overQuota = admit({ app: 'shop', env: 'prod', after, rules: rules([record('a', ['web'], { instances: 2 })]), capacity });
  assert.ok(!overQuota.ok);
  assert.ok(overQuota.error instanceof Conflict);
  assert.match(overQuota.reason, /^pool a's quota is exceeded: instances quota 2/);
  const swarm = admit({ app: 'shop', env: 'prod', after, rules: rules([record('a', ['web'])]), capacity });
  assert.ok(!swarm.ok);
  assert.match(swarm.error.message, /^services\.web cannot run in cluster mode: a Swarm service cannot have privileged; remove it .*; nothing was deployed$/);
  const full = admit({ app: 'shop', env: 'prod', after: [{ name: 'web', replicas: 7, spec: { ...big, privileged: false } }], rules: rules([record('a', ['web'])]), capacity });
  assert.ok(!full.ok);
  assert.ok(full.error instanceof Conflict);
  assert.deepEqual(full.error.details, { pool: 'a' });
  assert.match(full.error.message, /^shop in prod does not fit: pool a: asks 7 CPUs .*; nothing was deployed$/);
  // One host (no capacity): neither Swarm's limits nor room are checked; grants and quotas still are.
  assert.ok(admit({ app: 'shop', env: 'prod', after, rules: rules([record('a', ['web'])]) }).ok);
  assert.ok(!admit({ app: 'shop', env: 'prod', after, rules: rules([record('a', ['web'], { instances: 2 })]) }).ok);
});
