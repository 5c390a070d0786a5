/**
 * The `x-berth` extensions: per service `port`, `routes` and `health`; at the top level `app`.
 * Compose ignores `x-` keys, so these stay valid Compose files; inside `x-berth` Berth is strict and
 * rejects unknown keys, because a typo there would silently change routing or health.
 */
import { isRecord, take, type SpecContext } from './context.ts';
import type { Diagnostics } from './diagnostics.ts';
import { berthHealth } from './health.ts';
import { closestMatch, unknownKey } from './suggest.ts';
import { DEFAULT_CHECK_POLICY, DEFAULT_UPDATE, type CheckPolicy, type HttpHealth, type PipelineSpec, type RouteSpec, type TcpHealth, type UpdateSpec } from './types.ts';
import { splitShellWords } from './shell-words.ts';
import { CHECK_IDS } from '../image-checks.ts';
import { parseDuration } from './units.ts';
import { normaliseHost, normaliseRoutePath } from './routes.ts';
import type { SpecPath } from './yaml-source.ts';

const SERVICE_KEYS = ['port', 'routes', 'health', 'update', 'test', 'pool'];
const PIPELINE_KEYS = ['branches', 'checks'];
const CHECKS_KEYS = ['max_chain_depth', 'strict', 'warn_only'];
const UPDATE_KEYS = ['strategy', 'max_surge', 'max_unavailable', 'keep_previous', 'signal', 'on_failure', 'deadline'];
const STRATEGIES = ['rolling', 'blue-green', 'reload', 'recreate'] as const;
const APP_KEYS = ['app', 'pipeline', 'pool'];
const ROUTE_KEYS = ['host', 'path', 'tls', 'redirect', 'hsts'];
/** `hsts: true`: one year, the value browsers' preload lists ask for. */
const HSTS_DEFAULT_S = 31_536_000;
const ROUTE_FORMS = 'write "example.com/api", "/api" or {host: example.com, path: /api}';

export interface ServiceExtensions {
  port?: number;
  routes: RouteSpec[];
  /** Undefined when x-berth.health is absent (or invalid, which is reported). */
  health?: HttpHealth | TcpHealth | { type: 'none' };
  update: UpdateSpec;
  test?: string[];
  /** x-berth.pool: the host pool the service runs in. */
  pool?: string;
}

/** `fallbackPort`: the container port an app-network service's `ports` give (routes and checks may use it instead of x-berth.port). */
export function serviceExtensions(ctx: SpecContext, path: SpecPath, raw: unknown, fallbackPort?: number): ServiceExtensions {
  if (raw === undefined || raw === null) return { routes: [], update: DEFAULT_UPDATE };
  if (!isRecord(raw)) {
    ctx.diag.error(path, 'expected a mapping with `port`, `routes`, `health` and/or `update`');
    return { routes: [], update: DEFAULT_UPDATE };
  }
  unknownKeys(ctx, path, raw, SERVICE_KEYS);
  const port = raw.port === undefined ? undefined : parsePort(ctx, [...path, 'port'], raw.port);
  const routes = raw.routes === undefined ? [] : parseRoutes(ctx, [...path, 'routes'], raw.routes);
  if (routes.length > 0 && port === undefined && raw.port === undefined && fallbackPort === undefined) {
    ctx.diag.error([...path, 'routes'], 'routes need a port: set `x-berth.port` (the port the service listens on, e.g. port: 8080) or list it under `ports`');
  }
  const health = raw.health === undefined ? undefined : berthHealth(ctx, [...path, 'health'], raw.health);
  if (health && health.type !== 'none' && port === undefined && raw.port === undefined && fallbackPort === undefined) {
    ctx.diag.error([...path, 'health'], `a${health.type === 'http' ? 'n HTTP' : ' TCP'} health check needs a port: set \`x-berth.port\` (the port the service listens on) or list it under \`ports\``);
  }
  const update = raw.update === undefined ? DEFAULT_UPDATE : parseUpdate(ctx, [...path, 'update'], raw.update);
  const test = raw.test === undefined ? undefined : parseTest(ctx.diag, [...path, 'test'], raw.test);
  const pool = raw.pool === undefined ? undefined : parsePool(ctx.diag, [...path, 'pool'], raw.pool);
  return { port, routes, health, update, ...(test ? { test } : {}), ...(pool !== undefined ? { pool } : {}) };
}

const POOL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** A pool name: a host label value (`berth host label HOST io.berth.pool=NAME`). */
export function parsePool(diag: Diagnostics, path: SpecPath, raw: unknown): string | undefined {
  if (typeof raw === 'string' && POOL_NAME.test(raw)) return raw;
  diag.error(path, `${JSON.stringify(raw)} is not a pool name: write letters, digits, '.', '_' or '-' (at most 63, starting with a letter or digit), e.g. pool: team-a`);
  return undefined;
}

/** The top-level `x-berth.pool`: the pool of every service of the file that names none. */
export function appPool(diag: Diagnostics, raw: unknown): string | undefined {
  if (!isRecord(raw) || raw.pool === undefined) return undefined;
  return parsePool(diag, ['x-berth', 'pool'], raw.pool);
}

/** `test: npm test` (shell words, no shell) or `test: [npm, test]`. */
function parseTest(diag: Diagnostics, path: SpecPath, raw: unknown): string[] | undefined {
  const hint = 'write the command the pipeline runs in a container of the new image, e.g. test: npm test, or [sh, -c, "npm test && npm run lint"]';
  if (typeof raw === 'string') {
    const r = splitShellWords(raw);
    if (!r.ok) diag.error(path, `${r.message}: ${hint}`);
    else if (r.argv.length === 0) diag.error(path, `the test command is empty: ${hint}`);
    else return r.argv;
    return undefined;
  }
  if (Array.isArray(raw) && raw.length > 0 && raw.every((w) => typeof w === 'string')) return raw as string[];
  diag.error(path, `expected a command: ${hint}`);
  return undefined;
}

function parseUpdate(ctx: SpecContext, path: SpecPath, raw: unknown): UpdateSpec {
  if (!isRecord(raw)) {
    ctx.diag.error(path, `expected a mapping such as {strategy: rolling, max_surge: 1}; strategies: ${STRATEGIES.join(', ')}`);
    return DEFAULT_UPDATE;
  }
  unknownKeys(ctx, path, raw, UPDATE_KEYS);
  const u: UpdateSpec = { ...DEFAULT_UPDATE };
  if (raw.strategy !== undefined) {
    if (typeof raw.strategy === 'string' && (STRATEGIES as readonly string[]).includes(raw.strategy)) u.strategy = raw.strategy as UpdateSpec['strategy'];
    else ctx.diag.error([...path, 'strategy'], `${JSON.stringify(raw.strategy)} is not a strategy: write one of ${STRATEGIES.join(', ')}`);
  }
  const count = (key: string): number | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
    if (Number.isInteger(n) && n >= 0) return n;
    ctx.diag.error([...path, key], `${JSON.stringify(v)} is not a count of instances: write a whole number such as 1`);
    return undefined;
  };
  u.maxSurge = count('max_surge') ?? u.maxSurge;
  u.maxUnavailable = count('max_unavailable') ?? u.maxUnavailable;
  if (u.maxSurge === 0 && u.maxUnavailable === 0) {
    ctx.diag.error(path, 'max_surge and max_unavailable are both 0, so a rolling update could never make progress: allow one of them to be at least 1');
  }
  const duration = (key: string): number | undefined => (raw[key] === undefined ? undefined : take(ctx, [...path, key], parseDuration(raw[key])));
  u.keepPreviousMs = duration('keep_previous') ?? u.keepPreviousMs;
  u.deadlineMs = duration('deadline') ?? u.deadlineMs;
  if (raw.signal !== undefined) {
    if (typeof raw.signal === 'string' && /^(SIG)?[A-Z0-9]+$/.test(raw.signal)) u.signal = raw.signal.startsWith('SIG') ? raw.signal : `SIG${raw.signal}`;
    else ctx.diag.error([...path, 'signal'], `${JSON.stringify(raw.signal)} is not a signal name: write e.g. SIGHUP or SIGUSR2`);
  }
  if (raw.on_failure !== undefined) {
    const allowed = u.strategy === 'reload' ? ['rollback', 'restart', 'none'] : ['rollback', 'none'];
    if (typeof raw.on_failure === 'string' && allowed.includes(raw.on_failure)) u.onFailure = raw.on_failure as UpdateSpec['onFailure'];
    else ctx.diag.error([...path, 'on_failure'], `${JSON.stringify(raw.on_failure)} is not allowed here: write one of ${allowed.join(', ')}`);
  }
  return u;
}

/**
 * Top-level `x-berth.pipeline`: `{branches: {main: pre, release: prod}, checks: {max_chain_depth: 3,
 * strict: [non-root], warn_only: [pinned-from]}}`.
 */
export function pipelineExtensions(diag: Diagnostics, raw: unknown): PipelineSpec | undefined {
  if (!isRecord(raw) || raw.pipeline === undefined) return undefined;
  const path = ['x-berth', 'pipeline'];
  const p = raw.pipeline;
  if (!isRecord(p)) {
    diag.error(path, 'expected a mapping such as {branches: {main: pre}}');
    return undefined;
  }
  for (const key of Object.keys(p)) {
    if (!PIPELINE_KEYS.includes(key)) diag.error([...path, key], unknownKey(key, PIPELINE_KEYS, 'x-berth.pipeline'), 'key');
  }
  const branches: Record<string, string> = {};
  if (p.branches !== undefined) {
    if (!isRecord(p.branches)) {
      diag.error([...path, 'branches'], 'expected branch: environment pairs, e.g. {main: pre, release: prod}');
      return undefined;
    }
    for (const [branch, env] of Object.entries(p.branches)) {
      if (typeof env !== 'string' || !/^[a-z0-9][a-z0-9-]*$/.test(env)) {
        diag.error([...path, 'branches', branch], `${JSON.stringify(env)} is not an environment name: lower-case letters, digits and dashes, e.g. pre`);
      } else branches[branch] = env;
    }
  }
  return { branches, checks: p.checks === undefined ? DEFAULT_CHECK_POLICY : parseChecks(diag, [...path, 'checks'], p.checks) };
}

function parseChecks(diag: Diagnostics, path: SpecPath, raw: unknown): CheckPolicy {
  if (!isRecord(raw)) {
    diag.error(path, 'expected a mapping such as {max_chain_depth: 3, strict: [non-root]}');
    return DEFAULT_CHECK_POLICY;
  }
  for (const key of Object.keys(raw)) {
    if (!CHECKS_KEYS.includes(key)) diag.error([...path, key], unknownKey(key, CHECKS_KEYS, 'x-berth.pipeline.checks'), 'key');
  }
  const policy: CheckPolicy = { ...DEFAULT_CHECK_POLICY, strict: [], warnOnly: [] };
  if (raw.max_chain_depth !== undefined) {
    const n = raw.max_chain_depth;
    if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 10) policy.maxChainDepth = n;
    else diag.error([...path, 'max_chain_depth'], `${JSON.stringify(n)} is not a number of levels: write a whole number from 1 to 10 (base → runtime → app is 3)`);
  }
  const ids = (key: 'strict' | 'warn_only'): string[] => {
    const v = raw[key];
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      diag.error([...path, key], `expected a list of check names: ${CHECK_IDS.join(', ')}`);
      return [];
    }
    const out: string[] = [];
    v.forEach((id, i) => {
      if (typeof id === 'string' && (CHECK_IDS as readonly string[]).includes(id)) out.push(id);
      else {
        const near = closestMatch(String(id), CHECK_IDS);
        diag.error([...path, key, i], `${JSON.stringify(id)} is not a check${near ? `: did you mean ${near}?` : ''} (checks: ${CHECK_IDS.join(', ')})`);
      }
    });
    return out;
  };
  policy.strict = ids('strict');
  policy.warnOnly = ids('warn_only');
  for (const id of policy.strict.filter((x) => policy.warnOnly.includes(x))) {
    diag.error([...path, 'warn_only'], `${id} is both strict and warn_only: pick one`);
  }
  return policy;
}

/** Top-level `x-berth`: returns the app name if given. */
export function appExtensions(diag: Diagnostics, raw: unknown): string | undefined {
  const path = ['x-berth'];
  if (raw === undefined || raw === null) return undefined;
  if (!isRecord(raw)) {
    diag.error(path, 'expected a mapping such as {app: my-app}');
    return undefined;
  }
  for (const key of Object.keys(raw)) {
    if (!APP_KEYS.includes(key)) diag.error([...path, key], unknownKey(key, APP_KEYS, 'the top-level x-berth'), 'key');
  }
  if (raw.app === undefined) return undefined;
  if (typeof raw.app !== 'string') {
    diag.error([...path, 'app'], 'expected the app name as a string, e.g. app: shop');
    return undefined;
  }
  return raw.app;
}

function unknownKeys(ctx: SpecContext, path: SpecPath, raw: Record<string, unknown>, allowed: string[]): void {
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) {
      ctx.diag.error([...path, key], unknownKey(key, allowed, 'x-berth'), 'key');
    }
  }
}

function parsePort(ctx: SpecContext, path: SpecPath, raw: unknown): number | undefined {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (Number.isInteger(n) && n >= 1 && n <= 65535) return n;
  ctx.diag.error(path, `${JSON.stringify(raw)} is not a port: write the port the service listens on, a whole number from 1 to 65535`);
  return undefined;
}

function parseRoutes(ctx: SpecContext, path: SpecPath, raw: unknown): RouteSpec[] {
  if (!Array.isArray(raw)) {
    ctx.diag.error(path, `expected a list of routes: ${ROUTE_FORMS}`);
    return [];
  }
  const out: RouteSpec[] = [];
  raw.forEach((item, i) => {
    const r = parseRoute(ctx, [...path, i], item);
    if (r) out.push(r);
  });
  return out;
}

function parseRoute(ctx: SpecContext, path: SpecPath, raw: unknown): RouteSpec | undefined {
  let host: string | undefined;
  let routePath: unknown = '/';
  let https: Pick<RouteSpec, 'tls' | 'redirect' | 'hstsSeconds'> = {};
  if (typeof raw === 'string') {
    if (raw.includes('://')) {
      ctx.diag.error(path, `"${raw}": write the route without a scheme, e.g. "${raw.replace(/^[a-z]+:\/\//i, '')}"`);
      return undefined;
    }
    const slash = raw.indexOf('/');
    if (slash < 0) host = raw;
    else {
      host = slash === 0 ? undefined : raw.slice(0, slash);
      routePath = raw.slice(slash);
    }
  } else if (isRecord(raw)) {
    for (const key of Object.keys(raw)) {
      if (!ROUTE_KEYS.includes(key)) ctx.diag.error([...path, key], unknownKey(key, ROUTE_KEYS, 'a route'), 'key');
    }
    https = routeHttps(ctx, path, raw);
    if (raw.host !== undefined && raw.host !== null) {
      if (typeof raw.host !== 'string') {
        ctx.diag.error([...path, 'host'], 'expected a host name such as example.com');
        return undefined;
      }
      host = raw.host;
    }
    if (raw.path !== undefined && raw.path !== null) routePath = raw.path;
  } else {
    ctx.diag.error(path, `not a route: ${ROUTE_FORMS}`);
    return undefined;
  }
  // One grammar with the API and the renderer (routes.ts): canonical host and path, or a refusal here.
  const h = host === undefined ? undefined : normaliseHost(host);
  const p = normaliseRoutePath(routePath);
  const at = (key: string): SpecPath => (typeof raw === 'string' ? path : [...path, key]);
  if (h && !h.ok) ctx.diag.error(at('host'), h.message);
  if (!p.ok) ctx.diag.error(at('path'), p.message);
  if ((h && !h.ok) || !p.ok) return undefined;
  if (h === undefined && Object.keys(https).length > 0) {
    ctx.diag.error(path, 'tls, redirect and hsts need a host: a route without one is served for any host, and a certificate names its host (add host: example.com)');
    return undefined;
  }
  return h === undefined ? { path: p.value } : { host: h.value, path: p.value, ...https };
}

/** The HTTPS options of a route mapping; only what differs from the default is kept (see RouteSpec). */
function routeHttps(ctx: SpecContext, path: SpecPath, raw: Record<string, unknown>): Pick<RouteSpec, 'tls' | 'redirect' | 'hstsSeconds'> {
  const out: Pick<RouteSpec, 'tls' | 'redirect' | 'hstsSeconds'> = {};
  const flag = (key: 'tls' | 'redirect'): boolean | undefined => {
    const v = raw[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    ctx.diag.error([...path, key], `expected true or false, got ${JSON.stringify(v)}`);
    return undefined;
  };
  const tls = flag('tls');
  const redirect = flag('redirect');
  if (tls === false) out.tls = false;
  if (redirect === false) out.redirect = false;
  const hsts = raw.hsts;
  if (hsts !== undefined && hsts !== null && hsts !== false) {
    if (hsts === true) out.hstsSeconds = HSTS_DEFAULT_S;
    else {
      const d = parseDuration(hsts, { days: true });
      if (d.error !== undefined) ctx.diag.error([...path, 'hsts'], `${d.error}; or true (one year) or false`);
      else if (d.value! < 1000) ctx.diag.error([...path, 'hsts'], 'hsts max-age must be at least 1s (false turns HSTS off)');
      else out.hstsSeconds = Math.floor(d.value! / 1000);
    }
  }
  if (tls === false && (redirect === true || out.hstsSeconds !== undefined)) {
    ctx.diag.error([...path, 'tls'], 'tls: false serves this route over plain HTTP only, so redirect: true and hsts cannot apply: drop them or tls: false');
  }
  return out;
}
