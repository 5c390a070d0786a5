import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { Conflict, InvalidInput, NotFound } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import type { AppRemains } from '../core/app-remains.ts';
import type { DeploymentStore, DesiredStateStore, EventStore, PurgeRecord, PurgeStore, StoreWatch } from '../core/store.ts';
import { followSse } from './sse.ts';
import type { KnownApps } from './known.ts';

export interface RemoveRouteDeps {
  store: DesiredStateStore & DeploymentStore & EventStore & PurgeStore & StoreWatch;
  clock: Clock;
  known: KnownApps;
  enqueueService: (app: string, env: string, service: string) => void;
  enqueuePurge: (app: string) => void;
  /** What Berth keeps of the app besides its services (configuration, builds, images, ...). */
  remains: (app: string) => Promise<AppRemains>;
  /** Builds of the app that have not finished (queued or running), newest first. */
  unfinishedBuilds: (app: string) => { id: string; status: string; stage?: string }[];
}

export const removeQuery = z.object({
  env: z.string().min(1).optional(),
  purge: z.enum(['true', 'false', '1', '0']).optional(),
});

/**
 * `berth rm`: `DELETE /v1/apps/APP[?env=ENV]` takes the app's services out (their reconcilers stop
 * the instances gracefully) and answers with what Berth still keeps of the app; `?purge=true` also
 * removes all of that — see purge/ — and is refused (409) while a build or deployment of the app is
 * in progress. `GET /v1/apps/APP/purge` (and `/purge/stream`, as it changes) follows a purge. Both are authorized like every route (the
 * bearer token); the purge is asked for the whole app, never one environment.
 */
export function registerRemoveRoutes(app: FastifyInstance, d: RemoveRouteDeps): void {
  app.delete('/v1/apps/:app', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const q = removeQuery.parse(req.query);
    const purge = q.purge === 'true' || q.purge === '1';
    if (purge) {
      if (q.env) {
        throw new InvalidInput(`--purge removes the whole app (configuration, builds, images, repository of every environment): ` +
          `drop --env, or stop one environment with \`berth rm ${appName} --env ${q.env}\``);
      }
      return reply.status(202).send(await startPurge(d, appName));
    }
    if (q.env) d.known.requireEnv(appName, q.env);
    else d.known.requireApp(appName);
    const services = d.store.listServices({ app: appName, ...(q.env ? { env: q.env } : {}) });
    for (const s of services) {
      d.store.deleteService({ app: s.app, env: s.env, service: s.name });
      d.store.addEvent({ app: s.app, env: s.env, service: s.name, instance: '', kind: 'service.removed', message: `${s.name} removed` });
      d.enqueueService(s.app, s.env, s.name);
    }
    // Nothing running is not an error when the app still has records: the answer says what they are.
    return reply.status(services.length ? 202 : 200).send({ removed: services.map((s) => `${s.env}/${s.name}`), remains: await d.remains(appName) });
  });

  app.get('/v1/apps/:app/purge', async (req) => {
    const { app: appName } = req.params as { app: string };
    const rec = d.store.getPurge(appName);
    if (!rec) throw new NotFound(`no purge of "${appName}" was asked: \`berth rm ${appName} --purge\` starts one`);
    return { purge: rec };
  });

  // A purge as it goes (what `berth rm --purge` waits on): its record each time it changes
  // (`event: state`, the body of GET /v1/apps/APP/purge), woken by the store's writes; ends once done.
  app.get('/v1/apps/:app/purge/stream', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    if (!d.store.getPurge(appName)) throw new NotFound(`no purge of "${appName}" was asked: \`berth rm ${appName} --purge\` starts one`);
    let last = '';
    return followSse(req, reply, {
      store: d.store,
      relevant: (c) => c.kind === 'purge' && c.app === appName,
      wake: (sink) => {
        const rec = d.store.getPurge(appName);
        if (!rec) return true;
        const text = JSON.stringify(rec);
        if (text !== last) sink.send('state', { purge: rec });
        last = text;
        return rec.state === 'done';
      },
    });
  });
}

async function startPurge(d: RemoveRouteDeps, appName: string): Promise<{ purge: PurgeRecord; removed: string[]; remains: AppRemains }> {
  const cur = d.store.getPurge(appName);
  if (cur?.state === 'purging') {
    // Asked again (a CLI that gave up waiting, a retry): the same purge, looked at now.
    d.enqueuePurge(appName);
    return { purge: cur, removed: [], remains: await d.remains(appName) };
  }
  d.known.requireApp(appName);
  const deploying = d.store.listDeployments({ status: ['pending', 'building', 'rolling'] }).filter((x) => x.app === appName);
  if (deploying.length > 0) {
    const x = deploying[0]!;
    throw new Conflict(`deployment ${x.id} of ${appName}/${x.env} is ${x.status}: wait until it ends (\`berth status ${appName}\`), then purge`);
  }
  const building = d.unfinishedBuilds(appName);
  if (building.length > 0) {
    const b = building[0]!;
    throw new Conflict(`build ${b.id} of ${appName} is ${b.status}${b.stage ? ` (${b.stage})` : ''}: ` +
      `wait for it or cancel it (\`berth build cancel ${b.id}\`), then purge`);
  }
  const remains = await d.remains(appName);
  const rec: PurgeRecord = {
    app: appName, state: 'purging', requestedAt: d.clock.now(), requestedBy: 'admin', volumes: remains.volumes, removed: {},
    waiting: 'waiting for the app\'s containers to stop',
  };
  // The services go in the same transaction that records the purge: nothing half-asked.
  const services = d.store.startPurge(rec);
  for (const s of services) d.enqueueService(s.app, s.env, s.name);
  d.enqueuePurge(appName);
  return { purge: d.store.getPurge(appName) ?? rec, removed: services.map((s) => `${s.env}/${s.name}`), remains };
}

/** Which app a request writes to (or reads git from), if any: what a purge in progress must refuse. */
export function appOfWrite(method: string, url: string): string | undefined {
  const path = url.split('?', 1)[0]!;
  const dec = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const git = /^\/git\/([^/]+)\.git\//.exec(path);
  if (git) return dec(git[1]!);
  if (method === 'GET' || method === 'HEAD') return undefined;
  const hook = /^\/v1\/hooks\/[^/]+\/([^/]+)\/?$/.exec(path);
  if (hook) return dec(hook[1]!);
  if (path === '/v1/git/hooks/pre-receive') return new URLSearchParams(url.slice(path.length + 1)).get('app') ?? undefined;
  const m = /^\/v1\/apps\/([^/]+)(\/.*)?$/.exec(path);
  // DELETE /v1/apps/APP itself is how a purge is asked (again).
  if (m && !(method === 'DELETE' && !m[2])) return dec(m[1]!);
  return undefined;
}

/**
 * An onRequest hook: while an app is being purged nothing may write to it — deploy, config and
 * secrets, git push, webhooks, scale — or the purge would race what it removes (409).
 */
export function purgeGuard(store: Pick<PurgeStore, 'getPurge'>) {
  return async (req: FastifyRequest): Promise<void> => {
    const app = appOfWrite(req.method, req.url);
    if (app === undefined) return;
    if (store.getPurge(app)?.state === 'purging') {
      throw new Conflict(`app "${app}" is being purged (\`berth rm ${app} --purge\`): wait until it is done, then deploy it anew`);
    }
  };
}
