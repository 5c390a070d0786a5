import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { BerthError, InvalidInput, NotFound, RateLimited } from '../core/errors.ts';
import type { Clock, ExecPort, Logger } from '../core/ports.ts';
import type { DeploymentsPort, RollbackPort } from '../core/deployments.ts';
import type { DeploymentRecord, DeploymentStore, DesiredStateStore, EventStore, InstanceRecord, InstanceStore, PurgeStore, StoreWatch } from '../core/store.ts';
import type { Authenticator } from '../auth/index.ts';
import type { ApprovalStore, AuthStore } from '../core/auth.ts';
import type { AuditStore } from '../core/audit.ts';
import { registerAudit } from './audit.ts';
import { registerAuthorization } from './authorize.ts';
import { registerAuthRoutes } from './auth-routes.ts';
import { registerTeamRoutes } from './team-routes.ts';
import { exemptionWarnings, guardrails, type GuardStore } from '../core/guard.ts';
import { registerApprovalRoutes } from './approval-routes.ts';
import { registerPolicyRoutes } from './policy-routes.ts';
import { appStreamQuery, deployBodySchema, followQuery } from './spec-schema.ts';
import { followSse } from './sse.ts';
import { serviceStatus, type PinnedHost } from './status.ts';
import { purgeGuard } from './remove-routes.ts';
import type { LogFilter, LogPage, LogQuery, StoredLine } from '../logs/index.ts';
import type { KnownApps } from './known.ts';
import { openApiDocument, type RegisteredRoute } from './openapi.ts';
import { inScope, registerEventRoutes, sendEventsAfter } from './event-routes.ts';
import { registerServiceRoutes } from './service-routes.ts';
import { storePoolRules } from './pool-routes.ts';
import type { PoolStore } from '../core/pools.ts';

export interface ApiDeps {
  /** TLS for the API (key, cert, SNICallback): when set, it listens with HTTPS only. */
  https?: import('node:https').ServerOptions;
  store: DeploymentStore & DesiredStateStore & InstanceStore & EventStore & Pick<PurgeStore, 'getPurge'> & StoreWatch;
  clock: Clock;
  logger: Logger;
  newId: () => string;
  version: string;
  /** The one deploy path (deploy/deployments.ts): validate, dry-run, create. */
  deployments: DeploymentsPort;
  /** Going back to an earlier release of a service (deploy/rollback.ts). */
  rollback: RollbackPort;
  enqueueService: (app: string, env: string, service: string) => void;
  /** The log store: newest-first search and live tail of every replica. */
  logs: { search(q: LogQuery): LogPage; tail(filter: LogFilter, onLine: (l: StoredLine) => void): () => void };
  ingressPort: number;
  /** How backend changes reach nginx: without a reload (Lua balancer) or by reloading it, with why. */
  ingressBackendUpdates?: () => { mode: 'lua' | 'reload'; reason?: string };
  /** Which apps, environments and services exist: unknown names are 404s with a did-you-mean. */
  known: KnownApps;
  /** Memory the host has for instances' memory limits (`berth scale` refuses more unless forced); undefined: no check. */
  hostMemoryBytes?: number;
  /** `berth exec`: a command in one instance's container (the one engine call, through a narrow port). */
  exec?: ExecPort;
  /** Who is calling: admin token, sessions, API tokens. */
  auth: Authenticator;
  /** Teams, the apps they own, grants. */
  authStore: AuthStore & ApprovalStore & GuardStore & PoolStore;
  /** The audit log: every mutating request and secret read is appended. */
  audit: AuditStore;
  /** The app a build belongs to (object-level checks of /v1/builds/:id). */
  buildApp?: (id: string) => string | undefined;
  /** Many hosts: the host a stateful service is pinned to (the service reconciler's pins), shown by status. */
  pinnedHost?: PinnedHost;
}

/** How long a finished deployment's stream waits for its outcome event before it ends without it. */
const OUTCOME_GRACE_MS = 2000;

const HTTP_STATUS: Record<string, number> = {
  invalid_spec: 400, invalid_input: 400, unauthorized: 401, forbidden: 403, not_found: 404, conflict: 409, rate_limited: 429, engine_unavailable: 503,
};

/**
 * The HTTP API. Handlers validate input, write desired state and enqueue reconcilers; they never
 * call the engine. Every route needs a bearer token. Errors map here, once, to HTTP statuses.
 */
export function buildApi(d: ApiDeps): FastifyInstance {
  // With `https` the same instance serves TLS (server/api-tls.ts); routes and inject() are unchanged.
  // Errors of the router itself (a URL that does not decode, a path parameter over 100 characters)
  // get Berth's error body like every other refusal, not fastify's own shape.
  const frameworkErrors = (err: Error & { code?: string }, _req: FastifyRequest, reply: FastifyReply) => {
    const message = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a name or id in the URL is longer than 100 characters' : 'the URL is not valid (a bad %-escape?)';
    void reply.status(400).send({ error: { code: 'invalid_input', message } });
  };
  const app = (d.https
    ? Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024, https: d.https, frameworkErrors })
    : Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024, frameworkErrors })) as unknown as FastifyInstance;

  // Carried only by the in-process replay of an approved request (approval-routes.ts).
  const replaySecret = randomBytes(32).toString('hex');
  // Who is calling (onRequest) and whether the route's permission allows it (preHandler): api/permissions.ts.
  registerAuthorization(app, {
    auth: d.auth, appTeam: (a) => d.authStore.appTeam(a), appExists: (a) => d.known.envsOf(a) !== undefined,
    claimApp: (a, team) => d.authStore.setAppTeam(a, team),
    approvals: d.authStore, clock: d.clock, newId: d.newId, replaySecret, addEvent: (e) => void d.store.addEvent(e),
    appOf: { deployment: (id) => d.store.getDeployment(id)?.app, build: (id) => d.buildApp?.(id) },
  });

  // While an app is being purged, nothing writes to it (after the token check: a stranger learns nothing).
  app.addHook('onRequest', purgeGuard(d.store));

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number; validation?: unknown }, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof BerthError) {
      const status = HTTP_STATUS[err.code] ?? 500;
      if (err instanceof RateLimited) reply.header('retry-after', String(err.retryAfterS));
      if (status >= 500) d.logger.error({ err: err.message, url: req.url }, 'request failed');
      return reply.status(status).send({ error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } });
    }
    if (err instanceof z.ZodError) {
      return reply.status(400).send({ error: { code: 'invalid_input', message: zodMessage(err), details: { issues: err.issues } } });
    }
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.status(err.statusCode).send({ error: { code: 'invalid_input', message: err.message } });
    }
    d.logger.error({ err: err.message, stack: err.stack, url: req.url }, 'internal error');
    return reply.status(500).send({ error: { code: 'internal', message: 'internal error; see the server log' } });
  });

  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ error: { code: 'not_found', message: `no such endpoint: ${req.method} ${req.url}` } });
  });

  // Every route as fastify registers it (here and in the route modules): the OpenAPI document lists them all.
  const routes: RegisteredRoute[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routes.push({ method, url: r.url });
  });
  let openApi: Record<string, unknown> | undefined;
  app.get('/v1/openapi.json', async () => (openApi ??= openApiDocument(routes, d.version)));

  app.get('/v1/ping', async () => ({
    ok: true, version: d.version, ingressPort: d.ingressPort, ...(d.ingressBackendUpdates ? { ingressBackendUpdates: d.ingressBackendUpdates() } : {}),
  }));

  app.post('/v1/apps/:app/deployments', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const body = deployBodySchema.parse(req.body);
    if (body.spec.name !== appName) throw new InvalidInput(`spec.name "${body.spec.name}" does not match the app in the URL "${appName}"`);
    const request = { app: appName, env: body.env, spec: body.spec, warnings: body.warnings, ...(body.source ? { source: body.source } : {}), ...(req.principal ? { actor: req.principal.subject } : {}) };
    // ?dry_run=true: validate only.
    const q = req.query as { dry_run?: string };
    if (q.dry_run === 'true' || q.dry_run === '1') {
      await d.deployments.validate(request);
      return reply.status(200).send({ valid: true });
    }
    const dep = await d.deployments.create(request);
    return reply.status(202).send({ deployment: publicDeployment(dep) });
  });

  /** A deployment and the status of its services (a service not yet given a release: its name and `pending`). */
  const deploymentView = (id: string) => {
    const dep = d.store.getDeployment(id);
    if (!dep) throw new NotFound(`no deployment ${id}`);
    const services = Object.keys(dep.spec.services).map((name) => {
      const s = d.store.getService({ app: dep.app, env: dep.env, service: name });
      return s ? serviceStatus(d.store, d.clock, s, undefined, d.pinnedHost) : { name, status: 'pending' };
    });
    return { deployment: publicDeployment(dep), services };
  };

  app.get('/v1/deployments/:id', async (req) => deploymentView((req.params as { id: string }).id));

  // A deployment as it goes, over one request (what `berth deploy` waits on): the events of its app and
  // environment after `after` (`event: event`) and its state each time it changes (`event: state`,
  // the body of GET /v1/deployments/ID), woken by the store's writes. Once the deployment has
  // finished, the stream sends its outcome event (`deployment.succeeded`/`failed`) and last state, then ends.
  app.get('/v1/deployments/:id/stream', async (req, reply) => {
    const { id } = req.params as { id: string };
    const q = followQuery.parse(req.query);
    const first = deploymentView(id);
    const scope = { app: first.deployment.app, env: first.deployment.env };
    const cursor = { after: q.after ?? d.store.listEvents({ limit: 1 }).at(-1)?.id ?? 0 };
    let last = '';
    let outcome = false;
    let started = false;
    let finishedAt: number | undefined;
    return followSse(req, reply, {
      store: d.store,
      relevant: (c) => (c.kind === 'event' ? inScope(c.event, scope) : c.kind === 'deployment' ? c.id === id
        : (c.kind === 'instance' || c.kind === 'service') && c.app === scope.app && c.env === scope.env),
      wake: (sink) => {
        sendEventsAfter(d.store, scope, cursor, (e) => {
          if (e.kind === 'deployment.failed' || (e.kind === 'deployment.succeeded' && e.message.includes(id))) outcome = true;
          sink.send('event', e, e.id);
        });
        const view = deploymentView(id);
        const text = JSON.stringify(view);
        if (text !== last) sink.send('state', view);
        last = text;
        const done = view.deployment.status === 'succeeded' || view.deployment.status === 'failed';
        const firstWake = !started;
        started = true;
        if (!done) return false;
        // Finished before the stream opened: its outcome event, if any, is already sent (or before `after`).
        if (firstWake) return true;
        // The controller writes the outcome event with the status; give a late one a moment before ending without it.
        finishedAt ??= Date.now();
        return outcome || Date.now() - finishedAt >= OUTCOME_GRACE_MS;
      },
      rewakeMs: () => (finishedAt !== undefined ? OUTCOME_GRACE_MS : undefined),
    });
  });

  app.get('/v1/apps', async (req) => {
    const see = req.canSee ?? (() => true);
    // Instances by service, in one pass: each service's status reads its own (at 500 services and
    // 5,000 instances, filtering the whole list per service was 2.5 million comparisons a request).
    // The store's own records (read here, never changed nor kept): no copy of every instance per request.
    const byService = new Map<string, Readonly<InstanceRecord>[]>();
    for (const i of d.store.allInstances()) {
      const k = `${i.app}\0${i.env}\0${i.service}`;
      const list = byService.get(k);
      if (list) list.push(i);
      else byService.set(k, [i]);
    }
    const latest = new Map<string, Omit<DeploymentRecord, 'spec' | 'warnings' | 'releases'>>();
    for (const dep of d.store.latestDeployments()) {
      const cur = latest.get(dep.app);
      if (!cur || dep.createdAt > cur.createdAt) latest.set(dep.app, dep);
    }
    return {
      apps: d.store.listApps().filter((a) => see(a.name)).map((a) => {
        const last = latest.get(a.name);
        return {
          name: a.name,
          envs: a.envs,
          services: d.store.listServices({ app: a.name }).map((s) => serviceStatus(d.store, d.clock, s, byService.get(`${s.app}\0${s.env}\0${s.name}`) ?? [], d.pinnedHost)),
          ...(last ? { lastDeployment: { id: last.id, env: last.env, status: last.status, message: last.message, createdAt: last.createdAt } } : {}),
        };
      }),
    };
  });

  app.get('/v1/apps/:app', async (req) => {
    const { app: appName } = req.params as { app: string };
    const { env } = req.query as { env?: string };
    if (env) d.known.requireEnv(appName, env);
    else d.known.requireApp(appName);
    const services = d.store.listServices({ app: appName, ...(env ? { env } : {}) });
    if (services.length === 0) {
      throw new NotFound(`app "${appName}" runs nothing${env ? ` in env "${env}"` : ''} (not deployed yet, or removed): see \`berth events ${appName}\``);
    }
    const instances = d.store.listInstances({ app: appName });
    const warn = exemptionWarnings(d.authStore, d.clock);
    return {
      app: appName, services: services.map((s) => {
        const st = serviceStatus(d.store, d.clock, s, instances, d.pinnedHost);
        const spec = d.store.getRelease(s.releaseId)?.spec;
        const warnings = spec ? warn(appName, s.env, [spec]) : [];
        return warnings.length ? { ...st, warnings } : st;
      }),
    };
  });

  // An app's services as they change, over one request (what rollback, restart and reload wait on):
  // the events of the app (and environment) after `after` (`event: event`) and the body of GET
  // /v1/apps/APP each time it changes (`event: state`; `services` is empty once nothing runs). Runs
  // until the client closes it.
  app.get('/v1/apps/:app/stream', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const q = appStreamQuery.parse(req.query);
    if (q.env) d.known.requireEnv(appName, q.env);
    else d.known.requireApp(appName);
    const scope = { app: appName, ...(q.env ? { env: q.env } : {}) };
    const cursor = { after: q.after ?? d.store.listEvents({ limit: 1 }).at(-1)?.id ?? 0 };
    let last = '';
    return followSse(req, reply, {
      store: d.store,
      relevant: (c) => (c.kind === 'event' ? inScope(c.event, scope)
        : (c.kind === 'instance' || c.kind === 'service') && c.app === appName && (!q.env || c.env === q.env)),
      wake: (sink) => {
        sendEventsAfter(d.store, scope, cursor, (e) => sink.send('event', e, e.id));
        const instances = d.store.listInstances({ app: appName });
        const view = { app: appName, services: d.store.listServices(scope).map((s) => serviceStatus(d.store, d.clock, s, instances, d.pinnedHost)) };
        const text = JSON.stringify(view);
        if (text !== last) sink.send('state', view);
        last = text;
        return false;
      },
    });
  });

  registerServiceRoutes(app, { store: d.store, clock: d.clock, logger: d.logger, newId: d.newId, enqueueService: d.enqueueService, known: d.known, rollback: d.rollback, guard: guardrails(d.authStore, d.clock),
    pools: storePoolRules({ authStore: d.authStore, desired: d.store, auth: d.auth }),
    ...(d.hostMemoryBytes !== undefined ? { hostMemoryBytes: d.hostMemoryBytes } : {}), ...(d.exec ? { exec: d.exec } : {}) });
  registerEventRoutes(app, { store: d.store, clock: d.clock, known: d.known, logs: d.logs });
  registerAuthRoutes(app, { auth: d.auth, store: d.authStore, clock: d.clock, newId: d.newId });
  // Every change and secret read, after it was answered (hooks reach every route, registered before or after).
  registerAudit(app, { audit: d.audit, clock: d.clock });
  registerApprovalRoutes(app, { auth: d.auth, store: d.authStore, clock: d.clock, replaySecret, addEvent: (e) => void d.store.addEvent(e) });
  registerTeamRoutes(app, { store: d.authStore, clock: d.clock, newId: d.newId, requireApp: (a) => d.known.requireApp(a) });
  registerPolicyRoutes(app, { store: d.authStore, clock: d.clock, newId: d.newId });
  return app;
}

function publicDeployment(dep: DeploymentRecord) {
  const { spec, ...rest } = dep;
  return { ...rest, services: Object.keys(spec.services) };
}

function zodMessage(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`).join('; ');
}
