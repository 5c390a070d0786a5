import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { capGrants, OWNER_GRANT, type AuthStore, type Principal, type UserRecord } from '../core/auth.ts';
import { Forbidden, Unauthorized } from '../core/errors.ts';
import { RateLimiter } from './rate-limit.ts';
import type { Clock } from '../core/ports.ts';
import type { TokenStore } from '../core/store.ts';
import { verifyPassword } from './passwords.ts';
import { hashToken } from './tokens.ts';

/** The cookie the portal's session travels in (HttpOnly) and the one its CSRF token travels in (readable by the page). */
export const SESSION_COOKIE = 'berth_session';
export const CSRF_COOKIE = 'berth_csrf';
export const CSRF_HEADER = 'x-berth-csrf';

/** The user of a session of the bootstrap admin (not a user id: those are generated without "@"). */
export const ADMIN_SESSION = { id: '@admin', name: 'admin' } as const;

/** Prefixes make a leaked credential recognisable (and greppable in a log scan). */
const SESSION_PREFIX = 'berths_';
const API_TOKEN_PREFIX = 'bertht_';

export interface AuthenticatorOptions {
  store: AuthStore;
  /** The bootstrap admin token(s) in berth.db (DATA_DIR/admin.token). */
  adminTokens: Pick<TokenStore, 'hasToken'>;
  clock: Clock;
  /** Lifetime of a portal (cookie) session; default 12 h. */
  cookieTtlMs?: number;
  /** Lifetime of a `berth login` session; default 30 days. */
  cliTtlMs?: number;
  /**
   * Attempts per minute (and at once): logins per client address (default 30) and per user name
   * (default 10); failed credentials per address (default 30); requests per signed-in user or API
   * token (default 6000, i.e. 100/s; the admin token is not limited).
   */
  limits?: { loginsPerIp?: number; loginsPerUser?: number; badCredentialsPerIp?: number; requestsPerPrincipal?: number };
}

/** What a request carries that may prove who sent it. */
export interface Credentials {
  authorization?: string | undefined;
  cookie?: string | undefined;
  csrf?: string | undefined;
  method: string;
  /** `Basic` auth is how git sends a token; it is accepted only where the caller says so. */
  allowBasic?: boolean;
  /** The client's address: failed credentials are rate-limited per address. */
  ip?: string;
}

export interface LoginResult {
  user: Pick<UserRecord, 'id' | 'name'>;
  /** The session token: the cookie's value, or what `berth login` stores. */
  token: string;
  /** Cookie sessions: the double-submit token to send back in X-Berth-CSRF on every mutating request. */
  csrf?: string;
  expiresAt: number;
  /** The single sign-on provider that vouched for the user (LDAP), if not a local password. */
  provider?: string;
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Constant-time equality of two hex digests (equal length by construction; a length mismatch is just false). */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `name=value; other=...` → the value of `name` (first occurrence), undefined if absent. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

/** `Authorization: Basic base64(user:TOKEN)` → TOKEN (git sends credentials this way). */
export function basicPassword(header: string): string | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  return i >= 0 && i < decoded.length - 1 ? decoded.slice(i + 1) : undefined;
}

/**
 * Logs people in and tells who sent a request: the bootstrap admin token (owner of everything), a
 * session (bearer for the CLI, cookie + CSRF for the portal) or a scoped API token. Every credential
 * is looked up by its SHA-256, so the database holds nothing that logs anyone in.
 */
export class Authenticator {
  private readonly cookieTtl: number;
  private readonly cliTtl: number;

  private readonly loginsByIp: RateLimiter;
  private readonly loginsByUser: RateLimiter;
  private readonly badByIp: RateLimiter;
  private readonly byPrincipal: RateLimiter;

  constructor(private readonly o: AuthenticatorOptions) {
    this.cookieTtl = o.cookieTtlMs ?? 12 * 3600_000;
    this.cliTtl = o.cliTtlMs ?? 30 * 86400_000;
    const l = o.limits ?? {};
    const limiter = (n: number, what: string) => new RateLimiter({ capacity: n, perMinute: n, clock: o.clock, what });
    this.loginsByIp = limiter(l.loginsPerIp ?? 30, 'login attempts from this address');
    this.loginsByUser = limiter(l.loginsPerUser ?? 10, 'login attempts for this user');
    this.badByIp = limiter(l.badCredentialsPerIp ?? 30, 'requests with a wrong credential from this address');
    this.byPrincipal = limiter(l.requestsPerPrincipal ?? 6000, 'requests with this credential');
  }

  /**
   * Tried for a name that is no local password user (single sign-on's LDAP directories): the user it
   * logged in and the provider, undefined when no directory is configured. Set by the server's wiring.
   */
  externalLogin?: (name: string, password: string) => Promise<{ user: Pick<UserRecord, 'id' | 'name'>; provider: string } | undefined>;

  async login(name: string, password: string, o: { kind: 'cookie' | 'cli'; ip: string }): Promise<LoginResult> {
    this.loginsByIp.take(o.ip);
    this.loginsByUser.take(name);
    const user = this.o.store.userByName(name);
    if ((!user || user.external) && this.externalLogin) {
      const r = await this.externalLogin(name, password);
      if (r) return { ...this.openSession(r.user, o), provider: r.provider };
    }
    // An unknown name costs a full verification too: response times do not say which names exist.
    const ok = await verifyPassword(password, user?.passwordHash);
    if (!user || !ok) throw new Unauthorized('wrong user name or password');
    return this.openSession({ id: user.id, name: user.name }, o);
  }

  /**
   * A session for someone already proven (a password above; a one-time portal link issued to them).
   * `ADMIN_SESSION` opens one for the bootstrap admin, who is no user: the portal link of `berth portal`
   * run with the admin token.
   */
  openSession(user: Pick<UserRecord, 'id' | 'name'>, o: { kind: 'cookie' | 'cli'; ip: string }): LoginResult {
    const now = this.o.clock.now();
    this.o.store.deleteExpiredSessions(now);
    const token = SESSION_PREFIX + randomBytes(32).toString('base64url');
    const csrf = o.kind === 'cookie' ? randomBytes(32).toString('base64url') : undefined;
    const expiresAt = now + (o.kind === 'cookie' ? this.cookieTtl : this.cliTtl);
    this.o.store.addSession({ id: sha256(token), userId: user.id, kind: o.kind, csrfHash: csrf ? sha256(csrf) : '', createdAt: now, expiresAt, ip: o.ip });
    return { user: { id: user.id, name: user.name }, token, ...(csrf ? { csrf } : {}), expiresAt };
  }

  logout(p: Principal): boolean {
    return p.sessionId ? this.o.store.deleteSession(p.sessionId) : false;
  }

  /** Who sent the request, or Unauthorized (no or an unknown credential) / Forbidden (a cookie request without its CSRF token). */
  authenticate(c: Credentials): Principal {
    const ip = c.ip ?? '';
    // An address that kept sending wrong credentials gets nothing checked until its bucket refills.
    this.badByIp.check(ip);
    try {
      const p = this.identify(c);
      if (p.kind !== 'admin') this.byPrincipal.take(p.subject);
      return p;
    } catch (err) {
      // A wrong credential counts; none at all (a 401 that asks for one) does not.
      if (err instanceof Unauthorized && (c.authorization || c.cookie)) this.badByIp.take(ip);
      throw err;
    }
  }

  private identify(c: Credentials): Principal {
    const h = c.authorization ?? '';
    const bearer = /^Bearer\s+(\S+)$/i.exec(h)?.[1] ?? (c.allowBasic ? basicPassword(h) : undefined);
    if (bearer) return this.fromToken(bearer);
    const cookie = cookieValue(c.cookie, SESSION_COOKIE);
    if (cookie) {
      const p = this.fromSession(cookie, 'cookie');
      if (!['GET', 'HEAD', 'OPTIONS'].includes(c.method.toUpperCase())) {
        const s = this.o.store.getSession(p.sessionId!)!;
        if (!c.csrf || !s.csrfHash || !sameDigest(sha256(c.csrf), s.csrfHash)) {
          throw new Forbidden(`missing or wrong CSRF token: a request with a session cookie that changes something must send the session's CSRF token in the ${CSRF_HEADER} header (it is in the ${CSRF_COOKIE} cookie)`);
        }
      }
      return p;
    }
    throw new Unauthorized('missing bearer token: send "Authorization: Bearer TOKEN" (`berth login`, or the admin token in DATA_DIR/admin.token)');
  }

  private fromToken(token: string): Principal {
    if (token.startsWith(SESSION_PREFIX)) return this.fromSession(token, 'session');
    const hash = hashToken(token);
    if (token.startsWith(API_TOKEN_PREFIX)) {
      const t = this.o.store.apiTokenByHash(hash);
      const now = this.o.clock.now();
      if (!t) throw new Unauthorized('invalid token: unknown API token');
      if (t.revokedAt) throw new Unauthorized(`API token "${t.name}" was revoked`);
      if (t.expiresAt <= now) throw new Unauthorized(`API token "${t.name}" expired: create a new one with \`berth token create\``);
      if (now - t.lastUsedAt > 60_000) this.o.store.touchApiToken(t.id, now);
      const own = this.o.store.listGrants({ subject: `token:${t.id}` });
      const creator = this.grantsOf(t.createdBy);
      return { subject: `token:${t.id}`, name: t.name, kind: 'token', via: 'api-token', grants: capGrants(own, creator) };
    }
    // Tokens are looked up by their SHA-256: comparing hashes leaks nothing useful about the token.
    if (this.o.adminTokens.hasToken(hash)) return { subject: 'admin', name: 'admin', kind: 'admin', via: 'admin-token', grants: [OWNER_GRANT] };
    throw new Unauthorized('invalid token: log in again (`berth login`) or use the token in DATA_DIR/admin.token');
  }

  private fromSession(token: string, via: 'session' | 'cookie'): Principal {
    const id = sha256(token);
    const s = this.o.store.getSession(id);
    if (!s || s.expiresAt <= this.o.clock.now() || (via === 'cookie') !== (s.kind === 'cookie')) {
      throw new Unauthorized('session expired or unknown: log in again (`berth login`)');
    }
    if (s.userId === ADMIN_SESSION.id) return { subject: 'admin', name: 'admin', kind: 'admin', via, sessionId: id, grants: [OWNER_GRANT] };
    const user = this.o.store.getUser(s.userId);
    if (!user) throw new Unauthorized('session expired or unknown: log in again (`berth login`)');
    return { subject: `user:${user.id}`, name: user.name, kind: 'user', via, sessionId: id, grants: this.grantsOf(`user:${user.id}`) };
  }

  /** The grants a subject holds (`admin`: owner of everything; a token: its own, capped by its creator's). */
  grantsOf(subject: string): Principal['grants'] {
    if (subject === 'admin') return [OWNER_GRANT];
    if (subject.startsWith('token:')) {
      const t = this.o.store.getApiToken(subject.slice('token:'.length));
      if (!t || t.revokedAt || t.expiresAt <= this.o.clock.now()) return [];
      return capGrants(this.o.store.listGrants({ subject }), this.grantsOf(t.createdBy));
    }
    return this.o.store.listGrants({ subject });
  }

  /** The principal an approved request is replayed as: its requester, with the grants they hold now. */
  asSubject(subject: string, name: string): Principal {
    const kind = subject === 'admin' ? 'admin' : subject.startsWith('token:') ? 'token' : 'user';
    return { subject, name, kind, via: 'approval', grants: this.grantsOf(subject) };
  }

  /** The person behind a subject (a token's creator). */
  personOf(subject: string): string {
    return subject.startsWith('token:') ? this.o.store.getApiToken(subject.slice('token:'.length))?.createdBy ?? subject : subject;
  }

  /** A new API token's secret and the hash to store. */
  static newApiToken(): { token: string; hash: string } {
    const token = API_TOKEN_PREFIX + randomBytes(32).toString('base64url');
    return { token, hash: hashToken(token) };
  }
}
