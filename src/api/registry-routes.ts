import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { InvalidInput, NotFound } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import type { EventStore, ExternalRecord, ExternalStore } from '../core/store.ts';
import { durationMs } from './spec-schema.ts';

/** What the routes need of the registry (implemented by registry/Registry). */
export interface RegistryView {
  readonly currentIndex: number;
  entries(): { key: string; env: string; service: string; app?: string; address: string; port: number; health: string; source: string; id: string }[];
  /** An app's service when `app` is given, else the external service of that name. */
  healthy(env: string, service: string, app?: string): ReturnType<RegistryView['entries']>;
  /** Apps with a service of that name in `env` when no external service has that name (registry/Registry.appsOnly). */
  appsOnly(env: string, service: string): string[];
  waitFor(index: number, timeoutMs: number): Promise<number>;
  refresh(): void;
}

const name = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes').max(63);
const duration = durationMs();
export const registerBody = z.object({
  address: z.string().regex(/^[0-9a-fA-F.:]+$|^[a-z0-9.-]+$/, 'an IP address or host name'),
  port: z.number().int().min(1).max(65535),
  ttl: duration.optional(),
  check: z.union([
    z.object({ http: z.string().startsWith('/'), interval: duration.optional() }),
    z.object({ tcp: z.literal(true), interval: duration.optional() }),
  ]).optional(),
});

/**
 * The registry over HTTP: list, Consul-style blocking queries (`?index=&wait=`) and an SSE stream of a
 * service's healthy instances; registration, heartbeats and deregistration of external services.
 * `/v1/registry/ENV/SERVICE?app=APP` is app APP's service; without `app` the path is the external
 * service registered there (as DNS: `SERVICE.APP.ENV.berth` vs `SERVICE.ENV.berth`), so two apps'
 * services of the same name never mix.
 */
export function registerRegistryRoutes(app: FastifyInstance, d: { store: ExternalStore & EventStore; registry: RegistryView; clock: Clock; newId: () => string }): void {
  const params = (p: unknown) => z.object({ env: name, service: name }).parse(p);
  /** The app whose service is asked for (undefined: the external service), or a 400 when only apps have such a service. */
  const scopeOf = (env: string, service: string, appName: string | undefined): string | undefined => {
    if (appName !== undefined) return appName;
    const apps = d.registry.appsOnly(env, service);
    if (apps.length > 0) {
      throw new InvalidInput(`"${service}" in ${env} is a service of ${apps.length > 1 ? 'apps' : 'app'} ${apps.join(', ')}, not an external service: ` +
        `ask for one app's instances with ?app=APP, e.g. /v1/registry/${env}/${service}?app=${apps[0]} (without app= this path is the external service "${service}" of ${env})`);
    }
    return undefined;
  };

  app.get('/v1/registry', async (_req, reply) => {
    reply.header('x-berth-index', String(d.registry.currentIndex));
    return { index: d.registry.currentIndex, entries: d.registry.entries() };
  });

  app.get('/v1/registry/:env/:service', async (req, reply) => {
    const { env, service } = params(req.params);
    const q = z.object({ index: z.coerce.number().int().min(0).optional(), wait: duration.optional(), app: name.optional() }).parse(req.query);
    const appName = scopeOf(env, service, q.app);
    let index = d.registry.currentIndex;
    if (q.index !== undefined && q.index >= index) index = await d.registry.waitFor(q.index, Math.min(q.wait ?? 30_000, 300_000));
    reply.header('x-berth-index', String(index));
    return { index, service, env, ...(appName ? { app: appName } : {}), instances: d.registry.healthy(env, service, appName) };
  });

  app.get('/v1/registry/:env/:service/stream', async (req, reply) => {
    const { env, service } = params(req.params);
    const appName = scopeOf(env, service, z.object({ app: name.optional() }).parse(req.query).app);
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    let open = true;
    req.raw.on('close', () => (open = false));
    let last = '';
    let index = 0;
    while (open) {
      const inst = d.registry.healthy(env, service, appName);
      const body = JSON.stringify({ index: d.registry.currentIndex, instances: inst });
      const sig = JSON.stringify(inst);
      if (sig !== last) {
        reply.raw.write(`id: ${d.registry.currentIndex}\nevent: instances\ndata: ${body}\n\n`);
        last = sig;
      }
      index = await d.registry.waitFor(Math.max(index, d.registry.currentIndex), 15_000);
      if (open) reply.raw.write(': keep-alive\n\n');
    }
    return reply;
  });

  app.post('/v1/registry/:env/:service', async (req, reply) => {
    const { env, service } = params(req.params);
    const b = registerBody.parse(req.body);
    const now = d.clock.now();
    const check: ExternalRecord['check'] = !b.check ? { type: 'none' }
      : 'http' in b.check ? { type: 'http', path: b.check.http, intervalMs: b.check.interval ?? 2000 } : { type: 'tcp', intervalMs: b.check.interval ?? 2000 };
    const rec = d.store.putExternal({
      id: d.newId(), env, service, address: b.address, port: b.port, check, ...(b.ttl ? { ttlMs: b.ttl } : {}),
      lastHeartbeatAt: now, health: check.type === 'none' ? 'healthy' : 'starting', registeredAt: now,
    });
    d.store.addEvent({ app: '', env, service, instance: rec.id, kind: 'external.registered', message: `external ${b.address}:${b.port} registered as ${service}.${env}` });
    d.registry.refresh();
    return reply.status(201).send({ id: rec.id, key: `/${service}_${env}/${b.address}-${b.port}` });
  });

  app.put('/v1/registry/external/:id/heartbeat', async (req) => {
    const { id } = req.params as { id: string };
    const x = d.store.getExternal(id);
    if (!x) throw new NotFound(`no external registration ${id} (deregistered, or never registered): register again`);
    // With a check, the check decides health; without one, a heartbeat is what makes it healthy.
    d.store.updateExternal(id, { lastHeartbeatAt: d.clock.now(), health: x.check.type === 'none' ? 'healthy' : x.health });
    d.registry.refresh();
    return { id, ttlMs: x.ttlMs ?? null };
  });

  app.delete('/v1/registry/external/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    const x = d.store.getExternal(id);
    if (!x) throw new NotFound(`no external registration ${id}`);
    d.store.deleteExternal(id);
    d.store.addEvent({ app: '', env: x.env, service: x.service, instance: id, kind: 'external.deregistered', message: `external ${x.address}:${x.port} deregistered from ${x.service}.${x.env}` });
    d.registry.refresh();
    return reply.status(204).send();
  });
}
