import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { NAME_PATTERN, type AuthStore } from '../core/auth.ts';
import { Conflict, InvalidInput, NotFound } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import { checkPassword, CSRF_COOKIE, hashPassword, SESSION_COOKIE, type Authenticator } from '../auth/index.ts';

export const loginBody = z.object({
  user: z.string().min(1).max(63),
  password: z.string().min(1).max(1024),
  /** `cli`: the session token comes back in the body (`berth login` stores it); default `portal`: in an HttpOnly cookie. */
  client: z.enum(['portal', 'cli']).default('portal'),
});
const userName = z.string().regex(NAME_PATTERN, 'lower-case letters, digits, ".", "_" and "-", starting with a letter or digit, at most 63');
export const userBody = z.object({
  name: userName,
  /** Default: a random password, shown once in the answer. */
  password: z.string().max(1024).optional(),
});
export const passwordBody = z.object({ password: z.string().max(1024) });

/** Credentials and names are small: a request body over 16 KiB is refused (413) before it is parsed. */
export const SMALL = { bodyLimit: 16 * 1024 } as const;

export interface AuthRouteDeps {
  auth: Authenticator;
  store: AuthStore;
  clock: Clock;
  newId: () => string;
}

export function cookie(req: FastifyRequest, name: string, value: string, o: { httpOnly: boolean; maxAgeS: number }): string {
  // Secure whenever the API itself is served over TLS; SameSite=Strict: never sent on another site's request.
  return `${name}=${encodeURIComponent(value)}; Path=/; Max-Age=${o.maxAgeS}; SameSite=Strict${o.httpOnly ? '; HttpOnly' : ''}${req.protocol === 'https' ? '; Secure' : ''}`;
}

function clearCookies(req: FastifyRequest, reply: FastifyReply): void {
  reply.header('set-cookie', [cookie(req, SESSION_COOKIE, '', { httpOnly: true, maxAgeS: 0 }), cookie(req, CSRF_COOKIE, '', { httpOnly: false, maxAgeS: 0 })]);
}

/**
 * Sessions and users: `POST /v1/session` logs in (a cookie + CSRF token for the portal, a bearer
 * token for the CLI), `GET` says who the caller is and what they may do, `DELETE` logs out. Users are
 * managed by owners (the bootstrap admin token is one).
 */
export function registerAuthRoutes(app: FastifyInstance, d: AuthRouteDeps): void {
  app.post('/v1/session', SMALL, async (req, reply) => {
    const b = loginBody.parse(req.body);
    const r = await d.auth.login(b.user, b.password, { kind: b.client === 'cli' ? 'cli' : 'cookie', ip: req.ip });
    const answer = { user: r.user.name, expiresAt: r.expiresAt, ...(r.provider ? { provider: r.provider } : {}) };
    if (b.client === 'cli') return reply.status(201).send({ ...answer, token: r.token });
    const maxAgeS = Math.max(0, Math.floor((r.expiresAt - d.clock.now()) / 1000));
    reply.header('set-cookie', [
      cookie(req, SESSION_COOKIE, r.token, { httpOnly: true, maxAgeS }),
      cookie(req, CSRF_COOKIE, r.csrf!, { httpOnly: false, maxAgeS }),
    ]);
    return reply.status(201).send({ ...answer, csrf: r.csrf });
  });

  app.get('/v1/session', async (req) => {
    const p = req.principal!;
    return { subject: p.subject, name: p.name, kind: p.kind, via: p.via, grants: p.grants };
  });

  app.delete('/v1/session', async (req, reply) => {
    const ended = d.auth.logout(req.principal!);
    if (req.principal!.via === 'cookie') clearCookies(req, reply);
    return reply.status(200).send({ loggedOut: ended });
  });

  app.get('/v1/users', async () => ({
    users: d.store.listUsers().map((u) => ({
      name: u.name, createdAt: u.createdAt, createdBy: u.createdBy, grants: d.store.listGrants({ subject: `user:${u.id}` }),
      // A user a single sign-on provider made: its name (the subject at the provider stays in auth.db).
      ...(u.external ? { sso: u.external.slice(0, u.external.indexOf(':')) } : {}),
    })),
  }));

  app.post('/v1/users', SMALL, async (req, reply) => {
    const b = userBody.parse(req.body);
    if (d.store.userByName(b.name)) throw new Conflict(`user "${b.name}" exists: change the password with \`berth user passwd ${b.name}\``);
    const generated = b.password === undefined;
    const password = b.password ?? randomBytes(18).toString('base64url');
    checkPassword(password);
    const id = d.newId();
    d.store.addUser({ id, name: b.name, passwordHash: await hashPassword(password), createdAt: d.clock.now(), createdBy: req.principal!.name });
    return reply.status(201).send({ name: b.name, ...(generated ? { password } : {}) });
  });

  app.delete('/v1/users/:name', async (req, reply) => {
    const { name } = req.params as { name: string };
    const u = d.store.userByName(name);
    if (!u) throw new NotFound(`no user "${name}"`);
    d.store.deleteUser(u.id);
    return reply.status(204).send();
  });

  app.put('/v1/users/:name/password', SMALL, async (req) => {
    const { name } = req.params as { name: string };
    const b = passwordBody.parse(req.body);
    const u = d.store.userByName(name);
    if (!u) throw new NotFound(`no user "${name}"`);
    if (!b.password) throw new InvalidInput('password: give the new password');
    if (u.external) {
      throw new Conflict(`user "${name}" signs on through provider "${u.external.slice(0, u.external.indexOf(':'))}": their password is the provider's (remove the user to make a local one of that name)`);
    }
    checkPassword(b.password);
    d.store.setPassword(u.id, await hashPassword(b.password));
    // A new password ends every session of the old one.
    const ended = d.store.deleteUserSessions(u.id);
    return { name, sessionsEnded: ended };
  });
}
