/**
 * The audit trail of the API: every request that may change something (any method but GET/HEAD/
 * OPTIONS: the CLI, the portal, CI tokens, webhooks, failed logins) and every read of a secret's value
 * is appended, after it was answered, with who, from where, what (the request with secrets and
 * passwords redacted), and the result. `git push` is recorded when the push starts (git streams the
 * answer itself). The log is owners' (`berth audit`, `berth audit verify`).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AuditInput, AuditStore } from '../core/audit.ts';
import type { Clock } from '../core/ports.ts';
import { gitApp } from './authorize.ts';

/** Property names whose values never reach the audit log. */
const SECRET_KEYS = /^(password|token|secret|value|values|content|csrf|env_file|envFiles|variables|cmd)$/i;
const MAX_REQUEST = 2000;

/** A request body as the audit log keeps it: secrets redacted, a deploy's spec as its service names, at most 2 KB. */
export function redact(v: unknown, depth = 0): unknown {
  if (depth > 6) return '…';
  if (Array.isArray(v)) return v.slice(0, 50).map((x) => redact(x, depth + 1));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (SECRET_KEYS.test(k)) out[k] = '[redacted]';
      else if (k === 'spec' && x && typeof x === 'object') out[k] = { name: (x as { name?: unknown }).name, services: Object.keys((x as { services?: object }).services ?? {}) };
      else if (k === 'source') out[k] = '[source]';
      else out[k] = redact(x, depth + 1);
    }
    return out;
  }
  return v;
}

function clip(s: string): string {
  return s.length > MAX_REQUEST ? `${s.slice(0, MAX_REQUEST)}…` : s;
}

const WRITE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** What the answer said, in short: an error's code and message, or the ids a success named. */
function resultOf(status: number, payload: unknown): string {
  if (typeof payload !== 'string') return status < 400 ? 'ok' : `HTTP ${status}`;
  try {
    const j = JSON.parse(payload) as Record<string, unknown>;
    if (j.error) return clip(JSON.stringify(j.error));
    const pick: Record<string, unknown> = {};
    for (const k of ['deployment', 'id', 'name', 'app', 'env', 'grant', 'revoked', 'removed', 'loggedOut', 'approval', 'version', 'user', 'provider', 'grantsRevoked', 'team', 'granted', 'before', 'pool']) {
      if (j[k] !== undefined) pick[k] = redact(j[k]);
    }
    return clip(JSON.stringify(pick));
  } catch {
    return status < 400 ? 'ok' : `HTTP ${status}`;
  }
}

function isSecretRead(req: FastifyRequest): boolean {
  return req.method === 'GET' && req.routeOptions.url === '/v1/apps/:app/config/:key';
}

export function registerAudit(app: FastifyInstance, d: { audit: AuditStore; clock: Clock }): void {
  const payloads = new WeakMap<FastifyRequest, unknown>();
  const entry = (req: FastifyRequest, action: string, status: number, result: string): AuditInput => {
    const p = req.principal;
    const params = (req.params ?? {}) as Record<string, string | undefined>;
    const query = (req.query ?? {}) as Record<string, unknown>;
    const body = req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
    const url = req.routeOptions.url ?? '';
    let actor = p?.subject ?? 'anonymous';
    let actorName = p?.name ?? '';
    if (url === '/v1/session' && req.method === 'POST') actorName = typeof body.user === 'string' ? body.user.slice(0, 63) : '';
    if (url.startsWith('/v1/hooks/')) actor = `webhook:${params.provider ?? ''}`;
    const appName = params.app ?? (typeof query.app === 'string' ? query.app : undefined) ?? (url.startsWith('/git/') ? gitApp(req.url) : undefined) ?? '';
    const env = typeof body.env === 'string' ? body.env : typeof body.to === 'string' ? body.to : typeof query.env === 'string' ? query.env : '';
    const request = clip(JSON.stringify({ params, ...(Object.keys(query).length ? { query: redact(query) } : {}), ...(Object.keys(body).length ? { body: redact(body) } : {}) }));
    return { ts: d.clock.now(), actor, actorName, ip: req.ip, action, app: appName.slice(0, 100), env: env.slice(0, 63), request, result, status };
  };

  app.addHook('onSend', async (req, _reply, payload) => {
    if (WRITE.has(req.method) || isSecretRead(req)) payloads.set(req, payload);
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    if (!WRITE.has(req.method) && !isSecretRead(req)) return;
    // The pre-receive hook is git's own callback: the push that caused it is recorded as git.push.
    if (req.routeOptions.url === '/v1/git/hooks/pre-receive') return;
    const action = req.routeOptions.url ? `${req.method} ${req.routeOptions.url}` : `${req.method} (no route)`;
    d.audit.append(entry(req, action, reply.statusCode, resultOf(reply.statusCode, payloads.get(req))));
  });
  // git streams its answer itself (the reply is hijacked, no onResponse): a push is recorded once authorized.
  app.addHook('preHandler', async (req) => {
    if (req.method === 'POST' && req.routeOptions.url === '/git/*' && /\/git-receive-pack$/.test(req.url.split('?')[0]!)) {
      d.audit.append(entry(req, 'git.push', 200, 'push accepted for the pipeline (its builds are in `berth builds`)'));
    }
  });

  const auditQuery = z.object({
    actor: z.string().max(100).optional(), app: z.string().max(100).optional(), action: z.string().max(200).optional(),
    since: z.coerce.number().int().nonnegative().optional(), until: z.coerce.number().int().nonnegative().optional(),
    after: z.coerce.number().int().nonnegative().optional(), limit: z.coerce.number().int().min(1).max(10000).default(1000),
    format: z.enum(['json', 'jsonl']).default('json'),
  });
  app.get('/v1/audit', async (req, reply) => {
    const q = auditQuery.parse(req.query);
    const entries = d.audit.list({
      ...(q.actor ? { actor: q.actor } : {}), ...(q.app ? { app: q.app } : {}), ...(q.action ? { action: q.action } : {}),
      ...(q.since !== undefined ? { since: q.since } : {}), ...(q.until !== undefined ? { until: q.until } : {}), ...(q.after !== undefined ? { afterSeq: q.after } : {}),
      limit: q.limit,
    });
    if (q.format === 'jsonl') return reply.type('application/x-ndjson').send(entries.map((e) => JSON.stringify(e) + '\n').join(''));
    return { entries };
  });
  app.get('/v1/audit/verify', async () => d.audit.verify());
}

export const auditQueryDoc = z.object({
  actor: z.string().optional(), app: z.string().optional(), action: z.string().optional(), since: z.string().optional(), until: z.string().optional(),
  after: z.string().optional(), limit: z.string().optional(), format: z.enum(['json', 'jsonl']).optional(),
});
