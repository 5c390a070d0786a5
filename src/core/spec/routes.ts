/**
 * The one grammar for ingress routes, shared by the Compose parser, the API and the nginx renderer:
 * what a route host and a route path may be, their canonical forms (so two spellings of one host or
 * path are one route, for the conflict checks and for nginx alike), and the upstream names the
 * route table gives them.
 *
 * Pure: the IDNA mapping comes from the global WHATWG `URL` (no node:* import).
 */

/** A route host or path in its canonical form, or why it is refused (a sentence saying what would be right). */
export type RouteCheck = { ok: true; value: string } | { ok: false; message: string };

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_HOST = 253;
const MAX_PATH = 1024;
const HOST_HINT = 'use letters, digits, "-" and "." (international names are fine), optionally starting with "*.", e.g. shop.example.com';

/**
 * A route host in canonical form: lower case, one trailing dot removed, international names in
 * their ASCII (punycode) form, e.g. `Bücher.Example.` → `xn--bcher-kva.example`. `*.example.com` is a
 * wildcard for the subdomains of example.com.
 */
export function normaliseHost(raw: string): RouteCheck {
  const bad = (why: string): RouteCheck => ({ ok: false, message: `${JSON.stringify(raw)} is not a host name: ${why}; ${HOST_HINT}` });
  if (typeof raw !== 'string' || raw.length === 0) return bad('it is empty');
  const wildcard = raw.startsWith('*.');
  let rest = wildcard ? raw.slice(2) : raw;
  if (rest.endsWith('.')) rest = rest.slice(0, -1);
  if (rest.length === 0) return bad('it has no name');
  // Anything URL would read as a port, a path, user info or an escape is not part of a host.
  const odd = /[\s/\\?#@:%[\]<>^|*'"`{};,$!&()+=~]/u.exec(rest);
  if (odd) return bad(`${JSON.stringify(odd[0])} cannot be part of a host name`);
  let ascii: string;
  try {
    ascii = new URL(`http://${rest}/`).hostname;
  } catch {
    return bad('it is not a valid (international) domain name');
  }
  // WHATWG URL reads `1.2.3` or `0x7f.1` as an IPv4 address and rewrites it; only a plain dotted
  // quad is kept as it was written.
  if (/^[\d.]+$/.test(ascii) && ascii !== rest) return bad('it reads as an IP address written in an unusual form; write it as four numbers, e.g. 127.0.0.1');
  const labels = ascii.split('.');
  const wrong = labels.find((l) => !LABEL.test(l));
  if (wrong !== undefined) {
    return bad(wrong === '' ? 'it has an empty label (two dots in a row, or a leading dot)' : `the label ${JSON.stringify(wrong)} must be 1-63 letters, digits or "-", not starting or ending with "-"`);
  }
  const host = wildcard ? `*.${ascii}` : ascii;
  if (host.length > MAX_HOST) return bad(`it is ${host.length} characters long, at most ${MAX_HOST} are allowed`);
  return { ok: true, value: host };
}

/** Characters a route path may hold: RFC 3986 path characters, minus those that mean something to nginx's config (`;` `'` `$`) and `%`. */
const PATH_CHAR = /[A-Za-z0-9\-._~!&()*+,=:@/]/;
const PATH_HINT = 'write "/" followed by letters, digits and - . _ ~ ! & ( ) * + , = : @ separated by "/", e.g. /api/v1';

/**
 * A route path in canonical form: `/` or segments without a trailing slash (`/api/` → `/api`). A
 * route matches its path exactly and everything below it (`/api` → `/api`, `/api/`, `/api/x`; never
 * `/apix`), so the trailing slash changes nothing and two spellings must not be two routes.
 */
export function normaliseRoutePath(raw: unknown): RouteCheck {
  const bad = (why: string): RouteCheck => ({ ok: false, message: `${JSON.stringify(raw)} is not a route path: ${why}; ${PATH_HINT}` });
  if (typeof raw !== 'string') return bad('it is not a string');
  if (!raw.startsWith('/')) return bad('it must start with "/"');
  if (raw.length > MAX_PATH) return bad(`it is ${raw.length} characters long, at most ${MAX_PATH} are allowed`);
  for (const ch of raw) {
    if (PATH_CHAR.test(ch)) continue;
    if (ch === '%') return bad('"%" escapes are not allowed (nginx matches the decoded path)');
    if (/\s/u.test(ch)) return bad('it holds a space or another blank');
    return bad(`${JSON.stringify(ch)} is not allowed in a route path${';\'"$#{}\\'.includes(ch) ? ' (nginx would read it as part of its own syntax)' : ''}`);
  }
  if (raw.includes('//')) return bad('it has an empty segment ("//"); nginx merges slashes before routing, so this route could never match');
  const path = raw.length > 1 && raw.endsWith('/') ? raw.slice(0, -1) : raw;
  if (path.split('/').some((s) => s === '.' || s === '..')) return bad('"." and ".." segments are resolved before routing, so this route could never match');
  return { ok: true, value: path };
}

/** The identity of a route for conflict checks: two routes with the same key send the same requests to different places. */
export function routeKey(r: { host?: string; path: string }): string {
  return `${r.host ?? '*'} ${r.path}`;
}

/** The same key for routes as stored (possibly before normalisation): canonical forms where they parse, else as written. */
export function canonicalRouteKey(r: { host?: string; path: string }): string {
  const host = r.host === undefined ? undefined : normaliseHost(r.host);
  const path = normaliseRoutePath(r.path);
  return routeKey({ ...(host ? { host: host.ok ? host.value : r.host! } : {}), path: path.ok ? path.value : r.path });
}

/** Which service a route belongs to. */
export interface RouteOwner {
  app: string;
  env: string;
  service: string;
}

const NAME = /^[a-z0-9][a-z0-9-]*$/;

/**
 * The nginx upstream name of a service's `index`-th route: `app.env.service.index`. App, environment
 * and service names hold no dots, so the name splits back unambiguously (with dashes as separators
 * app `a` env `b-c` and app `a-b` env `c` were one name).
 */
export function upstreamName(o: RouteOwner, index: number): string {
  return `${o.app}.${o.env}.${o.service}.${index}`;
}

/** The owner of an upstream name made by `upstreamName`; undefined for any other string. */
export function parseUpstreamName(upstream: string): RouteOwner | undefined {
  const parts = upstream.split('.');
  if (parts.length !== 4 || !/^\d+$/.test(parts[3]!)) return undefined;
  const [app, env, service] = parts as [string, string, string];
  if (![app, env, service].every((p) => NAME.test(p))) return undefined;
  return { app, env, service };
}
