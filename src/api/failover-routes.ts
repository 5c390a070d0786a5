/**
 * `berth failover APP SERVICE --to HOST` over HTTP (issue 13 item 3): a stateful service (named
 * volumes) is pinned to its host and never moved by Berth on its own; this is the explicit, documented
 * move. The handler checks the target, re-pins the service (FailoverPort) and asks for its instances
 * to be replaced (desired state); the service reconciler does the rest — a lost instance is removed and
 * started on the target, a live one is replaced start-first. The volumes start empty there.
 */
import type { FastifyInstance } from 'fastify';
import { Conflict, NotFound } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import type { DesiredStateStore, EventStore, InstanceStore } from '../core/store.ts';
import type { FailoverPort } from '../core/failover.ts';
import type { KnownApps } from './known.ts';
import { failoverBodySchema } from './spec-schema.ts';

export interface FailoverRouteDeps {
  store: DesiredStateStore & InstanceStore & EventStore;
  clock: Clock;
  known: KnownApps;
  enqueueService: (app: string, env: string, service: string) => void;
  failover: FailoverPort;
}

export function registerFailoverRoutes(app: FastifyInstance, d: FailoverRouteDeps): void {
  app.post('/v1/apps/:app/failover', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const body = failoverBodySchema.parse(req.body);
    d.known.requireService(appName, body.env, body.service);
    const k = { app: appName, env: body.env, service: body.service };
    const svc = d.store.getService(k);
    if (!svc) throw new NotFound(`${appName}/${body.env} has no service ${body.service}: \`berth status ${appName}\` lists its services`);
    const rel = d.store.getRelease(svc.releaseId);
    const volumes = rel?.spec.volumes.filter((m) => m.type === 'volume').map((m) => m.source) ?? [];
    if (volumes.length === 0) {
      throw new Conflict(`${body.service} has no named volume, so it is not pinned to a host: Berth replaces its instances on another host of its pool by itself when their host dies`);
    }
    const hosts = await d.failover.hosts();
    const target = hosts.find((h) => h.name === body.to);
    if (!target) throw new NotFound(`no host ${body.to}: \`berth hosts\` lists them (${hosts.map((h) => h.name).join(', ')})`);
    if (target.state !== 'ready') throw new Conflict(`host ${body.to} is ${target.state}: pick a ready host (\`berth hosts\`)`);
    const insts = d.store.listInstances(k).filter((i) => i.state === 'running' || i.state === 'pending');
    const from = [...new Set(insts.map((i) => i.host))];
    if (from.length === 1 && from[0] === body.to) throw new Conflict(`${body.service} runs on ${body.to} already`);
    // A service whose host is up keeps its data there: moving it away is a choice to say out loud.
    const upFrom = from.filter((f) => hosts.find((h) => h.name === f)?.state !== 'down' && f !== body.to);
    if (upFrom.length && !body.force) {
      throw new Conflict(`${body.service}'s host ${upFrom.join(', ')} is not down: its volume${volumes.length === 1 ? '' : 's'} ${volumes.join(', ')} would start empty on ${body.to} while the data stays there; add --force (force: true) to move it anyway`);
    }
    d.failover.pinTo(k, body.to);
    const at = d.clock.now();
    for (const i of insts) if (i.replaceRequestedAt === undefined) d.store.updateInstance(i.id, { replaceRequestedAt: at });
    d.store.addEvent({ ...k, instance: '', kind: 'service.failover',
      message: `${body.service} moves to host ${body.to} as asked (from ${from.join(', ') || 'nowhere'}): volume${volumes.length === 1 ? '' : 's'} ${volumes.join(', ')} start${volumes.length === 1 ? 's' : ''} empty there` });
    d.enqueueService(appName, body.env, body.service);
    return reply.status(202).send({ service: body.service, env: body.env, from: from.join(', '), to: body.to, volumes, instances: insts.map((i) => i.id) });
  });
}
