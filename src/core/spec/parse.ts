/**
 * Compose file text → normalized AppSpec. The pipeline, in this order:
 *   1. YAML (with `<<:` merges) — syntax errors stop here, nothing after would be reliable;
 *   2. variable interpolation on string values (before validation, as docker compose does);
 *   3. the Compose Specification schema;
 *   4. Berth's own checks and normalization, per service, skipping subtrees already reported broken.
 * Every problem found is collected; bad input throws one InvalidSpec listing them all, by line.
 */
import { InvalidSpec } from '../errors.ts';
import { isRecord, type Json, type SpecContext } from './context.ts';
import { Diagnostics } from './diagnostics.ts';
import { interpolate, interpolateTree } from './interpolate.ts';
import { nameProblem, sanitizeName } from './names.ts';
import { basenamePosix } from './posix-path.ts';
import { checkComposeSchema } from './schema-check.ts';
import { fileDefinitions, referencedNames } from './secrets.ts';
import { normalizeService } from './service.ts';
import { declaredNetworks } from './networks.ts';
import type { ParseOptions, ParseResult, ServiceSpec } from './types.ts';
import { appExtensions, pipelineExtensions } from './x-berth.ts';
import { YamlSource } from './yaml-source.ts';

const TOP_LEVEL_SUPPORTED = new Set(['services', 'volumes', 'networks', 'secrets', 'configs', 'name', 'version', 'x-berth']);
const VOLUME_KEYS_IGNORED = 'not supported yet by Berth; ignored — Berth creates app-scoped local volumes';

/**
 * Parses and validates a Compose file with `x-berth` extensions.
 * @throws InvalidSpec listing every problem found, each with file, line, column and path.
 */
export function parseAppSpec(text: string, opts: ParseOptions): ParseResult {
  const source = new YamlSource(text);
  const diag = new Diagnostics(opts.file, source);

  const syntax = source.syntaxProblems();
  if (syntax.length > 0) {
    for (const p of syntax) diag.errorAt(p, '', p.message);
    fail(diag);
  }
  for (const w of source.syntaxWarnings()) diag.warnAt(w, '', w.message);
  if (source.doc.contents === null) {
    diag.errorAt({ line: 1, col: 1 }, '', 'the file is empty: a Compose file needs a `services:` mapping');
    fail(diag);
  }

  const { env, used, values } = variablesFor(source, opts);
  opts = { ...opts, env };
  interpolateTree(source.doc.contents, env, diag);
  const root = toPlainValue(source, diag);
  const compose = withoutVersion(root, diag);
  checkComposeSchema(compose, diag);
  if (!isRecord(compose) || !isRecord(compose.services)) {
    // Without a `services:` mapping there is nothing to check further.
    if (isRecord(compose)) reportMissingServices(compose, diag);
    fail(diag);
  }

  warnUnsupportedTopLevel(compose, diag);
  const ctx: SpecContext = {
    diag,
    opts,
    appName: appNameOf(compose, opts, diag),
    declaredVolumes: declaredVolumes(compose, diag),
    declaredNetworks: declaredNetworks(compose, { diag }),
    serviceNames: Object.keys(compose.services),
    // A secret's `environment` variable is read without being recorded: its value must never be
    // kept with the deployment's source.
    fileDefinitions: {
      secrets: fileDefinitions({ diag, opts }, 'secrets', compose.secrets, referencedNames(compose.services, 'secrets'), values),
      configs: fileDefinitions({ diag, opts }, 'configs', compose.configs, referencedNames(compose.services, 'configs'), values),
    },
    hostPathSources: {},
  };
  const services = normalizeServices(ctx, compose.services);
  checkDependencyCycles(services, diag);
  checkRouteConflicts(services, diag);

  const pipeline = pipelineExtensions(diag, compose['x-berth']);
  if (diag.issues.length > 0) fail(diag);
  return { spec: { name: ctx.appName, services, ...(pipeline ? { pipeline } : {}) }, warnings: diag.sortedWarnings(), hostPathSources: ctx.hostPathSources,
    variablesUsed: [...used].sort() };
}

/** Variables Berth sets for every deploy when it knows the environment; they override the caller's. */
export const BERTH_VARIABLES = ['BERTH_ENV', 'BERTH_APP'] as const;

/**
 * The variables the file is interpolated with: the caller's, plus BERTH_ENV and BERTH_APP when the
 * environment is known. Every name the parse looks up (other than Berth's own) is recorded in `used`,
 * so that a deployment can keep exactly the values it was made with (and nothing else of the caller's
 * environment) to interpolate the same file again for another environment.
 */
function variablesFor(source: YamlSource, opts: ParseOptions): { env: Record<string, string>; used: Set<string>; values: Record<string, string> } {
  // No prototype: `${constructor}` is an unset variable, not Object's constructor.
  const values: Record<string, string> = Object.assign(Object.create(null) as Record<string, string>, opts.env);
  const berth = new Set<string>();
  if (opts.environment !== undefined) {
    values.BERTH_ENV = opts.environment;
    values.BERTH_APP = appNameBeforeInterpolation(source, opts, values);
    for (const k of BERTH_VARIABLES) berth.add(k);
  }
  const used = new Set<string>();
  const env = new Proxy(values, {
    get(target, key) {
      if (typeof key !== 'string') return undefined;
      if (!berth.has(key)) used.add(key);
      return target[key];
    },
  });
  return { env, used, values };
}

/**
 * BERTH_APP, needed before the file is interpolated: --app, else `x-berth.app`, else `name:` (each
 * interpolated on its own, without BERTH_APP), else the directory. appNameOf decides (and checks) the
 * name again on the interpolated file; the two agree unless the name itself uses ${BERTH_APP}.
 */
function appNameBeforeInterpolation(source: YamlSource, opts: ParseOptions, values: Record<string, string>): string {
  if (opts.appName !== undefined) return opts.appName;
  for (const path of [['x-berth', 'app'], ['name']]) {
    const raw = source.doc.getIn(path);
    if (typeof raw !== 'string') continue;
    const r = interpolate(raw, values);
    if (r.ok) return r.value;
  }
  return sanitizeName(basenamePosix(opts.baseDir));
}

/** The document as plain JSON values, with `<<:` merges applied and aliases expanded. */
function toPlainValue(source: YamlSource, diag: Diagnostics): unknown {
  try {
    // The limit guards against "billion laughs" alias bombs; real files stay far below it.
    return source.doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    diag.errorAt({ line: 1, col: 1 }, '', `cannot expand the YAML aliases: ${e instanceof Error ? e.message : String(e)}`);
    return fail(diag);
  }
}

function fail(diag: Diagnostics): never {
  throw new InvalidSpec(diag.sortedIssues());
}

/** `version` is obsolete (docker compose warns and ignores it); drop it before validation so `version: 3` is not a type error. */
function withoutVersion(root: unknown, diag: Diagnostics): unknown {
  if (!isRecord(root) || !('version' in root)) return root;
  diag.warn(['version'], 'the `version` key is obsolete and ignored; remove it', 'key');
  const { version: _version, ...rest } = root;
  return rest;
}

function reportMissingServices(compose: Json, diag: Diagnostics): void {
  if (compose.services === undefined) diag.error([], 'no `services:` mapping: define at least one service, e.g. services: {web: {image: nginx}}');
}

function warnUnsupportedTopLevel(compose: Json, diag: Diagnostics): void {
  for (const key of Object.keys(compose)) {
    if (TOP_LEVEL_SUPPORTED.has(key) || key.startsWith('x-')) continue;
    diag.warn([key], 'not supported yet by Berth; ignored', 'key');
  }
}

/** --app, then x-berth.app, then `name:`, then the Compose file's directory (sanitized). */
function appNameOf(compose: Json, opts: ParseOptions, diag: Diagnostics): string {
  // All sources are read (so a bad x-berth block is reported even with --app); the first one set wins.
  const candidates: Array<{ name: string | undefined; report: (message: string) => void }> = [
    { name: opts.appName, report: (m) => diag.errorAt({ line: 1, col: 1 }, '', `${m} (given with --app)`) },
    { name: appExtensions(diag, compose['x-berth']), report: (m) => diag.error(['x-berth', 'app'], m) },
    { name: typeof compose.name === 'string' ? compose.name : undefined, report: (m) => diag.error(['name'], m) },
  ];
  const chosen = candidates.find((c) => c.name !== undefined);
  if (chosen?.name !== undefined) {
    const problem = nameProblem('app', chosen.name);
    if (problem) chosen.report(problem);
    return chosen.name;
  }
  const fromDir = sanitizeName(basenamePosix(opts.baseDir));
  if (fromDir === '') {
    diag.errorAt({ line: 1, col: 1 }, '', `cannot derive an app name from the directory "${opts.baseDir}": set \`name:\` in the file`);
  }
  return fromDir;
}

function declaredVolumes(compose: Json, diag: Diagnostics): Set<string> {
  if (!isRecord(compose.volumes)) return new Set();
  for (const [name, def] of Object.entries(compose.volumes)) {
    if (!isRecord(def)) continue;
    for (const key of Object.keys(def)) {
      if (!key.startsWith('x-')) diag.warn(['volumes', name, key], VOLUME_KEYS_IGNORED, 'key');
    }
  }
  return new Set(Object.keys(compose.volumes));
}

function normalizeServices(ctx: SpecContext, raw: unknown): Record<string, ServiceSpec> {
  const out: Record<string, ServiceSpec> = {};
  if (!isRecord(raw)) return out;
  if (Object.keys(raw).length === 0) ctx.diag.error(['services'], 'no services defined: add at least one, e.g. web: {image: nginx}');
  for (const [name, def] of Object.entries(raw)) {
    const broken = ctx.diag.hasErrorsUnder(['services', name]);
    const problem = nameProblem('service', name);
    if (problem) ctx.diag.error(['services', name], problem, 'key');
    // A subtree the schema (or interpolation) already rejected would only yield follow-on errors.
    if (broken || !isRecord(def)) continue;
    out[name] = normalizeService(ctx, name, def);
  }
  return out;
}

/** Deploys are ordered by depends_on, so a cycle could never start. Reports each cycle once. */
function checkDependencyCycles(services: Record<string, ServiceSpec>, diag: Diagnostics): void {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      const cycle = [...stack.slice(stack.indexOf(name)), name];
      diag.error(['services', name, 'depends_on'], `dependency cycle: ${cycle.join(' → ')}; remove one of these depends_on entries`);
      return;
    }
    state.set(name, 'visiting');
    stack.push(name);
    for (const dep of services[name]?.dependsOn ?? []) visit(dep);
    stack.pop();
    state.set(name, 'done');
  };
  for (const name of Object.keys(services)) visit(name);
}

/** The ingress can send a host+path to one service only. */
function checkRouteConflicts(services: Record<string, ServiceSpec>, diag: Diagnostics): void {
  const owner = new Map<string, string>();
  for (const svc of Object.values(services)) {
    svc.routes.forEach((r, i) => {
      const key = `${r.host ?? '*'}${r.path}`;
      const first = owner.get(key);
      if (first === undefined) owner.set(key, svc.name);
      else {
        const what = `${r.host ?? '(any host)'}${r.path}`;
        const msg = first === svc.name ? `route ${what} is listed twice` : `route ${what} is already taken by service "${first}": each host and path go to one service`;
        diag.error(['services', svc.name, 'x-berth', 'routes', i], msg);
      }
    });
  }
}

