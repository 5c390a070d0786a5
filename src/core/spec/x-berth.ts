/**
 * The `x-berth` extensions: per service `port`, `routes` and `health`; at the top level `app`.
 * Compose ignores `x-` keys, so these stay valid Compose files; inside `x-berth` Berth is strict and
 * rejects unknown keys, because a typo there would silently change routing or health.
 */
import { isRecord, type SpecContext } from './context.ts';
import type { Diagnostics } from './diagnostics.ts';
import { berthHealth } from './health.ts';
import { unknownKey } from './suggest.ts';
import type { HttpHealth, RouteSpec, TcpHealth } from './types.ts';
import type { SpecPath } from './yaml-source.ts';

const SERVICE_KEYS = ['port', 'routes', 'health'];
const APP_KEYS = ['app'];
const ROUTE_KEYS = ['host', 'path'];
const HOST = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const ROUTE_FORMS = 'write "example.com/api", "/api" or {host: example.com, path: /api}';

export interface ServiceExtensions {
  port?: number;
  routes: RouteSpec[];
  /** Undefined when x-berth.health is absent (or invalid, which is reported). */
  health?: HttpHealth | TcpHealth | { type: 'none' };
}

export function serviceExtensions(ctx: SpecContext, path: SpecPath, raw: unknown): ServiceExtensions {
  if (raw === undefined || raw === null) return { routes: [] };
  if (!isRecord(raw)) {
    ctx.diag.error(path, 'expected a mapping with `port`, `routes` and/or `health`');
    return { routes: [] };
  }
  unknownKeys(ctx, path, raw, SERVICE_KEYS);
  const port = raw.port === undefined ? undefined : parsePort(ctx, [...path, 'port'], raw.port);
  const routes = raw.routes === undefined ? [] : parseRoutes(ctx, [...path, 'routes'], raw.routes);
  if (routes.length > 0 && port === undefined && raw.port === undefined) {
    ctx.diag.error([...path, 'routes'], 'routes need `x-berth.port`: set the port the service listens on, e.g. port: 8080');
  }
  const health = raw.health === undefined ? undefined : berthHealth(ctx, [...path, 'health'], raw.health);
  if (health && health.type !== 'none' && port === undefined && raw.port === undefined) {
    ctx.diag.error([...path, 'health'], `a${health.type === 'http' ? 'n HTTP' : ' TCP'} health check needs \`x-berth.port\`: set the port the service listens on`);
  }
  return { port, routes, health };
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
  let ok = true;
  if (host !== undefined) {
    host = host.toLowerCase();
    if (!HOST.test(host)) {
      ctx.diag.error(path, `"${host}" is not a host name: use letters, digits, "-" and ".", e.g. shop.example.com`);
      ok = false;
    }
  }
  if (typeof routePath !== 'string' || !routePath.startsWith('/') || /[\s?#]/.test(routePath)) {
    ctx.diag.error(path, `${JSON.stringify(routePath)} is not a route path: it must start with "/" and hold no spaces, "?" or "#", e.g. /api`);
    ok = false;
  }
  if (!ok) return undefined;
  return host === undefined ? { path: routePath as string } : { host, path: routePath as string };
}
