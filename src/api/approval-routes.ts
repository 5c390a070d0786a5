import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { allows, roleAtLeast, teamsOf, type ApprovalStore, type AuthStore, type Principal } from '../core/auth.ts';
import { Conflict, Forbidden, NotFound } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import type { NewEvent } from '../core/store.ts';
import type { Authenticator } from '../auth/index.ts';
import { approvalView, canSee } from './authorize.ts';
import { SMALL } from './auth-routes.ts';

export const policyBody = z.object({ requireApproval: z.boolean() });
export const approvalsQuery = z.object({ status: z.enum(['pending', 'approved', 'denied', 'failed']).optional() });

/**
 * Approvals: an environment of a team can require a second person for deploys and promotions (the
 * authorization hook keeps such a request as a pending approval). Someone else who may deploy there
 * approves it — the request is then carried out as its requester, with the roles they hold now — or
 * anyone who may deploy there (the requester too) denies it.
 */
export function registerApprovalRoutes(app: FastifyInstance, d: {
  auth: Authenticator; store: AuthStore & ApprovalStore; clock: Clock; replaySecret: string;
  /** The event timeline: each decision is an event of its app. */
  addEvent?: (e: NewEvent) => void;
}): void {
  const me = (req: FastifyRequest) => req.principal!;
  const visible = (p: Principal, id: string) => {
    const a = d.store.getApproval(id);
    if (!a || !canSee(p, a.app, d.store.appTeam(a.app))) throw new NotFound(`no approval ${id}: see \`berth approvals\``);
    return a;
  };
  const mayDecide = (p: Principal, a: { app: string; team: string; env: string }) => {
    if (!allows(p.grants, 'app.deploy', { app: a.app, team: d.store.appTeam(a.app), env: a.env })) {
      throw new Forbidden(`${p.name} may not decide this: it needs the deployer role for ${a.app} in ${a.env}`);
    }
  };
  /** Team admins (and owners) set a team's environment policies. */
  const mayAdminister = (p: Principal, team: string, env: string) => p.grants.some((c) => (c.role === 'owner' && c.team === '*') ||
    (roleAtLeast(c.role, 'admin') && c.team === team && c.app === '*' && (c.env === '*' || c.env === env)));

  app.get('/v1/approvals', async (req) => {
    const q = approvalsQuery.parse(req.query);
    const p = me(req);
    return { approvals: d.store.listApprovals(q.status).filter((a) => canSee(p, a.app, d.store.appTeam(a.app))).map(approvalView) };
  });

  app.post('/v1/approvals/:id/approve', async (req, reply) => {
    const { id } = req.params as { id: string };
    const p = me(req);
    const a = visible(p, id);
    if (a.status !== 'pending') throw new Conflict(`approval ${id} is ${a.status} already`);
    mayDecide(p, a);
    if (d.auth.personOf(p.subject) === d.auth.personOf(a.requestedBy)) {
      throw new Forbidden(`approval ${id} was requested by ${a.requestedByName}: a second person must approve it`);
    }
    if (!d.store.decideApproval(id, 'approved', p.name, d.clock.now(), '')) throw new Conflict(`approval ${id} was decided meanwhile`);
    // Carried out as the requester, through the same route and checks (their role must still hold).
    const res = await app.inject({
      method: a.method as 'POST', url: a.url, payload: a.body,
      headers: { 'content-type': 'application/json', 'x-berth-approval': `${id}:${d.replaySecret}` },
    });
    const ok = res.statusCode < 400;
    d.store.setApprovalResult(id, ok ? 'approved' : 'failed', `${res.statusCode} ${res.body.slice(0, 500)}`);
    d.addEvent?.({ app: a.app, env: a.env, service: '', instance: '', kind: ok ? 'approval.approved' : 'approval.failed',
      message: `approval ${id} ${ok ? 'approved' : 'approved, but the request failed'} by ${p.name} (HTTP ${res.statusCode})` });
    let result: unknown;
    try {
      result = JSON.parse(res.body);
    } catch {
      result = res.body;
    }
    return reply.status(ok ? 200 : 409).send({ approval: approvalView(d.store.getApproval(id)!), status: res.statusCode, result });
  });

  app.post('/v1/approvals/:id/deny', async (req) => {
    const { id } = req.params as { id: string };
    const p = me(req);
    const a = visible(p, id);
    if (a.status !== 'pending') throw new Conflict(`approval ${id} is ${a.status} already`);
    mayDecide(p, a);
    if (!d.store.decideApproval(id, 'denied', p.name, d.clock.now(), 'denied')) throw new Conflict(`approval ${id} was decided meanwhile`);
    d.addEvent?.({ app: a.app, env: a.env, service: '', instance: '', kind: 'approval.denied', message: `approval ${id} denied by ${p.name}` });
    return { approval: approvalView(d.store.getApproval(id)!) };
  });

  app.get('/v1/teams/:team/policies', async (req) => {
    const { team } = req.params as { team: string };
    const mine = teamsOf(me(req).grants);
    if (!d.store.getTeam(team) || (mine !== 'all' && !mine.has(team))) throw new NotFound(`no team "${team}"`);
    return { policies: d.store.listPolicies(team) };
  });

  app.put('/v1/teams/:team/policies/:env', SMALL, async (req) => {
    const { team, env } = req.params as { team: string; env: string };
    const b = policyBody.parse(req.body);
    const p = me(req);
    const mine = teamsOf(p.grants);
    if (!d.store.getTeam(team) || (mine !== 'all' && !mine.has(team))) throw new NotFound(`no team "${team}"`);
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(env)) throw new NotFound(`no environment "${env}"`);
    if (!mayAdminister(p, team, env)) throw new Forbidden(`${p.name} may not set policies of team ${team}: it needs the admin role there`);
    d.store.setRequiresApproval(team, env, b.requireApproval);
    return { team, env, requireApproval: b.requireApproval };
  });
}
