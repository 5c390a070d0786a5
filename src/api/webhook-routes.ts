import type { FastifyInstance } from 'fastify';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { NotFound, Unauthorized } from '../core/errors.ts';
import type { Logger } from '../core/ports.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { runCommand } from '../lib/exec.ts';
import { checkAppName, type GitRepos, type PushPipeline } from '../build/index.ts';
import { parsePushEvent, verifyWebhook, type WebhookProvider } from '../build/webhooks.ts';

interface Source {
  remote: string;
  secret: string;
}

export const WEBHOOK_PREFIX = '/v1/hooks/';

/**
 * Builds from a remote: an app's source (a git remote Berth fetches from) and webhooks from GitHub,
 * Gitea/Forgejo and GitLab. A webhook is verified on its raw body in constant time; a bad signature
 * is 401 and nothing is fetched or built. The push's commit is fetched and goes through the same
 * pipeline as `git push`; the branch moves only when the pipeline succeeds.
 */
export function registerWebhookRoutes(app: FastifyInstance, d: { repos: GitRepos; pipeline: PushPipeline; logger: Logger; serverUrl: () => string }): void {
  const sourcePath = (a: string) => join(d.repos.root, `${a}.source.json`);
  const readSource = async (a: string): Promise<Source | undefined> => {
    try {
      return JSON.parse(await readFile(sourcePath(a), 'utf8')) as Source;
    } catch {
      return undefined;
    }
  };

  app.put('/v1/apps/:app/source', async (req) => {
    const { app: a } = req.params as { app: string };
    checkAppName(a);
    const b = z.object({ remote: z.string().min(1).max(2000), secret: z.string().min(16).max(200).optional() }).parse(req.body);
    const secret = b.secret ?? randomBytes(24).toString('hex');
    await d.repos.ensure(a, d.serverUrl());
    await writeFileAtomic(sourcePath(a), JSON.stringify({ remote: b.remote, secret }), { mode: 0o600 });
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
      const src = await readSource(a);
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
      const repo = await d.repos.ensure(a, d.serverUrl());
      await runCommand('git', ['-C', repo, 'fetch', '--no-tags', '--quiet', src.remote, `+${ev.ref}:refs/berth/incoming/${branch}`], { timeoutMs: 120_000 });
      await runCommand('git', ['-C', repo, 'cat-file', '-e', `${ev.commit}^{commit}`]);
      // Build and deploy in the background; the build shows up in GET /v1/builds.
      void d.pipeline.run(a, branch, ev.commit, () => undefined).then(async (b) => {
        if (b.status === 'succeeded') await runCommand('git', ['-C', repo, 'update-ref', `refs/heads/${branch}`, ev.commit]);
      }).catch((err) => d.logger.error({ app: a, err: String(err) }, 'webhook build failed'));
      return reply.status(202).send({ accepted: true, app: a, branch, commit: ev.commit });
    });
  });
}
