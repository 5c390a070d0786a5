import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { Forbidden, InvalidInput, NotFound } from '../core/errors.ts';
import type { Clock, ConfigEntriesPort } from '../core/ports.ts';
import type { ConfigChangeView as ConfigChange } from '../core/views.ts';
import type { KnownApps } from './known.ts';

export interface ConfigRouteDeps {
  config: ConfigEntriesPort;
  /**
   * Called after every change that made a new version: re-deploys the app/env so the change rolls
   * out. Gets key names and kinds only (never values). Returns the deployment id when one started.
   */
  onConfigChanged: (app: string, env: string, change: { version: number; who: string; changes: ConfigChange[] }) => string | undefined | void;
  clock: Clock;
  known: KnownApps;
}

const name = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes, starting with a letter or digit').max(63);
// Messages never carry the received value (zod's default messages do not either): it may be a secret.
export const setBody = z.object({
  env: name.default('prod'),
  /** Configure an app/env that has no record yet (before its first deploy); without it, an unknown name is a 404. */
  create: z.boolean().default(false),
  entries: z.array(z.object({
    key: z.string().max(200),
    value: z.string(),
    secret: z.boolean().default(false),
  })).min(1, 'give at least one entry').max(500),
});
const keysList = z.array(z.string().max(200)).min(1, 'give at least one key').max(500);
export const unsetBody = z.object({ env: name.default('prod'), keys: keysList });
export const envQuery = z.object({ env: name.default('prod') });
export const getQuery = z.object({ env: name.default('prod'), reveal: z.enum(['true', 'false', '1', '0']).optional() });

/**
 * Configuration and secrets of an app per environment. Lists mask secrets; a secret's value leaves
 * the server only on `GET …/config/:key?reveal=true` by a caller `mayReveal` allows. No value is
 * ever logged or put into an error message.
 */
export function registerConfigRoutes(app: FastifyInstance, deps: ConfigRouteDeps): void {
  const { config, known } = deps;

  app.get('/v1/apps/:app/config', async (req) => {
    const appName = appParam(req);
    const q = parse(envQuery, req.query);
    known.requireEnv(appName, q.env);
    return { app: appName, env: q.env, version: config.version(appName, q.env), entries: config.list(appName, q.env) };
  });

  app.put('/v1/apps/:app/config', async (req) => {
    const appName = appParam(req);
    const body = parse(setBody, req.body);
    if (!body.create) {
      try {
        known.requireEnv(appName, body.env);
      } catch (err) {
        if (!(err instanceof NotFound)) throw err;
        throw new NotFound(`${err.message} (nothing was stored; to configure ${appName}/${body.env} before its first deploy, add --create)`);
      }
    }
    const who = caller(req);
    const r = config.set(appName, body.env, body.entries.map((e) => ({ key: e.key, value: e.value, kind: e.secret ? 'secret' as const : 'value' as const })), who);
    return { app: appName, env: body.env, ...r, ...rollout(deps, appName, body.env, r, who) };
  });

  app.delete('/v1/apps/:app/config', async (req) => {
    const appName = appParam(req);
    // Keys in the body, or in the query (`?env=prod&keys=A&keys=B` or `keys=A,B`) for clients that send no DELETE body.
    const raw = req.body && typeof req.body === 'object' ? req.body as Record<string, unknown> : queryKeys(req.query);
    const body = parse(unsetBody, raw);
    known.requireEnv(appName, body.env);
    const who = caller(req);
    const r = config.unset(appName, body.env, body.keys, who);
    return { app: appName, env: body.env, ...r, ...rollout(deps, appName, body.env, r, who) };
  });

  app.get('/v1/apps/:app/config/:key', async (req) => {
    const appName = appParam(req);
    const { key } = req.params as { key: string };
    const q = parse(getQuery, req.query);
    known.requireEnv(appName, q.env);
    const reveal = q.reveal === 'true' || q.reveal === '1';
    if (reveal && !mayReveal(req, appName, q.env)) throw new Forbidden('this token may not read secret values');
    return { app: appName, env: q.env, entry: config.get(appName, q.env, key, { reveal }) };
  });

  app.get('/v1/apps/:app/config-history', async (req) => {
    const appName = appParam(req);
    const q = parse(envQuery, req.query);
    known.requireEnv(appName, q.env);
    return { app: appName, env: q.env, versions: config.history(appName, q.env) };
  });
}

function rollout(deps: ConfigRouteDeps, app: string, env: string, r: { version: number; changed: boolean; changes: ConfigChange[] }, who: string):
  { deployment?: string } {
  if (!r.changed) return {};
  const id = deps.onConfigChanged(app, env, { version: r.version, who, changes: r.changes });
  return typeof id === 'string' ? { deployment: id } : {};
}

/**
 * Who may read secret values. Today every valid token is the admin token (the auth hook has already
 * checked it), so: allowed. Roles will decide here, in one place, when they arrive.
 */
export function mayReveal(_req: FastifyRequest, _app: string, _env: string): boolean {
  return true;
}

/** The name recorded in history. One token today: the admin. */
function caller(_req: FastifyRequest): string {
  return 'admin';
}

function appParam(req: FastifyRequest): string {
  const { app } = req.params as { app: string };
  const r = name.safeParse(app);
  if (!r.success) throw new InvalidInput(`app name "${app.slice(0, 63)}" is invalid: lower-case letters, digits and dashes`);
  return app;
}

function queryKeys(q: unknown): Record<string, unknown> {
  const o = (q ?? {}) as Record<string, unknown>;
  const keys = o.keys === undefined ? undefined : (Array.isArray(o.keys) ? o.keys : [o.keys]).flatMap((k) => String(k).split(',')).filter(Boolean);
  return { ...(o.env !== undefined ? { env: o.env } : {}), ...(keys ? { keys } : {}) };
}

/** Parses with zod and reports paths and zod's own messages only — never the received input. */
function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  throw new InvalidInput(r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`).join('; '));
}
