/**
 * The web portal over HTTP: its static bundle (`web/`, built by `npm run build:web`) at `/` with the
 * client-side routes falling back to index.html, and the one-time login links of `berth portal`
 * (issue a code with a credential; exchange the code, once, for a cookie session). `/v1/*` stays the API.
 * Who may call which is api/permissions.ts: the files and the exchange are public.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ADMIN_SESSION, CSRF_COOKIE, SESSION_COOKIE, type Authenticator, type PortalLogins } from '../auth/index.ts';
import { Forbidden } from '../core/errors.ts';
import type { Clock, Logger } from '../core/ports.ts';
import { cookie } from './auth-routes.ts';

export const exchangeBody = z.object({ code: z.string().min(1, 'the code from the login link (after #code=)').max(200) });

/** Headers of every portal answer: no framing, no sniffing, no referrer, only this origin's code. */
export const PORTAL_SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; "
    + "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
};

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', svg: 'image/svg+xml',
  png: 'image/png', ico: 'image/x-icon', json: 'application/json', map: 'application/json', txt: 'text/plain; charset=utf-8', woff2: 'font/woff2',
};

interface StaticFile {
  body: Buffer;
  gzip?: Buffer;
  type: string;
  etag: string;
}

/** The built bundle, read once into memory (it is small); re-read while it is missing (built after the server started). */
class Bundle {
  private files: Map<string, StaticFile> | undefined;

  constructor(private readonly dir: string | undefined) {}

  get(path: string): StaticFile | undefined | 'unbuilt' {
    this.files ??= this.load();
    if (!this.files) return 'unbuilt';
    return this.files.get(path);
  }

  private load(): Map<string, StaticFile> | undefined {
    if (!this.dir) return undefined;
    try {
      if (!statSync(join(this.dir, 'index.html')).isFile()) return undefined;
    } catch {
      return undefined;
    }
    const files = new Map<string, StaticFile>();
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) {
          const body = readFileSync(p);
          const ext = e.name.slice(e.name.lastIndexOf('.') + 1);
          const type = TYPES[ext] ?? 'application/octet-stream';
          const gzip = /^(text|application\/json|image\/svg)/.test(type) && body.length > 512 ? gzipSync(body, { level: 9 }) : undefined;
          const etag = `"${body.length.toString(36)}-${hash(body)}"`;
          files.set('/' + relative(this.dir!, p).split(sep).join('/'), { body, type, etag, ...(gzip ? { gzip } : {}) });
        }
      }
    };
    walk(this.dir);
    return files;
  }
}

/** FNV-1a of the bytes (an ETag, not a security property). */
function hash(b: Buffer): string {
  let h = 0x811c9dc5;
  for (const x of b) h = Math.imul(h ^ x, 0x01000193) >>> 0;
  return h.toString(36);
}

export interface PortalDeps {
  logins: PortalLogins;
  auth: Authenticator;
  clock: Clock;
  /** The built bundle (web/dist); undefined or missing: `/` says how to build it. */
  webDir: string | undefined;
  logger: Logger;
}

export function registerPortalRoutes(app: FastifyInstance, d: PortalDeps): void {
  const bundle = new Bundle(d.webDir);

  // A link for whoever asks, logging in as them: a person (a user's session, the admin token), never a
  // scoped API token (a CI token must not turn into a browser session).
  app.post('/v1/portal/codes', async (req, reply) => {
    const p = req.principal!;
    if (p.kind === 'token') throw new Forbidden(`API token "${p.name}" cannot open portal sessions: log in as a person (\`berth login\`), then run \`berth portal\``);
    const who = p.kind === 'admin' ? ADMIN_SESSION : { id: p.subject.replace(/^user:/, ''), name: p.name };
    const { code, expiresAt } = d.logins.issue(who);
    return reply.status(201).send({ code, expiresAt, path: `/login#code=${code}` });
  });

  // Authenticated by the code itself: a cookie session (HttpOnly, SameSite=Strict) and its CSRF token,
  // exactly as `POST /v1/session` opens for a password.
  app.post('/v1/portal/session', async (req, reply) => {
    const { code } = exchangeBody.parse(req.body ?? {});
    const who = d.logins.exchange(code);
    const r = d.auth.openSession(who, { kind: 'cookie', ip: req.ip });
    const maxAgeS = Math.max(0, Math.floor((r.expiresAt - d.clock.now()) / 1000));
    reply.header('set-cookie', [
      cookie(req, SESSION_COOKIE, r.token, { httpOnly: true, maxAgeS }),
      cookie(req, CSRF_COOKIE, r.csrf!, { httpOnly: false, maxAgeS }),
    ]);
    d.logger.info({ user: who.name, ip: req.ip }, 'portal session opened with a login link');
    return reply.status(201).send({ user: who.name, expiresAt: r.expiresAt, csrf: r.csrf });
  });

  const serve = async (req: FastifyRequest, reply: FastifyReply) => {
    let path: string;
    try {
      path = decodeURIComponent(req.url.split('?')[0]!);
    } catch {
      return reply.status(400).send({ error: { code: 'invalid_input', message: `the path ${req.url.split('?')[0]} is not valid percent-encoding` } });
    }
    if (path.startsWith('/v1/') || path === '/v1') {
      // Only the portal's catch-all matched: an unknown API path, answered like one (a credential first).
      d.auth.authenticate({ authorization: req.headers.authorization, cookie: req.headers.cookie, method: req.method });
      return reply.status(404).send({ error: { code: 'not_found', message: `no such endpoint: ${req.method} ${req.url}` } });
    }
    reply.headers(PORTAL_SECURITY_HEADERS);
    let f = bundle.get(path === '/' ? '/index.html' : path);
    if (f === 'unbuilt') {
      return reply.status(503).type('text/plain; charset=utf-8')
        .send('The Berth portal is not built on this server: run `npm run build:web` in the Berth checkout (scripts/install.sh does), then reload.\n');
    }
    // A client-side route (no file extension) is the app's page; a missing asset is a 404.
    const spa = !f && !/\.[A-Za-z0-9]+$/.test(path) && !path.startsWith('/assets/');
    if (spa) f = bundle.get('/index.html') as StaticFile | undefined;
    if (!f) return reply.status(404).type('text/plain; charset=utf-8').send(`not found: ${path}\n`);
    // Hashed assets never change; the page itself is revalidated every time so a new bundle shows at once.
    reply.header('cache-control', path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
    reply.header('etag', f.etag);
    reply.header('vary', 'accept-encoding');
    // The type even on a 304: the browser keeps the headers of a revalidation, and the API's security
    // hook (authorize.ts) gives anything that is not a page a CSP that would block the page's scripts.
    reply.type(f.type);
    if (req.headers['if-none-match'] === f.etag) return reply.status(304).send();
    if (f.gzip && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
      reply.header('content-encoding', 'gzip');
      return reply.send(f.gzip);
    }
    return reply.send(f.body);
  };
  app.get('/', serve);
  app.get('/*', serve);
}
