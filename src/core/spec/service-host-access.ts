/**
 * What a service asks to take from the host: `privileged`, the host's namespaces (`pid`, `ipc`, `uts`,
 * `userns_mode`, `cgroup: host`), `devices`, `pids_limit`. Read (not ignored) so that the server's
 * guardrail policy (core/guard.ts) can refuse each by name at its file:line:col — or, with an
 * exemption, apply it. The position of every such key (and of each service, for what is missing) is
 * noted for those refusals.
 */
import { isRecord, noteHostPath, scalarToString, type Json, type SpecContext } from './context.ts';
import { derivedServiceName } from './names.ts';
import type { ServiceSpec } from './types.ts';
import { parseBool } from './units.ts';
import type { SpecPath } from './yaml-source.ts';

type HostAccess = Pick<ServiceSpec, 'privileged' | 'hostNamespaces' | 'devices'> & { pids?: number };

const NAMESPACE_KEYS = [['pid', 'pid'], ['ipc', 'ipc'], ['uts', 'uts'], ['userns_mode', 'userns'], ['cgroup', 'cgroup']] as const;
/** Values of the namespace keys that are the container's own (Docker's defaults): nothing to refuse. */
const OWN_NAMESPACE = new Set(['', 'private', 'shareable', 'none']);
const DEVICE_PERMISSIONS = /^[rwm]{1,3}$/;

export function hostAccessOf(ctx: SpecContext, path: SpecPath, raw: Json): HostAccess {
  const out: HostAccess = {};
  const spec = `services.${derivedServiceName(String(path[1]))}`;
  const note = (key: string, at: SpecPath = [...path, key]) => noteHostPath(ctx, `${spec}.${key}`, at);
  // What a policy requires but the file lacks (read_only, a pids limit) is shown at the service.
  noteHostPath(ctx, spec, path);
  for (const key of ['read_only', 'network_mode', 'security_opt', 'pids_limit']) if (raw[key] !== undefined) note(key);
  if (raw.network_mode === undefined && isRecord(raw['x-berth']) && raw['x-berth'].port !== undefined) note('network_mode', [...path, 'x-berth', 'port']);
  if (Array.isArray(raw.cap_add)) raw.cap_add.forEach((_, i) => note(`cap_add[${i}]`, [...path, 'cap_add', i]));
  if (isRecord(raw.sysctls)) for (const k of Object.keys(raw.sysctls)) note(`sysctls.${k}`, [...path, 'sysctls', k]);
  else if (Array.isArray(raw.sysctls)) raw.sysctls.forEach((item, i) => note(`sysctls.${scalarToString(item).split('=')[0]!.trim()}`, [...path, 'sysctls', i]));

  if (raw.privileged !== undefined) {
    const b = parseBool(raw.privileged);
    if (b.error !== undefined) ctx.diag.error([...path, 'privileged'], b.error);
    else if (b.value) {
      out.privileged = true;
      note('privileged');
    }
  }
  const namespaces: NonNullable<HostAccess['hostNamespaces']> = [];
  for (const [key, ns] of NAMESPACE_KEYS) {
    if (raw[key] === undefined || raw[key] === null) continue;
    const v = scalarToString(raw[key]).trim();
    if (v === 'host') {
      namespaces.push(ns);
      note(key);
    } else if (!OWN_NAMESPACE.has(v)) {
      ctx.diag.warn([...path, key], `"${v}" is not supported yet by Berth; ignored (the container has its own ${ns} namespace)`);
    }
  }
  if (namespaces.length) out.hostNamespaces = namespaces;
  const devices = devicesOf(ctx, [...path, 'devices'], raw.devices);
  if (devices.length) {
    out.devices = devices;
    devices.forEach((_, i) => note(`devices[${i}]`, [...path, 'devices', i]));
  }
  if (raw.pids_limit !== undefined) {
    const v = pidsOf(raw.pids_limit);
    if (v === undefined) ctx.diag.error([...path, 'pids_limit'], `${JSON.stringify(raw.pids_limit)} is not a pids limit: write a whole number such as 512 (-1 for none)`);
    else out.pids = v;
  } else if (isRecord(raw.deploy) && isRecord(raw.deploy.resources) && isRecord(raw.deploy.resources.limits) && raw.deploy.resources.limits.pids !== undefined) {
    note('pids_limit', [...path, 'deploy', 'resources', 'limits', 'pids']);
  }
  return out;
}

/** -1 and 0 mean "no limit" (stored as 0). */
function pidsOf(raw: unknown): number | undefined {
  const s = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : '';
  if (!/^-?\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n < -1 || n > 4_194_304 ? undefined : Math.max(n, 0);
}

/** `/dev/x`, `/dev/x:/dev/y`, `/dev/x:/dev/y:rwm`, or `{source, target, permissions}`. */
function devicesOf(ctx: SpecContext, path: SpecPath, raw: unknown): NonNullable<HostAccess['devices']> {
  const out: NonNullable<HostAccess['devices']> = [];
  if (!Array.isArray(raw)) return out;
  raw.forEach((item, i) => {
    let source: string;
    let target: string;
    let permissions = 'rwm';
    if (isRecord(item)) {
      source = scalarToString(item.source ?? '');
      target = scalarToString(item.target ?? source);
      if (item.permissions !== undefined) permissions = scalarToString(item.permissions);
    } else {
      const parts = scalarToString(item).split(':');
      source = parts[0] ?? '';
      target = parts[1] ?? source;
      if (parts[2] !== undefined) permissions = parts[2];
      else if (parts.length === 2 && DEVICE_PERMISSIONS.test(parts[1]!)) {
        target = source;
        permissions = parts[1]!;
      }
      if (parts.length > 3) source = '';
    }
    if (!source.startsWith('/') || !target.startsWith('/') || !DEVICE_PERMISSIONS.test(permissions)) {
      ctx.diag.error([...path, i], `${JSON.stringify(item)} is not a device: write HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]], e.g. /dev/fuse or /dev/ttyUSB0:/dev/ttyUSB0:rw`);
      return;
    }
    out.push({ source, target, permissions });
  });
  return out;
}
