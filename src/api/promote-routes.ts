import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { Conflict, InvalidInput, InvalidSpec, NotFound } from '../core/errors.ts';
import type { DeploymentStore, DesiredStateStore, EventStore } from '../core/store.ts';
import type { AppSpec, ParseResult, ServiceSpec } from '../core/spec/types.ts';
import { parseSource } from '../core/spec/source.ts';
import type { DeploymentsPort } from '../core/deployments.ts';
import { parseDigestRef } from '../core/image-retention.ts';
import type { KnownApps } from './known.ts';

export interface PromoteRouteDeps {
  store: DesiredStateStore & Pick<DeploymentStore, 'getSource'> & EventStore;
  /** The one deploy path (deploy/deployments.ts): its errors keep their kind (400 invalid, 409 conflict). */
  deployments: DeploymentsPort;
  known?: KnownApps;
  /** An environment's non-secret configuration values (variables of pushed builds' sources). */
  configValues?: (app: string, env: string) => Record<string, string>;
}

const envName = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes').max(63);
export const bodySchema = z.object({ from: envName, to: envName });

/**
 * The spec that runs in `to`: each service of `from` with the image pinned to what its current
 * release ran (its registry digest reference; else its image id), no build section. A service
 * deployed from a kept source (the Compose text and its variables) is interpolated again for `to`
 * — BERTH_ENV is `to`, so `host: shop-${BERTH_ENV}.example.com` becomes prod's host — otherwise
 * (deployed through the API without a source) it is copied as it runs in `from`. Throws Conflict
 * unless every current release in `from` is healthy.
 */
export function promotionSpec(store: DesiredStateStore & Pick<DeploymentStore, 'getSource'>, app: string, from: string, to: string, configValues: (env: string) => Record<string, string> = () => ({})): AppSpec {
  const services = store.listServices({ app, env: from });
  if (services.length === 0) throw new NotFound(`app "${app}" has nothing deployed in "${from}": nothing to promote`);
  const reparsed = new Map<string, ParseResult>();
  const out: Record<string, ServiceSpec> = {};
  for (const s of services) {
    const rel = store.getRelease(s.releaseId);
    if (!rel) throw new Conflict(`service ${s.name} of ${app}/${from} has no current release: nothing to promote`);
    if (rel.status !== 'healthy') {
      throw new Conflict(`refusing to promote ${app} from ${from} to ${to}: release ${rel.seq} of ${s.name} in ${from} is ${rel.status}` +
        `${rel.message ? ` (${rel.message})` : ''}; only a release that became healthy in ${from} can be promoted`);
    }
    const image = parseDigestRef(rel.image) ? rel.image : rel.imageId;
    let base: ServiceSpec = structuredClone(rel.spec);
    const src = rel.spec.source ? store.getSource(rel.spec.source) : undefined;
    if (rel.spec.source && src) {
      let parsed = reparsed.get(rel.spec.source);
      if (!parsed) {
        try {
          parsed = parseSource(src, app, to, configValues(to));
        } catch (err) {
          if (!(err instanceof InvalidSpec)) throw err;
          // Still an invalid spec (400, with file:line:col), said to be the promotion's.
          throw new InvalidSpec(err.issues.map((i) => ({ ...i, message: `${i.message} (refusing to promote ${app} to ${to}: ${src.file} does not hold for ${to})` })), err.warnings);
        }
        reparsed.set(rel.spec.source, parsed);
      }
      const svc = parsed.spec.services[s.name];
      if (!svc) throw new Conflict(`refusing to promote ${app} to ${to}: service ${s.name} is not in the Compose file it was deployed from`);
      base = { ...svc, source: rel.spec.source };
    }
    const spec: ServiceSpec = { ...base, image, replicas: rel.spec.replicas };
    delete (spec as { build?: unknown }).build;
    delete (spec as { configVersion?: unknown }).configVersion;
    // Production's own scale: a service already running in `to` keeps its replica count.
    const target = store.getService({ app, env: to, service: s.name });
    if (target) spec.replicas = target.replicas;
    out[s.name] = spec;
  }
  return { name: app, services: out };
}

/** `POST /v1/apps/:app/promote {from, to}`: deploys to `to` the identical images that are healthy in `from`. */
export function registerPromoteRoutes(app: FastifyInstance, d: PromoteRouteDeps): void {
  app.post('/v1/apps/:app/promote', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const body = bodySchema.parse(req.body);
    if (body.from === body.to) throw new InvalidInput(`--from and --to are both "${body.from}": promote between two environments`);
    d.known?.requireEnv(appName, body.from);
    const spec = promotionSpec(d.store, appName, body.from, body.to, (env) => d.configValues?.(appName, env) ?? {});
    const dep = await d.deployments.create({ app: appName, env: body.to, spec, warnings: [], ...(req.principal ? { actor: req.principal.subject } : {}) });
    d.store.addEvent({ app: appName, env: body.to, service: '', instance: '', kind: 'deployment.promoted',
      message: `deployment ${dep.id}: promoted ${Object.entries(spec.services).map(([n, s]) => `${n}=${s.image}`).join(', ')} from ${body.from}` });
    return reply.status(202).send({
      deployment: { id: dep.id, app: appName, env: body.to, from: body.from },
      images: Object.fromEntries(Object.entries(spec.services).map(([n, s]) => [n, s.image])),
    });
  });
}
