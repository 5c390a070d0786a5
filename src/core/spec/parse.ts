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
import { buildComposeModel } from './compose-model.ts';
import { interpolate } from './interpolate.ts';
import { derivedServiceName, nameProblem, sanitizeName, serviceNameProblem } from './names.ts';
import { basenamePosix } from './posix-path.ts';
import { checkComposeSchema } from './schema-check.ts';
import { fileDefinitions, referencedNames } from './secrets.ts';
import { normalizeService, warnUnsupportedKeys } from './service.ts';
import { declaredNetworks } from './networks.ts';
import type { ParseOptions, ParseResult, ServiceSpec } from './types.ts';
import { appExtensions, appPool, pipelineExtensions } from './x-berth.ts';
import { YamlSource } from './yaml-source.ts';

const TOP_LEVEL_SUPPORTED = new Set(['services', 'volumes', 'networks', 'secrets', 'configs', 'name', 'version', 'x-berth', 'include']);
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
  const { env, used, values } = variablesFor(source, opts);
  opts = { ...opts, env };
  const files = [{ file: opts.file, source }, ...(opts.moreFiles ?? []).map((f) => ({ file: f.file, source: new YamlSource(f.text) }))];
  const built = buildComposeModel({ diag, files, baseDir: opts.baseDir, env, readFile: opts.readFile, profiles: opts.profiles ?? [] });
  if (!built) fail(diag);
  diag.useLocator(built.locate);
  const compose = built.model;
  checkComposeSchema(compose, diag);
  if (!isRecord(compose) || !isRecord(compose.services)) {
    // Without a `services:` mapping there is nothing to check further.
    if (isRecord(compose)) reportMissingServices(compose, diag);
    fail(diag);
  }

  warnUnsupportedTopLevel(compose, diag);
  const serviceNames = Object.keys(compose.services).filter((n) => !built.inactive.has(n));
  const ctx: SpecContext = {
    diag,
    opts,
    appName: appNameOf(compose, opts, diag),
    declaredVolumes: declaredVolumes(compose, diag),
    declaredNetworks: declaredNetworks(compose, { diag }),
    serviceNames,
    inactiveServices: built.inactive,
    // A secret's `environment` variable is read without being recorded: its value must never be
    // kept with the deployment's source.
    fileDefinitions: {
      secrets: fileDefinitions({ diag, opts }, 'secrets', compose.secrets, referencedNames(compose.services, 'secrets'), values),
      configs: fileDefinitions({ diag, opts }, 'configs', compose.configs, referencedNames(compose.services, 'configs'), values),
    },
    hostPathSources: {},
  };
  const services = normalizeServices(ctx, compose.services);
  if (Object.keys(compose.services).length > 0 && serviceNames.length === 0) {
    diag.error(['services'], `every service is in a profile that is not active (${[...new Set([...built.inactive.values()].flat())].join(', ')}): run with --profile NAME`);
  }
  markOneShots(services, compose.services);
  checkDependencyCycles(services, diag);
  checkRouteConflicts(services, diag);

  const pool = appPool(diag, compose['x-berth']);
  if (pool !== undefined) for (const s of Object.values(services)) s.pool ??= pool;
  const pipeline = pipelineExtensions(diag, compose['x-berth']);
  if (diag.issues.length > 0) fail(diag);
  return { spec: { name: ctx.appName, services, ...(pipeline ? { pipeline } : {}) }, warnings: diag.sortedWarnings(), hostPathSources: ctx.hostPathSources,
    variablesUsed: [...used].sort(), ...(built.inactive.size > 0 ? { inactive: Object.fromEntries(built.inactive) } : {}) };
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

function fail(diag: Diagnostics): never {
  throw new InvalidSpec(diag.sortedIssues(), diag.sortedWarnings());
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
    for (const [key, value] of Object.entries(def)) {
      // Compose's defaults, which are what Berth does anyway: nothing to warn about.
      if (key.startsWith('x-') || (key === 'driver' && value === 'local') || (key === 'external' && value === false)) continue;
      diag.warn(['volumes', name, key], VOLUME_KEYS_IGNORED, 'key');
    }
  }
  return new Set(Object.keys(compose.volumes));
}

function normalizeServices(ctx: SpecContext, raw: unknown): Record<string, ServiceSpec> {
  const out: Record<string, ServiceSpec> = {};
  if (!isRecord(raw)) return out;
  if (Object.keys(raw).length === 0) ctx.diag.error(['services'], 'no services defined: add at least one, e.g. web: {image: nginx}');
  const derivedFrom = new Map<string, string>();
  for (const [name, def] of Object.entries(raw)) {
    const broken = ctx.diag.hasErrorsUnder(['services', name]);
    const problem = serviceNameProblem(name);
    if (problem) {
      ctx.diag.error(['services', name], problem, 'key');
      continue;
    }
    const derived = derivedServiceName(name);
    const first = derivedFrom.get(derived);
    if (first !== undefined) {
      ctx.diag.error(['services', name], `services "${first}" and "${name}" both become "${derived}" in DNS, container and upstream names (lower case, "_" and "." → "-"): rename one of them`, 'key');
      continue;
    }
    derivedFrom.set(derived, name);
    // A subtree the schema (or interpolation) already rejected would only yield follow-on errors;
    // its ignored keys are still named, so the report has every warning beside the errors.
    if (broken && isRecord(def) && ctx.serviceNames.includes(name)) warnUnsupportedKeys(ctx, ['services', name], def);
    if (broken || !isRecord(def) || !ctx.serviceNames.includes(name)) continue;
    out[derived] = normalizeService(ctx, name, def);
  }
  return out;
}

/**
 * A service others wait for with `service_completed_successfully` runs once: exit 0 completes it.
 * Without a restart policy of its own it is restarted only on failure (Compose's default is "no").
 */
function markOneShots(services: Record<string, ServiceSpec>, raw: Json): void {
  for (const svc of Object.values(services)) {
    for (const [dep, condition] of Object.entries(svc.dependsOnConditions ?? {})) {
      const target = services[dep];
      if (condition !== 'service_completed_successfully' || !target) continue;
      target.oneShot = true;
      const def = raw[target.composeName ?? target.name];
      const explicit = isRecord(def) && (def.restart !== undefined || (isRecord(def.deploy) && def.deploy.restart_policy !== undefined));
      if (!explicit) target.restart = { ...target.restart, condition: 'on-failure' };
    }
  }
}

/** Deploys are ordered by depends_on, so a cycle could never start. Reports each cycle once. */
function checkDependencyCycles(services: Record<string, ServiceSpec>, diag: Diagnostics): void {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      const cycle = [...stack.slice(stack.indexOf(name)), name].map((n) => services[n]?.composeName ?? n);
      diag.error(['services', services[name]?.composeName ?? name, 'depends_on'], `dependency cycle: ${cycle.join(' → ')}; remove one of these depends_on entries`);
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
        diag.error(['services', svc.composeName ?? svc.name, 'x-berth', 'routes', i], msg);
      }
    });
  }
}

