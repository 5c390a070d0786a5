/**
 * Admission (issues 13 and 14, many hosts and pools): the one place that decides, before anything of a
 * change (a deploy, a promotion, a push, a scale) is written or started, whether its services may go
 * into their pools and fit there. One function, `admit`, in this order:
 *
 * 1. grants: the app's team must be granted each pool (owners bypass; a team that may not use a pool
 *    learns nothing of its usage, so this comes first) — Forbidden;
 * 2. quotas: the change may not grow a pool's desired usage past its quota — Conflict (InvalidInput
 *    for a growing service that reserves none of a limited resource);
 * 3. cluster mode: what a Swarm service cannot be (privileged, host namespaces, …) — Conflict naming
 *    the service;
 * 4. cluster mode: capacity — the replicas fit the ready hosts of their pools now — Conflict naming the
 *    pool, what was asked and what is free.
 *
 * Every step reads a service's pool and reservation through placementOfService (core/placement.ts).
 * Pure: the caller gathers the pools' records and the installation's services (`poolRules`, over the
 * stores) and, in cluster mode, the hosts and the environment's current instances.
 */
import { BerthError, Conflict, Forbidden, InvalidInput } from './errors.ts';
import { formatResources, placementOfService, planPlacement, type PlacementRequest } from './placement.ts';
import { DEFAULT_POOL, type HostInfo, type Resources } from './ports.ts';
import {
  placedServices, poolGranted, poolTeams, poolUsage, reservationOf, servicePool,
  type DesiredUsage, type PlacedService, type PoolQuota, type PoolRecord, type PoolStore, type PoolUse,
} from './pools.ts';
import type { ServiceSpec } from './spec/types.ts';

export { placementOfService } from './placement.ts';

/**
 * What a Swarm service cannot be given (Docker API 1.41), which a plain container can (with a
 * guardrail exemption): refused in cluster mode rather than silently dropped.
 */
export function swarmCannot(s: Pick<ServiceSpec, 'privileged' | 'hostNamespaces' | 'devices' | 'unconfined'>): string[] {
  const out: string[] = [];
  if (s.privileged) out.push('privileged');
  for (const n of s.hostNamespaces ?? []) out.push(`${n === 'userns' ? 'userns_mode' : n}: host`);
  if (s.devices?.length) out.push('devices');
  for (const u of s.unconfined ?? []) out.push(`security_opt ${u}=unconfined`);
  return out;
}

/** One running instance of the app in the environment, as the deployment would find it. */
export interface CurrentInstance {
  service: string;
  host: string;
  reservation: Resources;
}

/** Who asks: their name, whether they are an owner (who bypass grants), the teams they have a role in. */
export interface PoolActor {
  name: string;
  owner: boolean;
  teams: string[];
}

/** A service as the change would leave it. */
export interface ChangedService {
  name: string;
  replicas: number;
  spec: ServiceSpec;
}

/** Pools as objects: what grants and quotas are judged against (`poolRules` reads it from the stores). */
export interface PoolRules {
  /** The app's team (undefined: nobody's — only owners deploy it). */
  team: string | undefined;
  /** Undefined: Berth itself (no one to bypass grants). */
  actor?: PoolActor;
  /** The app's services in `env` as they are now (empty for a new app or environment). */
  before: readonly ChangedService[];
  /** Every other service of the installation (not this app's in `env`). */
  others: readonly PlacedService[];
  pool: (name: string) => PoolRecord | undefined;
}

export interface AdmissionInput {
  app: string;
  env: string;
  /** The app's services in `env` as they would be after the change (replicas and spec of each). */
  after: readonly ChangedService[];
  /** Grants and quotas; absent: no pools as objects (no grant or quota checked). */
  rules?: PoolRules;
  /**
   * Grants are checked for these services only (a scale checks the ones it grows; a deploy every
   * service: new code). Default: every service of `after`.
   */
  grantsFor?: readonly string[];
  /**
   * Cluster mode: the hosts and the environment's instances now (those a release replaces give their
   * reservation back). Absent: one host — no Swarm limits, no capacity check (one host keeps its
   * memory check on scale, core/capacity.ts).
   */
  capacity?: { hosts: HostInfo[]; current: CurrentInstance[] };
}

export type Admission =
  | { ok: true; /** cluster mode: host names per service, in the order the instances would be placed */ hosts: Record<string, string[]> }
  | { ok: false; /** the pool that refused */ pool: string; /** a sentence with the numbers */ reason: string; /** what to throw */ error: BerthError };

/**
 * Whether the change may go into its pools, every check in one pass (see the module comment for the
 * order); a refusal carries the error to throw (Forbidden, InvalidInput or Conflict, `details` with
 * the numbers). Capacity: every service's replicas on ready hosts of its pool that satisfy its
 * constraints and max_replicas_per_node, with room for its reservation; instances this deployment
 * replaces give their reservations back first (a rolling release frees what it replaces), except
 * under blue-green, where the whole new set runs beside the old one until the switch.
 */
export function admit(a: AdmissionInput): Admission {
  const placed = a.after.map((s) => ({ ...s, placement: placementOfService(s.spec) }));
  const pools = new Map<string, typeof placed>();
  for (const s of placed) pools.set(s.placement.pool, [...(pools.get(s.placement.pool) ?? []), s]);
  if (a.rules) {
    const refused = judgeRules(a, a.rules, pools);
    if (refused) return refused;
  }
  if (!a.capacity) return { ok: true, hosts: {} };
  const running = placed.filter((s) => s.replicas > 0);
  for (const s of running) {
    const no = swarmCannot(s.spec);
    if (no.length) {
      const reason = `services.${s.name} cannot run in cluster mode: a Swarm service cannot have ${no.join(', ')}; remove ${no.length === 1 ? 'it' : 'them'} (or run the app on a single-host Berth)`;
      return { ok: false, pool: s.placement.pool, reason, error: new Conflict(`${reason}; nothing was deployed`, { details: { pool: s.placement.pool } }) };
    }
  }
  const replaced = new Set(running.filter((s) => s.spec.update?.strategy !== 'blue-green').map((s) => s.name));
  const hosts = a.capacity.hosts.map((h) => ({ ...h, reserved: { ...h.reserved } }));
  const byName = new Map(hosts.map((h) => [h.name, h]));
  for (const c of a.capacity.current) {
    const h = byName.get(c.host);
    if (!h || !replaced.has(c.service)) continue;
    h.reserved = { nanoCpus: Math.max(0, h.reserved.nanoCpus - c.reservation.nanoCpus), memoryBytes: Math.max(0, h.reserved.memoryBytes - c.reservation.memoryBytes) };
  }
  const requests: PlacementRequest[] = running.map((s) => ({ name: s.name, placement: s.placement, count: s.replicas }));
  const plan = planPlacement(hosts, requests);
  if (!plan.ok) {
    const pool = requests.find((r) => plan.reason.includes(`pool ${r.placement.pool}:`) || plan.reason.includes(`pool ${r.placement.pool} `))?.placement.pool ?? DEFAULT_POOL;
    const reason = `${a.app} in ${a.env} does not fit: ${plan.reason}`;
    return { ok: false, pool, reason, error: new Conflict(`${reason}; nothing was deployed`, { details: { pool } }) };
  }
  return { ok: true, hosts: Object.fromEntries(running.map((s, i) => [s.name, plan.hosts[i]!])) };
}

type Kind = 'instances' | 'nanoCpus' | 'memoryBytes';
const KIND_NAME: Record<Kind, string> = { instances: 'instances', nanoCpus: 'CPU', memoryBytes: 'memory' };
const FLAG: Record<Kind, string> = { instances: '--instances', nanoCpus: '--cpus', memoryBytes: '--memory' };
const ZERO: PoolUse = { instances: 0, nanoCpus: 0, memoryBytes: 0 };

function amount(kind: Kind, n: number): string {
  if (kind === 'instances') return String(n);
  return kind === 'nanoCpus' ? formatResources({ nanoCpus: n, memoryBytes: 0 }).split(' / ')[0]! : formatResources({ nanoCpus: 0, memoryBytes: n }).split(' / ')[1]!;
}

/** Grants, then quotas: the first refusal, or undefined. */
function judgeRules(a: AdmissionInput, r: PoolRules, pools: Map<string, ChangedService[]>): Admission | undefined {
  // Grants first: a team that may not use the pool learns nothing of its usage.
  if (!r.actor?.owner) {
    const checked = new Set(a.grantsFor ?? a.after.map((s) => s.name));
    for (const [pool, services] of pools) {
      const names = services.map((s) => s.name);
      if (!names.some((n) => checked.has(n))) continue;
      if (poolGranted(poolTeams(pool, r.pool(pool)), r.team)) continue;
      const who = r.actor
        ? `${r.actor.name} is in ${r.actor.teams.length === 0 ? 'no team' : r.actor.teams.length === 1 ? `team ${r.actor.teams[0]}` : `teams ${r.actor.teams.join(', ')}`}`
        : 'Berth acts for the app';
      const owner = r.team === undefined ? 'an app of no team' : `app ${a.app} belongs to team ${r.team}`;
      const reason = `pool ${pool} is not granted to ${r.team === undefined ? 'this app' : `team ${r.team}`} (${owner}; ${who}): ${names.filter((n) => checked.has(n)).join(', ')} cannot be placed there — ` +
        `an owner grants it with \`berth pool grant ${pool} ${r.team ?? 'TEAM'}\`, or choose another pool (x-berth.pool)`;
      return { ok: false, pool, reason, error: new Forbidden(reason, { details: { pool, team: r.team ?? null, teams: r.actor?.teams ?? [] } }) };
    }
  }
  const others = poolUsage(r.others);
  const beforeUse = poolUsage(r.before.map((s) => ({ app: a.app, env: a.env, ...s })));
  for (const [pool, mine] of pools) {
    const quota: PoolQuota = r.pool(pool)?.quota ?? {};
    const asked = poolUsage(mine.map((s) => ({ app: a.app, env: a.env, ...s }))).get(pool) ?? ZERO;
    const had = beforeUse.get(pool) ?? ZERO;
    const used = others.get(pool) ?? ZERO;
    for (const kind of ['instances', 'nanoCpus', 'memoryBytes'] as const) {
      const limit = quota[kind];
      if (limit === undefined) continue;
      if (kind !== 'instances') {
        // A growing service that reserves none of a limited resource would slip past the quota.
        const undeclared = mine.filter((s) => s.replicas > 0 && grew(s, r.before) && !reservationOf(s.spec)[kind]);
        if (undeclared.length) {
          const key = kind === 'nanoCpus' ? 'cpus' : 'memory';
          const reason = undeclared.map((s) => `spec.services.${s.name}: pool ${pool} has a ${KIND_NAME[kind]} quota (${amount(kind, limit)}): give ${s.name} a ${KIND_NAME[kind]} reservation ` +
            `(deploy.resources.reservations.${key}, or limits.${key})`).join('\n');
          return { ok: false, pool, reason, error: new InvalidInput(reason, { details: { pool, services: undeclared.map((s) => s.name), resource: KIND_NAME[kind] } }) };
        }
      }
      // Only growth is refused: a pool over its quota can still shrink, an unchanged redeploy passes.
      if (asked[kind] <= had[kind]) continue;
      if (used[kind] + asked[kind] <= limit) continue;
      const reason = `pool ${pool}'s quota is exceeded: ${KIND_NAME[kind]} quota ${amount(kind, limit)}, used ${amount(kind, used[kind])} by other apps and environments, ` +
        `asked ${amount(kind, asked[kind])} by ${a.app}/${a.env} (${mine.map((s) => `${s.name} ${s.replicas}${kind === 'instances' ? '' : ` × ${amount(kind, reservationOf(s.spec)[kind] ?? 0)}`}`).join(', ')}) — ` +
        `ask for less, or an owner raises it: berth pool quota ${pool} ${FLAG[kind]} N`;
      return { ok: false, pool, reason, error: new Conflict(reason, { details: { pool, resource: KIND_NAME[kind], quota: limit, used: used[kind], asked: asked[kind] } }) };
    }
  }
  return undefined;
}

function grew(s: ChangedService, before: readonly ChangedService[]): boolean {
  const b = before.find((x) => x.name === s.name);
  return !b || servicePool(b.spec) !== servicePool(s.spec) || s.replicas > b.replicas;
}

/** The pools' rules for a change of one app's environment, read from the stores (the admission's `rules`). */
export type PoolRulesOf = (c: { app: string; env: string; /** the principal's subject (`user:ID`, `token:ID`, `admin`); absent: Berth itself */ actor?: string }) => PoolRules;

/**
 * The rules over the stores: the app's team and the pools' records from the auth store, the
 * installation's services from desired state, the actor's teams from their grants.
 */
export function poolRules(d: {
  pools: Pick<PoolStore, 'getPool'>;
  appTeam: (app: string) => string | undefined;
  desired: DesiredUsage;
  /** Who a subject is: name, owner or not, teams. */
  actor: (subject: string) => PoolActor | undefined;
}): PoolRulesOf {
  return (c) => {
    const all = placedServices(d.desired);
    const actor = c.actor === undefined ? undefined : d.actor(c.actor);
    return {
      team: d.appTeam(c.app), ...(actor ? { actor } : {}),
      before: all.filter((s) => s.app === c.app && s.env === c.env),
      others: all.filter((s) => !(s.app === c.app && s.env === c.env)),
      pool: (name) => d.pools.getPool(name),
    };
  };
}
