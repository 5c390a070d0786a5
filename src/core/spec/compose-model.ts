/**
 * The Compose model as `docker compose config` builds it from several files: each file is read
 * (YAML, `!reset`/`!override` tags, interpolation), its services' `extends` resolved (same file or
 * another), its `include`s added (their relative paths against their own directory), then the files
 * are merged in order with Compose's merge rules (maps merge key by key; `command`, `entrypoint` and
 * `healthcheck.test` replace; `environment`, `labels`, `build.args`, `sysctls`, `extra_hosts` merge as
 * maps whatever form they were written in; `ports`, `volumes`, `secrets`, ... append, one entry per
 * target; other lists append). `profiles` then decide which services are active.
 *
 * Every value keeps its origin (which file, which path in it), so a problem found in the merged
 * model is reported at the file, line and column that wrote it.
 */
import { isRecord, type Json } from './context.ts';
import type { Diagnostics, Locator } from './diagnostics.ts';
import { parseEnvFile } from './env-file.ts';
import { interpolateTree } from './interpolate.ts';
import { dirnamePosix, isWithin, resolvePosix } from './posix-path.ts';
import { closestMatch } from './suggest.ts';
import { formatPath, YamlSource, type SpecPath } from './yaml-source.ts';
import { isMap, isSeq, isScalar, type Node as YamlNode } from 'yaml';

/** Where a value of the merged model was written: file `src`, path in it; merged containers list their children. */
interface Origin {
  src: number;
  path: SpecPath;
  children?: Map<string | number, Origin>;
}

interface Located {
  v: unknown;
  o: Origin;
}

interface SourceFile {
  file: string;
  source: YamlSource;
  /** Absolute directory its relative paths resolve against. */
  dir: string;
  /** Keys tagged `!reset`, by the formatted path of their mapping. */
  resets: Map<string, Set<string>>;
  /** Formatted paths of values tagged `!override`. */
  overrides: Set<string>;
}

export interface ModelInput {
  diag: Diagnostics;
  /** The main file (its source is already parsed and free of syntax errors) and the ones merged over it, in order. */
  files: Array<{ file: string; source: YamlSource }>;
  /** Project directory: the first file's. */
  baseDir: string;
  env: Readonly<Record<string, string>>;
  readFile: (absPath: string) => string | undefined;
  profiles: readonly string[];
}

export interface ComposeModel {
  /** The merged Compose model (interpolated, `extends`/`include`/`version` resolved away). */
  model: unknown;
  locate: Locator;
  /** Services left out because none of their profiles is active: name → its profiles. */
  inactive: Map<string, string[]>;
  /** Every file the model was read from (shown name → absolute path for files read with readFile). */
  filesRead: string[];
}

type Rule = 'replace' | 'dict' | 'depends_on' | 'build' | 'networks' | 'ulimit';

const RULES: Array<[string, Rule]> = [
  ['services.*.command', 'replace'],
  ['services.*.entrypoint', 'replace'],
  ['services.*.healthcheck.test', 'replace'],
  ['services.*.environment', 'dict'],
  ['services.*.labels', 'dict'],
  ['services.*.annotations', 'dict'],
  ['services.*.sysctls', 'dict'],
  ['services.*.extra_hosts', 'dict'],
  ['services.*.build.args', 'dict'],
  ['services.*.build.labels', 'dict'],
  ['services.*.build.extra_hosts', 'dict'],
  ['services.*.deploy.labels', 'dict'],
  ['networks.*.labels', 'dict'],
  ['volumes.*.labels', 'dict'],
  ['services.*.depends_on', 'depends_on'],
  ['services.*.build', 'build'],
  ['services.*.networks', 'networks'],
  ['services.*.ulimits.*', 'ulimit'],
];

/** Lists whose entries are unique by a key: a later entry with the same key replaces the earlier one. */
const UNIQUE: Array<[string, (item: unknown) => string]> = [
  ['services.*.ports', portKey],
  ['services.*.volumes', volumeTarget],
  ['services.*.secrets', (i) => mountKey(i, '/run/secrets/')],
  ['services.*.configs', (i) => mountKey(i, '/')],
  ['services.*.env_file', (i) => (isRecord(i) ? String(i.path) : String(i))],
  ['services.*.tmpfs', (i) => String(i).split(':')[0]!],
  ['services.*.devices', (i) => (isRecord(i) ? String(i.target ?? i.source) : String(i).split(':')[1] ?? String(i))],
  ...['expose', 'cap_add', 'cap_drop', 'dns', 'dns_opt', 'dns_search', 'profiles', 'links', 'build.tags', 'build.secrets', 'networks.*.aliases']
    .map((k): [string, (item: unknown) => string] => [`services.*.${k}`, (i) => (isRecord(i) ? String(i.source ?? JSON.stringify(i)) : String(i))]),
];

function matches(pattern: string, path: SpecPath): boolean {
  const segs = pattern.split('.');
  return segs.length === path.length && segs.every((s, i) => s === '*' || s === String(path[i]));
}

function portKey(p: unknown): string {
  if (isRecord(p)) return `${String(p.host_ip ?? '')}:${String(p.published ?? '')}:${String(p.target)}/${String(p.protocol ?? 'tcp')}`;
  const s = String(p);
  return s.includes('/') ? s : `${s}/tcp`;
}

function volumeTarget(v: unknown): string {
  if (isRecord(v)) return String(v.target);
  const parts = String(v).split(':');
  return parts.length === 1 ? parts[0]! : parts[1]!;
}

function mountKey(m: unknown, dir: string): string {
  if (isRecord(m)) return typeof m.target === 'string' ? (m.target.startsWith('/') ? m.target : dir + m.target) : dir + String(m.source);
  return dir + String(m);
}

const MAX_DEPTH = 16;

/** Reads, resolves and merges the files of one Compose project; reports problems to `input.diag`. */
export function buildComposeModel(input: ModelInput): ComposeModel | undefined {
  return new ModelBuilder(input).build();
}

class ModelBuilder {
  private readonly sources: SourceFile[] = [];
  private readonly loadedByPath = new Map<string, { index: number; value: Json } | undefined>();
  private readonly filesRead: string[] = [];

  constructor(private readonly input: ModelInput) {}

  build(): ComposeModel | undefined {
    const { files, baseDir } = this.input;
    let merged: Located | undefined;
    let ok = true;
    files.forEach((f) => {
      const file = this.loadFile(f.file, f.source, baseDir, this.input.env, true, []);
      if (!file) {
        ok = false;
        return;
      }
      merged = merged === undefined ? file : this.merge([], merged, file);
    });
    if (!ok || merged === undefined) return undefined;
    const inactive = this.applyProfiles(merged);
    const sources = this.sources;
    const root = merged.o;
    const locate: Locator = (path, at) => {
      let o = root;
      let i = 0;
      for (; i < path.length; i++) {
        const c = o.children?.get(path[i]!);
        if (!c) break;
        o = c;
      }
      const s = sources[o.src]!;
      return { file: s.file, ...s.source.locate([...o.path, ...path.slice(i)], at) };
    };
    return { model: merged.v, locate, inactive, filesRead: this.filesRead };
  }

  /**
   * One file: interpolated, its `extends` resolved and its `include`s added. `main` files resolve
   * relative paths against the project directory later (the normalizer does); others get them made
   * absolute here, against their own directory.
   */
  private loadFile(file: string, source: YamlSource, dir: string, env: Readonly<Record<string, string>>, main: boolean, stack: string[]): Located | undefined {
    const index = this.sources.length;
    const sf: SourceFile = { file, source, dir, resets: new Map(), overrides: new Set() };
    this.sources.push(sf);
    const diag = index === 0 ? this.input.diag : this.input.diag.forFile(file, source);
    const syntax = source.syntaxProblems();
    if (syntax.length > 0) {
      for (const p of syntax) diag.errorAt(p, '', p.message);
      return undefined;
    }
    for (const w of source.syntaxWarnings()) {
      if (!/!(reset|override)\b/.test(w.message)) diag.warnAt(w, '', w.message);
    }
    if (source.doc.contents === null) {
      diag.errorAt({ line: 1, col: 1 }, '', 'the file is empty: a Compose file needs a `services:` mapping');
      return undefined;
    }
    interpolateTree(source.doc.contents, env, diag);
    collectTags(source.doc.contents, [], sf);
    let value: unknown;
    try {
      // The limit guards against "billion laughs" alias bombs; real files stay far below it.
      value = source.doc.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      diag.errorAt({ line: 1, col: 1 }, '', `cannot expand the YAML aliases: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
    if (!isRecord(value)) return { v: value, o: { src: index, path: [] } };
    for (const [parent, keys] of sf.resets) {
      const holder = getAt(value, parent);
      if (isRecord(holder)) for (const k of keys) delete holder[k];
    }
    if ('version' in value) {
      diag.warn(['version'], 'the `version` key is obsolete and ignored; remove it', 'key');
      delete value.version;
    }
    this.resolveAllExtends(index, value, diag, stack);
    const located: Located = { v: value, o: this.originOfFile(index) };
    if (!main) absolutizePaths(value, dir);
    if (value.include !== undefined) {
      const includes = value.include;
      delete value.include;
      this.addIncludes(index, includes, located, diag, env, stack);
    }
    return located;
  }

  private resolveAllExtends(index: number, value: Json, diag: Diagnostics, stack: string[]): void {
    if (!isRecord(value.services)) return;
    const services = value.services;
    const done = new Set<string>();
    for (const name of Object.keys(services)) this.resolveExtends(index, services, name, diag, [...stack], done);
  }

  /** Resolves `extends` of `services[name]` in place (its base first); the result is the service merged over its base. */
  private resolveExtends(index: number, services: Json, name: string, diag: Diagnostics, chain: string[], done: Set<string>): void {
    const svc = services[name];
    if (done.has(name) || !isRecord(svc) || svc.extends === undefined) return;
    const path: SpecPath = ['services', name, 'extends'];
    const sf = this.sources[index]!;
    const here = `${sf.file}:${name}`;
    if (chain.includes(here) || chain.length > MAX_DEPTH) {
      diag.error(path, `extends cycle: ${[...chain, here].join(' → ')}; remove one of these extends`);
      delete svc.extends;
      return;
    }
    const ext = svc.extends;
    delete svc.extends;
    done.add(name);
    const ref = typeof ext === 'string' ? { service: ext } : isRecord(ext) ? ext : undefined;
    if (!ref || typeof ref.service !== 'string' || (ref.file !== undefined && typeof ref.file !== 'string')) {
      diag.error(path, 'extends needs `service` (a service name) and optionally `file` (another Compose file), e.g. extends: {file: common.yaml, service: web}');
      return;
    }
    let base: Located | undefined;
    if (ref.file === undefined) {
      if (!isRecord(services[ref.service])) {
        diag.error(typeof ext === 'string' ? path : [...path, 'service'], `extends: no service "${ref.service}" in ${sf.file}${hint(ref.service, Object.keys(services).filter((n) => n !== name))}`);
        return;
      }
      const there = `${sf.file}:${ref.service}`;
      if (ref.service === name || chain.includes(there)) {
        diag.error(typeof ext === 'string' ? path : [...path, 'service'], `extends cycle: ${[...chain, here, there].map((c) => c.slice(c.lastIndexOf(':') + 1)).join(' → ')}; remove one of these extends`);
        return;
      }
      this.resolveExtends(index, services, ref.service, diag, [...chain, here], done);
      base = { v: structuredClone(services[ref.service]), o: this.serviceOrigin(index, ref.service) };
    } else {
      const abs = resolvePosix(sf.dir, ref.file);
      const other = this.loadOther(abs, diag, [...path, 'file'], this.input.env, [...chain, here]);
      if (!other) return;
      const baseFile = this.sources[other.index]!.file;
      const theirs = isRecord(other.value.services) ? other.value.services : {};
      if (!isRecord(theirs[ref.service])) {
        diag.error([...path, 'service'], `extends: no service "${ref.service}" in ${baseFile}${hint(ref.service, Object.keys(theirs))}`);
        return;
      }
      base = { v: structuredClone(theirs[ref.service]), o: this.serviceOrigin(other.index, ref.service) };
    }
    const merged = this.merge(['services', name], base, { v: svc, o: { src: index, path: ['services', name] } });
    services[name] = merged.v;
    this.extendsOrigins.set(`${index}:${name}`, merged.o);
  }

  /** Origins of services resolved from a base, by `FILEINDEX:NAME`; consulted when the file's own origin is taken. */
  private readonly extendsOrigins = new Map<string, Origin>();
  /** Files being read: one met again names itself (an include or extends cycle). */
  private readonly reading = new Set<string>();

  private serviceOrigin(index: number, name: string): Origin {
    return this.extendsOrigins.get(`${index}:${name}`) ?? { src: index, path: ['services', name] };
  }

  /** Another Compose file (an `extends` base or an included file), read once, with its own extends resolved and paths made absolute. */
  private loadOther(abs: string, diag: Diagnostics, at: SpecPath, env: Readonly<Record<string, string>>, stack: string[],
    projectDir?: string): { index: number; value: Json } | undefined {
    // Loaded once per file and base directory (an include's project_directory gives the same file other paths).
    const key = projectDir === undefined ? abs : `${abs}\u0000${projectDir}`;
    if (this.reading.has(abs)) {
      diag.error(at, `${this.shownName(abs)} names itself through ${[...stack].join(' → ')}: remove the cycle`);
      return undefined;
    }
    if (this.loadedByPath.has(key)) return this.loadedByPath.get(key);
    if (stack.length > MAX_DEPTH) {
      diag.error(at, `files refer to each other more than ${MAX_DEPTH} levels deep: ${stack.join(' → ')}`);
      return undefined;
    }
    let text: string | undefined;
    try {
      text = this.input.readFile(abs);
    } catch {
      // A caller's reader that throws (a directory, no permission) is "cannot read", not a crash of the parse.
      text = undefined;
    }
    if (text === undefined) {
      diag.error(at, `cannot read ${abs}: no such file (paths are relative to the file that names them)`);
      this.loadedByPath.set(key, undefined);
      return undefined;
    }
    this.filesRead.push(abs);
    const shown = this.shownName(abs);
    this.reading.add(abs);
    const loaded = this.loadFile(shown, new YamlSource(text), projectDir ?? dirnamePosix(abs), env, false, [...stack, shown]);
    this.reading.delete(abs);
    this.loadedByPath.set(key, undefined);
    if (!loaded || !isRecord(loaded.v)) {
      if (loaded) diag.error(at, `${shown} is not a Compose file: expected a mapping with \`services:\``);
      return undefined;
    }
    const result = { index: loaded.o.src, value: loaded.v };
    this.loadedByPath.set(key, result);
    return result;
  }

  /** `include:` entries: each a path (or list of paths, merged as overrides) with optional project_directory and env_file. */
  private addIncludes(index: number, raw: unknown, into: Located, diag: Diagnostics, env: Readonly<Record<string, string>>, stack: string[]): void {
    const sf = this.sources[index]!;
    if (!Array.isArray(raw)) {
      diag.error(['include'], 'include is a list of files, e.g. include: [db/compose.yaml] or include: [{path: db/compose.yaml, env_file: db/.env}]');
      return;
    }
    raw.forEach((entry, i) => {
      const at: SpecPath = ['include', i];
      const e = typeof entry === 'string' ? { path: entry } : isRecord(entry) ? entry : undefined;
      const paths = e === undefined ? [] : typeof e.path === 'string' ? [e.path] : Array.isArray(e.path) ? e.path : [];
      if (!e || paths.length === 0 || paths.some((p) => typeof p !== 'string')) {
        diag.error(at, 'an include entry is a path, or {path: FILE or [FILES], project_directory: DIR, env_file: FILE or [FILES]}');
        return;
      }
      for (const key of Object.keys(e)) {
        if (!['path', 'project_directory', 'env_file'].includes(key) && !key.startsWith('x-')) diag.warn([...at, key], 'not supported yet by Berth; ignored', 'key');
      }
      let includeEnv = env;
      const envFiles = e.env_file === undefined ? [] : typeof e.env_file === 'string' ? [e.env_file] : Array.isArray(e.env_file) ? e.env_file : [];
      if (envFiles.length > 0) {
        const vars: Record<string, string> = {};
        for (const f of envFiles) {
          const abs = resolvePosix(sf.dir, String(f));
          const text = this.input.readFile(abs);
          if (text === undefined) {
            diag.error([...at, 'env_file'], `env file "${String(f)}" not found (looked for ${abs})`);
            continue;
          }
          this.filesRead.push(abs);
          const parsed = parseEnvFile(text);
          for (const p of parsed.problems) diag.errorAt({ line: p.line, col: p.col }, formatPath([...at, 'env_file']), p.message, this.shownName(abs));
          Object.assign(vars, parsed.vars);
        }
        // The caller's variables win over the env file's, as for a project's own .env.
        includeEnv = new Proxy(env, { get: (target, key) => (typeof key === 'string' && !(key in target) ? vars[key] : (target as Record<string | symbol, string>)[key]) });
      }
      // project_directory (relative to this file): the base of the included files' relative paths, as
      // Compose has it; by default each included file's own directory.
      let projectDir: string | undefined;
      if (e.project_directory !== undefined) {
        if (typeof e.project_directory !== 'string' || e.project_directory === '') {
          diag.error([...at, 'project_directory'], 'project_directory is a directory path, relative to this file (e.g. project_directory: ./db)');
          return;
        }
        projectDir = resolvePosix(sf.dir, e.project_directory);
      }
      let included: Located | undefined;
      for (const p of paths as string[]) {
        const abs = resolvePosix(sf.dir, p);
        const other = this.loadOther(abs, diag, typeof entry === 'string' ? at : [...at, 'path'], includeEnv, [...stack, sf.file], projectDir);
        if (!other) return;
        const loc: Located = { v: other.value, o: this.originOfFile(other.index) };
        included = included === undefined ? loc : this.merge([], included, loc);
      }
      if (!included || !isRecord(included.v) || !isRecord(into.v)) return;
      this.addResources(into, included, diag);
    });
  }

  /** The resources of an included model, added to the including one; a name defined in both is an error. */
  private addResources(into: Located, included: Located, diag: Diagnostics): void {
    const target = into.v as Json;
    const from = included.v as Json;
    for (const section of ['services', 'volumes', 'networks', 'secrets', 'configs']) {
      const theirs = from[section];
      if (!isRecord(theirs)) continue;
      if (!isRecord(target[section])) target[section] = {};
      const ours = target[section] as Json;
      const sectionOrigin = childOrigin(into.o, section);
      if (!into.o.children) into.o.children = new Map();
      into.o.children.set(section, sectionOrigin);
      for (const [name, def] of Object.entries(theirs)) {
        if (Object.hasOwn(ours, name)) {
          const where = this.sources[childOrigin(childOrigin(included.o, section), name).src]!.file;
          diag.error([section, name], `${section.replace(/s$/, '')} "${name}" is defined here and in the included file ${where}: Compose does not merge included resources; rename or remove one of them`, 'key');
          continue;
        }
        ours[name] = def;
        if (!sectionOrigin.children) sectionOrigin.children = new Map();
        sectionOrigin.children.set(name, childOrigin(childOrigin(included.o, section), name));
      }
    }
  }

  private originOfFile(index: number): Origin {
    const children = new Map<string | number, Origin>();
    const services = new Map<string | number, Origin>();
    for (const [key, o] of this.extendsOrigins) {
      const [i, name] = [Number(key.slice(0, key.indexOf(':'))), key.slice(key.indexOf(':') + 1)];
      if (i === index) services.set(name, o);
    }
    if (services.size > 0) children.set('services', { src: index, path: ['services'], children: services });
    return { src: index, path: [], ...(children.size > 0 ? { children } : {}) };
  }

  private shownName(abs: string): string {
    const base = this.input.baseDir;
    const mainDir = dirnamePosix(this.input.files[0]!.file);
    if (!isWithin(base, abs) || abs === base) return abs;
    const rel = abs.slice(base === '/' ? 1 : base.length + 1);
    return mainDir === '.' ? rel : `${mainDir}/${rel}`;
  }

  /** Compose's merge of `over` onto `base` at `path` of the model. */
  private merge(path: SpecPath, base: Located, over: Located): Located {
    if (this.sources[over.o.src]!.overrides.has(formatPath(over.o.path))) return over;
    const rule = RULES.find(([p]) => matches(p, path))?.[1];
    if (rule === 'replace') return over;
    if (rule === 'dict') {
      const sep = path[path.length - 1] === 'extra_hosts' ? /[=:]/ : /=/;
      base = toDict(base, sep);
      over = toDict(over, sep);
    } else if (rule === 'depends_on') {
      base = dependsOnDict(base);
      over = dependsOnDict(over);
    } else if (rule === 'build') {
      base = buildDict(base);
      over = buildDict(over);
    } else if (rule === 'networks') {
      base = listToKeys(base);
      over = listToKeys(over);
    } else if (rule === 'ulimit' && (!isRecord(base.v) || !isRecord(over.v))) {
      return over;
    }
    if (isRecord(base.v) && isRecord(over.v)) return this.mergeMaps(path, base, over);
    if (Array.isArray(base.v) && Array.isArray(over.v)) return mergeLists(path, base, over);
    return over;
  }

  private mergeMaps(path: SpecPath, base: Located, over: Located): Located {
    const v: Json = {};
    const children = new Map<string | number, Origin>();
    for (const [k, bv] of Object.entries(base.v as Json)) {
      v[k] = bv;
      children.set(k, childOrigin(base.o, k));
    }
    for (const [k, ov] of Object.entries(over.v as Json)) {
      const o = childOrigin(over.o, k);
      if (Object.hasOwn(v, k)) {
        const m = this.merge([...path, k], { v: v[k], o: children.get(k)! }, { v: ov, o });
        v[k] = m.v;
        children.set(k, m.o);
      } else {
        v[k] = ov;
        children.set(k, o);
      }
    }
    const resets = this.sources[over.o.src]!.resets.get(formatPath(over.o.path));
    for (const k of resets ?? []) {
      delete v[k];
      children.delete(k);
    }
    return { v, o: { src: over.o.src, path: over.o.path, children } };
  }

  /** Services whose `profiles` include none of the active ones are left out (all with `*`). */
  private applyProfiles(merged: Located): Map<string, string[]> {
    const inactive = new Map<string, string[]>();
    const model = merged.v;
    if (!isRecord(model) || !isRecord(model.services)) return inactive;
    const active = new Set(this.input.profiles);
    for (const [name, svc] of Object.entries(model.services)) {
      if (!isRecord(svc) || !Array.isArray(svc.profiles) || svc.profiles.length === 0) continue;
      const profiles = svc.profiles.map(String);
      if (active.has('*') || profiles.some((p) => active.has(p))) continue;
      inactive.set(name, profiles);
    }
    return inactive;
  }
}

function hint(name: string, candidates: string[]): string {
  const near = closestMatch(name, candidates);
  if (near) return `; did you mean "${near}"?`;
  return candidates.length > 0 ? `; its services: ${candidates.join(', ')}` : '';
}

function childOrigin(o: Origin, seg: string | number): Origin {
  return o.children?.get(seg) ?? { src: o.src, path: [...o.path, seg] };
}

function getAt(root: unknown, formatted: string): unknown {
  if (formatted === '') return root;
  let cur: unknown = root;
  for (const seg of parsePath(formatted)) {
    if (isRecord(cur)) cur = cur[seg as string];
    else if (Array.isArray(cur) && typeof seg === 'number') cur = cur[seg];
    else return undefined;
  }
  return cur;
}

/** The segments of a path made by formatPath, given keys that hold no "." or "[" (tags are rare; good enough). */
function parsePath(formatted: string): Array<string | number> {
  const out: Array<string | number> = [];
  for (const part of formatted.split('.')) {
    const m = /^([^[]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    if (m[1] !== '') out.push(m[1]!);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

/** Records `!reset` keys and `!override` values of a document (before toJS loses the tags). */
function collectTags(node: unknown, path: SpecPath, sf: SourceFile): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      const key = String(pair.key.value);
      const value = pair.value as YamlNode | null;
      const tag = value && typeof value === 'object' && 'tag' in value ? value.tag : undefined;
      if (tag === '!reset') {
        const parent = formatPath(path);
        if (!sf.resets.has(parent)) sf.resets.set(parent, new Set());
        sf.resets.get(parent)!.add(key);
        continue;
      }
      if (tag === '!override') sf.overrides.add(formatPath([...path, key]));
      collectTags(value, [...path, key], sf);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => collectTags(item, [...path, i], sf));
  }
}

function mergeLists(path: SpecPath, base: Located, over: Located): Located {
  const keyOf = UNIQUE.find(([p]) => matches(p, path))?.[1];
  const v: unknown[] = [];
  const origins: Origin[] = [];
  const add = (item: unknown, o: Origin): void => {
    if (keyOf) {
      const k = keyOf(item);
      const at = v.findIndex((x) => keyOf(x) === k);
      if (at >= 0) {
        v[at] = item;
        origins[at] = o;
        return;
      }
    }
    v.push(item);
    origins.push(o);
  };
  (base.v as unknown[]).forEach((item, i) => add(item, childOrigin(base.o, i)));
  (over.v as unknown[]).forEach((item, i) => add(item, childOrigin(over.o, i)));
  return { v, o: { src: over.o.src, path: over.o.path, children: new Map(origins.map((o, i) => [i, o])) } };
}

/** A list-or-dict (`[K=V, K]` or `{K: V}`) as a dict; each key keeps the origin of its entry. */
function toDict(l: Located, sep: RegExp): Located {
  if (!Array.isArray(l.v)) return l;
  const v: Json = {};
  const children = new Map<string | number, Origin>();
  l.v.forEach((item, i) => {
    const s = String(item);
    const eq = s.search(sep);
    const key = eq < 0 ? s : s.slice(0, eq);
    v[key] = eq < 0 ? null : s.slice(eq + 1);
    children.set(key, childOrigin(l.o, i));
  });
  return { v, o: { ...l.o, children } };
}

function dependsOnDict(l: Located): Located {
  if (!Array.isArray(l.v)) return l;
  const v: Json = {};
  const children = new Map<string | number, Origin>();
  l.v.forEach((item, i) => {
    v[String(item)] = { condition: 'service_started' };
    children.set(String(item), childOrigin(l.o, i));
  });
  return { v, o: { ...l.o, children } };
}

function listToKeys(l: Located): Located {
  if (!Array.isArray(l.v)) return l;
  const v: Json = {};
  const children = new Map<string | number, Origin>();
  l.v.forEach((item, i) => {
    v[String(item)] = null;
    children.set(String(item), childOrigin(l.o, i));
  });
  return { v, o: { ...l.o, children } };
}

function buildDict(l: Located): Located {
  if (typeof l.v !== 'string') return l;
  return { v: { context: l.v }, o: { ...l.o, children: new Map([['context', { src: l.o.src, path: l.o.path }]]) } };
}

/**
 * Relative paths of a file that is not the project's own (an `extends` base in another file, an
 * included file) resolve against that file's directory, as Compose does: made absolute here.
 */
function absolutizePaths(model: Json, dir: string): void {
  const abs = (p: string): string => (p.startsWith('~') || p.startsWith('/') ? p : resolvePosix(dir, p));
  for (const section of ['secrets', 'configs']) {
    const defs = model[section];
    if (!isRecord(defs)) continue;
    for (const def of Object.values(defs)) if (isRecord(def) && typeof def.file === 'string') def.file = abs(def.file);
  }
  if (!isRecord(model.services)) return;
  for (const svc of Object.values(model.services)) {
    if (!isRecord(svc)) continue;
    if (typeof svc.build === 'string') svc.build = abs(svc.build);
    else if (isRecord(svc.build)) {
      const ctx = typeof svc.build.context === 'string' ? svc.build.context : '.';
      if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(ctx) && !ctx.startsWith('git@')) svc.build.context = abs(ctx);
    }
    if (typeof svc.env_file === 'string') svc.env_file = abs(svc.env_file);
    else if (Array.isArray(svc.env_file)) {
      svc.env_file = svc.env_file.map((e) => (typeof e === 'string' ? abs(e) : isRecord(e) && typeof e.path === 'string' ? { ...e, path: abs(e.path) } : e));
    }
    if (Array.isArray(svc.volumes)) {
      svc.volumes = svc.volumes.map((v) => {
        if (typeof v === 'string') {
          const i = v.indexOf(':');
          return i > 0 && v.startsWith('.') ? abs(v.slice(0, i)) + v.slice(i) : v;
        }
        if (isRecord(v) && v.type === 'bind' && typeof v.source === 'string') return { ...v, source: abs(v.source) };
        return v;
      });
    }
  }
}
