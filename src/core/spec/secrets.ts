/**
 * Compose `secrets:` and `configs:`: the top-level definitions (`file`, `environment`, `content` for
 * configs, `external`) and the services' references to them (short `- name` and long `{source,
 * target, uid, gid, mode}` syntax) → FileMountSpec. Values are read here (the injected
 * readSecretFile, the caller's variables) and travel to the server, which seals them; nothing of a
 * value ever appears in a message.
 */
import { isRecord, type Json, type SpecContext } from './context.ts';
import { isWithin, normalizePosix, resolvePosix } from './posix-path.ts';
import { closestMatch } from './suggest.ts';
import type { FileMountSpec } from './types.ts';
import type { SpecPath } from './yaml-source.ts';

export type FileKind = 'secrets' | 'configs';

/** A top-level definition, resolved (value read) or broken (reported; references to it add nothing). */
export interface FileDefinition {
  from: FileMountSpec['from'];
  value?: string;
  key?: string;
  broken?: boolean;
}

/** Keys of Berth's configuration store (config-store.ts CONFIG_KEY_PATTERN). */
const CONFIG_KEY = /^[A-Z_][A-Z0-9_]*$/;
/** Docker's own limit for a Swarm secret is 500 KiB; a file secret is a password, a key, a certificate. */
export const MAX_FILE_VALUE_BYTES = 512 * 1024;
const DEFAULT_MODE = 0o444;
/** Paths Berth mounts itself: a secret there would hide (or be hidden by) Berth's own file. */
const RESERVED_TARGETS = ['/etc/resolv.conf', '/run/berth/config'];
const IGNORED_KEYS = new Set(['labels', 'driver', 'driver_opts', 'template_driver']);

const SINGULAR: Record<FileKind, string> = { secrets: 'secret', configs: 'config' };

/** The configuration key an external secret reads when it has no `name:`: `db_password` → DB_PASSWORD. */
export function externalKeyOf(name: string): string {
  const k = name.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  return /^[0-9]/.test(k) ? `_${k}` : k;
}

/**
 * Reads the top-level `secrets:` or `configs:` section. Only definitions some service uses have their
 * value read (a missing file of an unused secret is not this deploy's problem); every definition is
 * checked for its shape.
 */
export function fileDefinitions(ctx: Pick<SpecContext, 'diag' | 'opts'>, kind: FileKind, raw: unknown, used: ReadonlySet<string>,
  variables: Record<string, string>): Map<string, FileDefinition> {
  const out = new Map<string, FileDefinition>();
  if (!isRecord(raw)) return out;
  for (const [name, def] of Object.entries(raw)) {
    const path: SpecPath = [kind, name];
    if (!isRecord(def)) {
      out.set(name, { from: 'content', broken: true });
      continue;
    }
    out.set(name, definition(ctx, kind, name, path, def, used.has(name), variables));
  }
  return out;
}

function definition(ctx: Pick<SpecContext, 'diag' | 'opts'>, kind: FileKind, name: string, path: SpecPath, def: Json, used: boolean,
  variables: Record<string, string>): FileDefinition {
  const what = `${SINGULAR[kind]} "${name}"`;
  for (const key of Object.keys(def)) {
    if (IGNORED_KEYS.has(key)) ctx.diag.warn([...path, key], 'not supported by Berth; ignored', 'key');
  }
  const sources = ['file', 'environment', 'content', 'external'].filter((k) => def[k] !== undefined && !(k === 'external' && isFalse(def.external)));
  if (sources.length === 0) {
    const options = kind === 'configs' ? '`file`, `environment`, `content` or `external: true`' : '`file`, `environment` or `external: true`';
    ctx.diag.error(path, `${what} says nothing about its value: give one of ${options}`, 'key');
    return { from: 'file', broken: true };
  }
  if (sources.length > 1) {
    ctx.diag.error([...path, sources[1]!], `${what} has both \`${sources[0]}\` and \`${sources[1]}\`: keep one of them`, 'key');
    return { from: 'file', broken: true };
  }
  const from = sources[0] as FileMountSpec['from'];
  if (from === 'external') return externalDefinition(ctx, what, path, def);
  if (def.name !== undefined) ctx.diag.warn([...path, 'name'], `ignored: \`name\` only names an external ${SINGULAR[kind]}`, 'key');
  if (!used) return { from };
  let value: string | undefined;
  if (from === 'file') {
    const file = String(def.file);
    const abs = resolvePosix(ctx.opts.baseDir, file);
    value = (ctx.opts.readSecretFile ?? ctx.opts.readFile)(abs);
    if (value === undefined) {
      ctx.diag.error([...path, 'file'], `${what}: file "${file}" not found (looked for ${abs}): create it, or point \`file\` at the file holding the value`);
      return { from, broken: true };
    }
  } else if (from === 'environment') {
    const variable = String(def.environment);
    value = Object.hasOwn(variables, variable) ? variables[variable] : undefined;
    if (value === undefined) {
      ctx.diag.error([...path, 'environment'], `${what}: the variable ${variable} is not set: export it (or put it in .env beside the file) before deploying`);
      return { from, broken: true };
    }
  } else {
    value = String(def.content);
  }
  if (utf8Length(value) > MAX_FILE_VALUE_BYTES) {
    ctx.diag.error([...path, from], `${what} is larger than ${MAX_FILE_VALUE_BYTES / 1024} KiB: Berth keeps secrets and configs for small files (keys, passwords, configuration)`);
    return { from, broken: true };
  }
  return { from, value };
}

function externalDefinition(ctx: Pick<SpecContext, 'diag'>, what: string, path: SpecPath, def: Json): FileDefinition {
  // `external: {name: X}` is Compose's old spelling of `name: X` beside `external: true`.
  const oldName = isRecord(def.external) && typeof def.external.name === 'string' ? def.external.name : undefined;
  if (typeof def.external === 'string' && !isTrue(def.external)) {
    ctx.diag.error([...path, 'external'], `${what}: external must be true or false`);
    return { from: 'external', broken: true };
  }
  const named = typeof def.name === 'string' ? def.name : oldName;
  const key = named ?? externalKeyOf(String(path[1]));
  if (!CONFIG_KEY.test(key)) {
    ctx.diag.error(def.name !== undefined ? [...path, 'name'] : [...path, 'external', 'name'],
      `${what}: "${key}" cannot be a key of Berth's configuration store: use upper-case letters, digits and underscores, e.g. ${externalKeyOf(key)}`);
    return { from: 'external', broken: true };
  }
  return { from: 'external', key };
}

/**
 * A service's `secrets:` or `configs:` list → mounts. References must name a definition; two mounts
 * cannot share a target.
 */
export function fileMounts(ctx: SpecContext, kind: FileKind, path: SpecPath, raw: unknown, defs: ReadonlyMap<string, FileDefinition>,
  taken: Map<string, string>): FileMountSpec[] {
  if (!Array.isArray(raw)) return [];
  const out: FileMountSpec[] = [];
  raw.forEach((item, i) => {
    const p: SpecPath = [...path, i];
    const long = isRecord(item) ? item : undefined;
    const source = long ? long.source : item;
    const sourcePath = long ? [...p, 'source'] : p;
    if (typeof source !== 'string' || source === '') {
      ctx.diag.error(long ? p : sourcePath, `name the ${SINGULAR[kind]} to mount: \`source: NAME\` (a name under the top-level \`${kind}:\`)`, long ? 'key' : 'value');
      return;
    }
    const def = defs.get(source);
    if (!def) {
      const near = closestMatch(source, [...defs.keys()]);
      const hint = near ? `did you mean "${near}"?` : defs.size > 0 ? `defined: ${[...defs.keys()].join(', ')}` : `define it under a top-level \`${kind}:\`, e.g. ${kind}: {${source}: {file: ./${source}.txt}}`;
      ctx.diag.error(sourcePath, `undefined ${SINGULAR[kind]} "${source}": ${hint}`);
      return;
    }
    const target = targetOf(ctx, kind, long ? [...p, 'target'] : p, source, long?.target);
    const uid = long?.uid === undefined ? 0 : numericId(ctx, [...p, 'uid'], long.uid, 'uid');
    const gid = long?.gid === undefined ? 0 : numericId(ctx, [...p, 'gid'], long.gid, 'gid');
    const mode = long?.mode === undefined ? DEFAULT_MODE : modeOf(ctx, [...p, 'mode'], long.mode);
    if (target === undefined || uid === undefined || gid === undefined || mode === undefined || def.broken) return;
    const other = taken.get(target);
    if (other !== undefined) {
      ctx.diag.error(long ? [...p, 'target'] : p, `${target} is already the target of ${other}: give each mount its own \`target\``);
      return;
    }
    taken.set(target, `${SINGULAR[kind]} "${source}"`);
    const m: FileMountSpec = { name: source, target, uid, gid, mode, from: def.from };
    if (def.value !== undefined) m.value = def.value;
    if (def.key !== undefined) m.key = def.key;
    out.push(m);
  });
  return out;
}

function targetOf(ctx: SpecContext, kind: FileKind, path: SpecPath, source: string, raw: unknown): string | undefined {
  const written = raw === undefined ? source : String(raw);
  const base = kind === 'secrets' ? '/run/secrets' : '/';
  if (written.includes('\0') || written === '') {
    ctx.diag.error(path, `"${written}" is not a file path: write e.g. ${kind === 'secrets' ? 'db_password or /run/secrets/db_password' : '/etc/app/config.yaml'}`);
    return undefined;
  }
  // Relative targets are file names under /run/secrets (secrets) or / (configs), as in Compose.
  const target = written.startsWith('/') ? normalizePosix(written) : resolvePosix(base, written);
  if (target === '/' || written.split('/').includes('..') || (!written.startsWith('/') && !isWithin(base, target))) {
    ctx.diag.error(path, `"${written}" is not a file path inside the container: write an absolute path to a file, e.g. /etc/app/${source}`);
    return undefined;
  }
  const reserved = RESERVED_TARGETS.find((r) => target === r || isWithin(r, target));
  if (reserved !== undefined) {
    ctx.diag.error(path, `${target} is where Berth mounts ${reserved === '/etc/resolv.conf' ? 'the DNS configuration' : 'the configuration files'}: choose another target`);
    return undefined;
  }
  return target;
}

function numericId(ctx: SpecContext, path: SpecPath, raw: unknown, what: 'uid' | 'gid'): number | undefined {
  const s = String(raw).trim();
  if (/^\d{1,10}$/.test(s) && Number(s) <= 0x7fffffff) return Number(s);
  ctx.diag.error(path, `${what} ${JSON.stringify(raw)} must be a number (the file is prepared before the image runs, so names are not known): e.g. ${what}: "999"`);
  return undefined;
}

/** `mode` is octal as written (`0440`, `440`, "0o440"); YAML may have read `0440` as the decimal number 440. */
export function parseMode(raw: unknown): number | undefined {
  const s = String(raw).trim().replace(/^0o/i, '');
  if (!/^[0-7]{1,4}$/.test(s)) return undefined;
  const n = parseInt(s, 8);
  return n <= 0o7777 ? n : undefined;
}

function modeOf(ctx: SpecContext, path: SpecPath, raw: unknown): number | undefined {
  const m = parseMode(raw);
  if (m === undefined) ctx.diag.error(path, `mode ${JSON.stringify(raw)} is not an octal file mode: write e.g. 0440 (owner and group read)`);
  else if ((m & 0o444) === 0) ctx.diag.error(path, `mode ${JSON.stringify(raw)} lets nobody read the file: write e.g. 0400 or 0440`);
  else return m;
  return undefined;
}

function isTrue(v: unknown): boolean {
  return v === true || v === 'true';
}

function isFalse(v: unknown): boolean {
  return v === false || v === 'false';
}

/** UTF-8 byte length without node:buffer (core is pure). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Names the services of a Compose file refer to under `secrets:` or `configs:` (short or long syntax). */
export function referencedNames(services: unknown, kind: FileKind): Set<string> {
  const names = new Set<string>();
  if (!isRecord(services)) return names;
  for (const svc of Object.values(services)) {
    // A build's secrets (`build.secrets`) are used too: the build reads their values.
    const build = isRecord(svc) && isRecord(svc.build) && kind === 'secrets' ? svc.build.secrets : undefined;
    for (const list of [isRecord(svc) ? svc[kind] : undefined, build]) {
      if (!Array.isArray(list)) continue;
      for (const item of list) {
        const n = isRecord(item) ? item.source : item;
        if (typeof n === 'string') names.add(n);
      }
    }
  }
  return names;
}

/** The spec with secret and config values left out (for printing: `validate --json`). */
type BuildSecretCarrier = { secrets?: Array<{ source: string; target: string; mount?: FileMountSpec }> };

export function withoutFileValues<T extends { services: Record<string, { secrets?: FileMountSpec[]; configs?: FileMountSpec[]; build?: BuildSecretCarrier }> }>(spec: T): T {
  const strip = (l: FileMountSpec[] | undefined) => l?.map(({ value: _v, ...m }) => m);
  const stripBuild = (b: BuildSecretCarrier | undefined) => (b?.secrets
    ? { build: { ...b, secrets: b.secrets.map((x) => (x.mount ? { ...x, mount: strip([x.mount])![0]! } : x)) } } : {});
  const services = Object.fromEntries(Object.entries(spec.services).map(([k, s]) => [k,
    { ...s, ...(s.secrets ? { secrets: strip(s.secrets) } : {}), ...(s.configs ? { configs: strip(s.configs) } : {}), ...stripBuild(s.build) }]));
  return { ...spec, services };
}
