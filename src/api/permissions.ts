/**
 * The one place that says what each route needs. Every route fastify registers must have an entry
 * here (keyed `METHOD /path` exactly as registered, like ROUTE_DOCS); `src/api/permissions.test.ts`
 * enumerates the registered routes and fails for one without, and the authorization hook refuses
 * (to everyone but owners) a route it finds no entry for.
 */
import type { Action } from '../core/auth.ts';

export interface RoutePermission {
  action: Action;
  /**
   * How the route proves who is calling: a credential checked by the auth hook (default), the
   * pre-receive hook's own token, a webhook's signature, an edge host's token (checked by the route:
   * it is no credential anywhere else), or nothing at all (login).
   */
  auth?: 'credential' | 'hook' | 'signature' | 'public' | 'edge';
  /**
   * For app actions, where the app is named: the `:app` path parameter (default), the `app` query
   * parameter (list routes: without it the handler filters what it returns), or a record looked up
   * by its `:id` (deployments, builds) — so a guessed id of another team's object is a 404 like an
   * unknown one.
   */
  app?: 'param' | 'query' | 'deployment' | 'build' | 'git';
  /**
   * For actions that change one environment, where it is named: the body's or the query's `env`,
   * defaulting to `prod` exactly as the route schemas do (so a missing env is checked as prod, never
   * as "any"). `promote` names its target as `to`. `query-or-all`: without `?env=` the route acts on every
   * environment, so only a grant on all of them (`env *`) allows it.
   */
  env?: 'body' | 'query' | 'body.to' | 'query-or-all';
  /**
   * Deploys and promotions: when the app's team requires approval in the environment, the request is
   * kept as a pending approval (202) and carried out only when a second person approves it.
   */
  approval?: true;
}

const read = (app: RoutePermission['app'] = 'param'): RoutePermission => ({ action: 'app.read', app });

export const ROUTE_PERMISSIONS: Record<string, RoutePermission> = {
  // Sessions and people (auth-routes.ts).
  'POST /v1/session': { action: 'any', auth: 'public' },
  'GET /v1/session': { action: 'any' },
  'DELETE /v1/session': { action: 'any' },
  // Single sign-on (sso-routes.ts): providers are the owners'; the login flow is public (the provider or the CLI's verifier proves who it is).
  'GET /v1/sso/providers': { action: 'cluster.admin' },
  'PUT /v1/sso/providers/:name': { action: 'cluster.admin' },
  'DELETE /v1/sso/providers/:name': { action: 'cluster.admin' },
  'GET /v1/sso/options': { action: 'any', auth: 'public' },
  'GET /v1/sso/:name/start': { action: 'any', auth: 'public' },
  'GET /v1/sso/:name/callback': { action: 'any', auth: 'public' },
  'POST /v1/sso/cli-session': { action: 'any', auth: 'public' },
  'GET /v1/users': { action: 'cluster.admin' },
  'POST /v1/users': { action: 'cluster.admin' },
  'DELETE /v1/users/:name': { action: 'cluster.admin' },
  'PUT /v1/users/:name/password': { action: 'cluster.admin' },

  // Teams, grants, tokens (team-routes.ts). `any` + the handler's own check: a grant or a token is
  // only made out of roles the caller holds (core/auth.ts mayGrant, covers), and only shown to them.
  'GET /v1/teams': { action: 'any' },
  'POST /v1/teams': { action: 'cluster.admin' },
  'DELETE /v1/teams/:team': { action: 'cluster.admin' },
  'PUT /v1/teams/:team/apps/:app': { action: 'cluster.admin' },
  'DELETE /v1/teams/:team/apps/:app': { action: 'cluster.admin' },
  'GET /v1/grants': { action: 'any' },
  'POST /v1/grants': { action: 'any' },
  'DELETE /v1/grants/:id': { action: 'any' },
  'GET /v1/tokens': { action: 'any' },
  'POST /v1/tokens': { action: 'any' },
  'DELETE /v1/tokens/:id': { action: 'any' },

  // Approvals (approval-routes.ts): the handler checks the app (404 if unseen), the second person and their deploy role.
  'GET /v1/approvals': { action: 'any' },
  'POST /v1/approvals/:id/approve': { action: 'any' },
  'POST /v1/approvals/:id/deny': { action: 'any' },
  'GET /v1/teams/:team/policies': { action: 'any' },
  'PUT /v1/teams/:team/policies/:env': { action: 'any' },

  // Container guardrails (policy-routes.ts): the handler checks who may set which layer (owners; a
  // team's admins tighten their team's) and exempt which app (its admins in that environment).
  'GET /v1/policies': { action: 'any' },
  'PUT /v1/policies': { action: 'any' },
  'GET /v1/exemptions': { action: 'any' },
  'POST /v1/exemptions': { action: 'any' },
  'DELETE /v1/exemptions/:id': { action: 'any' },

  'GET /v1/audit': { action: 'cluster.admin' },
  'GET /v1/audit/verify': { action: 'cluster.admin' },

  // The portal (portal-routes.ts): its files and the login link's exchange are public; a link is for the caller.
  'POST /v1/portal/codes': { action: 'any' },
  'POST /v1/portal/session': { action: 'any', auth: 'public' },
  'GET /': { action: 'any', auth: 'public' },
  'GET /*': { action: 'any', auth: 'public' },

  'GET /v1/ping': { action: 'any' },
  'GET /v1/openapi.json': { action: 'any' },
  'GET /metrics': { action: 'cluster.read' },

  // Apps (app.ts, service-routes.ts, event-routes.ts, remove-routes.ts, promote-routes.ts).
  'POST /v1/apps/:app/deployments': { action: 'app.deploy', env: 'body', approval: true },
  'GET /v1/deployments/:id': read('deployment'),
  'GET /v1/deployments/:id/stream': read('deployment'),
  'GET /v1/apps': read('query'),
  'GET /v1/apps/:app': read(),
  'GET /v1/apps/:app/stream': read(),
  'GET /v1/apps/:app/releases': read(),
  'GET /v1/apps/:app/releases/:id': read(),
  'POST /v1/apps/:app/scale': { action: 'app.operate', env: 'body' },
  'POST /v1/apps/:app/restart': { action: 'app.operate', env: 'body' },
  'POST /v1/apps/:app/instances/:instance/restart': { action: 'app.operate', env: 'body' },
  'POST /v1/apps/:app/failover': { action: 'app.operate', env: 'body' },
  'POST /v1/apps/:app/reload': { action: 'app.operate', env: 'body' },
  'POST /v1/apps/:app/rollback': { action: 'app.deploy', env: 'body' },
  'POST /v1/apps/:app/exec': { action: 'app.config', env: 'body' },
  'POST /v1/apps/:app/promote': { action: 'app.deploy', env: 'body.to', approval: true },
  'DELETE /v1/apps/:app': { action: 'app.admin', env: 'query-or-all' },
  'GET /v1/apps/:app/purge': read(),
  'GET /v1/apps/:app/purge/stream': read(),
  'GET /v1/apps/:app/logs': { action: 'app.logs', env: 'query' },
  'GET /v1/events': read('query'),
  'GET /v1/events/stream': read('query'),

  // Configuration (config-routes.ts): values are the maintainers'; reading one secret is `app.secrets`.
  'GET /v1/apps/:app/config': { action: 'app.config', env: 'query' },
  'PUT /v1/apps/:app/config': { action: 'app.config', env: 'body' },
  'DELETE /v1/apps/:app/config': { action: 'app.config', env: 'body' },
  'GET /v1/apps/:app/config/:key': { action: 'app.secrets', env: 'query' },
  'GET /v1/apps/:app/config-history': { action: 'app.config', env: 'query' },

  // Builds (git-routes.ts, webhook-routes.ts).
  'GET /git/*': { action: 'app.deploy', app: 'git' },
  'POST /git/*': { action: 'app.deploy', app: 'git' },
  'POST /v1/git/hooks/pre-receive': { action: 'any', auth: 'hook' },
  'GET /v1/builds': read('query'),
  'GET /v1/builds/:id': read('build'),
  'POST /v1/builds/:id/cancel': { action: 'app.deploy', app: 'build' },
  'GET /v1/builds/:id/logs': read('build'),
  'PUT /v1/apps/:app/source': { action: 'app.admin' },
  'POST /v1/hooks/:provider/:app': { action: 'any', auth: 'signature' },

  // The installation: owners only.
  'GET /v1/images': { action: 'cluster.read' },
  // Credentials of private image registries (registry-login-routes.ts): hosts and users only when listed.
  // Hosts (host-routes.ts): anyone signed in may list them; changing them is the owners'.
  'GET /v1/hosts': { action: 'any' },
  'PUT /v1/hosts/:host/labels': { action: 'cluster.admin' },
  'POST /v1/hosts/:host/drain': { action: 'cluster.admin' },
  'DELETE /v1/hosts/:host': { action: 'cluster.admin' },
  'POST /v1/cluster/init': { action: 'cluster.admin' },
  'GET /v1/cluster/join': { action: 'cluster.admin' },
  // Edge hosts (edge-routes.ts): the agents' poll takes only an edge host's token; tokens are the owners'.
  'GET /v1/edge/config': { action: 'any', auth: 'edge' },
  'GET /v1/edge/hosts': { action: 'cluster.read' },
  'POST /v1/edge/tokens': { action: 'cluster.admin' },
  // Pools (pool-routes.ts): anyone signed in lists the pools open to them (the handler narrows what a
  // non-owner sees); quotas and grants are the owners'.
  'GET /v1/pools': { action: 'any' },
  'PUT /v1/pools/:pool/quota': { action: 'cluster.admin' },
  'POST /v1/pools/:pool/grants/:team': { action: 'cluster.admin' },
  'DELETE /v1/pools/:pool/grants/:team': { action: 'cluster.admin' },
  'GET /v1/registry-logins': { action: 'cluster.read' },
  'PUT /v1/registry-logins/:host': { action: 'cluster.admin' },
  'DELETE /v1/registry-logins/:host': { action: 'cluster.admin' },
  'GET /v1/volumes': read('query'),
  'POST /v1/images/gc': { action: 'cluster.admin' },
  // Metrics of one's apps (host-wide series without ?app= are the owners'); top filters to visible apps.
  'GET /v1/metrics/query': read('query'),
  'GET /v1/top': read('query'),
  'GET /v1/registry': { action: 'cluster.read' },
  'GET /v1/registry/:env/:service': { action: 'cluster.read' },
  'GET /v1/registry/:env/:service/stream': { action: 'cluster.read' },
  'POST /v1/registry/:env/:service': { action: 'cluster.admin' },
  'PUT /v1/registry/external/:id/heartbeat': { action: 'cluster.admin' },
  'DELETE /v1/registry/external/:id': { action: 'cluster.admin' },
  'PUT /v1/alerts/:name': { action: 'cluster.admin' },
  'GET /v1/alerts': { action: 'cluster.read' },
  'DELETE /v1/alerts/:name': { action: 'cluster.admin' },
  // Certificates of routes' hosts (cert-routes.ts): cluster-wide, like the ingress they serve. The
  // list names every app whose routes ask for one, so it is a cluster read, not an app read.
  'GET /v1/certs': { action: 'cluster.read' },
  'PUT /v1/certs/:host': { action: 'cluster.admin' },
  'DELETE /v1/certs/:host': { action: 'cluster.admin' },
  'POST /v1/certs/:host/renew': { action: 'cluster.admin' },
  'PUT /v1/templates/:name': { action: 'cluster.admin' },
  'GET /v1/templates': { action: 'cluster.read' },
  'DELETE /v1/templates/:name': { action: 'cluster.admin' },
};

/** A route without an entry: only owners may call it (deny by default). */
export const UNDECLARED: RoutePermission = { action: 'cluster.admin' };
