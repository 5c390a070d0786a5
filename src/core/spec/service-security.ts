/**
 * A service's `user`, `read_only`, `cap_add`, `cap_drop`, `security_opt` and `tmpfs`. Only what
 * differs from Berth's defaults lands in the spec, so a file that does not use them keeps its
 * release hash.
 */
import { isRecord, scalarToString, type Json, type SpecContext } from './context.ts';
import { normalizePosix } from './posix-path.ts';
import { DOCKER_DEFAULT_CAPS, LINUX_CAPS, TMPFS_OPTION, USER_PATTERN, normalizeCap } from './security.ts';
import { closestMatch } from './suggest.ts';
import type { ServiceSpec } from './types.ts';
import { parseBool, parseSize } from './units.ts';
import type { SpecPath } from './yaml-source.ts';

type SecuritySpec = Pick<ServiceSpec, 'user' | 'readOnly' | 'capAdd' | 'capDrop' | 'noNewPrivileges' | 'tmpfs' | 'unconfined'>;

export function securityOf(ctx: SpecContext, path: SpecPath, raw: Json): SecuritySpec {
  const out: SecuritySpec = {};
  if (raw.user !== undefined && raw.user !== null) {
    const user = scalarToString(raw.user).trim();
    if (USER_PATTERN.test(user)) out.user = user;
    else ctx.diag.error([...path, 'user'], `${JSON.stringify(raw.user)} is not a user: write a name or uid, optionally with a group, e.g. "1000", "1000:1000" or "node"`);
  }
  if (raw.read_only !== undefined) {
    const b = parseBool(raw.read_only);
    if (b.error !== undefined) ctx.diag.error([...path, 'read_only'], b.error);
    else if (b.value) out.readOnly = true;
  }
  const add = caps(ctx, [...path, 'cap_add'], raw.cap_add, 'add');
  const drop = caps(ctx, [...path, 'cap_drop'], raw.cap_drop, 'drop');
  for (const c of add.names) {
    if (drop.names.includes(c)) ctx.diag.error([...path, 'cap_add', add.index.get(c)!], `${c} is both added and dropped: keep it in one of cap_add and cap_drop`);
  }
  if (add.names.length) out.capAdd = add.names;
  if (drop.names.length) out.capDrop = drop.names;
  const unconfined: NonNullable<SecuritySpec['unconfined']> = [];
  const nnp = noNewPrivileges(ctx, [...path, 'security_opt'], raw.security_opt, unconfined);
  if (nnp === false) out.noNewPrivileges = false;
  if (unconfined.length) out.unconfined = unconfined;
  const tmpfs = { ...tmpfsOf(ctx, [...path, 'tmpfs'], raw.tmpfs, raw.volumes) };
  tmpfsVolumes(ctx, [...path, 'volumes'], raw.volumes, tmpfs);
  if (Object.keys(tmpfs).length) out.tmpfs = tmpfs;
  return out;
}

function caps(ctx: SpecContext, path: SpecPath, raw: unknown, kind: 'add' | 'drop'): { names: string[]; index: Map<string, number> } {
  const names: string[] = [];
  const index = new Map<string, number>();
  if (!Array.isArray(raw)) return { names, index };
  raw.forEach((item, i) => {
    const cap = normalizeCap(scalarToString(item));
    if (cap === 'ALL') {
      if (kind === 'drop') names.push(cap);
      else ctx.diag.error([...path, i], `Berth does not give all capabilities: name the ones the service needs, e.g. ${DOCKER_DEFAULT_CAPS.slice(0, 3).join(', ')} (which ones are allowed is the server's guardrail policy)`);
      return;
    }
    if (!LINUX_CAPS.includes(cap)) {
      const near = closestMatch(cap, LINUX_CAPS);
      ctx.diag.error([...path, i], `"${scalarToString(item)}" is not a Linux capability${near ? `: did you mean ${near}?` : ': write e.g. NET_BIND_SERVICE or CHOWN'}`);
      return;
    }
    if (!names.includes(cap)) {
      names.push(cap);
      index.set(cap, i);
    }
  });
  return { names: names.includes('ALL') ? ['ALL'] : names, index };
}

/**
 * `no-new-privileges[:true|=true]` (Berth's default anyway) or `:false`; `seccomp|apparmor=unconfined`
 * (refused by the default guardrail policy) are collected in `unconfined`; other options are warned about.
 */
function noNewPrivileges(ctx: SpecContext, path: SpecPath, raw: unknown, unconfined: Array<'seccomp' | 'apparmor'>): boolean | undefined {
  if (!Array.isArray(raw)) return undefined;
  let value: boolean | undefined;
  raw.forEach((item, i) => {
    const opt = scalarToString(item).trim();
    const u = /^(seccomp|apparmor)[:=]unconfined$/.exec(opt);
    if (u) {
      if (!unconfined.includes(u[1] as 'seccomp')) unconfined.push(u[1] as 'seccomp' | 'apparmor');
      return;
    }
    const m = /^no-new-privileges(?:[:=](.*))?$/.exec(opt);
    if (!m) {
      ctx.diag.warn([...path, i], `"${opt}" is not supported yet by Berth; ignored (containers run with Docker's default seccomp and AppArmor profiles)`);
      return;
    }
    if (m[1] === undefined) {
      value = true;
      return;
    }
    const b = parseBool(m[1]);
    if (b.error !== undefined) ctx.diag.error([...path, i], `"${opt}": write no-new-privileges:true or no-new-privileges:false`);
    else value = b.value;
  });
  return value;
}

/** `tmpfs: /tmp` or a list of `TARGET[:OPTIONS]` → target → options. */
function tmpfsOf(ctx: SpecContext, path: SpecPath, raw: unknown, volumes: unknown): Record<string, string> | undefined {
  if (raw === undefined || raw === null) return undefined;
  const list = Array.isArray(raw) ? raw : [raw];
  const at = (i: number): SpecPath => (Array.isArray(raw) ? [...path, i] : path);
  const volumeTargets = new Set(Array.isArray(volumes) ? volumes.map(volumeTarget).filter((t): t is string => t !== undefined) : []);
  const out: Record<string, string> = {};
  list.forEach((item, i) => {
    const s = scalarToString(item).trim();
    const colon = s.indexOf(':');
    const target = normalizePosix(colon < 0 ? s : s.slice(0, colon));
    const options = colon < 0 ? '' : s.slice(colon + 1);
    if (!target.startsWith('/') || target === '/') {
      ctx.diag.error(at(i), `"${s}" is not a tmpfs mount: write an absolute path inside the container, e.g. /tmp or /tmp:size=64m`);
      return;
    }
    const bad = options.split(',').filter((o) => o !== '' && !TMPFS_OPTION.test(o));
    if (bad.length) {
      ctx.diag.error(at(i), `tmpfs option "${bad[0]}" is not one Berth passes on: use size=64m, mode=1777, uid=N, gid=N, ro/rw, noexec, nosuid, nodev`);
      return;
    }
    if (target in out || volumeTargets.has(target)) {
      ctx.diag.error(at(i), `${target} is mounted twice: keep one tmpfs or volume there`);
      return;
    }
    out[target] = options;
  });
  return out;
}

/**
 * `volumes:` entries of `type: tmpfs` (long syntax) join the service's tmpfs mounts:
 * `{type: tmpfs, target: /cache, tmpfs: {size: 64m, mode: 1777}, read_only: true}`.
 */
function tmpfsVolumes(ctx: SpecContext, path: SpecPath, volumes: unknown, out: Record<string, string>): void {
  if (!Array.isArray(volumes)) return;
  volumes.forEach((v, i) => {
    if (!isRecord(v) || v.type !== 'tmpfs') return;
    const at: SpecPath = [...path, i];
    const target = typeof v.target === 'string' ? normalizePosix(v.target) : '';
    if (!target.startsWith('/') || target === '/') {
      ctx.diag.error(v.target === undefined ? at : [...at, 'target'], 'a tmpfs mount needs `target`: an absolute path inside the container, e.g. /tmp');
      return;
    }
    if (target in out) {
      ctx.diag.error(at, `${target} is mounted twice: keep one tmpfs or volume there`);
      return;
    }
    const options: string[] = [];
    const o = isRecord(v.tmpfs) ? v.tmpfs : {};
    for (const [key, value] of Object.entries(o)) {
      if (key === 'size') {
        const size = parseSize(value);
        if (size.error !== undefined) ctx.diag.error([...at, 'tmpfs', key], size.error);
        else options.push(`size=${size.value}`);
      } else if (key === 'mode') {
        // Written as octal digits (1777), or a YAML octal number (0o1777).
        const digits = typeof value === 'number' && !/^[0-7]{3,4}$/.test(String(value)) ? value.toString(8) : scalarToString(value).replace(/^0o/, '');
        if (/^[0-7]{3,4}$/.test(digits)) options.push(`mode=${digits}`);
        else ctx.diag.error([...at, 'tmpfs', key], `${JSON.stringify(value)} is not a file mode: write octal digits, e.g. 1777 or 755`);
      } else if (!key.startsWith('x-')) {
        ctx.diag.warn([...at, 'tmpfs', key], 'not supported yet by Berth; ignored', 'key');
      }
    }
    if (v.read_only !== undefined) {
      const b = parseBool(v.read_only);
      if (b.error !== undefined) ctx.diag.error([...at, 'read_only'], b.error);
      else if (b.value) options.push('ro');
    }
    out[target] = options.join(',');
  });
}

function volumeTarget(v: unknown): string | undefined {
  if (typeof v === 'string') {
    const parts = v.split(':');
    return normalizePosix(parts.length === 1 ? parts[0]! : parts[1]!);
  }
  return isRecord(v) && v.type !== 'tmpfs' && typeof v.target === 'string' ? normalizePosix(v.target) : undefined;
}
