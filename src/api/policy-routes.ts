import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { allows, roleAtLeast, teamsOf, type AuthStore, type Principal } from '../core/auth.ts';
import { Forbidden, InvalidInput, NotFound } from '../core/errors.ts';
import {
  GUARD_KEYS, applicableScopes, describePolicy, effectivePolicy, loosens, policyFor, policyProblems, scopeName,
  type Exemption, type GuardPolicy, type GuardStore, type PolicyLayer, type PolicyScope,
} from '../core/guard.ts';
import type { Clock } from '../core/ports.ts';
import { SMALL } from './auth-routes.ts';
import { durationMs } from './spec-schema.ts';

const scopeName_ = z.string().regex(/^([a-z0-9][a-z0-9._-]{0,62})?$/, 'a name (lower-case letters, digits, ".", "_", "-"), or empty for "any"');
const DAY = 86_400_000;
export const guardPolicySchema = z.strictObject({
  privileged: z.boolean().optional(),
  capabilities: z.array(z.string().min(1).max(40)).max(64).optional(),
  noNewPrivileges: z.boolean().optional(),
  pidsLimit: z.number().int().min(0).max(4_194_304).optional(),
  memoryDefaultBytes: z.number().int().min(0).max(2 ** 50).optional(),
  hostNamespaces: z.boolean().optional(),
  hostNetwork: z.boolean().optional(),
  devices: z.boolean().optional(),
  unconfined: z.boolean().optional(),
  binds: z.boolean().optional(),
  bindRoots: z.array(z.string().min(1).max(4096)).max(32).optional(),
  readOnly: z.boolean().optional(),
  sysctls: z.array(z.string().min(1).max(200)).max(64).optional(),
});
export const policySetBody = z.strictObject({ team: scopeName_.default(''), env: scopeName_.default(''), policy: guardPolicySchema });
export const policyQuery = z.object({ team: scopeName_.optional(), env: scopeName_.optional(), app: z.string().max(63).optional(), history: z.enum(['true', 'false']).optional() });
export const exemptionBody = z.strictObject({
  app: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'an app name'),
  service: z.string().regex(/^([a-z0-9][a-z0-9_.-]{0,62}|\*)$/, 'a service name, or * for every service of the app').default('*'),
  env: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'an environment name'),
  key: z.enum(GUARD_KEYS),
  reason: z.string().trim().min(5, 'say why (at least 5 characters): it is kept with the exemption and in the audit log').max(500),
  /** How long it holds (`7d`, `12h`): at most 90 days. */
  expires: durationMs({ days: true }).refine((ms) => ms > 0 && ms <= 90 * DAY, 'between 1s and 90d'),
});
export const exemptionsQuery = z.object({ app: z.string().max(63).optional() });

export interface PolicyRouteDeps {
  store: AuthStore & GuardStore;
  clock: Clock;
  newId: () => string;
}

const isOwner = (p: Principal) => teamsOf(p.grants) === 'all';

/**
 * Container guardrails (core/guard.ts): policy layers per installation, team and/or environment
 * (owners set any; a team's admins may tighten their team's, never loosen), and exemptions for one
 * key of one app (or service) in one environment, reasoned and expiring (the app's admins in that
 * environment). Every change is a new version / record, and the audit log has the request.
 */
export function registerPolicyRoutes(app: FastifyInstance, d: PolicyRouteDeps): void {
  const { store } = d;
  const me = (req: FastifyRequest) => req.principal!;
  /** The installation's and environments' layers are everyone's to read; a team's, its members'. */
  const visible = (p: Principal, team: string) => {
    const mine = teamsOf(p.grants);
    return team === '' || mine === 'all' || mine.has(team);
  };
  const view = (l: PolicyLayer) => ({ team: l.team, env: l.env, scope: scopeName(l), version: l.version, policy: l.policy, setBy: l.setBy, setAt: l.setAt });
  const exemptionView = (e: Exemption) => {
    const now = d.clock.now();
    return { ...e, status: e.revokedAt ? 'revoked' : e.expiresAt <= now ? 'expired' : 'active' };
  };

  app.get('/v1/policies', async (req) => {
    const q = policyQuery.parse(req.query);
    const p = me(req);
    let team = q.team;
    if (q.app !== undefined) {
      const t = store.appTeam(q.app);
      if (!isOwner(p) && (t === undefined || !visible(p, t))) throw new NotFound(`no app "${q.app}"`);
      team = t ?? '';
    }
    if (team && (!store.getTeam(team) || !visible(p, team))) throw new NotFound(`no team "${team}"`);
    const env = q.env ?? '';
    if (q.history === 'true') {
      return { layers: store.policyHistory({ team: team ?? '', env }).map(view) };
    }
    const all = store.policyLayers().filter((l) => visible(p, l.team));
    // With a team and/or an environment: what applies there, field by field, and from which layer.
    if (team !== undefined || env) {
      const eff = policyFor(all, team || undefined, env || 'prod');
      const scopes = applicableScopes(team || undefined, env || 'prod');
      const layers = all.filter((l) => scopes.some((s) => s.team === l.team && s.env === l.env));
      return { layers: layers.map(view), effective: { team: team ?? '', env: env || 'prod', policy: eff.policy, from: eff.from, shown: describePolicy(eff.policy) } };
    }
    const eff = effectivePolicy(all.filter((l) => l.team === '' && l.env === ''));
    return { layers: all.map(view), effective: { team: '', env: '', policy: eff.policy, from: eff.from, shown: describePolicy(eff.policy) } };
  });

  app.put('/v1/policies', SMALL, async (req) => {
    const b = policySetBody.parse(req.body);
    const p = me(req);
    const problems = policyProblems(b.policy as GuardPolicy);
    if (problems.length) throw new InvalidInput(problems.map((x) => `policy.${x}`).join('\n'));
    const scope: PolicyScope = { team: b.team, env: b.env };
    if (b.team && (!store.getTeam(b.team) || !visible(p, b.team))) throw new NotFound(`no team "${b.team}"`);
    if (!isOwner(p)) {
      if (!b.team) throw new Forbidden(`the policy of ${scopeName(scope)} is the owners' to set: team admins set their team's (--team)`);
      const admin = p.grants.some((c) => roleAtLeast(c.role, 'admin') && c.team === b.team && c.app === '*' && (c.env === '*' || (b.env !== '' && c.env === b.env)));
      if (!admin) throw new Forbidden(`${p.name} may not set the policy of ${scopeName(scope)}: it needs the admin role of team ${b.team}${b.env ? ` in ${b.env}` : ''}`);
      // What applies without this layer: a team admin may only tighten it.
      const others = store.policyLayers().filter((l) => !(l.team === b.team && l.env === b.env));
      const inherited = b.env ? policyFor(others, b.team, b.env).policy : effectivePolicy(others.filter((l) => l.team === '' && l.env === '')).policy;
      const loose = loosens(b.policy as GuardPolicy, inherited);
      if (loose.length) {
        throw new Forbidden(`${p.name} may tighten the policy of ${scopeName(scope)}, not loosen it (${loose.join(', ')}): an owner sets that, or an admin exempts one app with \`berth policy exempt\``);
      }
    }
    const layer = store.setPolicy(scope, b.policy as GuardPolicy, p.name, d.clock.now());
    return { layer: view(layer) };
  });

  app.get('/v1/exemptions', async (req) => {
    const q = exemptionsQuery.parse(req.query);
    const p = me(req);
    const seen = (a: string) => {
      const t = store.appTeam(a);
      return isOwner(p) || (t !== undefined && visible(p, t));
    };
    if (q.app !== undefined && !seen(q.app)) throw new NotFound(`no app "${q.app}"`);
    return { exemptions: store.listExemptions(q.app).filter((e) => seen(e.app)).map(exemptionView) };
  });

  app.post('/v1/exemptions', SMALL, async (req, reply) => {
    const b = exemptionBody.parse(req.body);
    const p = me(req);
    const team = store.appTeam(b.app);
    if (!isOwner(p) && (team === undefined || !visible(p, team))) throw new NotFound(`no app "${b.app}"`);
    if (!allows(p.grants, 'app.admin', { app: b.app, team, env: b.env })) {
      throw new Forbidden(`${p.name} may not exempt ${b.app} in ${b.env}: it needs the admin role of ${team ? `team ${team}` : 'the installation (the app has no team: owners)'} there`);
    }
    const now = d.clock.now();
    const e: Exemption = {
      id: d.newId(), app: b.app, service: b.service, env: b.env, key: b.key, reason: b.reason, createdBy: p.name, createdAt: now, expiresAt: now + b.expires, revokedAt: 0,
    };
    store.addExemption(e);
    return reply.status(201).send({ exemption: exemptionView(e) });
  });

  app.delete('/v1/exemptions/:id', async (req) => {
    const { id } = req.params as { id: string };
    const p = me(req);
    const e = store.getExemption(id);
    const team = e && store.appTeam(e.app);
    if (!e || (!isOwner(p) && (team === undefined || !visible(p, team)))) throw new NotFound(`no exemption ${id}: see \`berth policy exemptions\``);
    if (!allows(p.grants, 'app.admin', { app: e.app, team, env: e.env })) throw new Forbidden(`${p.name} may not revoke it: it needs the admin role for ${e.app} in ${e.env}`);
    const revoked = store.revokeExemption(id, d.clock.now());
    return { exemption: exemptionView(store.getExemption(id)!), revoked };
  });
}
