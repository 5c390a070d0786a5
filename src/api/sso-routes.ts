/**
 * Single sign-on over HTTP. Owners configure providers (`/v1/sso/providers`); the login page lists
 * the enabled ones (`/v1/sso/options`, public); a browser (the portal, or the one `berth login --sso`
 * opens) starts at `/v1/sso/NAME/start`, goes to the provider, and comes back to
 * `/v1/sso/NAME/callback`, which opens a cookie session (portal) or hands a one-time code to the CLI
 * waiting on 127.0.0.1 (`POST /v1/sso/cli-session` spends it with the CLI's verifier). LDAP logins
 * go through `POST /v1/session` (auth-routes.ts). Every SSO login and failed login is in the audit log.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CSRF_COOKIE, SESSION_COOKIE, cookieValue } from '../auth/index.ts';
import type { SingleSignOn, SsoReturn } from '../auth/index.ts';
import type { AuditStore } from '../core/audit.ts';
import { NAME_PATTERN } from '../core/auth.ts';
import { BerthError, InvalidInput, NotFound } from '../core/errors.ts';
import type { Clock, Logger } from '../core/ports.ts';
import { providerBodySchema, safeReturnPath } from '../core/sso.ts';
import { cookie, SMALL } from './auth-routes.ts';

/** The cookie that ties a started login to the browser that started it (SameSite=Lax: it must come back on the provider's redirect). */
export const SSO_BINDING_COOKIE = 'berth_sso';
const RESERVED = new Set(['providers', 'options', 'cli-session']);

export const startQuery = z.object({
  /** Portal: the path to open after the login (anything but a path of this site becomes `/`). */
  return: z.string().max(2000).optional(),
  /** `berth login --sso`: the port the CLI listens on at 127.0.0.1, and base64url(SHA-256(its verifier)). */
  port: z.coerce.number().int().min(1024).max(65535).optional(),
  challenge: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'base64url of a SHA-256 (43 characters)').optional(),
}).strict();
export const cliSessionBody = z.object({ code: z.string().min(1).max(200), verifier: z.string().min(43).max(128) });
export { providerBodySchema };

export interface SsoRouteDeps {
  sso: SingleSignOn;
  audit: AuditStore;
  clock: Clock;
  logger: Logger;
  /** The address browsers reach this API at (BERTH_PUBLIC_URL); undefined: from the request (its Host). */
  publicUrl?: string;
}

function providerName(req: FastifyRequest): string {
  const { name } = req.params as { name: string };
  if (!NAME_PATTERN.test(name) || RESERVED.has(name)) throw new NotFound(`no single sign-on provider "${name.slice(0, 63)}"`);
  return name;
}

export function registerSsoRoutes(app: FastifyInstance, d: SsoRouteDeps): void {
  const base = (req: FastifyRequest) => (d.publicUrl ?? `${req.protocol}://${req.host}`).replace(/\/+$/, '');
  const callbackUri = (req: FastifyRequest, name: string) => `${base(req)}/v1/sso/${name}/callback`;
  const record = (req: FastifyRequest, provider: string, o: { actor: string; actorName: string; status: number; result: string; client: string }) => {
    d.audit.append({
      ts: d.clock.now(), actor: o.actor, actorName: o.actorName.slice(0, 63), ip: req.ip, action: 'sso.login', app: '', env: '',
      request: JSON.stringify({ provider, client: o.client }), result: o.result.slice(0, 2000), status: o.status,
    });
  };

  app.get('/v1/sso/providers', async () => ({ providers: d.sso.list() }));

  app.put('/v1/sso/providers/:name', SMALL, async (req, reply) => {
    const { name } = req.params as { name: string };
    if (!NAME_PATTERN.test(name) || RESERVED.has(name)) {
      throw new InvalidInput(`name: "${name.slice(0, 63)}" is not a provider name (lower-case letters, digits, ".", "_", "-"; not ${[...RESERVED].join(', ')})`);
    }
    const b = providerBodySchema.parse(req.body);
    const r = d.sso.put(name, b, req.principal!.name);
    return reply.status(r.created ? 201 : 200).send({ provider: r.provider });
  });

  app.delete('/v1/sso/providers/:name', async (req) => {
    const { name } = req.params as { name: string };
    return { name, ...d.sso.remove(name) };
  });

  app.get('/v1/sso/options', async () => ({ providers: d.sso.options() }));

  app.get('/v1/sso/:name/start', async (req, reply) => {
    const name = providerName(req);
    const q = startQuery.parse(req.query);
    if ((q.port === undefined) !== (q.challenge === undefined)) throw new InvalidInput('port: `berth login --sso` sends both port and challenge (a browser sends neither)');
    const back: SsoReturn = q.port !== undefined ? { kind: 'cli', port: q.port, challenge: q.challenge! } : { kind: 'portal', path: safeReturnPath(q.return) };
    const { url, binding } = await d.sso.startOidc(name, callbackUri(req, name), back);
    const secure = req.protocol === 'https' ? '; Secure' : '';
    reply.header('set-cookie', `${SSO_BINDING_COOKIE}=${binding}; Path=/v1/sso/; Max-Age=600; HttpOnly; SameSite=Lax${secure}`);
    reply.header('cache-control', 'no-store');
    return reply.redirect(url, 302);
  });

  app.get('/v1/sso/:name/callback', async (req, reply) => {
    const name = providerName(req);
    const current = new URL(req.url, `${base(req)}/`);
    const clearBinding = `${SSO_BINDING_COOKIE}=; Path=/v1/sso/; Max-Age=0; HttpOnly; SameSite=Lax${req.protocol === 'https' ? '; Secure' : ''}`;
    reply.header('cache-control', 'no-store');
    let back: SsoReturn | undefined;
    try {
      const pending = d.sso.takePending(name, current, cookieValue(req.headers.cookie, SSO_BINDING_COOKIE));
      back = pending.back;
      const r = { login: await d.sso.finishOidc(pending, current), back: pending.back };
      const summary = `logged in${r.login.created ? ' (user created)' : ''}; grants +${r.login.granted} -${r.login.revoked}`;
      if (r.back.kind === 'cli') {
        const code = d.sso.issueCliCode(r.login.user, r.back.challenge);
        record(req, name, { actor: `user:${r.login.user.id}`, actorName: r.login.user.name, status: 302, result: `${summary}; code for the CLI`, client: 'cli' });
        reply.header('set-cookie', clearBinding);
        return reply.redirect(`http://127.0.0.1:${r.back.port}/callback?code=${encodeURIComponent(code)}`, 302);
      }
      const s = d.sso.openSession(r.login, { kind: 'cookie', ip: req.ip });
      const maxAgeS = Math.max(0, Math.floor((s.expiresAt - d.clock.now()) / 1000));
      reply.header('set-cookie', [
        clearBinding,
        cookie(req, SESSION_COOKIE, s.token, { httpOnly: true, maxAgeS }),
        cookie(req, CSRF_COOKIE, s.csrf!, { httpOnly: false, maxAgeS }),
      ]);
      record(req, name, { actor: `user:${r.login.user.id}`, actorName: r.login.user.name, status: 302, result: summary, client: 'portal' });
      return reply.redirect(r.back.path, 302);
    } catch (err) {
      const message = err instanceof BerthError ? err.message : 'single sign-on failed: see the server log';
      if (!(err instanceof BerthError)) d.logger.error({ err: (err as Error).message, provider: name }, 'single sign-on callback failed');
      const status = err instanceof BerthError ? ({ unauthorized: 401, forbidden: 403, conflict: 409, invalid_input: 400, not_found: 404 } as Record<string, number>)[err.code] ?? 502 : 500;
      record(req, name, { actor: 'anonymous', actorName: '', status, result: JSON.stringify({ code: err instanceof BerthError ? err.code : 'internal', message }), client: back?.kind ?? 'unknown' });
      reply.header('set-cookie', clearBinding);
      // A person in a browser: back to where they came from, saying why (the CLI prints it and exits).
      if (back?.kind === 'cli') return reply.redirect(`http://127.0.0.1:${back.port}/callback?error=${encodeURIComponent(message)}`, 302);
      return reply.redirect(`/login?sso_error=${encodeURIComponent(message)}`, 302);
    }
  });

  app.post('/v1/sso/cli-session', SMALL, async (req, reply) => {
    const b = cliSessionBody.parse(req.body);
    const s = d.sso.exchangeCliCode(b.code, b.verifier, req.ip);
    return reply.status(201).send({ user: s.user.name, token: s.token, expiresAt: s.expiresAt });
  });
}
