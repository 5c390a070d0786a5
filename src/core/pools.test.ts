import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Conflict, Forbidden, InvalidInput } from './errors.ts';
import { admit, type ChangedService, type PoolRules } from './pool-admission.ts';
import { describeQuota, poolGranted, poolTeams, poolUsage, reservationOf, servicePool, type PoolRecord } from './pools.ts';
import type { ServiceSpec } from './spec/types.ts';

const GIB = 1024 ** 3;
function svc(name: string, o: { pool?: string; cpus?: number; memGib?: number; reserveCpus?: number } = {}): ServiceSpec {
  return {
    name, image: 'berth/busybox', environment: {}, ports: [], health: { type: 'none' }, replicas: 1,
    limits: { ...(o.cpus ? { nanoCpus: o.cpus * 1e9 } : {}), ...(o.memGib ? { memoryBytes: o.memGib * GIB } : {}) },
    restart: { condition: 'any', delayMs: 1000 }, labels: {}, stopSignal: 'SIGTERM', stopGracePeriodMs: 10_000, volumes: [], dependsOn: [], routes: [],
    ...(o.pool ? { pool: o.pool } : {}), ...(o.reserveCpus ? { reservations: { nanoCpus: o.reserveCpus * 1e9 } } : {}),
  } as ServiceSpec;
}
const pool = (name: string, teams: string[], quota: PoolRecord['quota'] = {}): PoolRecord => ({ name, teams, quota, createdAt: 0, createdBy: 'admin' });

/** A change with the pools' rules (core/pool-admission.ts admit, no capacity: the grants and quotas part). */
type PoolAdmission = PoolRules & { app: string; env: string; after: readonly ChangedService[]; grantsFor?: readonly string[] };
function admitToPools(a: PoolAdmission): void {
  const r = admit({ app: a.app, env: a.env, after: a.after, rules: a, ...(a.grantsFor ? { grantsFor: a.grantsFor } : {}) });
  if (!r.ok) throw r.error;
}
function admission(o: Partial<PoolAdmission> & { records?: PoolRecord[] }): PoolAdmission {
  const records = new Map((o.records ?? []).map((r) => [r.name, r]));
  return {
    app: 'shop', env: 'prod', team: 'web', actor: { name: 'ann', owner: false, teams: ['web', 'data'] }, after: [], before: [], others: [],
    pool: (n) => records.get(n), ...o,
  };
}
function refused<E extends Error>(kind: new (...a: never[]) => E, fn: () => void, message: RegExp): E {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof kind, `expected ${kind.name}, got ${String(caught)}`);
  assert.match((caught as Error).message, message);
  return caught as E;
}

test('a service is in its placement pool, else default; it reserves its reservation, else its limits', () => {
  assert.equal(servicePool(svc('web')), 'default');
  assert.equal(servicePool(svc('web', { pool: 'gpu' })), 'gpu');
  assert.deepEqual(reservationOf(svc('web', { cpus: 2, memGib: 1 })), { nanoCpus: 2e9, memoryBytes: GIB });
  assert.deepEqual(reservationOf(svc('web', { cpus: 2, reserveCpus: 1 })), { nanoCpus: 1e9 });
  const usage = poolUsage([
    { app: 'a', env: 'prod', name: 'web', replicas: 3, spec: svc('web', { cpus: 1, memGib: 2 }) },
    { app: 'b', env: 'prod', name: 'db', replicas: 2, spec: svc('db', { pool: 'gpu', memGib: 1 }) },
  ]);
  assert.deepEqual(usage.get('default'), { instances: 3, nanoCpus: 3e9, memoryBytes: 6 * GIB });
  assert.deepEqual(usage.get('gpu'), { instances: 2, nanoCpus: 0, memoryBytes: 2 * GIB });
  assert.equal(describeQuota({ nanoCpus: 8e9, memoryBytes: 16 * GIB, instances: 50 }), '8 CPUs, 16 GiB, 50 instances');
  assert.equal(describeQuota({}), 'no limit');
});

test('grants: default is open to every team unless revoked; other pools only to granted teams; owners bypass; the refusal names pool, team and the actor\'s teams', () => {
  assert.deepEqual(poolTeams('default', undefined), ['*']);
  assert.deepEqual(poolTeams('gpu', undefined), []);
  assert.ok(poolGranted(['*'], 'web'));
  assert.ok(!poolGranted(['data'], 'web'));
  assert.ok(!poolGranted(['data'], undefined));

  admitToPools(admission({ after: [{ name: 'web', replicas: 2, spec: svc('web') }] }));
  const e = refused(Forbidden, () => admitToPools(admission({ after: [{ name: 'web', replicas: 1, spec: svc('web', { pool: 'gpu' }) }] })),
    /^pool gpu is not granted to team web \(app shop belongs to team web; ann is in teams web, data\): web cannot be placed there — an owner grants it with `berth pool grant gpu web`/);
  assert.deepEqual(e.details, { pool: 'gpu', team: 'web', teams: ['web', 'data'] });
  admitToPools(admission({ records: [pool('gpu', ['web'])], after: [{ name: 'web', replicas: 1, spec: svc('web', { pool: 'gpu' }) }] }));
  // default restricted by an owner (its * grant revoked): only the granted teams.
  refused(Forbidden, () => admitToPools(admission({ records: [pool('default', ['data'])], after: [{ name: 'web', replicas: 1, spec: svc('web') }] })), /pool default is not granted to team web/);
  // Owners bypass grants; Berth itself (no actor) does not.
  admitToPools(admission({ actor: { name: 'root', owner: true, teams: [] }, after: [{ name: 'web', replicas: 1, spec: svc('web', { pool: 'gpu' }) }] }));
  refused(Forbidden, () => admitToPools(admission({ actor: undefined, after: [{ name: 'web', replicas: 1, spec: svc('web', { pool: 'gpu' }) }] })), /Berth acts for the app/);
  // A scale checks grants only for the services it grows.
  admitToPools(admission({ after: [{ name: 'web', replicas: 1, spec: svc('web', { pool: 'gpu' }) }], grantsFor: [] }));
});

test('quotas: instances, CPU and memory; the refusal names quota, used and asked; owners do not bypass; shrinking and unchanged redeploys pass', () => {
  const others = [{ app: 'blog', env: 'prod', name: 'web', replicas: 8, spec: svc('web', { pool: 'a', cpus: 0.5, memGib: 1 }) }];
  const records = [pool('a', ['*'], { instances: 10, nanoCpus: 8e9, memoryBytes: 16 * GIB })];
  const web = (replicas: number, o: { cpus?: number; memGib?: number } = { cpus: 0.5, memGib: 1 }) => [{ name: 'web', replicas, spec: svc('web', { pool: 'a', ...o }) }];

  admitToPools(admission({ records, others, after: web(2) }));
  const e = refused(Conflict, () => admitToPools(admission({ records, others, after: web(3), actor: { name: 'root', owner: true, teams: [] } })),
    /^pool a's quota is exceeded: instances quota 10, used 8 by other apps and environments, asked 3 by shop\/prod \(web 3\) — ask for less, or an owner raises it: berth pool quota a --instances N$/);
  assert.deepEqual(e.details, { pool: 'a', resource: 'instances', quota: 10, used: 8, asked: 3 });
  refused(Conflict, () => admitToPools(admission({ records, others, after: web(2, { cpus: 3, memGib: 1 }) })), /CPU quota 8 CPUs, used 4 CPUs by other apps and environments, asked 6 CPUs by shop\/prod \(web 2 × 3 CPUs\)/);
  refused(Conflict, () => admitToPools(admission({ records, others, after: web(2, { cpus: 0.5, memGib: 5 }) })), /memory quota 16 GiB, used 8 GiB .* asked 10 GiB/);
  // A limited resource nobody reserves would slip past: refused, naming the service and the key.
  refused(InvalidInput, () => admitToPools(admission({ records, others, after: web(1, { memGib: 1 }) })),
    /^spec\.services\.web: pool a has a CPU quota \(8 CPUs\): give web a CPU reservation \(deploy\.resources\.reservations\.cpus, or limits\.cpus\)$/);
  // Already over (the quota was lowered): the same or less passes, more is refused.
  const over = [pool('a', ['*'], { instances: 4 })];
  const before = web(3);
  admitToPools(admission({ records: over, others, before, after: web(3) }));
  admitToPools(admission({ records: over, others, before, after: web(1) }));
  refused(Conflict, () => admitToPools(admission({ records: over, others, before, after: web(4) })), /instances quota 4, used 8 .* asked 4/);
  // Another pool's usage does not count.
  admitToPools(admission({ records: [pool('b', ['*'], { instances: 2 })], others, after: [{ name: 'web', replicas: 2, spec: svc('web', { pool: 'b' }) }] }));
});
