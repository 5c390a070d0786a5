import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { Conflict, Unauthorized } from '../core/errors.ts';
import { checkAppName, checkGitRemote, type BuildsPort, type GitReposPort, type WebhookProvider, type WebhooksPort } from '../core/builds.ts';

export const WEBHOOK_PREFIX = '/v1/hooks/';

/** `PUT /v1/apps/APP/source`: a network git remote and (optionally) the webhook secret; without one a secret is made. */
export const sourceBody = z.object({ remote: z.string().min(1).max(2000), secret: z.string().min(16).max(200).optional() });

/**
 * Builds from a remote: an app's source (a network git remote Berth fetches from) and webhooks from
 * GitHub, Gitea/Forgejo and GitLab. A webhook is verified on its raw body in constant time; a bad
 * signature, or an app without a source, is 401 and nothing is queued. A delivery is acted on once
 * (409 for a repeat). A good push event queues a build that fetches the commit, refuses it unless it
 * moves the branch forward, and goes through the same pipeline as `git push`; the branch moves only
 * when the pipeline succeeds.
 */
export function registerWebhookRoutes(app: FastifyInstance, d: {
  repos: GitReposPort; builds: Pick<BuildsPort, 'submit'>; webhooks: WebhooksPort; serverUrl: () => string; now: () => number;
}): void {
  app.put('/v1/apps/:app/source', async (req) => {
    const { app: a } = req.params as { app: string };
    checkAppName(a);
    const b = sourceBody.parse(req.body);
    // Only network remotes, never an option or a local path: the server runs `git fetch` on it.
    checkGitRemote(b.remote, 'remote');
    const secret = b.secret ?? randomBytes(24).toString('hex');
    await d.repos.ensure(a, d.serverUrl());
    await d.repos.setSource(a, { remote: b.remote, secret });
    return {
      app: a, remote: b.remote, secret,
      webhooks: (['github', 'gitea', 'gitlab'] as const).map((p) => `${d.serverUrl()}${WEBHOOK_PREFIX}${p}/${a}`),
    };
  });

  // Apps without a source (unknown ones included) are checked against a secret nobody has, and fail
  // exactly like a wrong signature: a hook URL must not tell which apps exist or have a source.
  const nobodysSecret = randomBytes(24).toString('hex');
  const badSignature = () => new Unauthorized('webhook signature does not match: check the secret configured at the git host');

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
      const signed = d.webhooks.verify(provider as WebhookProvider, req.headers, raw, src?.secret ?? nobodysSecret);
      if (!src || !signed) throw badSignature();
      // Acted on once: a re-sent or replayed delivery (same id, or the same signed body) is refused.
      const id = d.webhooks.deliveryId(provider as WebhookProvider, req.headers);
      const seen = await d.webhooks.claim(a, { ...(id ? { id } : {}), raw, at: d.now() });
      if (seen) {
        throw new Conflict(`this delivery was already received at ${new Date(seen.at).toISOString()} (${seen.by === 'id' ? `delivery id ${id}` : 'the same signed body'}): ` +
          'a webhook delivery is acted on once; push a new commit to build again');
      }
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return reply.status(202).send({ ignored: 'not a JSON push event' });
      }
      const ev = d.webhooks.parsePushEvent(provider as WebhookProvider, body);
      if (!ev || !ev.ref.startsWith('refs/heads/') || /^0+$/.test(ev.commit)) return reply.status(202).send({ ignored: 'not a branch push' });
      const branch = ev.ref.slice('refs/heads/'.length);
      await d.repos.ensure(a, d.serverUrl());
      // Queued: the build controller fetches the commit, checks that it moves the branch forward, builds
      // and deploys it (GET /v1/builds/ID).
      const b = await d.builds.submit({ app: a, branch, commit: ev.commit, source: 'webhook' });
      return reply.status(202).send({ accepted: true, app: a, branch, commit: ev.commit, build: b.id });
    });
  });
}
