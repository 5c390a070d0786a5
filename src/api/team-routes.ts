import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { covers, mayGrant, NAME_PATTERN, ROLES, teamsOf, type AuthStore, type Grant, type Principal } from '../core/auth.ts';
import { Conflict, Forbidden, InvalidInput, NotFound } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import { Authenticator } from '../auth/index.ts';
import { durationMs } from './spec-schema.ts';
import { SMALL } from './auth-routes.ts';

const nameOf = (what: string) => z.string().regex(NAME_PATTERN, `a ${what} name: lower-case letters, digits, ".", "_" and "-", starting with a letter or digit, at most 63`);
const appName = z.string().regex(/^([a-z0-9][a-z0-9-]{0,62}|\*)$/, 'an app name (lower-case letters, digits and dashes) or * for every app of the team');
const envName = z.string().regex(/^([a-z0-9][a-z0-9-]{0,62}|\*)$/, 'an environment name (lower-case letters, digits and dashes) or * for every environment');
export const teamBody = z.object({ name: nameOf('team') });
const scope = {
  role: z.enum(ROLES),
  team: z.string().regex(/^([a-z0-9][a-z0-9._-]{0,62}|\*)$/, 'a team name, or * with role owner'),
  app: appName.default('*'),
  env: envName.default('*'),
};
const ownerShape = (g: { role: string; team: string; app: string; env: string }) =>
  (g.role === 'owner') === (g.team === '*') && (g.role !== 'owner' || (g.app === '*' && g.env === '*'));
const OWNER_SHAPE = 'role owner goes with team, app and env "*" (the whole installation); every other role names a team';
export const grantBody = z.object({ user: nameOf('user'), ...scope }).refine(ownerShape, OWNER_SHAPE);
export const grantsQuery = z.object({ team: z.string().optional(), user: z.string().optional() });
const DAY = 86_400_000;
export const tokenBody = z.object({
  name: z.string().min(1).max(100).regex(/^[\w.@:/ -]+$/, 'letters, digits, spaces and . _ - @ : /'),
  /** How long it lasts (`90d`, `12h`); default 90 days, at most 365. */
  expires: durationMs({ days: true }).refine((ms) => ms > 0 && ms <= 365 * DAY, 'between 1s and 365d').default(90 * DAY),
  grants: z.array(z.object(scope).refine(ownerShape, OWNER_SHAPE)).min(1, 'a token needs at least one grant: e.g. {"role":"deployer","team":"web","env":"test"}').max(50),
});

export interface TeamRouteDeps {
  store: AuthStore;
  clock: Clock;
  newId: () => string;
  /** Whether an app exists (assigning an app that does not is a 404 with a did-you-mean). */
  requireApp: (app: string) => void;
}

function isOwner(p: Principal): boolean {
  return teamsOf(p.grants) === 'all';
}

/** Grants in answers: the user's name instead of their id. */
function grantView(store: AuthStore, g: Grant) {
  const [kind, id] = g.subject.split(':') as [string, string];
  const who = kind === 'user' ? { user: store.getUser(id)?.name ?? id } : { token: id };
  return { id: g.id, ...who, role: g.role, team: g.team, app: g.app, env: g.env, createdAt: g.createdAt, createdBy: g.createdBy };
}

/**
 * Teams, the apps they own, grants and scoped API tokens. Owners make teams and assign apps; a team's
 * admins grant roles within the team (never more than they hold); anyone signed in makes API tokens
 * for CI out of the roles they hold (shown once, stored hashed, expiring, revocable).
 */
export function registerTeamRoutes(app: FastifyInstance, d: TeamRouteDeps): void {
  const { store } = d;
  const me = (req: FastifyRequest) => req.principal!;
  const team404 = (name: string) => new NotFound(`no team "${name}"`);
  /** A team the caller has no role in answers like one that does not exist. */
  const requireTeam = (p: Principal, name: string) => {
    const mine = teamsOf(p.grants);
    if (!store.getTeam(name) || (mine !== 'all' && !mine.has(name))) throw team404(name);
  };

  app.get('/v1/teams', async (req) => {
    const mine = teamsOf(me(req).grants);
    const apps = store.teamApps();
    return {
      teams: store.listTeams().filter((t) => mine === 'all' || mine.has(t.name))
        .map((t) => ({ ...t, apps: apps.filter((a) => a.team === t.name).map((a) => a.app) })),
    };
  });

  app.post('/v1/teams', SMALL, async (req, reply) => {
    const b = teamBody.parse(req.body);
    if (store.getTeam(b.name)) throw new Conflict(`team "${b.name}" exists`);
    store.addTeam({ name: b.name, createdAt: d.clock.now(), createdBy: me(req).name });
    return reply.status(201).send({ name: b.name });
  });

  app.delete('/v1/teams/:team', async (req, reply) => {
    const { team } = req.params as { team: string };
    if (!store.getTeam(team)) throw team404(team);
    const owned = store.teamApps(team);
    if (owned.length) throw new Conflict(`team "${team}" owns ${owned.map((a) => a.app).join(', ')}: give them to another team first (\`berth team assign OTHER APP\`)`);
    store.deleteTeam(team);
    return reply.status(204).send();
  });

  app.put('/v1/teams/:team/apps/:app', async (req) => {
    const { team, app: a } = req.params as { team: string; app: string };
    if (!store.getTeam(team)) throw team404(team);
    d.requireApp(a);
    const before = store.appTeam(a);
    store.setAppTeam(a, team);
    return { app: a, team, ...(before && before !== team ? { previous: before } : {}) };
  });

  app.delete('/v1/teams/:team/apps/:app', async (req, reply) => {
    const { team, app: a } = req.params as { team: string; app: string };
    if (store.appTeam(a) !== team) throw new NotFound(`team "${team}" does not own app "${a}"`);
    store.setAppTeam(a, undefined);
    return reply.status(204).send();
  });

  app.get('/v1/grants', async (req) => {
    const q = grantsQuery.parse(req.query);
    const p = me(req);
    let subject: string | undefined;
    if (q.user) {
      const u = store.userByName(q.user);
      if (!u) throw new NotFound(`no user "${q.user}"`);
      subject = `user:${u.id}`;
    }
    if (q.team) requireTeam(p, q.team);
    // Owners see every grant; others the grants of teams they administer, and their own.
    const visible = (g: Grant) => isOwner(p) || g.subject === p.subject || mayGrant(p.grants, g);
    return { grants: store.listGrants({ ...(subject ? { subject } : {}), ...(q.team ? { team: q.team } : {}) }).filter(visible).map((g) => grantView(store, g)) };
  });

  app.post('/v1/grants', SMALL, async (req, reply) => {
    const b = grantBody.parse(req.body);
    const p = me(req);
    const u = store.userByName(b.user);
    if (!u) throw new NotFound(`no user "${b.user}"`);
    if (b.team !== '*') requireTeam(p, b.team);
    if (!mayGrant(p.grants, b)) {
      throw new Forbidden(`${p.name} may not grant ${b.role} of team ${b.team}${b.app === '*' ? '' : ` app ${b.app}`}${b.env === '*' ? '' : ` env ${b.env}`}: ` +
        'only owners, and team admins within what they hold themselves');
    }
    const subject = `user:${u.id}`;
    const same = store.listGrants({ subject }).find((g) => g.role === b.role && g.team === b.team && g.app === b.app && g.env === b.env);
    if (same) throw new Conflict(`${b.user} already holds this grant (${same.id})`);
    const g: Grant = { id: d.newId(), subject, role: b.role, team: b.team, app: b.app, env: b.env, createdAt: d.clock.now(), createdBy: p.name };
    store.addGrant(g);
    return reply.status(201).send({ grant: grantView(store, g) });
  });

  app.delete('/v1/grants/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    const p = me(req);
    const g = store.listGrants().find((x) => x.id === id);
    // A grant the caller could not have made is not theirs to see either.
    if (!g || !mayGrant(p.grants, g)) throw new NotFound(`no grant ${id}: see \`berth grant ls\``);
    store.deleteGrant(id);
    return reply.status(204).send();
  });

  app.get('/v1/tokens', async (req) => {
    const p = me(req);
    const tokens = isOwner(p) ? store.listApiTokens() : store.listApiTokens(p.subject);
    return { tokens: tokens.map((t) => tokenView(store, t.id)) };
  });

  app.post('/v1/tokens', SMALL, async (req, reply) => {
    const b = tokenBody.parse(req.body);
    const p = me(req);
    if (p.kind === 'token') throw new Forbidden('an API token cannot make tokens: log in as a person (`berth login`)');
    for (const [i, g] of b.grants.entries()) {
      if (g.team !== '*' && !store.getTeam(g.team)) throw new InvalidInput(`grants.${i}.team: no team "${g.team}"`);
      if (!p.grants.some((c) => covers(c, g))) {
        throw new Forbidden(`grants.${i}: ${p.name} does not hold ${g.role} of team ${g.team}${g.app === '*' ? '' : ` app ${g.app}`}${g.env === '*' ? '' : ` env ${g.env}`}, so a token of theirs cannot either`);
      }
    }
    const now = d.clock.now();
    const { token, hash } = Authenticator.newApiToken();
    const id = d.newId();
    store.addApiToken({ id, name: b.name, hash, createdBy: p.subject, createdAt: now, expiresAt: now + b.expires, revokedAt: 0, lastUsedAt: 0 });
    for (const g of b.grants) store.addGrant({ id: d.newId(), subject: `token:${id}`, ...g, createdAt: now, createdBy: p.name });
    return reply.status(201).send({ token, ...tokenView(store, id) });
  });

  app.delete('/v1/tokens/:id', async (req) => {
    const { id } = req.params as { id: string };
    const p = me(req);
    const t = store.getApiToken(id);
    if (!t || (!isOwner(p) && t.createdBy !== p.subject)) throw new NotFound(`no token ${id}: see \`berth token ls\``);
    const revoked = store.revokeApiToken(id, d.clock.now());
    return { id, revoked, ...(revoked ? {} : { message: 'already revoked' }) };
  });
}

function tokenView(store: AuthStore, id: string) {
  const t = store.getApiToken(id)!;
  const [kind, by] = t.createdBy.split(':') as [string, string?];
  const creator = kind === 'user' ? store.getUser(by ?? '')?.name ?? t.createdBy : t.createdBy;
  const grants = store.listGrants({ subject: `token:${id}` }).map((g) => ({ role: g.role, team: g.team, app: g.app, env: g.env }));
  return { id: t.id, name: t.name, createdBy: creator, createdAt: t.createdAt, expiresAt: t.expiresAt, revokedAt: t.revokedAt, lastUsedAt: t.lastUsedAt, grants };
}

