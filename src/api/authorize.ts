/**
 * Authentication and authorization of every request, in two hooks: `onRequest` tells who is calling
 * (auth/Authenticator: the admin token, a session, a cookie + CSRF, a scoped API token), `preHandler`
 * checks the route's entry in ROUTE_PERMISSIONS against the caller's grants and the app's team.
 *
 * Objects of apps the caller cannot read answer exactly like objects that do not exist (404, the same
 * message, no did-you-mean), so names and ids of other teams' apps cannot be probed. An app the
 * caller can read but not change in that environment is a 403 that says which role is needed.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { NewEvent } from '../core/store.ts';
import { ACTION_ROLE, allows, type ApprovalRecord, type ApprovalStore, type Principal, type Target } from '../core/auth.ts';
import { Forbidden, InvalidInput, NotFound, Unauthorized } from '../core/errors.ts';
import { CSRF_HEADER, sameDigest, type Authenticator } from '../auth/index.ts';
import { ROUTE_PERMISSIONS, UNDECLARED, type RoutePermission } from './permissions.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who sent the request (set by the auth hook; undefined only on hook-, signature- and public routes). */
    principal?: Principal;
    /** Whether the caller may see an app: list routes filter with it (set with the principal; owners see all). */
    canSee?: (app: string) => boolean;
    /** True when the caller sees every app (owners): installation-wide answers are theirs alone. */
    seesAll?: boolean;
    /** Set on the replay of an approved request: the approval it carries out. */
    approvalId?: string;
  }
}

export interface AuthorizeDeps {
  auth: Authenticator;
  /** The team that owns an app (undefined: none yet, only owners may touch it). */
  appTeam: (app: string) => string | undefined;
  /** Whether an app exists at all (a deploy of a new app by a team member makes it the team's). */
  appExists: (app: string) => boolean;
  /** Makes a team the owner of a new app (undefined: no owner again, when the request that claimed it failed). */
  claimApp: (app: string, team: string | undefined) => void;
  /** Environment policies and pending approvals. */
  approvals: ApprovalStore;
  /** The event timeline: a request kept for approval is an event of its app (pages follow the stream). */
  addEvent?: (e: NewEvent) => void;
  clock: { now(): number };
  newId: () => string;
  /** The in-process secret an approved request's replay carries (x-berth-approval: ID:SECRET). */
  replaySecret: string;
  /** The app a deployment or a build belongs to (undefined: no such record). */
  appOf: { deployment: (id: string) => string | undefined; build: (id: string) => string | undefined };
}

/** The permission entry of the route a request matched (undefined: no route matched, a 404 follows). */
export function routePermission(req: FastifyRequest): RoutePermission | undefined {
  const url = req.routeOptions.url;
  if (url === undefined) return undefined;
  return ROUTE_PERMISSIONS[`${req.method} ${url}`] ?? UNDECLARED;
}

/** The app a `/git/APP.git/...` URL names. */
export function gitApp(url: string): string | undefined {
  return /^\/git\/([^/?]+)\.git(?:[/?]|$)/.exec(url)?.[1];
}

/** True if the caller may read the app (any role on it, in any environment). */
export function canSee(p: Principal | undefined, app: string, team: string | undefined): boolean {
  return !!p && allows(p.grants, 'app.read', { app, team });
}

export function registerAuthorization(app: FastifyInstance, d: AuthorizeDeps): void {
  app.addHook('onRequest', async (req) => {
    const perm = routePermission(req);
    if (perm && perm.auth && perm.auth !== 'credential') return;
    const replay = req.headers['x-berth-approval'];
    if (typeof replay === 'string') {
      // Only this process knows the secret: the replay of an approved request acts as its requester.
      const [id = '', secret = ''] = replay.split(':');
      const a = d.approvals.getApproval(id);
      if (!a || a.status !== 'approved' || a.result !== '' || !sameDigest(secret, d.replaySecret)) throw new Unauthorized('invalid approval replay');
      req.principal = d.auth.asSubject(a.requestedBy, a.requestedByName);
      req.approvalId = id;
      const rp = req.principal;
      req.seesAll = allows(rp.grants, 'cluster.admin');
      req.canSee = (x: string) => req.seesAll === true || canSee(rp, x, d.appTeam(x));
      return;
    }
    const csrf = req.headers[CSRF_HEADER];
    req.principal = d.auth.authenticate({
      authorization: req.headers.authorization, cookie: req.headers.cookie, csrf: Array.isArray(csrf) ? csrf[0] : csrf, method: req.method,
      allowBasic: perm?.app === 'git', ip: req.ip,
    });
    const p = req.principal;
    req.seesAll = allows(p.grants, 'cluster.admin');
    req.canSee = req.seesAll ? () => true : (a: string) => a !== '' && canSee(p, a, d.appTeam(a));
  });

  // A new app claimed by a request that then made nothing (a bad spec, a refused route, a dry run) is nobody's again.
  const claimed = new WeakMap<FastifyRequest, string>();
  app.addHook('onResponse', async (req) => {
    const a = claimed.get(req);
    if (a !== undefined && !d.appExists(a)) d.claimApp(a, undefined);
  });

  // Security headers on every answer. The API answers JSON, streams and text, never a page: nothing of
  // it may be framed, sniffed into another type, cached by a proxy, or run as a document.
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-resource-policy', 'same-origin');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    const type = String(reply.getHeader('content-type') ?? '');
    if (!type.startsWith('text/html')) reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
    if (req.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000');
    return payload;
  });

  app.addHook('preHandler', async (req, reply) => {
    const perm = routePermission(req);
    if (!perm || (perm.auth && perm.auth !== 'credential')) return;
    const p = req.principal!;
    if (perm.action === 'any') return;
    if (perm.action.startsWith('cluster.')) {
      if (!allows(p.grants, perm.action)) throw new Forbidden(`${p.name} may not do this: it needs the owner role (${perm.action})`);
      return;
    }
    const params = (req.params ?? {}) as Record<string, string | undefined>;
    const query = (req.query ?? {}) as Record<string, unknown>;
    const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
    let appName: string | undefined;
    let unknown: string;
    switch (perm.app ?? 'param') {
      case 'param':
        appName = params.app;
        unknown = `no app "${appName}"`;
        break;
      case 'query':
        // A list: without ?app= the handler filters to what the caller may see.
        if (typeof query.app !== 'string' || query.app === '') return;
        appName = query.app;
        unknown = `no app "${appName}"`;
        break;
      case 'deployment':
        appName = d.appOf.deployment(params.id ?? '');
        unknown = `no deployment ${params.id}`;
        break;
      case 'build':
        appName = d.appOf.build(params.id ?? '');
        unknown = `no build ${params.id}: see GET /v1/builds?app=APP`;
        break;
      case 'git':
        appName = gitApp(req.url);
        unknown = `no git repository for app "${appName}": push to it first`;
        break;
    }
    const env = envOf(perm, query, body);
    // Owners see everything, including the handler's own 404s with their did-you-mean.
    if (allows(p.grants, 'cluster.admin')) return gate(req, reply, perm, appName, appName === undefined ? undefined : d.appTeam(appName), env);
    if (appName === undefined) throw new NotFound(unknown);
    let team = d.appTeam(appName);
    if (team === undefined && perm.action === 'app.deploy' && (perm.app ?? 'param') !== 'build' && !d.appExists(appName)) {
      team = claimTeam(p, appName, env, typeof query.team === 'string' ? query.team : undefined, unknown);
      d.claimApp(appName, team);
      claimed.set(req, appName);
    }
    if (!canSee(p, appName, team)) throw new NotFound(unknown);
    const target: Target = { app: appName, team };
    if (env !== undefined) target.env = env;
    if (!allows(p.grants, perm.action, target)) {
      const where = env === undefined ? appName : env === '*' ? `${appName} (every environment)` : `${appName} in ${env}`;
      throw new Forbidden(`${p.name} may not do this to ${where}: it needs the ${ACTION_ROLE[perm.action]} role there (${perm.action})`);
    }
    return gate(req, reply, perm, appName, team, env);
  });

  /** An environment that requires approval keeps the request as a pending approval instead (202). */
  const gate = (req: FastifyRequest, reply: FastifyReply, perm: RoutePermission, appName: string | undefined, team: string | undefined, env: string | undefined) => {
    if (!perm.approval || appName === undefined || team === undefined || env === undefined || req.approvalId !== undefined) return;
    const q = (req.query ?? {}) as Record<string, unknown>;
    if (q.dry_run === 'true' || q.dry_run === '1' || !d.approvals.requiresApproval(team, env)) return;
    const p = req.principal!;
    const a: ApprovalRecord = {
      id: d.newId(), app: appName, env, team, method: req.method, url: req.url, body: JSON.stringify(req.body ?? {}), action: `${req.method} ${req.routeOptions.url}`,
      requestedBy: p.subject, requestedByName: p.name, status: 'pending', decidedBy: '', createdAt: d.clock.now(), decidedAt: 0, result: '',
    };
    d.approvals.addApproval(a);
    d.addEvent?.({ app: appName, env, service: '', instance: '', kind: 'approval.requested',
      message: `${p.name} asked for ${a.action} in ${appName}/${env}: approval ${a.id} waits for a second person (berth approve ${a.id})` });
    return reply.status(202).send({
      approval: approvalView(a),
      message: `${env} of team ${team} requires a second person's approval: ask someone who deploys there to run \`berth approve ${a.id}\``,
    });
  };
}

/**
 * The team a new app deployed by a non-owner will belong to: the one team whose deployer (or more)
 * they are for this app and environment, or the one they name (`?team=`).
 */
function claimTeam(p: Principal, app: string, env: string | undefined, wanted: string | undefined, unknown: string): string {
  const teams = [...new Set(p.grants.map((g) => g.team))].filter((t) => allows(p.grants, 'app.deploy', { app, team: t, ...(env ? { env } : {}) }));
  if (wanted !== undefined) {
    if (!teams.includes(wanted)) throw new NotFound(`no team "${wanted}" you deploy for${env ? ` in ${env}` : ''}`);
    return wanted;
  }
  if (teams.length === 1) return teams[0]!;
  if (teams.length === 0) throw new NotFound(unknown);
  throw new InvalidInput(`app "${app}" is new and ${p.name} deploys for teams ${teams.join(', ')}: say which one owns it with ?team=TEAM, or have an owner give it to one first (\`berth team assign TEAM APP\`)`);
}

function envOf(perm: RoutePermission, query: Record<string, unknown>, body: Record<string, unknown>): string | undefined {
  const s = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  switch (perm.env) {
    case 'body': return s(body.env) ?? 'prod';
    case 'query': return s(query.env) ?? 'prod';
    case 'body.to': return s(body.to) ?? 'prod';
    case 'query-or-all': return s(query.env) ?? '*';
    default: return undefined;
  }
}

/** An approval as the API shows it (never the request body: it may be a whole spec). */
export function approvalView(a: ApprovalRecord) {
  return {
    id: a.id, app: a.app, env: a.env, team: a.team, action: a.action, requestedBy: a.requestedByName, status: a.status,
    createdAt: a.createdAt, ...(a.decidedBy ? { decidedBy: a.decidedBy, decidedAt: a.decidedAt } : {}), ...(a.result ? { result: a.result } : {}),
  };
}
