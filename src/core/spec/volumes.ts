/**
 * Service `volumes:` (short `src:dst[:mode]` and long syntax) → VolumeMount. Bind sources are
 * resolved against the Compose file's directory; whether a host path may be mounted is the server's
 * decision (it resolves symlinks on its own filesystem, against roots its admin configured), so the
 * parser only notes where each source was written. Named volumes must be declared at the top level,
 * as docker compose requires.
 */
import { isRecord, noteHostPath, type SpecContext } from './context.ts';
import { derivedServiceName } from './names.ts';
import { resolvePosix } from './posix-path.ts';
import type { VolumeMount } from './types.ts';
import { parseBool } from './units.ts';
import type { SpecPath } from './yaml-source.ts';

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const SHORT_MODES = new Set(['ro', 'rw']);
/** Short-syntax options Docker knows but Berth does not act on. */
const IGNORED_MODES = new Set(['z', 'Z', 'cached', 'delegated', 'consistent', 'nocopy', 'shared', 'slave', 'private', 'rshared', 'rslave', 'rprivate']);
const LONG_KEYS = new Set(['type', 'source', 'target', 'read_only']);

export function normalizeVolumes(ctx: SpecContext, path: SpecPath, raw: unknown): VolumeMount[] {
  if (!Array.isArray(raw)) return [];
  const out: VolumeMount[] = [];
  raw.forEach((item, i) => {
    const p = [...path, i];
    const mount = typeof item === 'string' ? shortVolume(ctx, p, item) : isRecord(item) ? longVolume(ctx, p, item) : undefined;
    if (!mount) return;
    if (mount.type === 'bind') noteHostPath(ctx, `services.${derivedServiceName(String(path[1]))}.volumes[${out.length}]`, typeof item === 'string' ? p : [...p, 'source']);
    out.push(mount);
  });
  return out;
}

function shortVolume(ctx: SpecContext, path: SpecPath, spec: string): VolumeMount | undefined {
  const parts = spec.split(':');
  if (parts.length === 1) return anonymous(ctx, path, spec);
  if (parts.length > 3) {
    ctx.diag.error(path, `"${spec}" is not a volume: write SOURCE:TARGET or SOURCE:TARGET:ro`);
    return undefined;
  }
  const [source, target, mode = ''] = parts as [string, string, string?];
  let readOnly = false;
  for (const opt of mode.split(',').filter((o) => o !== '')) {
    if (SHORT_MODES.has(opt)) readOnly = opt === 'ro';
    else if (IGNORED_MODES.has(opt)) ctx.diag.warn(path, `volume option "${opt}" is not supported yet by Berth; ignored`);
    else {
      ctx.diag.error(path, `unknown volume option "${opt}" in "${spec}": use ro or rw`);
      return undefined;
    }
  }
  const looksLikePath = /^[./~]/.test(source);
  return mount(ctx, path, looksLikePath ? 'bind' : 'volume', source, target, readOnly);
}

function longVolume(ctx: SpecContext, path: SpecPath, v: Record<string, unknown>): VolumeMount | undefined {
  // A tmpfs mount is one of the service's tmpfs mounts (service-security.ts reads it there).
  if (v.type === 'tmpfs') return undefined;
  for (const key of Object.keys(v)) {
    if (!LONG_KEYS.has(key) && !key.startsWith('x-')) ctx.diag.warn([...path, key], 'not supported yet by Berth; ignored', 'key');
  }
  const type = String(v.type);
  if (type !== 'bind' && type !== 'volume') {
    ctx.diag.warn([...path, 'type'], `volume type "${type}" is not supported yet by Berth; this mount is ignored`);
    return undefined;
  }
  const target = typeof v.target === 'string' ? v.target : undefined;
  if (target === undefined) {
    ctx.diag.error(path, 'missing `target`: the path inside the container, such as /data');
    return undefined;
  }
  const source = typeof v.source === 'string' ? v.source : '';
  if (source === '') {
    if (type === 'bind') ctx.diag.error(path, 'a bind mount needs `source`: the host directory to mount');
    else return anonymous(ctx, path, target);
    return undefined;
  }
  let readOnly = false;
  if (v.read_only !== undefined) {
    const b = parseBool(v.read_only);
    if (b.error !== undefined) ctx.diag.error([...path, 'read_only'], b.error);
    else readOnly = b.value;
  }
  return mount(ctx, path, type, source, target, readOnly);
}

function mount(ctx: SpecContext, path: SpecPath, type: 'bind' | 'volume', source: string, target: string, readOnly: boolean): VolumeMount | undefined {
  if (!target.startsWith('/')) {
    ctx.diag.error(path, `target "${target}" is not an absolute path: write the path inside the container, such as /data`);
    return undefined;
  }
  if (type === 'volume') {
    if (!VOLUME_NAME.test(source)) {
      ctx.diag.error(path, `"${source}" is not a volume name: use letters, digits, "_", "." and "-", or start a host path with "/" or "./"`);
      return undefined;
    }
    if (!ctx.declaredVolumes.has(source)) {
      ctx.diag.error(path, `named volume "${source}" is not declared: add \`${source}:\` under the top-level \`volumes:\` key`);
      return undefined;
    }
    return { type, source, target, readOnly };
  }
  const host = bindSource(ctx, path, source);
  return host === undefined ? undefined : { type, source: host, target, readOnly };
}

/** Resolves a bind source against the Compose file's directory (or `~`). */
function bindSource(ctx: SpecContext, path: SpecPath, source: string): string | undefined {
  if (source === '~' || source.startsWith('~/')) {
    const home = ctx.opts.env.HOME;
    if (!home) {
      ctx.diag.error(path, `cannot expand "~" in "${source}": HOME is not set; write an absolute path or one relative to the Compose file`);
      return undefined;
    }
    return resolvePosix(home, source.slice(1).replace(/^\//, ''));
  }
  return resolvePosix(ctx.opts.baseDir, source);
}

/** `- /data`: a volume of each container's own, kept while the container lives (a new release starts empty). */
function anonymous(ctx: SpecContext, path: SpecPath, target: string): VolumeMount | undefined {
  if (!target.startsWith('/')) {
    ctx.diag.error(path, `"${target}" is not a volume: write an absolute path inside the container (an anonymous volume, e.g. /data) or SOURCE:TARGET`);
    return undefined;
  }
  return { type: 'anonymous', source: '', target, readOnly: false };
}
