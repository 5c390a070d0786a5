/**
 * An app's services over HTTP: their releases (`GET …/releases`, `GET …/releases/ID`), and the
 * changes to their desired state — scale, rollback, reload, restart — plus `exec`, a command in one
 * instance's container. Handlers write desired state and enqueue the service reconcilers; the only
 * engine call is exec's, through its narrow port.
 */
import type { FastifyInstance } from 'fastify';
import { BerthError, Conflict, InvalidInput, NotFound } from '../core/errors.ts';
import type { Clock, ExecPort, Logger } from '../core/ports.ts';
import type { InstanceRecord, ReleaseRecord, ServiceRecord, DesiredStateStore, EventStore, InstanceStore } from '../core/store.ts';
import { unknownName } from '../core/spec/suggest.ts';
import { checkScaleMemory, type ServiceReservation } from '../core/capacity.ts';
import type { RollbackPort } from '../core/deployments.ts';
import type { GuardResult } from '../core/guard.ts';
import { admit, type PoolRulesOf } from '../core/pool-admission.ts';
import type { AppSpec } from '../core/spec/types.ts';
import type { KnownApps } from './known.ts';
import { execBodySchema, instanceRestartBodySchema, reloadBodySchema, restartBodySchema, rollbackBodySchema, scaleBodySchema } from './spec-schema.ts';

export interface ServiceRouteDeps {
  store: DesiredStateStore & InstanceStore & EventStore;
  clock: Clock;
  logger: Logger;
  newId: () => string;
  enqueueService: (app: string, env: string, service: string) => void;
  known: KnownApps;
  /** Going back to an earlier release (deploy/rollback.ts, injected). */
  rollback: RollbackPort;
  /** Memory the host has for instances' memory limits (`berth scale` refuses more unless forced); undefined: no check. */
  hostMemoryBytes?: number;
  /** `berth exec`: a command in one instance's container (the one engine call, through a narrow port). */
  exec?: ExecPort;
  /** The container guardrails (core/guard.ts): a manual rollback to a release the policy now refuses is refused. */
  guard?: (app: string, env: string, spec: AppSpec) => GuardResult;
  /** Pool grants and quotas (core/pool-admission.ts admit): growing a service is admitted like a deploy (owners bypass grants, not quotas). */
  pools?: PoolRulesOf;
}

export function registerServiceRoutes(app: FastifyInstance, d: ServiceRouteDeps): void {
  app.get('/v1/apps/:app/releases', async (req) => {
    const { app: appName } = req.params as { app: string };
    const q = req.query as { env?: string; service?: string };
    if (q.service) d.known.requireService(appName, q.env, q.service);
    else if (q.env) d.known.requireEnv(appName, q.env);
    else d.known.requireApp(appName);
    const current = new Set(d.store.listServices({ app: appName }).map((s) => s.releaseId));
    return { releases: d.store.listReleases({ app: appName, ...(q.env ? { env: q.env } : {}), ...(q.service ? { service: q.service } : {}) })
      .map(({ spec, ...r }) => ({ ...r, strategy: spec.update?.strategy ?? 'rolling', replicas: spec.replicas, configVersion: spec.configVersion ?? 0, current: current.has(r.id) })) };
  });

  app.post('/v1/apps/:app/scale', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const body = scaleBodySchema.parse(req.body);
    const wanted = body.services ?? { [body.service!]: body.replicas! };
    // All or nothing: every service must exist and the whole change must fit before anything is written.
    const plan = Object.entries(wanted).map(([service, replicas]) => {
      const k = { app: appName, env: body.env, service };
      return { k, svc: currentService(d, k), replicas };
    });
    if (d.hostMemoryBytes !== undefined) {
      const check = checkScaleMemory(reservations(d.store),
        new Map(plan.map((p) => [`${p.k.app}/${p.k.env}/${p.k.service}`, p.replicas])), d.hostMemoryBytes);
      if (!check.fits && !body.force) {
        throw new Conflict(`refusing to scale: ${check.message}`,
          { details: { totalBytes: check.totalBytes, scaledBytes: check.scaledBytes, hostBytes: check.hostBytes } });
      }
    }
    if (d.pools) {
      // The environment's services as they would be; grants only for the ones that grow (shrinking is always allowed).
      const after = d.store.listServices({ app: appName, env: body.env }).flatMap((s) => {
        const rel = d.store.getRelease(s.releaseId);
        const change = plan.find((p) => p.k.service === s.name);
        return rel ? [{ name: s.name, replicas: change ? change.replicas : s.replicas, spec: rel.spec }] : [];
      });
      const r = admit({
        app: appName, env: body.env, after, rules: d.pools({ app: appName, env: body.env, ...(req.principal ? { actor: req.principal.subject } : {}) }),
        grantsFor: plan.filter((p) => p.replicas > p.svc.replicas).map((p) => p.k.service),
      });
      if (!r.ok) throw r.error;
    }
    for (const { k, svc, replicas } of plan) {
      d.store.updateService(k, { replicas });
      d.store.addEvent({ ...k, instance: '', kind: 'service.scaled', message: `${k.service} scaled from ${svc.replicas} to ${replicas}${body.force ? ' (forced)' : ''}` });
      d.enqueueService(appName, body.env, k.service);
    }
    const scaled = plan.map(({ k, svc, replicas }) => ({ service: k.service, from: svc.replicas, to: replicas }));
    return reply.status(202).send(body.services ? { scaled } : scaled[0]);
  });

  app.post('/v1/apps/:app/rollback', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const body = rollbackBodySchema.parse(req.body ?? {});
    if (body.service) currentService(d, { app: appName, env: body.env, service: body.service });
    else d.known.requireEnv(appName, body.env);
    const services = body.service ? [body.service] : d.store.listServices({ app: appName, env: body.env }).map((s) => s.name);
    if (services.length === 0) throw new NotFound(`no app "${appName}" in env "${body.env}"`);
    if (body.to !== undefined && services.length > 1) throw new InvalidInput('--to names a release of one service: give the service too, e.g. `berth rollback APP web --to 3`');
    // Resolve every target first: a rollback of several services is all or nothing.
    const plan = services.map((service) => {
      const k = { app: appName, env: body.env, service };
      return { k, target: d.rollback.target(k, body.to) };
    });
    // An old release is held to today's policy (and exemptions), like a deploy of its spec.
    if (d.guard) {
      const spec: AppSpec = { name: appName, services: Object.fromEntries(plan.map(({ target }) => [target.spec.name, target.spec])) };
      const { violations } = d.guard(appName, body.env, spec);
      if (violations.length) {
        throw new InvalidInput(violations.map((v) => `rollback to release ${plan.find((p) => p.target.spec.name === v.path.split('.')[1])?.target.seq ?? '?'} of ${v.service}: ${v.path}: ${v.message}`).join('\n'),
          { details: { refused: violations.map((v) => ({ path: v.path, key: v.key, message: v.message })) } });
      }
    }
    for (const { k, target } of plan) {
      d.rollback.rollback(k, target, 'requested');
      d.enqueueService(k.app, k.env, k.service);
    }
    return reply.status(202).send({ rollbacks: plan.map(({ k, target }) => ({ service: k.service, to: target.seq, release: target.id })) });
  });

  app.post('/v1/apps/:app/reload', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const body = reloadBodySchema.parse(req.body ?? {});
    const k = { app: appName, env: body.env, service: body.service };
    const svc = currentService(d, k);
    const at = Math.max(d.clock.now(), (svc.reloadRequestedAt ?? 0) + 1);
    d.store.updateService(k, { reloadRequestedAt: at });
    d.store.addEvent({ ...k, instance: '', kind: 'service.reload_requested', message: `reload of ${body.service} requested` });
    d.enqueueService(appName, body.env, body.service);
    return reply.status(202).send({ service: body.service, requestedAt: at });
  });

  // Restart: a new release of each service with the same spec and image and the next restart
  // generation, so the reconciler replaces every instance the way a deploy does (start-first for
  // rolling and blue-green, zero downtime; recreate stops first). Desired state only.
  app.post('/v1/apps/:app/restart', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const body = restartBodySchema.parse(req.body ?? {});
    const targets = body.service
      ? [currentService(d, { app: appName, env: body.env, service: body.service })]
      : (d.known.requireEnv(appName, body.env), d.store.listServices({ app: appName, env: body.env }));
    if (targets.length === 0) throw new NotFound(`${appName}/${body.env} runs no services (removed?): nothing to restart`);
    // All or nothing: refuse before writing if any service cannot be restarted now.
    const plan = targets.filter((s) => body.service || s.replicas > 0).map((s) => {
      const rel = d.store.getRelease(s.releaseId);
      if (!rel) throw new Conflict(`${s.name} has no current release: deploy it first`);
      if (rel.status === 'progressing') {
        throw new Conflict(`${s.name} is rolling out release ${rel.seq}: wait until it is done (\`berth status ${appName}\`), then restart`);
      }
      if (s.replicas === 0) throw new Conflict(`${s.name} is scaled to 0: nothing to restart (\`berth scale ${appName} ${s.name}=N\` starts it)`);
      return { svc: s, rel };
    });
    if (plan.length === 0) throw new Conflict(`every service of ${appName}/${body.env} is scaled to 0: nothing to restart`);
    const restarts = plan.map(({ svc, rel }) => {
      const k = { app: appName, env: body.env, service: svc.name };
      const generation = (rel.spec.restartGeneration ?? 0) + 1;
      const next: ReleaseRecord = {
        ...rel, id: d.newId(), seq: d.store.nextReleaseSeq(k), spec: { ...rel.spec, restartGeneration: generation }, status: 'progressing',
        message: `restart of release ${rel.seq}`, createdAt: d.clock.now(), createdBy: 'admin',
      };
      delete next.finishedAt;
      d.store.putService({ ...svc, releaseId: next.id, failures: 0, nextStartAt: 0, updatedAt: d.clock.now() }, next);
      d.store.addEvent({ ...k, instance: '', kind: 'service.restarting',
        message: `restart of ${svc.name} requested: release ${next.seq} (release ${rel.seq}'s spec and image) replaces its ${svc.replicas} instance(s)` });
      d.enqueueService(appName, body.env, svc.name);
      return { service: svc.name, from: rel.seq, release: next.seq, id: next.id };
    });
    return reply.status(202).send({ restarts });
  });

  // Restart of one instance: marked in the store, the reconciler replaces it the way a new release
  // replaces an instance (rolling and blue-green: a new one serves before it drains and goes; recreate:
  // it stops first). The other instances are untouched. Desired state only.
  app.post('/v1/apps/:app/instances/:instance/restart', async (req, reply) => {
    const { app: appName, instance } = req.params as { app: string; instance: string };
    const body = instanceRestartBodySchema.parse(req.body ?? {});
    d.known.requireEnv(appName, body.env);
    const i = d.store.getInstance(instance);
    if (!i || i.app !== appName || i.env !== body.env) {
      throw new NotFound(`${appName}/${body.env} has no instance ${instance}: \`berth status ${appName}\` lists its instances`);
    }
    const svc = currentService(d, { app: appName, env: body.env, service: i.service });
    const rel = d.store.getRelease(svc.releaseId);
    if (rel?.status === 'progressing' || d.store.listInstances({ app: appName, env: body.env, service: i.service }).some((x) => x.releaseId !== svc.releaseId)) {
      throw new Conflict(`${i.service} is replacing its instances (a rollout, or the previous set kept after a switch): wait until it is done (\`berth status ${appName}\`), then restart ${instance}`);
    }
    if (i.state !== 'running') throw new Conflict(`${instance} is ${i.state}, not running: only a running instance is restarted (a stopped one is replaced by itself)`);
    if (i.replaceRequestedAt !== undefined) throw new Conflict(`${instance} is being restarted already (asked ${new Date(i.replaceRequestedAt).toISOString()}): its replacement is starting`);
    const at = d.clock.now();
    d.store.updateInstance(instance, { replaceRequestedAt: at });
    d.store.addEvent({ app: appName, env: body.env, service: i.service, instance, kind: 'instance.restart_requested',
      message: `restart of ${instance} requested: a new instance of release ${rel?.seq ?? '?'} replaces it` });
    d.enqueueService(appName, body.env, i.service);
    return reply.status(202).send({ instance, service: i.service, requestedAt: at });
  });

  // Runs a command in one instance's container and streams its output as NDJSON frames
  // ({"stream":"stdout","data":BASE64} ...), then {"exit":CODE}. The instance: --instance, else a
  // healthy one of the current release, else any running one.
  app.post('/v1/apps/:app/exec', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const body = execBodySchema.parse(req.body);
    if (!d.exec) throw new Conflict('this server cannot run commands in containers');
    const k = { app: appName, env: body.env, service: body.service };
    const svc = currentService(d, k);
    const insts = d.store.listInstances(k).filter((i) => i.state === 'running' && i.containerId);
    let inst: InstanceRecord | undefined;
    if (body.instance) {
      inst = d.store.listInstances(k).find((i) => i.id === body.instance);
      if (!inst) {
        throw new NotFound(unknownName({ what: 'instance', name: body.instance, where: `of ${appName}/${body.env}/${body.service}`,
          plural: 'its instances', candidates: d.store.listInstances(k).map((i) => i.id), hint: 'it has no instances' }));
      }
      if (inst.state !== 'running' || !inst.containerId) throw new Conflict(`instance ${inst.id} is ${inst.state}, not running: pick another (\`berth status ${appName}\`)`);
    } else {
      const rank = (i: InstanceRecord) => (i.health === 'healthy' ? 0 : 2) + (i.releaseId === svc.releaseId ? 0 : 1);
      inst = [...insts].sort((a, b) => rank(a) - rank(b))[0];
      if (!inst) throw new Conflict(`${appName}/${body.env}/${body.service} has no running instance to run a command in (\`berth status ${appName}\`)`);
    }
    // The response's close: the client went away (or we ended it). Not the request's: for a POST it
    // fires as soon as the body has been read.
    const ac = new AbortController();
    reply.raw.on('close', () => ac.abort());
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-berth-instance': inst.id });
    const frame = (stream: 'stdout' | 'stderr') => (chunk: Uint8Array) => {
      res.write(JSON.stringify({ stream, data: Buffer.from(chunk).toString('base64') }) + '\n');
    };
    try {
      const { exitCode } = await d.exec.exec(inst.containerId!, body.cmd, { stdout: frame('stdout'), stderr: frame('stderr') }, ac.signal);
      if (!ac.signal.aborted) res.end(JSON.stringify({ exit: exitCode, instance: inst.id }) + '\n');
    } catch (err) {
      const e = err instanceof BerthError ? { code: err.code, message: err.message } : { code: 'internal', message: 'internal error; see the server log' };
      if (!(err instanceof BerthError)) d.logger.error({ err: (err as Error).message, url: req.url }, 'exec failed');
      res.end(JSON.stringify({ error: e }) + '\n');
    }
    return reply;
  });

  app.get('/v1/apps/:app/releases/:id', async (req) => {
    const { app: appName, id } = req.params as { app: string; id: string };
    d.known.requireApp(appName);
    const rel = d.store.getRelease(id);
    if (!rel || rel.app !== appName) throw new NotFound(`no release ${id} of ${appName}`);
    const events = d.store.listEvents({ app: appName, env: rel.env, service: rel.service, limit: 1000 })
      .filter((e) => e.ts >= rel.createdAt && (rel.finishedAt === undefined || e.ts <= rel.finishedAt + 1000));
    return { release: rel, events };
  });
}

/** Every service as desired, with the memory limit of its current release: what the host is asked to hold. */
function reservations(store: DesiredStateStore): ServiceReservation[] {
  return store.listServices().map((s) => {
    const mem = store.getRelease(s.releaseId)?.spec.limits.memoryBytes;
    return { name: `${s.app}/${s.env}/${s.name}`, replicas: s.replicas, ...(mem !== undefined ? { memoryBytes: mem } : {}) };
  });
}

/** The current service (desired state) of app/env, or a 404 naming the services there are. */
function currentService(d: ServiceRouteDeps, k: { app: string; env: string; service: string }): ServiceRecord {
  d.known.requireEnv(k.app, k.env);
  const svc = d.store.getService(k);
  if (svc) return svc;
  throw new NotFound(unknownName({ what: 'service', name: k.service, where: `in ${k.app}/${k.env}`, plural: 'its services',
    candidates: d.store.listServices({ app: k.app, env: k.env }).map((s) => s.name), hint: 'it runs no services (removed?)' }));
}
