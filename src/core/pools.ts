/**
 * Pools as objects (issues 13 and 14, pure): a pool's quota (CPU, memory, instances, each optional)
 * and the teams granted to deploy into it, and what is placed in each pool. A change (a deploy, a
 * promotion, a scale) is admitted against both by core/pool-admission.ts `admit`, with the capacity
 * check, before anything is written. A pool exists when a host carries it
 * (`io.berth.pool`) or an owner gives it a quota or a grant.
 *
 * Decisions: `default` is open to every team (a grant to EVERY_TEAM, seeded) until an owner revokes
 * that; every other pool is closed until granted. Owners bypass grants, never quotas. Usage is
 * desired state (replicas × reservation of every service placed in the pool), not what runs at this
 * moment: a rolling update's surge instance is not counted. A change is refused only when it grows a
 * pool's usage past its quota, so a pool already over (its quota lowered) can still shrink and an
 * unchanged redeploy still passes. A pool with a CPU (or memory) quota refuses a growing service that
 * reserves none: it would count for nothing (as Kubernetes' ResourceQuota does).
 */
import { DEFAULT_POOL, type Resources } from './ports.ts';
import type { ServiceSpec } from './spec/types.ts';
import type { DeploymentRecord, DeploymentStatus, DeploymentStore, DesiredStateStore } from './store.ts';
import { formatResources, placementOfService } from './placement.ts';

/** The grant that opens a pool to every team. */
export const EVERY_TEAM = '*';

/** What may be placed in a pool at most; absent: no limit of that kind. */
export interface PoolQuota {
  nanoCpus?: number;
  memoryBytes?: number;
  instances?: number;
}

export interface PoolRecord {
  name: string;
  quota: PoolQuota;
  /** Teams granted to deploy into the pool, sorted; EVERY_TEAM: every team. */
  teams: string[];
  createdAt: number;
  createdBy: string;
}

/** Store role: pools, their quotas and grants (store/auth-store.ts, in auth.db beside teams). */
export interface PoolStore {
  listPools(): PoolRecord[];
  getPool(name: string): PoolRecord | undefined;
  /** Sets the quota (making the pool when it has no record); returns the pool as it was before (undefined: new) and after. */
  setPoolQuota(name: string, quota: PoolQuota, by: string, at: number): { before: PoolRecord | undefined; after: PoolRecord };
  /** Grants a team the pool (making the pool); false when it already was. */
  grantPool(name: string, team: string, by: string, at: number): boolean;
  /** False when the team was not granted the pool. */
  revokePool(name: string, team: string): boolean;
}

/** The teams allowed into a pool: its record's, or for a pool without one, `default` is open and the others closed. */
export function poolTeams(name: string, record: PoolRecord | undefined): string[] {
  return record ? record.teams : name === DEFAULT_POOL ? [EVERY_TEAM] : [];
}

/** Whether a team may deploy into the pool. */
export function poolGranted(teams: readonly string[], team: string | undefined): boolean {
  return teams.includes(EVERY_TEAM) || (team !== undefined && teams.includes(team));
}

/** The pool a service is placed in (`x-berth.pool`, else `default`). */
export function servicePool(svc: ServiceSpec): string {
  return placementOfService(svc).pool;
}

/** What one instance of a service reserves: Compose's reservations, else its limits (as placement reads them). */
export function reservationOf(svc: ServiceSpec): { nanoCpus?: number; memoryBytes?: number } {
  // The one reading of it, shared with the capacity check (core/pool-admission.ts).
  const { nanoCpus: cpu, memoryBytes: mem } = placementOfService(svc).reservation;
  return { ...(cpu ? { nanoCpus: cpu } : {}), ...(mem ? { memoryBytes: mem } : {}) };
}

/** What is placed in a pool: instances (desired replicas) and their reservations. */
export interface PoolUse {
  instances: number;
  nanoCpus: number;
  memoryBytes: number;
}

/** A service as desired: its app, environment, replicas and the spec of its current release. */
export interface PlacedService {
  app: string;
  env: string;
  name: string;
  replicas: number;
  spec: ServiceSpec;
}

const ZERO: PoolUse = { instances: 0, nanoCpus: 0, memoryBytes: 0 };

function add(u: PoolUse, replicas: number, spec: ServiceSpec): PoolUse {
  const r = reservationOf(spec);
  return { instances: u.instances + replicas, nanoCpus: u.nanoCpus + replicas * (r.nanoCpus ?? 0), memoryBytes: u.memoryBytes + replicas * (r.memoryBytes ?? 0) };
}

/** Usage per pool of a set of services. */
export function poolUsage(services: readonly PlacedService[]): Map<string, PoolUse> {
  const out = new Map<string, PoolUse>();
  for (const s of services) {
    const pool = servicePool(s.spec);
    out.set(pool, add(out.get(pool) ?? ZERO, s.replicas, s.spec));
  }
  return out;
}

/** The quota as people read it (`8 CPUs, 16 GiB, 50 instances`, or `no limit`). */
export function describeQuota(q: PoolQuota): string {
  const parts: string[] = [];
  if (q.nanoCpus !== undefined) parts.push(formatResources({ nanoCpus: q.nanoCpus, memoryBytes: 0 }).split(' / ')[0]!);
  if (q.memoryBytes !== undefined) parts.push(formatResources({ nanoCpus: 0, memoryBytes: q.memoryBytes }).split(' / ')[1]!);
  if (q.instances !== undefined) parts.push(`${q.instances} ${q.instances === 1 ? 'instance' : 'instances'}`);
  return parts.length ? parts.join(', ') : 'no limit';
}

/** A pool as `GET /v1/pools` shows it. */
export interface PoolView {
  name: string;
  hosts: string[];
  /** Sum of the ready hosts' capacity and reservations (the engine's figures). */
  capacity: Resources;
  reserved: Resources;
  /** Desired usage: instances and reservations of the services placed there. */
  used: PoolUse;
  quota: PoolQuota;
  /** The quota as people read it (`8 CPUs, 16 GiB, 50 instances`, `no limit`). */
  quotaShown: string;
  /** Granted teams (EVERY_TEAM: every team); a non-owner sees only `*` and their own teams. */
  teams: string[];
}

/** What the usage is read from: services and their releases, and deployments not yet finished. */
export type DesiredUsage = Pick<DesiredStateStore, 'listServices' | 'getRelease'> & Pick<DeploymentStore, 'listDeployments'>;

const IN_FLIGHT: DeploymentStatus[] = ['pending', 'building', 'rolling'];

/**
 * Every service as desired, with the spec of its current release — except that an app's environment
 * with a deployment still in flight counts as that deployment's services (the newest one): a second
 * deploy made before the controller applied the first (or while it builds) cannot slip past a quota.
 */
export function placedServices(store: DesiredUsage): PlacedService[] {
  const flying = new Map<string, DeploymentRecord>();
  for (const dep of store.listDeployments({ status: IN_FLIGHT })) {
    const k = `${dep.app}/${dep.env}`;
    const seen = flying.get(k);
    if (!seen || dep.createdAt >= seen.createdAt) flying.set(k, dep);
  }
  const out: PlacedService[] = [];
  for (const s of store.listServices()) {
    if (flying.has(`${s.app}/${s.env}`)) continue;
    const rel = store.getRelease(s.releaseId);
    if (rel) out.push({ app: s.app, env: s.env, name: s.name, replicas: s.replicas, spec: rel.spec });
  }
  for (const dep of flying.values()) {
    for (const svc of Object.values(dep.spec.services)) out.push({ app: dep.app, env: dep.env, name: svc.name, replicas: svc.replicas, spec: svc });
  }
  return out;
}
