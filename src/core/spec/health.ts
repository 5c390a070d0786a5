/**
 * Health checks. Compose `healthcheck:` runs inside the container (Docker's defaults: 30s interval,
 * 30s timeout, 3 retries); `x-berth.health` is checked by Berth from outside over HTTP or TCP on the
 * instance's port (fast defaults: 1s/1s/3, because it gates traffic during deploys).
 */
import { isRecord, type SpecContext } from './context.ts';
import type { CommandHealth, HealthSpec, HttpHealth, TcpHealth } from './types.ts';
import { unknownKey } from './suggest.ts';
import { parseBool, parseCount, parseDuration, type Parsed } from './units.ts';
import type { SpecPath } from './yaml-source.ts';

const DOCKER_DEFAULTS = { intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 };
const BERTH_DEFAULTS = { intervalMs: 1_000, timeoutMs: 1_000, retries: 3, startPeriodMs: 0 };
type Timings = typeof DOCKER_DEFAULTS;

/** Compose healthcheck → a command check, 'disabled', or undefined when absent or unusable. */
export function composeHealth(ctx: SpecContext, path: SpecPath, raw: unknown): CommandHealth | 'disabled' | undefined {
  if (!isRecord(raw)) return undefined;
  if (raw.disable !== undefined) {
    const d = parseBool(raw.disable);
    if (d.error !== undefined) ctx.diag.error([...path, 'disable'], d.error);
    else if (d.value) return 'disabled';
  }
  if (raw.start_interval !== undefined) ctx.diag.warn([...path, 'start_interval'], 'not supported yet by Berth; ignored', 'key');
  if (raw.test === undefined) {
    ctx.diag.warn(path, 'healthcheck has no `test`, and Berth does not use the image\'s HEALTHCHECK; ignored');
    return undefined;
  }
  const test = commandTest(ctx, [...path, 'test'], raw.test);
  if (test === 'disabled') return test;
  const t = timings(ctx, path, raw, DOCKER_DEFAULTS);
  return test === undefined ? undefined : { type: 'command', test, ...t };
}

function commandTest(ctx: SpecContext, path: SpecPath, raw: unknown): string[] | 'disabled' | undefined {
  if (typeof raw === 'string') {
    if (raw.trim() === '') {
      ctx.diag.error(path, 'empty health check command: write the command to run, e.g. "curl -f http://localhost:8080/"');
      return undefined;
    }
    return ['CMD-SHELL', raw];
  }
  if (!Array.isArray(raw)) return undefined;
  const [kind, ...rest] = raw.map(String);
  if (kind === 'NONE') return 'disabled';
  if ((kind === 'CMD' || kind === 'CMD-SHELL') && rest.length > 0) return [kind, ...rest];
  ctx.diag.error(
    path,
    kind === 'CMD' || kind === 'CMD-SHELL'
      ? `"${kind}" needs a command after it, e.g. ["${kind}", "curl", "-f", "http://localhost/"]`
      : 'a health check list must start with "CMD", "CMD-SHELL" or "NONE", e.g. ["CMD", "curl", "-f", "http://localhost/"]; or write a string to run it in a shell',
  );
  return undefined;
}

function timings(ctx: SpecContext, path: SpecPath, raw: Record<string, unknown>, defaults: Timings): Timings {
  const pick = <T>(key: string, parse: (v: unknown) => Parsed<T>, fallback: T): T => {
    if (raw[key] === undefined || raw[key] === null) return fallback;
    const r = parse(raw[key]);
    if (r.error !== undefined) {
      ctx.diag.error([...path, key], r.error);
      return fallback;
    }
    return r.value;
  };
  const positive = (v: unknown): Parsed<number> => {
    const d = parseDuration(v);
    return d.error === undefined && d.value <= 0 ? { error: `${JSON.stringify(v)} must be longer than 0, e.g. 5s` } : d;
  };
  return {
    intervalMs: pick('interval', positive, defaults.intervalMs),
    timeoutMs: pick('timeout', positive, defaults.timeoutMs),
    retries: pick('retries', parseCount, defaults.retries),
    startPeriodMs: pick('start_period', parseDuration, defaults.startPeriodMs),
  };
}

const X_HEALTH_KEYS = ['http', 'tcp'];
const X_HTTP_KEYS = ['path', 'interval', 'timeout', 'retries', 'start_period'];
const X_HEALTH_FORMS = 'write "/healthz", {http: "/healthz"}, {http: {path: "/healthz", interval: "2s"}} or {tcp: true}';

/** `x-berth.health` → an http/tcp check, `none` for `{tcp: false}`, or undefined on error. */
export function berthHealth(ctx: SpecContext, path: SpecPath, raw: unknown): HttpHealth | TcpHealth | { type: 'none' } | undefined {
  if (typeof raw === 'string') {
    const p = httpPath(ctx, path, raw);
    return p === undefined ? undefined : { type: 'http', path: p, ...BERTH_DEFAULTS };
  }
  if (!isRecord(raw)) {
    ctx.diag.error(path, `not a health check: ${X_HEALTH_FORMS}`);
    return undefined;
  }
  let ok = true;
  for (const key of Object.keys(raw)) {
    if (!X_HEALTH_KEYS.includes(key)) {
      ctx.diag.error([...path, key], `${unknownKey(key, X_HEALTH_KEYS, 'x-berth.health')} (${X_HEALTH_FORMS})`, 'key');
      ok = false;
    }
  }
  if (raw.http !== undefined && raw.tcp !== undefined) {
    ctx.diag.error(path, 'choose one of `http` and `tcp`, not both');
    return undefined;
  }
  if (raw.tcp !== undefined) {
    const b = parseBool(raw.tcp);
    if (b.error !== undefined) {
      ctx.diag.error([...path, 'tcp'], b.error);
      return undefined;
    }
    return ok ? (b.value ? { type: 'tcp', ...BERTH_DEFAULTS } : { type: 'none' }) : undefined;
  }
  if (raw.http === undefined) {
    if (ok) ctx.diag.error(path, `empty health check: ${X_HEALTH_FORMS}`);
    return undefined;
  }
  const hp = [...path, 'http'];
  if (typeof raw.http === 'string') {
    const p = httpPath(ctx, hp, raw.http);
    return p === undefined || !ok ? undefined : { type: 'http', path: p, ...BERTH_DEFAULTS };
  }
  if (!isRecord(raw.http)) {
    ctx.diag.error(hp, `not an HTTP health check: ${X_HEALTH_FORMS}`);
    return undefined;
  }
  for (const key of Object.keys(raw.http)) {
    if (!X_HTTP_KEYS.includes(key)) {
      ctx.diag.error([...hp, key], unknownKey(key, X_HTTP_KEYS, 'an HTTP health check'), 'key');
      ok = false;
    }
  }
  const p = raw.http.path === undefined ? '/' : httpPath(ctx, [...hp, 'path'], raw.http.path);
  const t = timings(ctx, hp, raw.http, BERTH_DEFAULTS);
  return p === undefined || !ok ? undefined : { type: 'http', path: p, ...t };
}

function httpPath(ctx: SpecContext, path: SpecPath, raw: unknown): string | undefined {
  if (typeof raw === 'string' && raw.startsWith('/') && !/\s/.test(raw)) return raw;
  ctx.diag.error(path, `${JSON.stringify(raw)} is not an HTTP path: it must start with "/", e.g. "/healthz"`);
  return undefined;
}

/** The default for a service with a port and no explicit check: a TCP connect. */
export function defaultTcpHealth(): TcpHealth {
  return { type: 'tcp', ...BERTH_DEFAULTS };
}

/**
 * Picks the check: an enabled Compose healthcheck, else x-berth.health, else TCP on the port when
 * there is one, else none.
 */
export function resolveHealth(
  compose: CommandHealth | 'disabled' | undefined,
  berth: HttpHealth | TcpHealth | { type: 'none' } | undefined,
  port: number | undefined,
): HealthSpec {
  if (compose !== undefined && compose !== 'disabled') return compose;
  if (berth !== undefined) return berth;
  if (port !== undefined) return defaultTcpHealth();
  return { type: 'none' };
}
