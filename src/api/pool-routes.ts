/**
 * Pools as objects (issues 13 and 14): `GET /v1/pools` (each pool's hosts, capacity, reservations,
 * desired usage, quota and granted teams), `PUT /v1/pools/:pool/quota`, and
 * `POST|DELETE /v1/pools/:pool/grants/:team` (owners only, audited by api/audit.ts like every write).
 *
 * Who sees what: owners every pool and every grant; anyone else the pools open to them (granted to
 * one of their teams, or to every team) or holding one of their apps, with the grants narrowed to
 * `*` and their own teams — other teams' names are not theirs to learn. Usage is shown as totals.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { NAME_PATTERN as TEAM_PATTERN, teamsOf, type AuthStore } from '../core/auth.ts';
import { NotFound } from '../core/errors.ts';
import { DEFAULT_POOL, type Clock, type EngineHosts, type Resources } from '../core/ports.ts';
import { EVERY_TEAM, placedServices, poolGranted, poolTeams, poolUsage, describeQuota, servicePool, type DesiredUsage, type PoolQuota, type PoolStore, type PoolView } from '../core/pools.ts';
import { poolRules, type PoolRulesOf } from '../core/pool-admission.ts';
import { NAME_PATTERN } from '../core/spec/names.ts';
import { parseCpus, parseSize } from '../core/spec/units.ts';
import type { Authenticator } from '../auth/index.ts';
import { SMALL } from './auth-routes.ts';

export interface PoolRouteDeps {
  store: AuthStore & PoolStore;
  desired: DesiredUsage;
  hosts: Pick<EngineHosts, 'hosts'>;
  clock: Clock;
}

const POOL_RULE = 'a pool name: lower-case letters, digits and dashes, like "team-a" (at most 63)';
export const poolParams = z.object({ pool: z.string().max(63, POOL_RULE).regex(NAME_PATTERN, POOL_RULE) });
export const poolGrantParams = poolParams.extend({
  team: z.string().refine((t) => t === EVERY_TEAM || TEAM_PATTERN.test(t), 'a team name, or * for every team'),
});

/** A limit, or null to remove it; absent: unchanged. */
export const quotaBody = z.strictObject({
  /** CPUs (`8`, `0.5`). */
  cpus: z.union([z.number(), z.string()]).nullable().optional().transform((v, ctx) => {
    if (v === undefined || v === null) return v;
    const p = parseCpus(v);
    if ('error' in p) {
      ctx.addIssue({ code: 'custom', message: p.error });
      return z.NEVER;
    }
    return p.value;
  }),
  /** Memory (`16g`, `512m`, bytes). */
  memory: z.union([z.number(), z.string()]).nullable().optional().transform((v, ctx) => {
    if (v === undefined || v === null) return v;
    const p = parseSize(v);
    if ('error' in p || p.value === 0) {
      ctx.addIssue({ code: 'custom', message: 'error' in p ? p.error : 'a memory quota above 0, like 16g (null removes it)' });
      return z.NEVER;
    }
    return p.value;
  }),
  /** Instances (desired replicas) at most. */
  instances: z.number().int('a whole number of instances').min(0).max(1_000_000).nullable().optional(),
}).refine((b) => b.cpus !== undefined || b.memory !== undefined || b.instances !== undefined, {
  message: 'nothing to change: give cpus, memory or instances (null removes a limit)', path: ['cpus'],
});
/** The body as the OpenAPI document shows it (the schema above transforms). */
export const quotaBodyDoc = z.strictObject({
  cpus: z.union([z.number(), z.string()]).nullable().optional(),
  memory: z.union([z.number(), z.string()]).nullable().optional(),
  instances: z.number().int().nullable().optional(),
});

const sum = (xs: Resources[]): Resources => xs.reduce((s, r) => ({ nanoCpus: s.nanoCpus + r.nanoCpus, memoryBytes: s.memoryBytes + r.memoryBytes }), { nanoCpus: 0, memoryBytes: 0 });

/**
 * The pools' rules over the stores (core/pool-admission.ts poolRules): the deploy path (deployments
 * service: deploys, promotions, pushes) and `scale` hand them to `admit` before they write anything.
 */
export function storePoolRules(d: { authStore: AuthStore & PoolStore; desired: DesiredUsage; auth: Pick<Authenticator, 'grantsOf'> }): PoolRulesOf {
  const nameOf = (subject: string) => {
    if (subject.startsWith('user:')) return d.authStore.getUser(subject.slice('user:'.length))?.name ?? subject;
    if (subject.startsWith('token:')) return `token ${d.authStore.getApiToken(subject.slice('token:'.length))?.name ?? subject}`;
    return subject;
  };
  return poolRules({
    pools: d.authStore, appTeam: (a) => d.authStore.appTeam(a), desired: d.desired,
    actor: (subject) => {
      const teams = teamsOf(d.auth.grantsOf(subject));
      return { name: nameOf(subject), owner: teams === 'all', teams: teams === 'all' ? [] : [...teams].sort() };
    },
  });
}

export function registerPoolRoutes(app: FastifyInstance, d: PoolRouteDeps): void {
  const { store } = d;

  /** Every pool a host carries, a record names or a service is placed in; `default` always. */
  const views = async (): Promise<PoolView[]> => {
    const hosts = await d.hosts.hosts();
    const records = new Map(store.listPools().map((p) => [p.name, p]));
    const usage = poolUsage(placedServices(d.desired));
    const names = new Set<string>([DEFAULT_POOL, ...hosts.map((h) => h.pool), ...records.keys(), ...usage.keys()]);
    return [...names].sort().map((name) => {
      const inPool = hosts.filter((h) => h.pool === name);
      const ready = inPool.filter((h) => h.state === 'ready');
      const quota = records.get(name)?.quota ?? {};
      return {
        name, hosts: inPool.map((h) => h.name).sort(), capacity: sum(ready.map((h) => h.capacity)), reserved: sum(ready.map((h) => h.reserved)),
        used: usage.get(name) ?? { instances: 0, nanoCpus: 0, memoryBytes: 0 }, quota, quotaShown: describeQuota(quota), teams: poolTeams(name, records.get(name)),
      };
    });
  };

  /** The pools a caller sees, as they see them. */
  const visibleTo = (req: FastifyRequest, all: Awaited<ReturnType<typeof views>>) => {
    const mine = teamsOf(req.principal!.grants);
    if (mine === 'all') return all;
    const appPools = new Set(placedServices(d.desired).filter((s) => req.canSee?.(s.app)).map((s) => servicePool(s.spec)));
    return all
      .filter((p) => p.teams.includes(EVERY_TEAM) || [...mine].some((t) => poolGranted(p.teams, t)) || appPools.has(p.name))
      .map((p) => ({ ...p, teams: p.teams.filter((t) => t === EVERY_TEAM || mine.has(t)) }));
  };

  const one = async (name: string) => (await views()).find((p) => p.name === name)!;

  app.get('/v1/pools', async (req) => ({ pools: visibleTo(req, await views()) }));

  app.put('/v1/pools/:pool/quota', SMALL, async (req) => {
    const { pool } = poolParams.parse(req.params);
    const b = quotaBody.parse(req.body ?? {});
    const current = store.getPool(pool)?.quota ?? {};
    const next: PoolQuota = { ...current };
    for (const [k, v] of [['nanoCpus', b.cpus], ['memoryBytes', b.memory], ['instances', b.instances]] as const) {
      if (v === null) delete next[k];
      else if (v !== undefined) next[k] = v;
    }
    const { before } = store.setPoolQuota(pool, next, req.principal!.name, d.clock.now());
    return { pool: await one(pool), before: before?.quota ?? {} };
  });

  app.post('/v1/pools/:pool/grants/:team', SMALL, async (req, reply) => {
    const { pool, team } = poolGrantParams.parse(req.params);
    if (team !== EVERY_TEAM && !store.getTeam(team)) throw new NotFound(`no team "${team}": see berth team ls (or * for every team)`);
    const granted = store.grantPool(pool, team, req.principal!.name, d.clock.now());
    return reply.status(granted ? 201 : 200).send({ pool: await one(pool), team, granted });
  });

  app.delete('/v1/pools/:pool/grants/:team', async (req) => {
    const { pool, team } = poolGrantParams.parse(req.params);
    const record = store.getPool(pool);
    if (!record && pool !== DEFAULT_POOL && !(await d.hosts.hosts()).some((h) => h.pool === pool)) throw new NotFound(`no pool "${pool}": see berth pools`);
    const revoked = store.revokePool(pool, team);
    return { pool: await one(pool), team, revoked };
  });
}
