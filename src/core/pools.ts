/**
 * Pools as objects (issues 13 and 14, pure): a pool's quota (CPU, memory, instances, each optional)
 * and the teams granted to deploy into it, and the admission of a change (a deploy, a promotion, a
 * scale) against both — before anything is written. A pool exists when a host carries it
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
import { Conflict, Forbidden, InvalidInput } from './errors.ts';
import { DEFAULT_POOL, type Resources } from './ports.ts';
import type { ServiceSpec } from './spec/types.ts';
import type { DeploymentRecord, DeploymentStatus, DeploymentStore, DesiredStateStore } from './store.ts';
import { formatResources } from './placement.ts';
import { placementOfService } from './pool-admission.ts';

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

/** Who asks: their name, whether they are an owner (who bypass grants), the teams they have a role in. */
export interface PoolActor {
  name: string;
  owner: boolean;
  teams: string[];
}

export interface PoolAdmission {
  app: string;
  env: string;
  /** The app's team (undefined: nobody's — only owners deploy it). */
  team: string | undefined;
  /** Undefined: Berth itself (no one to bypass grants). */
  actor?: PoolActor;
  /** The app's services in `env` as they would be after the change (replicas and spec of each). */
  after: readonly { name: string; replicas: number; spec: ServiceSpec }[];
  /** The same services as they are now (empty for a new app or environment). */
  before: readonly { name: string; replicas: number; spec: ServiceSpec }[];
  /** Every other service of the installation (not this app's in `env`). */
  others: readonly PlacedService[];
  pool: (name: string) => PoolRecord | undefined;
  /**
   * Grants are checked for these services only (a scale checks the ones it grows; a deploy every
   * service: new code). Default: every service of `after`.
   */
  grantsFor?: readonly string[];
}

/** `8 CPUs`, `16 GiB`, `50 instances`. */
function formatQuota(q: PoolQuota): string {
  const parts: string[] = [];
  if (q.nanoCpus !== undefined) parts.push(formatResources({ nanoCpus: q.nanoCpus, memoryBytes: 0 }).split(' / ')[0]!);
  if (q.memoryBytes !== undefined) parts.push(formatResources({ nanoCpus: 0, memoryBytes: q.memoryBytes }).split(' / ')[1]!);
  if (q.instances !== undefined) parts.push(`${q.instances} ${q.instances === 1 ? 'instance' : 'instances'}`);
  return parts.length ? parts.join(', ') : 'no limit';
}

/** The quota as people read it (`8 CPUs, 16 GiB, 50 instances`, or `no limit`). */
export function describeQuota(q: PoolQuota): string {
  return formatQuota(q);
}

type Kind = 'instances' | 'nanoCpus' | 'memoryBytes';
const KIND_NAME: Record<Kind, string> = { instances: 'instances', nanoCpus: 'CPU', memoryBytes: 'memory' };
const FLAG: Record<Kind, string> = { instances: '--instances', nanoCpus: '--cpus', memoryBytes: '--memory' };

function amount(kind: Kind, n: number): string {
  if (kind === 'instances') return String(n);
  return kind === 'nanoCpus' ? formatResources({ nanoCpus: n, memoryBytes: 0 }).split(' / ')[0]! : formatResources({ nanoCpus: 0, memoryBytes: n }).split(' / ')[1]!;
}

/**
 * Admits a change of one app's environment into its pools, or throws: Forbidden (403) naming the pool,
 * the app's team and the teams the actor is in when a pool is not granted to the app's team (owners
 * pass); InvalidInput naming the service when a pool with a CPU or memory quota gets a growing service
 * that reserves none; Conflict (409) naming the pool, its quota, what the rest uses and what this app
 * asks, when the change grows a pool's usage past its quota. `details` carry the numbers.
 */
export function admitToPools(a: PoolAdmission): void {
  const pools = new Map<string, string[]>();
  for (const s of a.after) {
    const p = servicePool(s.spec);
    pools.set(p, [...(pools.get(p) ?? []), s.name]);
  }
  // Grants first: a team that may not use the pool learns nothing of its usage.
  if (!a.actor?.owner) {
    const checked = new Set(a.grantsFor ?? a.after.map((s) => s.name));
    for (const [pool, names] of pools) {
      if (!names.some((n) => checked.has(n))) continue;
      if (poolGranted(poolTeams(pool, a.pool(pool)), a.team)) continue;
      const who = a.actor
        ? `${a.actor.name} is in ${a.actor.teams.length === 0 ? 'no team' : a.actor.teams.length === 1 ? `team ${a.actor.teams[0]}` : `teams ${a.actor.teams.join(', ')}`}`
        : 'Berth acts for the app';
      const owner = a.team === undefined ? 'an app of no team' : `app ${a.app} belongs to team ${a.team}`;
      throw new Forbidden(
        `pool ${pool} is not granted to ${a.team === undefined ? 'this app' : `team ${a.team}`} (${owner}; ${who}): ${names.filter((n) => checked.has(n)).join(', ')} cannot be placed there — ` +
        `an owner grants it with \`berth pool grant ${pool} ${a.team ?? 'TEAM'}\`, or choose another pool (x-berth.pool)`,
        { details: { pool, team: a.team ?? null, teams: a.actor?.teams ?? [] } },
      );
    }
  }
  const others = poolUsage(a.others);
  const beforeUse = poolUsage(a.before.map((s) => ({ app: a.app, env: a.env, ...s })));
  for (const [pool, names] of pools) {
    const quota = a.pool(pool)?.quota ?? {};
    const mine = a.after.filter((s) => names.includes(s.name));
    const asked = mine.reduce((u, s) => add(u, s.replicas, s.spec), ZERO);
    const had = beforeUse.get(pool) ?? ZERO;
    const used = others.get(pool) ?? ZERO;
    for (const kind of ['instances', 'nanoCpus', 'memoryBytes'] as const) {
      const limit = quota[kind];
      if (limit === undefined) continue;
      if (kind !== 'instances') {
        // A growing service that reserves none of a limited resource would slip past the quota.
        const undeclared = mine.filter((s) => s.replicas > 0 && grew(s, a.before) && !reservationOf(s.spec)[kind]);
        if (undeclared.length) {
          const key = kind === 'nanoCpus' ? 'cpus' : 'memory';
          throw new InvalidInput(
            undeclared.map((s) => `spec.services.${s.name}: pool ${pool} has a ${KIND_NAME[kind]} quota (${amount(kind, limit)}): give ${s.name} a ${KIND_NAME[kind]} reservation ` +
              `(deploy.resources.reservations.${key}, or limits.${key})`).join('\n'),
            { details: { pool, services: undeclared.map((s) => s.name), resource: KIND_NAME[kind] } },
          );
        }
      }
      // Only growth is refused: a pool over its quota can still shrink, an unchanged redeploy passes.
      if (asked[kind] <= had[kind]) continue;
      if (used[kind] + asked[kind] <= limit) continue;
      throw new Conflict(
        `pool ${pool}'s quota is exceeded: ${KIND_NAME[kind]} quota ${amount(kind, limit)}, used ${amount(kind, used[kind])} by other apps and environments, ` +
        `asked ${amount(kind, asked[kind])} by ${a.app}/${a.env} (${mine.map((s) => `${s.name} ${s.replicas}${kind === 'instances' ? '' : ` × ${amount(kind, reservationOf(s.spec)[kind] ?? 0)}`}`).join(', ')}) — ` +
        `ask for less, or an owner raises it: berth pool quota ${pool} ${FLAG[kind]} N`,
        { details: { pool, resource: KIND_NAME[kind], quota: limit, used: used[kind], asked: asked[kind] } },
      );
    }
  }
}

function grew(s: { name: string; replicas: number; spec: ServiceSpec }, before: PoolAdmission['before']): boolean {
  const b = before.find((x) => x.name === s.name);
  return !b || servicePool(b.spec) !== servicePool(s.spec) || s.replicas > b.replicas;
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

/** A change of one app's environment as the deploy path and `scale` hand it to the admission. */
export interface PoolChange {
  app: string;
  env: string;
  /** The principal's subject (`user:ID`, `token:ID`, `admin`); absent: Berth itself. */
  actor?: string;
  after: readonly { name: string; replicas: number; spec: ServiceSpec }[];
  grantsFor?: readonly string[];
}

export type PoolAdmit = (c: PoolChange) => void;

/**
 * The admission over the stores: the app's team and the pools' records from the auth store, the
 * installation's services from desired state, the actor's teams from their grants.
 */
export function poolAdmission(d: {
  pools: Pick<PoolStore, 'getPool'>;
  appTeam: (app: string) => string | undefined;
  desired: DesiredUsage;
  /** Who a subject is: name, owner or not, teams. */
  actor: (subject: string) => PoolActor | undefined;
}): PoolAdmit {
  return (c) => {
    const all = placedServices(d.desired);
    const actor = c.actor === undefined ? undefined : d.actor(c.actor);
    admitToPools({
      app: c.app, env: c.env, team: d.appTeam(c.app), ...(actor ? { actor } : {}), after: c.after,
      before: all.filter((s) => s.app === c.app && s.env === c.env),
      others: all.filter((s) => !(s.app === c.app && s.env === c.env)),
      pool: (name) => d.pools.getPool(name), ...(c.grantsFor ? { grantsFor: c.grantsFor } : {}),
    });
  };
}
