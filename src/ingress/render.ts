import { isIP, isIPv4, isIPv6 } from 'node:net';
import type { Backend, IngressRoute } from '../core/ports.ts';
import { InvalidInput } from '../core/errors.ts';
import { normaliseHost, normaliseRoutePath, type RouteCheck, type RouteOwner } from '../core/spec/routes.ts';
import { BACKENDS_ADMIN_PATH, BACKENDS_DICT, BACKENDS_HEADER, luaInit } from './lua.ts';

/** File name of the JSON access log under `PREFIX/logs/`. */
export const ACCESS_LOG_FILE = 'access.json.log';

/**
 * The `berth_json` access-log line: numbers unquoted, strings JSON-escaped by nginx (`escape=json`).
 * `time` is Unix seconds with millisecond fraction; `upstream_response_time` may be "", "-" or a
 * comma/colon-separated list when nginx tried several backends. `upstream_addr` is the backend that
 * answered (`ip:port`; a list like `upstream_response_time` when several were tried, the last one
 * answered; "" when nginx answered itself): the access-log reader maps it to the instance.
 */
export const ACCESS_LOG_FORMAT =
  '{"time":$msec,"host":"$host","route":"$berth_route","upstream":"$proxy_host","method":"$request_method","path":"$uri",' +
  '"status":$status,"request_time":$request_time,"upstream_response_time":"$upstream_response_time","upstream_addr":"$upstream_addr","bytes_sent":$bytes_sent}';

/** Everything besides the routes that shapes the rendered nginx.conf. */
export interface RenderOptions {
  /** nginx prefix directory (absolute); pid, logs and temp paths live under it. */
  prefix: string;
  listenPort: number;
  /** Address the public server listens on, e.g. `0.0.0.0`, `127.0.0.1` or `::`. */
  listenAddress: string;
  /** Loopback port of the admin server (generation probe, stub_status). */
  adminPort: number;
  /**
   * Embedded in the config and served at `/berth/generation`: when new workers answer it, the reload
   * is in effect. Bumped by `planConfig` only when the rest of the config changes.
   */
  generation: number;
  /** Serve `stub_status` at `/berth/status` (only when nginx was built with the module). */
  stubStatus: boolean;
  /** Value of the `user` directive (`nobody nogroup`, `root`); omitted when undefined (non-root nginx). */
  workerUser?: string;
  workerProcesses?: number | 'auto';
  /**
   * Public HTTPS port. Hosts whose routes carry a certificate (`IngressRoute.tls`) get a server on
   * it; without a port (or a certificate) nothing listens for TLS.
   */
  httpsPort?: number;
  /**
   * Directory of ACME HTTP-01 answers (one file per token): served at
   * `/.well-known/acme-challenge/` on the HTTP port for every host, before any route and never
   * redirected. Undefined: no such location.
   */
  acmeChallengeDir?: string;
  /**
   * Reload-free backend changes (lua.ts): upstreams whose backends are all IP addresses take them
   * from the backends file (`renderBackends`) and the admin endpoint instead of `server` lines, so a
   * backend joining or leaving changes neither nginx.conf nor its generation. Undefined: every
   * upstream is rendered with its `server` lines and a backend change is a reload.
   */
  lua?: LuaOptions;
}

export interface LuaOptions {
  /** Directory of ndk_http_module.so and ngx_http_lua_module.so. */
  moduleDir: string;
  /** Absolute path of the backends file read by init_by_lua. */
  backendsFile: string;
  /** Absolute path of the root-only file with the SHA-1 (base64) of the admin token (lua.ts). */
  verifierFile: string;
}

/** A route the renderer refuses, with why. Rejected routes are left out of the config. */
export interface RouteProblem {
  upstream: string;
  host?: string;
  path: string;
  message: string;
  /** The service whose route it is, when the route table said. */
  owner?: RouteOwner;
}

const UPSTREAM_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOST_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
const SAFE_FILE_RE = /^[A-Za-z0-9._/+@=,-]+$/;

/**
 * normaliseHost memoised: every pass checks the whole table (several times: check, plan, render), and
 * WHATWG URL's IDNA mapping is the costly part of it. Bounded: cleared when it grows past 10 000 hosts.
 */
const hostChecks = new Map<string, RouteCheck>();
function checkHost(host: string): RouteCheck {
  let r = hostChecks.get(host);
  if (r === undefined) {
    if (hostChecks.size >= 10_000) hostChecks.clear();
    r = normaliseHost(host);
    hostChecks.set(host, r);
  }
  return r;
}

function checkBackend(b: Backend): string | undefined {
  if (!Number.isInteger(b.port) || b.port < 1 || b.port > 65535) return `backend ${b.instance}: port ${b.port} is not an integer in 1..65535`;
  const a = b.address;
  if (isIPv4(a) || isIPv6(a)) return undefined;
  if (a.length <= 253 && HOST_RE.test(a)) return undefined;
  return `backend ${b.instance}: address ${JSON.stringify(a)} is not an IP address or host name`;
}

function backendKey(b: Backend): string {
  return `${b.address}\u0000${String(b.port).padStart(5, '0')}`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function normalizeBackends(backends: readonly Backend[]): Backend[] {
  const seen = new Map<string, Backend>();
  for (const b of [...backends].sort((x, y) => cmp(backendKey(x), backendKey(y)) || cmp(x.instance, y.instance))) {
    const k = backendKey(b);
    if (!seen.has(k)) seen.set(k, { address: b.address, port: b.port, instance: b.instance });
  }
  return [...seen.values()];
}

/**
 * What checking a backends array found: its first problem, or its normal form (frozen). Kept per
 * array for arrays that cannot change — frozen, with frozen elements, as the route table hands them
 * out — so a pass checks and sorts only the backends of the services that changed (bench scale: a
 * pass over 5,000 backends after every health flip, of which one service's had changed).
 */
type BackendsCheck = { problem: string; normal?: undefined } | { problem?: undefined; normal: readonly Backend[] };
const checkedBackends = new WeakMap<readonly Backend[], BackendsCheck>();

/** Whether `backends` and its elements are frozen (nothing can change them: safe to remember things about). */
export function isFrozenBackends(backends: readonly Backend[]): boolean {
  return Object.isFrozen(backends) && backends.every((b) => Object.isFrozen(b));
}

function checkBackends(backends: readonly Backend[]): BackendsCheck {
  const frozen = isFrozenBackends(backends);
  if (frozen) {
    const hit = checkedBackends.get(backends);
    if (hit) return hit;
  }
  const problem = backends.map(checkBackend).find((m) => m !== undefined);
  let res: BackendsCheck;
  if (problem !== undefined) res = { problem };
  else {
    const normal = Object.freeze(normalizeBackends(backends).map((b) => Object.freeze(b)));
    res = { normal };
    // The normal form is its own normal form (checkRoutes of checked routes: planConfig's check).
    checkedBackends.set(normal, res);
  }
  if (frozen) checkedBackends.set(backends, res);
  return res;
}

/** Per normal (frozen) backends array: whether every address is an IP literal, and its backends-file text. */
const backendFacts = new WeakMap<readonly Backend[], { allIP: boolean; text: string }>();
function factsOf(backends: readonly Backend[]): { allIP: boolean; text: string } {
  let f = backendFacts.get(backends);
  if (f) return f;
  f = { allIP: backends.every((b) => isIP(b.address) !== 0), text: backends.map((b) => `${b.address} ${b.port}`).join(',') };
  if (Object.isFrozen(backends)) backendFacts.set(backends, f);
  return f;
}

function sameBackends(a: readonly Backend[], b: readonly Backend[]): boolean {
  return a.length === b.length && a.every((x, i) => backendKey(x) === backendKey(b[i]!));
}

/**
 * Validates and normalizes a route table: hosts and paths in the canonical form of the one route
 * grammar (core/spec/routes.ts), backends de-duplicated and sorted, routes sorted by (host, path,
 * upstream). Routes that cannot be rendered safely (names that would break nginx's syntax, a second
 * route for the same host+path, one upstream name with two different backend sets) are returned as
 * problems instead, so one bad app never blocks everyone else's updates. Of two routes for one host
 * and path the earlier `claimedAt` is kept (then the upstream name decides, so any order of input
 * gives the same result).
 */
export function checkRoutes(routes: readonly IngressRoute[]): { routes: IngressRoute[]; problems: RouteProblem[] } {
  const problems: RouteProblem[] = [];
  const candidates: IngressRoute[] = [];
  const problemOf = (r: IngressRoute, message: string): RouteProblem => ({
    upstream: String(r.upstream), ...(r.host === undefined ? {} : { host: String(r.host) }), path: String(r.path), message, ...(r.owner ? { owner: r.owner } : {}),
  });
  for (const r of routes) {
    const problem = (message: string): void => void problems.push(problemOf(r, message));
    if (typeof r.upstream !== 'string' || !UPSTREAM_RE.test(r.upstream)) {
      problem(`upstream name ${JSON.stringify(r.upstream)} must be 1-255 characters of [A-Za-z0-9_.-], starting with a letter or digit`);
      continue;
    }
    const host = r.host === undefined ? undefined : typeof r.host === 'string' ? checkHost(r.host) : { ok: false as const, message: 'the host is not a string' };
    if (host && !host.ok) {
      problem(`host ${host.message}`);
      continue;
    }
    const path = normaliseRoutePath(r.path);
    if (!path.ok) {
      problem(`path ${path.message}`);
      continue;
    }
    const backends = checkBackends(r.backends);
    if (backends.problem !== undefined) {
      problem(backends.problem);
      continue;
    }
    if (r.tls !== undefined && (host === undefined || ![r.tls.certFile, r.tls.keyFile].every((f) => typeof f === 'string' && f.startsWith('/') && SAFE_FILE_RE.test(f)))) {
      problem(host === undefined ? 'a certificate needs a host' : 'certificate file paths must be absolute paths of letters, digits and ._/+@=,-');
      continue;
    }
    const hsts = r.https?.hstsSeconds;
    if (hsts !== undefined && (!Number.isInteger(hsts) || hsts < 1 || hsts > 2 ** 31)) {
      problem(`hsts max-age ${hsts} must be a whole number of seconds from 1 to 2^31`);
      continue;
    }
    candidates.push({
      upstream: r.upstream, ...(host ? { host: host.value } : {}), path: path.value, backends: backends.normal as Backend[],
      ...(r.owner ? { owner: r.owner } : {}), ...(r.claimedAt !== undefined ? { claimedAt: r.claimedAt } : {}),
      ...(r.https ? { https: { ...r.https } } : {}), ...(r.tls ? { tls: { ...r.tls } } : {}),
    });
  }
  const claimed = (r: IngressRoute): number => r.claimedAt ?? Number.POSITIVE_INFINITY;
  candidates.sort((a, b) => cmp(a.host ?? '', b.host ?? '') || cmp(a.path, b.path) || claimed(a) - claimed(b) || cmp(a.upstream, b.upstream));

  const byLocation = new Map<string, IngressRoute>();
  const byUpstream = new Map<string, IngressRoute>();
  const out: IngressRoute[] = [];
  for (const r of candidates) {
    const where = `${r.host ?? '*'} ${r.path}`;
    const dup = byLocation.get(where);
    if (dup) {
      const who = dup.owner ? `${dup.owner.app}/${dup.owner.env}/${dup.owner.service}` : `upstream ${dup.upstream}`;
      problems.push(problemOf(r, `host ${r.host ?? '(any)'} path ${r.path} is already routed to ${who}, which claimed it first`));
      continue;
    }
    const same = byUpstream.get(r.upstream);
    if (same && !sameBackends(same.backends, r.backends)) {
      problems.push(problemOf(r, `upstream ${r.upstream} is used by several routes with different backends`));
      continue;
    }
    byLocation.set(where, r);
    byUpstream.set(r.upstream, r);
    out.push(r);
  }
  return { routes: out, problems };
}

function listenAddr(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

function commentSafe(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

/** Whether the route's host has a certificate and the route asks to be redirected to HTTPS (the default once it has one). */
function redirects(r: IngressRoute): boolean {
  return r.tls !== undefined && (r.https?.redirect ?? true);
}

/** Whether the upstream takes its backends from the Lua balancer: Lua is on and every backend is an IP literal (balancer.set_current_peer takes no names). */
function dynamic(r: IngressRoute, o: RenderOptions): boolean {
  return o.lua !== undefined && factsOf(r.backends).allIP;
}

/**
 * A route's path matches on segment boundaries: `/api` is `location = /api` plus `location /api/`
 * (so `/apix` is not routed), `/` is `location /`. On the HTTP server a route whose host has a
 * certificate answers 308 to the same URL over HTTPS (308 keeps the method and body, unlike 301);
 * on the HTTPS server it adds its HSTS header.
 */
function renderLocation(r: IngressRoute, lines: string[], scheme: 'http' | 'https', o: RenderOptions): void {
  const heads = r.path === '/' ? ['location / {'] : [`location = ${r.path} {`, `location ${r.path}/ {`];
  for (const head of heads) {
    lines.push(`        ${head}`);
    if (scheme === 'http' && redirects(r)) {
      const port = o.httpsPort === 443 || o.httpsPort === undefined ? '' : `:${o.httpsPort}`;
      lines.push(`            set $berth_route ${r.upstream};`);
      lines.push(`            return 308 https://$host${port}$request_uri;`);
    } else if (dynamic(r, o)) {
      // Backends come from the shared dict: none there answers the 503 below, without a reload either way.
      lines.push(`            access_by_lua_block { berth.admit("${r.upstream}") }`);
      lines.push(`            proxy_pass http://${r.upstream};`);
      lines.push(`            set $berth_route ${r.upstream};`);
    } else if (r.backends.length === 0) {
      // nginx rejects an empty upstream block, and a 503 says "wait" where a 502 says "broken".
      lines.push('            default_type text/plain;');
      lines.push(`            set $berth_route ${r.upstream};`);
      lines.push(`            return 503 "no healthy instance for ${r.upstream}\\n";`);
    } else {
      lines.push(`            proxy_pass http://${r.upstream};`);
      lines.push(`            set $berth_route ${r.upstream};`);
    }
    if (scheme === 'https' && r.tls !== undefined && r.https?.hstsSeconds !== undefined) {
      lines.push(`            add_header Strict-Transport-Security "max-age=${r.https.hstsSeconds}" always;`);
    }
    lines.push('        }');
  }
}

function renderServer(host: string | undefined, routes: IngressRoute[], o: RenderOptions, lines: string[], tls?: { certFile: string; keyFile: string }): void {
  const scheme = tls ? 'https' : 'http';
  // HTTP/2 over TLS for browsers (ALPN); clients without ALPN, and websockets, keep HTTP/1.1.
  const listen = tls ? `${listenAddr(o.listenAddress, o.httpsPort!)} ssl http2` : listenAddr(o.listenAddress, o.listenPort);
  lines.push('    server {');
  lines.push(host === undefined ? `        listen ${listen} default_server;` : `        listen ${listen};`);
  lines.push(`        server_name ${host ?? '_'};`);
  if (tls) {
    lines.push(`        ssl_certificate ${tls.certFile};`);
    lines.push(`        ssl_certificate_key ${tls.keyFile};`);
  }
  // Declares the variable for the access log in every public server (locations override it).
  lines.push('        set $berth_route "";');
  if (!tls && o.acmeChallengeDir !== undefined) {
    // ^~: wins over every route's prefix location, so a challenge is never proxied or redirected.
    lines.push('        location ^~ /.well-known/acme-challenge/ {');
    lines.push('            default_type text/plain;');
    lines.push(`            alias ${o.acmeChallengeDir.replace(/\/+$/, '')}/;`);
    lines.push('        }');
  }
  for (const r of routes) renderLocation(r, lines, scheme, o);
  if (!routes.some((r) => r.path === '/')) {
    lines.push('        location / {');
    lines.push('            default_type text/plain;');
    lines.push('            return 404 "no route\\n";');
    lines.push('        }');
  }
  lines.push('    }');
}

/**
 * Renders the complete nginx.conf for a route table. Pure and deterministic: the same routes in any
 * order give the same bytes, which is what lets the writer reload only when something changed.
 * Routes without a host are served for every host (a host's own route wins for the same path).
 * Throws InvalidInput when `checkRoutes` finds problems; callers that want to skip bad routes run
 * `checkRoutes` first and render its `routes`.
 */
export function renderNginxConfig(routes: readonly IngressRoute[], o: RenderOptions): string {
  return renderChecked(checkedOrThrow(routes), o);
}

/** The routes as checkRoutes leaves them; throws InvalidInput naming each problem when it finds any. */
function checkedOrThrow(routes: readonly IngressRoute[]): IngressRoute[] {
  const checked = checkRoutes(routes);
  if (checked.problems.length > 0) {
    throw new InvalidInput(`cannot render ingress routes:\n${checked.problems.map((p) => `  ${p.upstream} (${p.host ?? '*'}${p.path}): ${p.message}`).join('\n')}`, {
      details: { problems: checked.problems },
    });
  }
  return checked.routes;
}

/** renderNginxConfig of routes checkRoutes already returned (sorted, normalised, no problems). */
function renderChecked(rs: IngressRoute[], o: RenderOptions): string {
  if (!Number.isInteger(o.generation) || o.generation < 0) throw new InvalidInput(`generation must be a non-negative integer, got ${o.generation}`);
  const p = o.prefix.replace(/\/+$/, '');
  const L: string[] = [];
  L.push("# Rendered by Berth's ingress writer. Do not edit: it is replaced whenever the routes change.");
  L.push(`# berth-generation: ${o.generation}`);
  if (o.lua) {
    const dir = o.lua.moduleDir.replace(/\/+$/, '');
    L.push(`load_module ${dir}/ndk_http_module.so;`);
    L.push(`load_module ${dir}/ngx_http_lua_module.so;`);
  }
  if (o.workerUser) L.push(`user ${o.workerUser};`);
  L.push(`worker_processes ${o.workerProcesses ?? 'auto'};`);
  // Draining workers of an old generation may hold long requests (websockets); cap how long.
  L.push('worker_shutdown_timeout 30s;');
  // The master must outlive the control plane that started it.
  L.push('daemon on;');
  L.push(`pid ${p}/logs/nginx.pid;`);
  L.push(`error_log ${p}/logs/error.log warn;`);
  L.push('');
  L.push('events {');
  L.push('    worker_connections 4096;');
  L.push('}');
  L.push('');
  L.push('http {');
  L.push('    default_type application/octet-stream;');
  L.push('    server_tokens off;');
  L.push('    sendfile on;');
  L.push('    tcp_nodelay on;');
  L.push('    keepalive_timeout 65s;');
  L.push('    client_max_body_size 64m;');
  // A bucket must hold the longest name the route grammar accepts (253 characters, plus nginx's
  // pointers): with 128, a valid host over ~110 characters made `nginx -t` refuse the whole config
  // ("could not build server_names_hash") with no line to blame, and every app's ingress update stalled.
  L.push('    server_names_hash_bucket_size 512;');
  L.push('    server_names_hash_max_size 4096;');
  // One JSON object per request, read incrementally by metrics/AccessLogReader. `route` is the
  // upstream name (`app.env.service.idx`), set per location so 503s without backends count too.
  L.push(`    log_format berth_json escape=json '${ACCESS_LOG_FORMAT}';`);
  L.push(`    access_log ${p}/logs/${ACCESS_LOG_FILE} berth_json;`);
  for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) L.push(`    ${t}_temp_path ${p}/tmp/${t};`);
  if (o.httpsPort !== undefined && rs.some((r) => r.tls !== undefined)) {
    L.push('    ssl_protocols TLSv1.2 TLSv1.3;');
    L.push('    ssl_prefer_server_ciphers off;');
    L.push('    ssl_session_cache shared:berth_tls:10m;');
    L.push('    ssl_session_timeout 1d;');
  }
  L.push('');
  L.push('    # Upstream keepalive needs "Connection: close" stripped; websockets need it passed as "upgrade".');
  L.push('    map $http_upgrade $berth_connection {');
  L.push('        default upgrade;');
  L.push("        '' '';");
  L.push('    }');
  L.push('    proxy_http_version 1.1;');
  L.push('    proxy_set_header Connection $berth_connection;');
  L.push('    proxy_set_header Upgrade $http_upgrade;');
  L.push('    proxy_set_header Host $host;');
  L.push('    proxy_set_header X-Real-IP $remote_addr;');
  L.push('    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;');
  L.push('    proxy_set_header X-Forwarded-Proto $scheme;');
  L.push('    proxy_set_header X-Forwarded-Host $host;');
  // A backend on a dead host does not refuse, it is silent: a short connect timeout makes a request
  // caught on it cost ~1 s before it goes to another backend (backends answer a connect in well under that).
  L.push('    proxy_connect_timeout 1s;');
  L.push('    proxy_send_timeout 60s;');
  L.push('    proxy_read_timeout 60s;');
  L.push('    # An instance that goes away (rolling deploy, crash, a dead host: refused, reset, connect timeout) is retried');
  L.push('    # on another one. A POST/PATCH/LOCK already sent is not (it may have taken effect): only one that never reached a backend.');
  L.push('    proxy_next_upstream error timeout http_502 http_503;');
  L.push('    proxy_next_upstream_tries 3;');
  L.push('    proxy_next_upstream_timeout 15s;');

  if (o.lua) {
    L.push('');
    L.push('    # Backends of the Lua-balanced upstreams: from the backends file at start and reload, from Berth in between.');
    L.push(`    lua_shared_dict ${BACKENDS_DICT} 32m;`);
    L.push('    init_by_lua_block {');
    for (const line of luaInit(o.lua.backendsFile, o.lua.verifierFile).split('\n')) L.push(line === '' ? '' : `        ${line}`);
    L.push('    }');
  }

  const upstreams = new Map<string, IngressRoute>();
  for (const r of rs) if (r.backends.length > 0 || dynamic(r, o)) upstreams.set(r.upstream, r);
  for (const name of [...upstreams.keys()].sort(cmp)) {
    L.push('');
    L.push(`    upstream ${name} {`);
    const r = upstreams.get(name)!;
    if (dynamic(r, o)) {
      // nginx wants one server; the balancer below picks the real peer for every try.
      L.push('        server 0.0.0.1:1; # unused: backends come from the backends file / admin endpoint');
      L.push(`        balancer_by_lua_block { berth.balance("${name}") }`);
    } else {
      for (const b of r.backends) {
        L.push(`        server ${listenAddr(b.address, b.port)} max_fails=1 fail_timeout=1s; # ${commentSafe(b.instance)}`);
      }
    }
    L.push('        keepalive 32;');
    // Below the idle timeout of common app servers (Node's is 5 s), so nginx never reuses a connection
    // the backend is closing.
    L.push('        keepalive_timeout 4s;');
    L.push('    }');
  }

  const anyHost = rs.filter((r) => r.host === undefined);
  L.push('');
  renderServer(undefined, anyHost, o, L);
  const hosts = [...new Set(rs.flatMap((r) => (r.host === undefined ? [] : [r.host])))].sort(cmp);
  const httpsHosts: [string, IngressRoute[], { certFile: string; keyFile: string }][] = [];
  for (const h of hosts) {
    const own = rs.filter((r) => r.host === h);
    const ownPaths = new Set(own.map((r) => r.path));
    const merged = [...own, ...anyHost.filter((r) => !ownPaths.has(r.path))].sort((a, b) => cmp(a.path, b.path));
    L.push('');
    renderServer(h, merged, o, L);
    const tls = own.find((r) => r.tls !== undefined)?.tls;
    if (tls && o.httpsPort !== undefined) httpsHosts.push([h, merged, tls]);
  }
  if (httpsHosts.length > 0) {
    // A TLS client naming no host Berth has a certificate for is refused at the handshake instead of
    // being shown another host's certificate.
    L.push('');
    L.push('    server {');
    L.push(`        listen ${listenAddr(o.listenAddress, o.httpsPort!)} ssl http2 default_server;`);
    L.push('        server_name _;');
    L.push('        ssl_reject_handshake on;');
    L.push('    }');
    for (const [h, merged, tls] of httpsHosts) {
      L.push('');
      renderServer(h, merged, o, L, tls);
    }
  }

  L.push('');
  L.push('    # Admin: loopback only. The generation tells the writer which config the serving workers run.');
  L.push('    server {');
  // reuseport: each worker has its own admin socket, so a probe reaches new workers as soon as they
  // run (with one shared socket, old workers keep winning accept() until the master retires them).
  L.push(`        listen 127.0.0.1:${o.adminPort} reuseport;`);
  L.push('        access_log off;');
  L.push('        default_type text/plain;');
  L.push(`        location = /berth/generation { return 200 "${o.generation}"; }`);
  if (o.stubStatus) L.push('        location = /berth/status { stub_status; }');
  if (o.lua) {
    // Backend sets from Berth (lua.ts): only with the admin token, whose hash only the master read.
    L.push(`        location = ${BACKENDS_ADMIN_PATH} {`);
    L.push('            client_max_body_size 16m;');
    L.push('            client_body_buffer_size 16m;');
    L.push('            content_by_lua_block { berth.admin() }');
    L.push('        }');
  }
  L.push('        location / { return 404 "not found\\n"; }');
  L.push('    }');
  L.push('}');
  L.push('');
  return L.join('\n');
}

/**
 * The backends file for the Lua-balanced upstreams of a route table (undefined without `o.lua`):
 * one line per upstream, `NAME ADDR PORT,ADDR PORT` (just `NAME` when it has none), sorted, so the
 * same table gives the same bytes. Routes `checkRoutes` refuses are left out (the config leaves them
 * out too).
 */
export function renderBackends(routes: readonly IngressRoute[], o: Pick<RenderOptions, 'lua'>): string | undefined {
  return o.lua ? backendsOf(checkRoutes(routes).routes, o) : undefined;
}

function backendsOf(checked: readonly IngressRoute[], o: Pick<RenderOptions, 'lua'>): string {
  const lines = new Map<string, string>();
  for (const r of checked) {
    if (!dynamic(r, o as RenderOptions)) continue;
    lines.set(r.upstream, r.backends.length === 0 ? r.upstream : `${r.upstream} ${factsOf(r.backends).text}`);
  }
  return [BACKENDS_HEADER, ...[...lines.keys()].sort(cmp).map((k) => lines.get(k)!), ''].join('\n');
}

/** Reads the generation embedded by `renderNginxConfig`; undefined for files it did not render. */
export function parseGeneration(config: string): number | undefined {
  const m = /^# berth-generation: (\d+)$/m.exec(config);
  return m ? Number(m[1]) : undefined;
}

/**
 * Decides the next config given the current file's text: same routes → same bytes (generation kept,
 * `changed` false); anything different → generation + 1. With `o.lua`, backends of Lua-balanced
 * upstreams are not in the config but in `backends` (the backends file's text), so a backend change
 * alone leaves the config and its generation as they are.
 */
export function planConfig(
  current: string | undefined,
  routes: readonly IngressRoute[],
  o: Omit<RenderOptions, 'generation'>,
): { config: string; generation: number; changed: boolean; backends: string | undefined } {
  // One check for the backends and the config (each ran its own before: three per pass with the caller's).
  const checked = checkedOrThrow(routes);
  const backends = o.lua ? backendsOf(checked, o) : undefined;
  const gen = current === undefined ? undefined : parseGeneration(current);
  const next = (gen ?? 0) + 1;
  if (gen !== undefined) {
    const same = renderShape(checked, o, gen);
    if (same === current) return { config: same, generation: gen, changed: false, backends };
    // The generation is in two lines the renderer writes itself (near the top of the file, the admin
    // server's probe after every route): swapped in the text, not rendered a second time (at 5,000
    // backends a render is tens of milliseconds, on every change).
    const config = withGeneration(same, gen, next);
    if (config !== undefined) return { config, generation: next, changed: true, backends };
  }
  return { config: renderShape(checked, o, next), generation: next, changed: true, backends };
}

/**
 * The last config rendered by planConfig and what it was rendered from: with the Lua balancer a
 * backend joining or leaving (the common change: every health flip) leaves the config as it was, so
 * a pass that finds the same shape takes the text it has instead of rendering every server and
 * upstream again (bench scale: most of a pass over 500 routes and 5,000 backends).
 */
let lastShape: { key: string; generation: number; config: string } | undefined;

/** renderChecked(checked, {...o, generation}), from lastShape when the config would be the same but for its generation. */
function renderShape(checked: readonly IngressRoute[], o: Omit<RenderOptions, 'generation'>, generation: number): string {
  const key = shapeKey(checked, o);
  if (lastShape?.key === key) {
    if (lastShape.generation === generation) return lastShape.config;
    const swapped = withGeneration(lastShape.config, lastShape.generation, generation);
    if (swapped !== undefined) return swapped;
  }
  const config = renderChecked([...checked], { ...o, generation });
  lastShape = { key, generation, config };
  return config;
}

/**
 * Everything of checked routes and options that renderChecked writes into the config: all of each
 * route but the backends of a Lua-balanced upstream (only that it is one: its backends are in the
 * backends file).
 */
function shapeKey(checked: readonly IngressRoute[], o: Omit<RenderOptions, 'generation'>): string {
  const parts: string[] = [JSON.stringify(o)];
  const opts = o as RenderOptions;
  for (const r of checked) {
    parts.push(JSON.stringify([r.upstream, r.host ?? null, r.path, r.tls ?? null, r.https ?? null,
      dynamic(r, opts) ? 'lua' : r.backends.length === 0 ? 'none' : r.backends.map((b) => [b.address, b.port, b.instance])]));
  }
  return parts.join('\n');
}

/** `config` rendered with generation `from`, as rendered with `to`; undefined if its generation lines are not where the renderer puts them. */
function withGeneration(config: string, from: number, to: number): string | undefined {
  const head = `\n# berth-generation: ${from}\n`;
  const probe = (g: number) => `\n        location = /berth/generation { return 200 "${g}"; }\n`;
  const h = config.indexOf(head);
  const at = config.lastIndexOf(probe(from));
  if (h < 0 || at < h + head.length) return undefined;
  return `${config.slice(0, h)}\n# berth-generation: ${to}\n${config.slice(h + head.length, at)}${probe(to)}${config.slice(at + probe(from).length)}`;
}

/** An upstream `server` line exactly as renderNginxConfig writes it, with a literal IPv4/IPv6 address and a valid port. */
function isBackendLine(line: string): boolean {
  const m = /^ {8}server (?:(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})|\[([0-9a-fA-F:.]+)\]):(\d{1,5}) max_fails=1 fail_timeout=1s; # [\x20-\x7e]*$/.exec(line);
  if (!m) return false;
  if (m[1] !== undefined && [m[1], m[2], m[3], m[4]].some((o) => Number(o) > 255)) return false;
  if (m[5] !== undefined && !isIPv6(m[5])) return false;
  const port = Number(m[6]);
  return port >= 1 && port <= 65535;
}

/**
 * The config with its generation and each run of backend lines replaced by one placeholder: two
 * configs of the same shape differ only in which backends their upstreams have (never in whether an
 * upstream has any).
 */
function shape(config: string): string {
  const out: string[] = [];
  let inRun = false;
  for (const line of config.split('\n')) {
    if (isBackendLine(line)) {
      if (!inRun) out.push('        server <backends>;');
      inRun = true;
      continue;
    }
    inRun = false;
    if (/^# berth-generation: \d+$/.test(line)) out.push('# berth-generation: <n>');
    else if (/^ {8}location = \/berth\/generation \{ return 200 "\d+"; \}$/.test(line)) out.push('        location = /berth/generation { return 200 "<n>"; }');
    else out.push(line);
  }
  return out.join('\n');
}

/** True when `next` differs from `current` only in upstream backend lines (and the generation). */
export function onlyBackendsDiffer(current: string, next: string): boolean {
  return current !== next && shape(current) === shape(next);
}

/**
 * Which route a line of a config rendered by `renderNginxConfig` belongs to (1-based, as nginx -t
 * reports it): the upstream of the `location` or `upstream` block around it, or the host of the
 * `server` block whose `server_name` it is. Undefined for lines that are nobody's route (the http
 * block, the admin server, the default server's own lines): those are Berth's, not an app's.
 */
export function routeAtLine(config: string, line: number): { upstream: string } | { host: string } | undefined {
  const lines = config.split('\n');
  const i = line - 1;
  if (i < 0 || i >= lines.length) return undefined;
  for (let k = i; k >= 0; k--) {
    const l = lines[k]!;
    // Reached the end of an earlier block: the line is between blocks.
    if (k < i && (l === '        }' || l === '    }')) return undefined;
    const up = /^ {4}upstream (\S+) \{$/.exec(l);
    if (up) return { upstream: up[1]! };
    if (/^ {8}location /.test(l)) {
      for (let j = k + 1; j < lines.length && lines[j] !== '        }'; j++) {
        const m = /^ {12}set \$berth_route (\S+);$/.exec(lines[j]!);
        if (m) return { upstream: m[1]! };
      }
      return undefined;
    }
    if (l === '    server {') {
      for (let j = k + 1; j < lines.length && lines[j] !== '    }'; j++) {
        const m = /^ {8}server_name (\S+);$/.exec(lines[j]!);
        if (m) return m[1] === '_' ? undefined : { host: m[1]! };
      }
      return undefined;
    }
  }
  return undefined;
}
