import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { BerthError, Conflict, NotFound, Unauthorized } from '../core/errors.ts';
import type { Logger } from '../core/ports.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  branchProblem, checkAppName, isFinished, parseRefLines, type BuildRecord, type BuildsPort, type GitHttpExchange, type GitReposPort,
} from '../core/builds.ts';
import type { KnownApps } from './known.ts';

export interface GitRouteDeps {
  repos: GitReposPort;
  builds: BuildsPort;
  /** Serves a git smart HTTP exchange (the repository exists, or is created first for a push). */
  serveGit: (x: GitHttpExchange<IncomingMessage, ServerResponse>) => Promise<void>;
  logger: Logger;
  /** `GET /v1/builds?app=` of an app that does not exist is a 404 with a did-you-mean. */
  known?: KnownApps;
}

export const GIT_HOOK_PATH = '/v1/git/hooks/pre-receive';

/** True for the hook's route, which authenticates with the per-server hook token instead of an API token. */
export function isGitHookRequest(url: string): boolean {
  return url === GIT_HOOK_PATH || url.startsWith(`${GIT_HOOK_PATH}?`);
}

/**
 * `Authorization: Basic base64(user:TOKEN)` → the token, shaped like a regex match (`[1]` is the token)
 * so that the auth hook can write `/^Bearer\s+(\S+)$/i.exec(h) ?? basicAuthToken(h)`. git sends Basic.
 */
export function basicAuthToken(header: string): [string, string] | null {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  const token = i >= 0 ? decoded.slice(i + 1) : '';
  return token ? [header, token] : null;
}

/**
 * Git over smart HTTP (`git push http://x:TOKEN@HOST/git/APP.git main`), the pre-receive hook that
 * queues a build per pushed branch and streams its progress back into `git push`, and the builds API
 * (list, show, logs — live with `?follow=true` — and cancel). The work itself is the build
 * controller's. `/git/*` authenticates with Basic auth (password = an API token) in the auth hook.
 */
export function registerGitRoutes(app: FastifyInstance, d: GitRouteDeps): void {
  const { repos, builds } = d;
  const log = d.logger.child({ component: 'git' });

  // git only sends credentials after a challenge.
  app.addHook('onSend', async (req, reply, payload) => {
    if (reply.statusCode === 401 && req.url.startsWith('/git/')) reply.header('www-authenticate', 'Basic realm="Berth", charset="UTF-8"');
    return payload;
  });
  // The pack streams straight into git http-backend: never parsed, never buffered.
  app.addContentTypeParser(['application/x-git-receive-pack-request', 'application/x-git-upload-pack-request'], (_req, _payload, done) => done(null));

  const gitPath = /^\/git\/([a-z0-9][a-z0-9-]*)\.git\/(info\/refs|git-receive-pack|git-upload-pack)$/;
  const handler = async (req: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
    const [path, query = ''] = req.url.split('?', 2) as [string, string?];
    const m = gitPath.exec(path);
    if (!m) throw new NotFound(`no git endpoint ${path}: push to /git/APP.git`);
    const appName = m[1]!;
    const what = m[2]!;
    const service = what === 'info/refs' ? new URLSearchParams(query).get('service') : what;
    if (service !== 'git-receive-pack' && service !== 'git-upload-pack') {
      throw new NotFound('only the smart HTTP protocol is served: use git 2.x (service=git-receive-pack or git-upload-pack)');
    }
    if (service === 'git-receive-pack') {
      // The hook calls back on the address and port this request came in on.
      const addr = (req.socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
      const host = addr.includes(':') ? `[${addr}]` : addr;
      await repos.ensure(appName, `http://${host}:${req.socket.localPort}`);
    } else if (!repos.exists(appName)) {
      throw new NotFound(`no git repository for app "${appName}": push to it first`);
    }
    reply.hijack();
    // Who pushed, as the auth hook found them: git hands it to the pre-receive hook (REMOTE_USER), which
    // sends it back, so the pipeline deploys only to environments the pusher may deploy to.
    const user = req.principal?.subject ?? (basicUser(req.headers.authorization ?? '') || 'berth');
    await d.serveGit({
      pathInfo: path.slice('/git'.length), query, method: req.method, remoteUser: user,
      req: req.raw, res: reply.raw, onStderr: (t) => log.warn({ app: appName, stderr: t.trim() }, 'git http-backend'),
    });
  };
  app.get('/git/*', handler);
  app.post('/git/*', handler);

  app.post(GIT_HOOK_PATH, async (req, reply) => {
    const given = String(req.headers['x-berth-hook-token'] ?? '');
    const want = await repos.token();
    if (!given || given.length !== want.length || !timingSafeEqual(Buffer.from(given), Buffer.from(want))) {
      throw new Unauthorized('invalid hook token: this endpoint is for the pre-receive hook Berth installs in its repositories');
    }
    const { app: appName } = z.object({ app: z.string() }).parse(req.query);
    checkAppName(appName);
    const refs = parseRefLines(typeof req.body === 'string' ? req.body : '');
    const quarantine = repos.quarantine(appName, String(req.headers['x-berth-quarantine'] ?? ''));
    const pusher = /^(admin|user:[a-z0-9]+|token:[a-z0-9]+)$/.test(String(req.headers['x-berth-pusher'] ?? '')) ? String(req.headers['x-berth-pusher']) : undefined;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    const write = (line: string) => void (res.writableEnded || res.write(line + '\n'));
    let ok = true;
    let gone = false;
    const queued: BuildRecord[] = [];
    // The pusher went away (git push interrupted): the push cannot be accepted any more, so what has
    // not started deploying is cancelled.
    res.on('close', () => {
      if (res.writableFinished) return;
      gone = true;
      for (const b of queued) void builds.cancel(b.id, 'the pusher (git push was interrupted)').catch(() => undefined);
    });
    // A branch Berth cannot build is the pusher's mistake: refuse the whole push, before any build of
    // its other branches is queued (nothing half-applied), and say which name and why.
    const badBranches = refs.filter((r) => r.ref.startsWith('refs/heads/') && !/^0+$/.test(r.newSha))
      .map((r) => ({ branch: r.ref.slice('refs/heads/'.length), why: branchProblem(r.ref.slice('refs/heads/'.length)) }))
      .filter((b) => b.why !== undefined);
    for (const b of badBranches) write(` !     ${JSON.stringify(b.branch)} is not a branch name Berth deploys: ${b.why}; push to a branch such as main (nothing of this push was built)`);
    ok = badBranches.length === 0;
    try {
      for (const r of ok ? refs : []) {
        if (!r.ref.startsWith('refs/heads/')) {
          write(`skipping ${r.ref}: only branches are deployed`);
          continue;
        }
        if (/^0+$/.test(r.newSha)) {
          write(`branch ${r.ref.slice(11)} deleted: nothing to deploy`);
          continue;
        }
        queued.push(await builds.submit({ app: appName, branch: r.ref.slice('refs/heads/'.length), commit: r.newSha, source: 'push', ...(quarantine ? { quarantine } : {}),
          ...(pusher ? { pushedBy: pusher } : {}) }));
      }
      for (const b of queued) {
        if (gone) break;
        const end = await builds.follow(b.id, write).done;
        if (end.status !== 'succeeded') ok = false;
      }
    } catch (err) {
      ok = false;
      log.error({ err: (err as Error).message }, 'push pipeline failed');
      write(err instanceof BerthError ? ` !     ${err.message}` : ` !     internal error: ${(err as Error).message}`);
    }
    if (!res.writableEnded) res.end(`berth-exit: ${ok ? 0 : 1}\n`);
  });

  app.get('/v1/builds', async (req) => {
    const q = z.object({ app: z.string().optional(), limit: z.coerce.number().int().min(1).max(1000).default(50) }).parse(req.query);
    if (q.app) d.known?.requireApp(q.app);
    const see = req.canSee ?? (() => true);
    return { builds: builds.list(q.app).filter((b) => see(b.app)).slice(0, q.limit) };
  });

  app.get('/v1/builds/:id', async (req) => {
    const { id } = req.params as { id: string };
    const b = builds.get(id);
    if (!b) throw new NotFound(`no build ${id}: see GET /v1/builds?app=APP`);
    return { build: b };
  });

  app.post('/v1/builds/:id/cancel', async (req) => {
    const { id } = req.params as { id: string };
    // Every API token is the admin's today; name the caller once tokens carry names.
    const b = await builds.cancel(id, 'admin');
    if (b.status !== 'cancelled') throw new Conflict(`build ${id} ${b.status} before it could be cancelled: ${b.message}`);
    return { build: b };
  });

  app.get('/v1/builds/:id/logs', async (req, reply) => {
    const { id } = req.params as { id: string };
    const { follow } = z.object({ follow: z.enum(['true', 'false', '1', '0']).optional() }).parse(req.query);
    const b = builds.get(id);
    if (!b) throw new NotFound(`no build ${id}: see GET /v1/builds?app=APP`);
    if (!(follow === 'true' || follow === '1') || isFinished(b.status)) {
      return reply.type('text/plain; charset=utf-8').send(builds.text(id));
    }
    // Live: what is there, then every new line until the build finishes or the client leaves.
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    const f = builds.follow(id, (line) => res.write(line + '\n'));
    req.raw.on('close', f.stop);
    await f.done;
    res.end();
  });
}

function basicUser(header: string): string {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
  if (!m) return '';
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  return decoded.split(':', 1)[0]!.replace(/[^A-Za-z0-9._@-]/g, '').slice(0, 64);
}
