/**
 * Networking of a service: its mode (host or app network), the app networks it joins with their
 * aliases, what its `ports` publish and what it `expose`s. Compose's top-level `networks` are scoped
 * by Berth per app and environment.
 */
import { isRecord, scalarToString, type Json, type SpecContext } from './context.ts';
import { closestMatch } from './suggest.ts';
import type { NetworkAttachment, NetworkMode, PortPublish } from './types.ts';
import type { SpecPath } from './yaml-source.ts';

/** Compose's network name grammar, also what Docker accepts inside Berth's network names. */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const ALIAS = /^[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$/;
const NETWORK_KEYS_IGNORED = 'not supported yet by Berth; ignored — Berth creates one bridge network per app, environment and name';

/** The names under the top-level `networks:` (each becomes one network per app and environment). */
export function declaredNetworks(compose: Json, ctx: Pick<SpecContext, 'diag'>): Set<string> {
  const out = new Set<string>();
  if (!isRecord(compose.networks)) return out;
  for (const [name, def] of Object.entries(compose.networks)) {
    if (!NETWORK_NAME.test(name)) {
      ctx.diag.error(['networks', name], `network name "${name}": use letters, digits, "_", "." and "-", starting with a letter or digit`, 'key');
      continue;
    }
    out.add(name);
    if (!isRecord(def)) continue;
    for (const [key, value] of Object.entries(def)) {
      if (key.startsWith('x-') || key === 'labels' || key === 'name') continue;
      // Compose's defaults on one host, which are what Berth does: nothing to warn about.
      if ((key === 'driver' && value === 'bridge') || (key === 'external' && value === false)) continue;
      if (key === 'external' && value === true) {
        ctx.diag.error(['networks', name, key], 'external networks are not supported yet: Berth creates the app\'s networks itself (one per environment); remove `external`', 'key');
        continue;
      }
      ctx.diag.warn(['networks', name, key], NETWORK_KEYS_IGNORED, 'key');
    }
  }
  return out;
}

export interface Networking {
  networkMode?: NetworkMode;
  networks?: NetworkAttachment[];
  publish?: PortPublish[];
  expose?: string[];
  /** App-network mode: the container port to route and check when x-berth.port is not set. */
  port?: number;
}

/**
 * The service's network mode: `network_mode: host` → host; `networks` → app; else x-berth.port → host
 * (Berth's allocated-PORT services); else app (images on their native ports, as Compose runs them).
 */
export function networkModeOf(ctx: SpecContext, path: SpecPath, raw: Json, xPort: number | undefined): NetworkMode {
  const nm = raw.network_mode;
  if (nm !== undefined) {
    const s = scalarToString(nm);
    if (raw.networks !== undefined) {
      ctx.diag.error([...path, 'network_mode'], '`network_mode` and `networks` cannot be combined: keep `networks` for the app\'s networks, or `network_mode: host` alone');
    }
    if (s === 'host') return 'host';
    if (s === 'bridge') {
      ctx.diag.warn([...path, 'network_mode'], 'Berth runs the service on the app\'s own network (per environment) instead of Docker\'s default bridge');
      return 'app';
    }
    ctx.diag.error([...path, 'network_mode'], `"${s}" is not supported: use host (the host's network) or leave it out (the app's network)`);
    return 'app';
  }
  if (raw.networks !== undefined) return 'app';
  return xPort !== undefined ? 'host' : 'app';
}

/** Networks, published ports and exposed ports of an app-network service. */
export function appNetworking(ctx: SpecContext & { declaredNetworks: ReadonlySet<string> }, path: SpecPath, raw: Json, xPort: number | undefined, replicas: number): Networking {
  const out: Networking = { networkMode: 'app' };
  out.networks = attachments(ctx, [...path, 'networks'], raw.networks);
  const publish = parsePorts(ctx, [...path, 'ports'], raw.ports);
  if (publish.length) out.publish = publish;
  const expose = exposeOf(ctx, [...path, 'expose'], raw.expose);
  if (expose.length) out.expose = expose;
  if (xPort === undefined) {
    const first = publish.find((p) => p.protocol === 'tcp');
    if (first) out.port = first.target;
  }
  const fixed = publish.findIndex((p) => p.published !== undefined);
  if (fixed >= 0 && replicas > 1) {
    ctx.diag.error([...path, 'ports', fixed], `host port ${publish[fixed]!.published} can be held by one container only, and the service has ${replicas} replicas: ` +
      `drop the host port (write "${publish[fixed]!.target}") — Berth publishes each replica on a port of its own and the ingress and discovery reach all of them`);
  }
  return out;
}

function attachments(ctx: SpecContext & { declaredNetworks: ReadonlySet<string> }, path: SpecPath, raw: unknown): NetworkAttachment[] {
  if (raw === undefined || raw === null) return [{ name: 'default', aliases: [] }];
  const entries: Array<{ name: string; def: unknown; at: SpecPath; where: 'key' | 'value' }> = Array.isArray(raw)
    ? raw.map((n, i) => ({ name: scalarToString(n), def: null, at: [...path, i], where: 'value' as const }))
    : isRecord(raw) ? Object.entries(raw).map(([n, def]) => ({ name: n, def, at: [...path, n], where: 'key' as const })) : [];
  const out: NetworkAttachment[] = [];
  for (const e of entries) {
    if (e.name !== 'default' && !ctx.declaredNetworks.has(e.name)) {
      const near = closestMatch(e.name, [...ctx.declaredNetworks]);
      const hint = near ? `did you mean "${near}"?` : ctx.declaredNetworks.size ? `declared networks: ${[...ctx.declaredNetworks].join(', ')}` : 'declare it under the top-level `networks:`';
      ctx.diag.error(e.at, `unknown network "${e.name}": ${hint}`, e.where);
      continue;
    }
    const aliases: string[] = [];
    if (isRecord(e.def)) {
      for (const [key, value] of Object.entries(e.def)) {
        if (key === 'aliases') {
          (Array.isArray(value) ? value : []).forEach((a, i) => {
            const s = scalarToString(a);
            if (!ALIAS.test(s)) ctx.diag.error([...e.at, 'aliases', i], `alias "${s}" is not a DNS name: use letters, digits, "-", "_" and "."`);
            else if (!aliases.includes(s)) aliases.push(s);
          });
        } else if (!key.startsWith('x-')) {
          ctx.diag.warn([...e.at, key], 'not supported yet by Berth; ignored — addresses are assigned by the engine', 'key');
        }
      }
    }
    if (!out.some((n) => n.name === e.name)) out.push({ name: e.name, aliases });
  }
  return out;
}

/**
 * Compose `ports`, short and long syntax. A range of container ports ("3000-3002", or host and
 * container ranges of one length, "9000-9002:3000-3002") is one entry per port; a host range for one
 * container port (Docker picks a free one of them) is not published (a warning says so).
 */
export function parsePorts(ctx: SpecContext, path: SpecPath, raw: unknown): PortPublish[] {
  if (!Array.isArray(raw)) return [];
  const out: PortPublish[] = [];
  raw.forEach((p, i) => {
    const r = isRecord(p) ? longPort(p) : shortPort(scalarToString(p));
    if ('error' in r) ctx.diag.error([...path, i], r.error);
    else if ('range' in r) ctx.diag.warn([...path, i], 'a host port range for one container port is not published by Berth; ignored — write the host port, or leave it out (Berth allocates one)');
    else if ('many' in r) out.push(...r.many);
    else out.push(r);
  });
  return out;
}

type PortResult = PortPublish | { error: string } | { range: true } | { many: PortPublish[] };

/** The most ports one range entry may publish (each is a listening proxy on the host). */
const MAX_RANGE = 1000;

const PORT_FORMS = 'write "80" (container port), "8080:80" (host:container) or "127.0.0.1:8080:80", optionally with /tcp or /udp';

export function shortPort(s: string): PortResult {
  let rest = s.trim();
  let protocol: 'tcp' | 'udp' = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const proto = rest.slice(slash + 1).toLowerCase();
    if (proto !== 'tcp' && proto !== 'udp') return { error: `"${s}": protocol "${proto}" is not supported: use tcp or udp` };
    protocol = proto;
    rest = rest.slice(0, slash);
  }
  let hostIp: string | undefined;
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(rest);
  if (v6) {
    hostIp = v6[1]!;
    rest = v6[2]!;
  }
  const parts = rest.split(':');
  if (parts.length > 3 || (v6 && parts.length > 2)) return { error: `"${s}" is not a port mapping: ${PORT_FORMS}` };
  if (parts.length === 3) hostIp = parts.shift()!;
  if (parts.some((x) => x.includes('-'))) return portRange(s, parts, hostIp, protocol);
  const target = portNumber(parts.at(-1)!);
  const published = parts.length === 2 && parts[0] !== '' ? portNumber(parts[0]!) : undefined;
  if (target === undefined || (parts.length === 2 && parts[0] !== '' && published === undefined)) return { error: `"${s}" is not a port mapping: ${PORT_FORMS}` };
  return { target, ...(published !== undefined ? { published } : {}), ...(hostIp ? { hostIp } : {}), protocol };
}

/** "3000-3002", "9000-9002:3000-3002" (one host port per container port, in order), ":3000-3002". */
function portRange(s: string, parts: string[], hostIp: string | undefined, protocol: 'tcp' | 'udp'): PortResult {
  const span = (x: string): [number, number] | undefined => {
    const m = /^(\d+)-(\d+)$/.exec(x.trim());
    const lo = m ? portNumber(m[1]!) : portNumber(x);
    const hi = m ? portNumber(m[2]!) : lo;
    return lo !== undefined && hi !== undefined && lo <= hi ? [lo, hi] : undefined;
  };
  const target = span(parts.at(-1)!);
  const host = parts.length === 2 && parts[0] !== '' ? span(parts[0]!) : undefined;
  if (target === undefined || (parts.length === 2 && parts[0] !== '' && host === undefined)) {
    return { error: `"${s}" is not a port range: write "3000-3005" (container ports) or "9000-9005:3000-3005" (as many host ports, in order)` };
  }
  const n = target[1] - target[0] + 1;
  if (host && n === 1) return { range: true };
  if (host && host[1] - host[0] + 1 !== n) {
    return { error: `"${s}": the host range has ${host[1] - host[0] + 1} ports and the container range ${n}: give both the same length` };
  }
  if (n > MAX_RANGE) return { error: `"${s}" publishes ${n} ports: at most ${MAX_RANGE} per entry` };
  return {
    many: Array.from({ length: n }, (_, k) => ({
      target: target[0] + k, ...(host ? { published: host[0] + k } : {}), ...(hostIp ? { hostIp } : {}), protocol,
    })),
  };
}

function longPort(p: Json): PortResult {
  if (p.target === undefined) return { error: 'a port needs `target`, the port inside the container' };
  const target = portNumber(scalarToString(p.target));
  if (target === undefined) return { error: `target ${JSON.stringify(p.target)} is not a port: a whole number from 1 to 65535` };
  let published: number | undefined;
  if (p.published !== undefined && p.published !== null && p.published !== '') {
    if (scalarToString(p.published).includes('-')) return { range: true };
    published = portNumber(scalarToString(p.published));
    if (published === undefined) return { error: `published ${JSON.stringify(p.published)} is not a port: a whole number from 1 to 65535` };
  }
  const protocol = p.protocol === undefined ? 'tcp' : scalarToString(p.protocol).toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp') return { error: `protocol "${protocol}" is not supported: use tcp or udp` };
  const hostIp = typeof p.host_ip === 'string' && p.host_ip !== '' ? p.host_ip : undefined;
  return { target, ...(published !== undefined ? { published } : {}), ...(hostIp ? { hostIp } : {}), protocol };
}

function portNumber(s: string): number | undefined {
  if (!/^\d+$/.test(s.trim())) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

function exposeOf(ctx: SpecContext, path: SpecPath, raw: unknown): string[] {
  if (!Array.isArray(raw)) return [];
  const out: string[] = [];
  raw.forEach((e, i) => {
    const s = scalarToString(e).trim();
    if (!/^\d+(-\d+)?(\/(tcp|udp))?$/i.test(s)) ctx.diag.error([...path, i], `"${s}" is not a port: write e.g. "5432" or "5432/tcp"`);
    else out.push(s.toLowerCase());
  });
  return out;
}
