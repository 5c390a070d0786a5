import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

/** A registry login as the API shows it: host and user, never the password. */
export interface RegistryLoginEntry {
  host: string;
  username: string;
  updatedAt: number;
}

/** What the routes need of the sealed credential store (config/RegistryLogins). */
export interface RegistryLoginStore {
  list(): RegistryLoginEntry[];
  set(host: string, username: string, password: string): Promise<RegistryLoginEntry>;
  remove(host: string): Promise<void>;
}

export interface RegistryLoginRouteDeps {
  logins: RegistryLoginStore;
}

export const loginBody = z.object({
  username: z.string().min(1, 'username must not be empty').max(4096),
  password: z.string().min(1, 'password must not be empty').max(4096),
}).strict();

/**
 * Credentials for private image registries, used for the pulls of deployments (`berth registry
 * login HOST`): `PUT /v1/registry-logins/:host {username, password}` stores them sealed,
 * `DELETE /v1/registry-logins/:host` forgets them, `GET /v1/registry-logins` lists hosts and users.
 * A password is never returned, listed or logged.
 */
export function registerRegistryLoginRoutes(app: FastifyInstance, d: RegistryLoginRouteDeps): void {
  app.get('/v1/registry-logins', async () => ({ logins: d.logins.list() }));

  app.put('/v1/registry-logins/:host', async (req) => {
    const { host } = req.params as { host: string };
    const body = loginBody.parse(req.body ?? {});
    return { login: await d.logins.set(host, body.username, body.password) };
  });

  app.delete('/v1/registry-logins/:host', async (req, reply) => {
    const { host } = req.params as { host: string };
    await d.logins.remove(host);
    return reply.status(204).send();
  });
}
