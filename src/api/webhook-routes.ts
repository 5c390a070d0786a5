import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { NotFound, Unauthorized } from '../core/errors.ts';
import { checkAppName, type BuildController, type GitRepos } from '../build/index.ts';
import { parsePushEvent, verifyWebhook, type WebhookProvider } from '../build/webhooks.ts';

export const WEBHOOK_PREFIX = '/v1/hooks/';

/**
 * Builds from a remote: an app's source (a git remote Berth fetches from) and webhooks from GitHub,
 * Gitea/Forgejo and GitLab. A webhook is verified on its raw body in constant time; a bad signature
 * is 401 and nothing is queued. A good push event queues a build that fetches the commit and goes
 * through the same pipeline as `git push`; the branch moves only when the pipeline succeeds.
 */
export function registerWebhookRoutes(app: FastifyInstance, d: { repos: GitRepos; builds: BuildController; serverUrl: () => string }): void {
  app.put('/v1/apps/:app/source', async (req) => {
    const { app: a } = req.params as { app: string };
    checkAppName(a);
    const b = z.object({ remote: z.string().min(1).max(2000), secret: z.string().min(16).max(200).optional() }).parse(req.body);
    const secret = b.secret ?? randomBytes(24).toString('hex');
    await d.repos.ensure(a, d.serverUrl());
    await d.repos.setSource(a, { remote: b.remote, secret });
    return {
      app: a, remote: b.remote, secret,
      webhooks: (['github', 'gitea', 'gitlab'] as const).map((p) => `${d.serverUrl()}${WEBHOOK_PREFIX}${p}/${a}`),
    };
  });

  // Raw bodies here: the signature is over the exact bytes.
  void app.register(async (scope) => {
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    scope.post(`${WEBHOOK_PREFIX}:provider/:app`, async (req, reply) => {
      const { provider, app: a } = z.object({ provider: z.enum(['github', 'gitea', 'gitlab']), app: z.string() }).parse(req.params);
      checkAppName(a);
      const src = await d.repos.source(a);
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      if (!src) throw new NotFound(`app ${a} has no source: set one with PUT /v1/apps/${a}/source`);
      if (!verifyWebhook(provider as WebhookProvider, req.headers, raw, src.secret)) {
        throw new Unauthorized('webhook signature does not match: check the secret configured at the git host');
      }
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return reply.status(202).send({ ignored: 'not a JSON push event' });
      }
      const ev = parsePushEvent(provider as WebhookProvider, body);
      if (!ev || !ev.ref.startsWith('refs/heads/') || /^0+$/.test(ev.commit)) return reply.status(202).send({ ignored: 'not a branch push' });
      const branch = ev.ref.slice('refs/heads/'.length);
      await d.repos.ensure(a, d.serverUrl());
      // Queued: the build controller fetches the commit, builds and deploys it (GET /v1/builds/ID).
      const b = await d.builds.submit({ app: a, branch, commit: ev.commit, source: 'webhook' });
      return reply.status(202).send({ accepted: true, app: a, branch, commit: ev.commit, build: b.id });
    });
  });
}
