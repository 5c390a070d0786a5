/**
 * A service's process settings that Compose files set and Docker applies as written: `init`,
 * `working_dir`, `ulimits`, `sysctls` (network-namespaced `net.*` only: the others change the
 * host's kernel for every container), `extra_hosts` and `pull_policy`. Only what a file sets lands
 * in the spec, so a file that does not use them keeps its release hash.
 */
import { isRecord, listOrDict, scalarToString, type Json, type SpecContext } from './context.ts';
import type { ServiceSpec } from './types.ts';
import { parseBool, parseDuration } from './units.ts';
import type { SpecPath } from './yaml-source.ts';

type RuntimeSpec = Pick<ServiceSpec, 'init' | 'workingDir' | 'ulimits' | 'sysctls' | 'extraHosts' | 'pullPolicy'>;

/** The limits `docker run --ulimit` knows (setrlimit resources). */
export const ULIMITS = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'];
export const PULL_POLICIES = ['always', 'never', 'missing', 'if_not_present', 'build', 'refresh', 'daily', 'weekly'];
const SYSCTL_NAME = /^net\.[a-z0-9_.-]+$/i;
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const IPV6 = /^\[?[0-9a-fA-F:.]*:[0-9a-fA-F:.]*\]?$/;

export function runtimeOf(ctx: SpecContext, path: SpecPath, raw: Json): RuntimeSpec {
  const out: RuntimeSpec = {};
  if (raw.init !== undefined && raw.init !== null) {
    const b = parseBool(raw.init);
    if (b.error !== undefined) ctx.diag.error([...path, 'init'], b.error);
    else if (b.value) out.init = true;
  }
  if (raw.working_dir !== undefined && raw.working_dir !== null) {
    const dir = scalarToString(raw.working_dir);
    if (!dir.startsWith('/') || dir.includes('\0')) ctx.diag.error([...path, 'working_dir'], `${JSON.stringify(dir)} is not an absolute path: write the directory inside the container, such as /app`);
    else out.workingDir = dir;
  }
  const ulimits = ulimitsOf(ctx, [...path, 'ulimits'], raw.ulimits);
  if (ulimits.length > 0) out.ulimits = ulimits;
  const sysctls = sysctlsOf(ctx, [...path, 'sysctls'], raw.sysctls);
  if (Object.keys(sysctls).length > 0) out.sysctls = sysctls;
  const hosts = extraHostsOf(ctx, [...path, 'extra_hosts'], raw.extra_hosts);
  if (hosts.length > 0) out.extraHosts = hosts;
  if (raw.pull_policy !== undefined && raw.pull_policy !== null) {
    const p = scalarToString(raw.pull_policy);
    const every = /^every_(.+)$/.exec(p)?.[1];
    const everyMs = every === undefined ? undefined : parseDuration(every, { weeks: true });
    if (PULL_POLICIES.includes(p) || everyMs?.value !== undefined) out.pullPolicy = p === 'if_not_present' ? 'missing' : p;
    else {
      ctx.diag.error([...path, 'pull_policy'], `${JSON.stringify(p)} is not a pull policy: use always, never, missing, build, daily, weekly or every_<duration>` +
        `${everyMs?.error ? ` (${everyMs.error})` : ''}`);
    }
  }
  return out;
}

function ulimitsOf(ctx: SpecContext, path: SpecPath, raw: unknown): Array<{ name: string; soft: number; hard: number }> {
  if (!isRecord(raw)) return [];
  const out: Array<{ name: string; soft: number; hard: number }> = [];
  for (const [name, v] of Object.entries(raw)) {
    if (!ULIMITS.includes(name)) {
      ctx.diag.error([...path, name], `unknown ulimit "${name}": use one of ${ULIMITS.join(', ')}`, 'key');
      continue;
    }
    const num = (x: unknown, at: SpecPath): number | undefined => {
      const n = typeof x === 'number' ? x : typeof x === 'string' && /^-?\d+$/.test(x.trim()) ? Number(x) : NaN;
      if (Number.isInteger(n) && n >= -1) return n;
      ctx.diag.error(at, `${JSON.stringify(x)} is not a limit: write a whole number (-1 for unlimited)`);
      return undefined;
    };
    if (isRecord(v)) {
      const soft = num(v.soft, [...path, name, 'soft']);
      const hard = num(v.hard, [...path, name, 'hard']);
      if (soft === undefined || hard === undefined) continue;
      if (hard !== -1 && (soft === -1 || soft > hard)) {
        ctx.diag.error([...path, name], `soft limit ${soft} is above the hard limit ${hard}: the soft limit must be at most the hard one`);
        continue;
      }
      out.push({ name, soft, hard });
    } else {
      const n = num(v, [...path, name]);
      if (n !== undefined) out.push({ name, soft: n, hard: n });
    }
  }
  return out;
}

function sysctlsOf(ctx: SpecContext, path: SpecPath, raw: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { key, value, index } of listOrDict(raw)) {
    const at = [...path, index];
    const where = typeof index === 'string' ? 'key' : 'value';
    if (!SYSCTL_NAME.test(key)) {
      ctx.diag.error(at, `sysctl "${key}" is refused: only network sysctls (net.*) are set per container; ${key.startsWith('kernel.') || key.startsWith('vm.') || key.startsWith('fs.') ? 'this one changes the host\'s kernel for every container' : 'others are not namespaced'} — set it on the host if it is really needed`, where);
      continue;
    }
    if (value === undefined || value.trim() === '') {
      ctx.diag.error(at, `sysctl "${key}" has no value: write ${key}=VALUE`, where);
      continue;
    }
    out[key] = value.trim();
  }
  return out;
}

/** `extra_hosts` as Docker's `host:ip` entries (Compose writes `host:ip`, `host=ip` or a mapping). */
function extraHostsOf(ctx: SpecContext, path: SpecPath, raw: unknown): string[] {
  const entries: Array<{ host: string; ip: string | undefined; index: number | string }> = [];
  if (Array.isArray(raw)) {
    raw.forEach((item, index) => {
      const s = scalarToString(item);
      const eq = s.indexOf('=');
      const colon = s.indexOf(':');
      const sep = eq >= 0 ? eq : colon;
      entries.push(sep < 0 ? { host: s, ip: undefined, index } : { host: s.slice(0, sep), ip: s.slice(sep + 1), index });
    });
  } else if (isRecord(raw)) {
    for (const [host, ip] of Object.entries(raw)) entries.push({ host, ip: ip === null || ip === undefined ? undefined : scalarToString(ip), index: host });
  }
  const out: string[] = [];
  for (const e of entries) {
    const at = [...path, e.index];
    if (!HOST_NAME.test(e.host)) {
      ctx.diag.error(at, `"${e.host}" is not a host name: write NAME:IP, e.g. "db.internal:10.0.0.5"`);
      continue;
    }
    const ip = e.ip?.trim().replace(/^\[(.*)\]$/, '$1');
    if (ip === undefined || (ip !== 'host-gateway' && !IPV4.test(ip) && !IPV6.test(ip))) {
      ctx.diag.error(at, `${JSON.stringify(e.ip ?? '')} is not an IP address for "${e.host}": write an IPv4 or IPv6 address, or host-gateway`);
      continue;
    }
    out.push(`${e.host}:${ip}`);
  }
  return out;
}
