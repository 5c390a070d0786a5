import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { BerthError, Conflict, InvalidInput, NotFound, Unauthorized } from '../core/errors.ts';
import type { Clock, Logger } from '../core/ports.ts';
import type { AppSpec } from '../core/spec/types.ts';
import type { DeploymentRecord, Store } from '../core/store.ts';
import { hashToken } from '../auth/index.ts';
import { basicAuthToken, isGitHookRequest } from './git-routes.ts';
import { WEBHOOK_PREFIX } from './webhook-routes.ts';
import { deployBodySchema, reloadBodySchema, rollbackBodySchema, scaleBodySchema } from './spec-schema.ts';
import { rollbackTarget, rollbackTo } from '../deploy/rollback.ts';
import { serviceStatus } from './status.ts';
import type { LogFilter, LogPage, LogQuery, StoredLine } from '../logs/index.ts';

export interface ApiDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  newId: () => string;
  version: string;
  enqueueDeployment: (id: string) => void;
  enqueueService: (app: string, env: string, service: string) => void;
  /** The log store: newest-first search and live tail of every replica. */
  logs: { search(q: LogQuery): LogPage; tail(filter: LogFilter, onLine: (l: StoredLine) => void): () => void };
  ingressPort: number;
}

const HTTP_STATUS: Record<string, number> = {
  invalid_spec: 400, invalid_input: 400, unauthorized: 401, forbidden: 403, not_found: 404, conflict: 409, engine_unavailable: 503,
};

/**
 * The HTTP API. Handlers validate input, write desired state and enqueue reconcilers; they never
 * call the engine. Every route needs a bearer token. Errors map here, once, to HTTP statuses.
 */
export function buildApi(d: ApiDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });

  app.addHook('onRequest', async (req) => {
    // These routes authenticate themselves: the pre-receive hook's token, webhook signatures.
    if (isGitHookRequest(req.url) || req.url.startsWith(WEBHOOK_PREFIX)) return;
    const h = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(h) ?? basicAuthToken(h);
    if (!m) throw new Unauthorized('missing bearer token: send "Authorization: Bearer TOKEN" (the admin token is in DATA_DIR/admin.token)');
    const hash = hashToken(m[1]!);
    // Tokens are looked up by their SHA-256: comparing hashes leaks nothing useful about the token.
    if (!d.store.hasToken(hash)) {
      throw new Unauthorized('invalid token: use the token in DATA_DIR/admin.token');
    }
  });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number; validation?: unknown }, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof BerthError) {
      const status = HTTP_STATUS[err.code] ?? 500;
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

  app.get('/v1/ping', async () => ({ ok: true, version: d.version, ingressPort: d.ingressPort }));

  app.post('/v1/apps/:app/deployments', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const body = deployBodySchema.parse(req.body);
    if (body.spec.name !== appName) throw new InvalidInput(`spec.name "${body.spec.name}" does not match the app in the URL "${appName}"`);
    checkServiceNames(body.spec);
    checkRouteConflicts(d.store, body.spec, body.env);
    // ?dry_run=true: validate only (the push pipeline asks before it spends a build on a refused deploy).
    const q = req.query as { dry_run?: string };
    if (q.dry_run === 'true' || q.dry_run === '1') return reply.status(200).send({ valid: true });
    const dep: DeploymentRecord = {
      id: d.newId(), app: appName, env: body.env, spec: body.spec, warnings: body.warnings, status: 'pending', message: '',
      createdAt: d.clock.now(), createdBy: 'admin', releases: {},
    };
    d.store.createDeployment(dep);
    d.store.addEvent({ app: appName, env: body.env, service: '', instance: '', kind: 'deployment.created',
      message: `deployment ${dep.id} of ${appName}/${body.env}: ${Object.keys(body.spec.services).join(', ')}` });
    d.enqueueDeployment(dep.id);
    return reply.status(202).send({ deployment: publicDeployment(dep) });
  });

  app.get('/v1/deployments/:id', async (req) => {
    const { id } = req.params as { id: string };
    const dep = d.store.getDeployment(id);
    if (!dep) throw new NotFound(`no deployment ${id}`);
    const services = Object.keys(dep.spec.services).map((name) => {
      const s = d.store.getService({ app: dep.app, env: dep.env, service: name });
      return s ? serviceStatus(d.store, d.clock, s) : { name, status: 'pending' };
    });
    return { deployment: publicDeployment(dep), services };
  });

  app.get('/v1/apps', async () => {
    const instances = d.store.listInstances();
    return {
      apps: d.store.listApps().map((a) => ({
        name: a.name,
        envs: a.envs,
        services: d.store.listServices({ app: a.name }).map((s) => serviceStatus(d.store, d.clock, s, instances)),
      })),
    };
  });

  app.get('/v1/apps/:app', async (req) => {
    const { app: appName } = req.params as { app: string };
    const { env } = req.query as { env?: string };
    const services = d.store.listServices({ app: appName, ...(env ? { env } : {}) });
    if (services.length === 0) throw new NotFound(`no app "${appName}"${env ? ` in env "${env}"` : ''}: see \`berth status\` for the apps there are`);
    const instances = d.store.listInstances({ app: appName });
    return { app: appName, services: services.map((s) => serviceStatus(d.store, d.clock, s, instances)) };
  });

  app.get('/v1/apps/:app/releases', async (req) => {
    const { app: appName } = req.params as { app: string };
    const q = req.query as { env?: string; service?: string };
    const current = new Set(d.store.listServices({ app: appName }).map((s) => s.releaseId));
    return { releases: d.store.listReleases({ app: appName, ...(q.env ? { env: q.env } : {}), ...(q.service ? { service: q.service } : {}) })
      .map(({ spec, ...r }) => ({ ...r, strategy: spec.update?.strategy ?? 'rolling', replicas: spec.replicas, current: current.has(r.id) })) };
  });

  app.post('/v1/apps/:app/scale', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const body = scaleBodySchema.parse(req.body);
    const k = { app: appName, env: body.env, service: body.service };
    const svc = d.store.getService(k);
    if (!svc) {
      const names = d.store.listServices({ app: appName, env: body.env }).map((s) => s.name);
      throw new NotFound(`no service "${body.service}" in ${appName}/${body.env}${names.length ? `: services are ${names.join(', ')}` : ''}`);
    }
    d.store.updateService(k, { replicas: body.replicas });
    d.store.addEvent({ ...k, instance: '', kind: 'service.scaled', message: `${body.service} scaled from ${svc.replicas} to ${body.replicas}` });
    d.enqueueService(appName, body.env, body.service);
    return reply.status(202).send({ service: body.service, from: svc.replicas, to: body.replicas });
  });

  app.post('/v1/apps/:app/rollback', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const body = rollbackBodySchema.parse(req.body ?? {});
    const services = body.service ? [body.service] : d.store.listServices({ app: appName, env: body.env }).map((s) => s.name);
    if (services.length === 0) throw new NotFound(`no app "${appName}" in env "${body.env}"`);
    if (body.to !== undefined && services.length > 1) throw new InvalidInput('--to names a release of one service: give the service too, e.g. `berth rollback APP web --to 3`');
    // Resolve every target first: a rollback of several services is all or nothing.
    const plan = services.map((service) => {
      const k = { app: appName, env: body.env, service };
      return { k, target: rollbackTarget(d.store, k, body.to) };
    });
    for (const { k, target } of plan) {
      rollbackTo(d.store, d.clock, k, target, 'requested');
      d.enqueueService(k.app, k.env, k.service);
    }
    return reply.status(202).send({ rollbacks: plan.map(({ k, target }) => ({ service: k.service, to: target.seq, release: target.id })) });
  });

  app.post('/v1/apps/:app/reload', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const body = reloadBodySchema.parse(req.body ?? {});
    const k = { app: appName, env: body.env, service: body.service };
    const svc = d.store.getService(k);
    if (!svc) throw new NotFound(`no service "${body.service}" in ${appName}/${body.env}`);
    const at = Math.max(d.clock.now(), (svc.reloadRequestedAt ?? 0) + 1);
    d.store.updateService(k, { reloadRequestedAt: at });
    d.store.addEvent({ ...k, instance: '', kind: 'service.reload_requested', message: `reload of ${body.service} requested` });
    d.enqueueService(appName, body.env, body.service);
    return reply.status(202).send({ service: body.service, requestedAt: at });
  });

  // Server-sent events: the event timeline as it happens (deploy progress, health flips, rollbacks).
  app.get('/v1/events/stream', async (req, reply) => {
    const q = z.object({ app: z.string().optional(), env: z.string().optional(), after: z.coerce.number().int().min(0).optional() }).parse(req.query);
    let after = q.after ?? d.store.listEvents({ limit: 1 }).at(-1)?.id ?? 0;
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    reply.raw.write(': berth events\n\n');
    const timer = setInterval(() => {
      const evs = d.store.listEvents({ ...(q.app ? { app: q.app } : {}), ...(q.env ? { env: q.env } : {}), afterId: after, limit: 500 });
      for (const e of evs) {
        reply.raw.write(`id: ${e.id}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`);
        after = e.id;
      }
    }, 100);
    await new Promise<void>((resolve) => req.raw.on('close', () => resolve()));
    clearInterval(timer);
    return reply;
  });

  app.get('/v1/apps/:app/releases/:id', async (req) => {
    const { app: appName, id } = req.params as { app: string; id: string };
    const rel = d.store.getRelease(id);
    if (!rel || rel.app !== appName) throw new NotFound(`no release ${id} of ${appName}`);
    const events = d.store.listEvents({ app: appName, env: rel.env, service: rel.service, limit: 1000 })
      .filter((e) => e.ts >= rel.createdAt && (rel.finishedAt === undefined || e.ts <= rel.finishedAt + 1000));
    return { release: rel, events };
  });

  app.delete('/v1/apps/:app', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const { env } = req.query as { env?: string };
    const services = d.store.listServices({ app: appName, ...(env ? { env } : {}) });
    if (services.length === 0) throw new NotFound(`no app "${appName}"${env ? ` in env "${env}"` : ''}`);
    for (const s of services) {
      d.store.deleteService({ app: s.app, env: s.env, service: s.name });
      d.store.addEvent({ app: s.app, env: s.env, service: s.name, instance: '', kind: 'service.removed', message: `${s.name} removed` });
      d.enqueueService(s.app, s.env, s.name);
    }
    return reply.status(202).send({ removed: services.map((s) => `${s.env}/${s.name}`) });
  });

  app.get('/v1/apps/:app/logs', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const q = z.object({
      env: z.string().default('prod'), service: z.string().optional(), instance: z.string().optional(),
      grep: z.string().max(500).optional(), level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).optional(),
      stream: z.enum(['stdout', 'stderr']).optional(), since: z.string().optional(), until: z.string().optional(),
      before: z.string().regex(/^\d+$/, 'a cursor from a previous page').optional(),
      follow: z.enum(['true', 'false', '1', '0']).optional(), limit: z.coerce.number().int().min(1).max(10_000).default(200),
    }).parse(req.query);
    if (d.store.listServices({ app: appName, env: q.env }).length === 0 && d.store.listReleases({ app: appName, env: q.env }).length === 0) {
      throw new NotFound(`no app "${appName}" in env "${q.env}"`);
    }
    const now = d.clock.now();
    const filter: LogFilter = {
      app: appName, env: q.env, ...(q.service ? { service: q.service } : {}), ...(q.instance ? { instance: q.instance } : {}),
      ...(q.grep ? { text: q.grep } : {}), ...(q.level ? { level: q.level } : {}), ...(q.stream ? { stream: q.stream } : {}),
      ...(q.since ? { since: timeArg('since', q.since, now) } : {}), ...(q.until ? { until: timeArg('until', q.until, now) } : {}),
    };
    const page = d.logs.search({ ...filter, limit: q.limit, ...(q.before ? { before: q.before } : {}) });
    const follow = q.follow === 'true' || q.follow === '1';
    if (!follow) return { lines: page.lines, ...(page.next ? { next: page.next } : {}) };
    // Live tail: the latest page oldest-first, then every new line of every replica as it arrives.
    reply.raw.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    for (const l of [...page.lines].reverse()) reply.raw.write(JSON.stringify(l) + '\n');
    const untail = d.logs.tail(filter, (l) => reply.raw.write(JSON.stringify(l) + '\n'));
    await new Promise<void>((resolve) => req.raw.on('close', () => resolve()));
    untail();
    return reply;
  });

  app.get('/v1/events', async (req) => {
    const q = z.object({
      app: z.string().optional(), env: z.string().optional(), service: z.string().optional(),
      after: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(1000).default(100),
    }).parse(req.query);
    return { events: d.store.listEvents({ ...q.app ? { app: q.app } : {}, ...q.env ? { env: q.env } : {}, ...q.service ? { service: q.service } : {}, afterId: q.after, limit: q.limit }) };
  });

  return app;
}

/** `1h`, `30m`, `90s`, `2d` before now, an ISO time, or epoch milliseconds. */
function timeArg(name: string, v: string, now: number): number {
  const rel = /^(\d+)(ms|s|m|h|d)$/.exec(v);
  if (rel) return now - Number(rel[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  if (/^\d{12,}$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidInput(`${name} "${v}" is not a time: write e.g. 1h, 30m, 2026-01-31T12:00:00Z or epoch milliseconds`);
  return t;
}

function publicDeployment(dep: DeploymentRecord) {
  const { spec, ...rest } = dep;
  return { ...rest, services: Object.keys(spec.services) };
}

function checkServiceNames(spec: AppSpec): void {
  for (const [key, s] of Object.entries(spec.services)) {
    if (key !== s.name) throw new InvalidInput(`spec.services.${key}.name is "${s.name}": it must equal its key "${key}"`);
  }
}

/** Two apps (or environments) claiming the same host and path would steal each other's traffic. */
function checkRouteConflicts(store: Store, spec: AppSpec, env: string): void {
  const claimed = new Map<string, string>();
  for (const s of store.listServices()) {
    if (s.app === spec.name && s.env === env) continue;
    const rel = store.getRelease(s.releaseId);
    for (const r of rel?.spec.routes ?? []) claimed.set(`${r.host ?? '*'}${r.path}`, `${s.app}/${s.env}/${s.name}`);
  }
  const mine = new Map<string, string>();
  for (const s of Object.values(spec.services)) {
    for (const r of s.routes) {
      const key = `${r.host ?? '*'}${r.path}`;
      const other = claimed.get(key) ?? mine.get(key);
      if (other) throw new Conflict(`route ${r.host ?? '(any host)'}${r.path} of ${s.name} is already served by ${other}: choose another host or path`);
      mine.set(key, `${spec.name}/${env}/${s.name}`);
    }
  }
}

function zodMessage(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`).join('; ');
}
