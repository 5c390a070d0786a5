/**
 * One Compose service (already schema-valid and interpolated) → ServiceSpec. Every key Berth reads
 * is checked for meaning here (the schema accepts strings for numbers); every key it does not act on
 * yields a warning, never a silent drop.
 */
import { isRecord, listOrDict, noteHostPath, scalarToString, take, type Json, type SpecContext } from './context.ts';
import { parseEnvFile } from './env-file.ts';
import { composeHealth, resolveHealth } from './health.ts';
import { dirnamePosix, isWithin, normalizePosix, resolvePosix } from './posix-path.ts';
import { fileMounts } from './secrets.ts';
import { derivedServiceName } from './names.ts';
import { runtimeOf } from './service-runtime.ts';
import { securityOf } from './service-security.ts';
import { hostAccessOf } from './service-host-access.ts';
import { splitShellWords } from './shell-words.ts';
import { closestMatch } from './suggest.ts';
import type { BuildSpec, DependsOnCondition, FileMountSpec, RestartPolicy, ServiceSpec } from './types.ts';
import { parseBool, parseCount, parseCpus, parseDuration, parseSize } from './units.ts';
import { normalizeVolumes } from './volumes.ts';
import { appNetworking, networkModeOf, parsePorts } from './networks.ts';
import { serviceExtensions } from './x-berth.ts';
import { placementOf, reservationsOf } from './service-placement.ts';
import { formatPath, type SpecPath } from './yaml-source.ts';

const SUPPORTED_KEYS = new Set([
  'image', 'build', 'command', 'entrypoint', 'environment', 'env_file', 'ports', 'healthcheck', 'deploy', 'labels',
  'stop_signal', 'stop_grace_period', 'volumes', 'depends_on', 'shm_size', 'restart', 'scale', 'x-berth',
  'user', 'read_only', 'cap_add', 'cap_drop', 'security_opt', 'tmpfs', 'networks', 'network_mode', 'expose', 'secrets', 'configs',
  'init', 'working_dir', 'ulimits', 'sysctls', 'extra_hosts', 'pull_policy', 'profiles',
  // Read so that the server's guardrail policy can refuse them by name (core/guard.ts), or apply them when exempted.
  'privileged', 'pid', 'ipc', 'uts', 'userns_mode', 'cgroup', 'devices', 'pids_limit',
]);

const NOT_SUPPORTED = 'not supported yet by Berth; ignored';
const HOST_NETWORK = 'services of the app reach each other by name on the app\'s network';
/** Why a known-but-unsupported key is ignored, where there is something more useful to say. */
const IGNORED_BECAUSE: Record<string, string> = {
  container_name: 'ignored: Berth names containers itself, one per instance',
  links: `${NOT_SUPPORTED} — ${HOST_NETWORK}`,
  cpus: `${NOT_SUPPORTED} — set deploy.resources.limits.cpus instead`,
  mem_limit: `${NOT_SUPPORTED} — set deploy.resources.limits.memory instead`,
};

const DEFAULT_STOP_GRACE_MS = 10_000;
const DEFAULT_RESTART: RestartPolicy = { condition: 'any', delayMs: 1_000 };

/** `name` is the service's Compose name (paths in messages); the spec holds the name derived from it. */
export function normalizeService(ctx: SpecContext, name: string, raw: Json): ServiceSpec {
  const path: SpecPath = ['services', name];
  const derived = derivedServiceName(name);
  const at = (...rest: Array<string | number>): SpecPath => [...path, ...rest];
  warnUnsupportedKeys(ctx, path, raw);

  const xPortRaw = isRecord(raw['x-berth']) ? raw['x-berth'].port : undefined;
  const xPort = typeof xPortRaw === 'number' || (typeof xPortRaw === 'string' && /^\d+$/.test(xPortRaw)) ? Number(xPortRaw) : undefined;
  const mode = networkModeOf(ctx, path, raw, xPort);
  // In app-network mode a route or check may use the first `ports` entry as the service's port.
  const fallbackPort = mode === 'app' ? parsePorts({ ...ctx, diag: silentDiag(ctx) }, at('ports'), raw.ports).find((p) => p.protocol === 'tcp')?.target : undefined;
  const ext = serviceExtensions(ctx, at('x-berth'), raw['x-berth'], fallbackPort);
  const compose = composeHealth(ctx, at('healthcheck'), raw.healthcheck);
  if (compose !== undefined && compose !== 'disabled' && ext.health !== undefined) {
    ctx.diag.warn(at('x-berth', 'health'), 'ignored: the service has a Compose `healthcheck`, which takes precedence; remove one of them');
  }
  const build = raw.build === undefined ? undefined : normalizeBuild(ctx, at('build'), raw.build);
  const deploy = isRecord(raw.deploy) ? raw.deploy : {};
  warnUnsupportedDeployKeys(ctx, at('deploy'), deploy);

  const deps = dependsOnOf(ctx, name, at('depends_on'), raw.depends_on);
  const spec: ServiceSpec = {
    name: derived,
    ...(derived !== name ? { composeName: name } : {}),
    image: imageOf(ctx, name, raw, build),
    environment: environmentOf(ctx, path, raw),
    ports: portsOf(ctx, at('ports'), raw.ports, mode === 'host' ? ext.port : 0),
    health: resolveHealth(compose, ext.health, ext.port ?? fallbackPort),
    replicas: replicasOf(ctx, path, raw, deploy),
    limits: limitsOf(ctx, at('deploy', 'resources', 'limits'), deploy),
    restart: restartOf(ctx, path, raw, deploy),
    labels: labelsOf(ctx, at('labels'), raw.labels),
    stopSignal: stopSignalOf(ctx, at('stop_signal'), raw.stop_signal),
    stopGracePeriodMs:
      raw.stop_grace_period === undefined ? DEFAULT_STOP_GRACE_MS : take(ctx, at('stop_grace_period'), parseDuration(raw.stop_grace_period)) ?? DEFAULT_STOP_GRACE_MS,
    volumes: normalizeVolumes(ctx, at('volumes'), raw.volumes),
    dependsOn: deps.names,
    routes: ext.routes,
    update: ext.update,
  };
  if (build) spec.build = build;
  const command = argvOf(ctx, at('command'), raw.command);
  if (command) spec.command = command;
  const entrypoint = argvOf(ctx, at('entrypoint'), raw.entrypoint);
  if (entrypoint) spec.entrypoint = entrypoint;
  if (raw.shm_size !== undefined) {
    const shm = take(ctx, at('shm_size'), positive(parseSize(raw.shm_size), 'shm_size'));
    if (shm !== undefined) spec.shmSizeBytes = shm;
  }
  if (Object.keys(deps.conditions).length > 0) spec.dependsOnConditions = deps.conditions;
  if (deps.restartWith.length > 0) spec.restartWith = deps.restartWith;
  if (ext.port !== undefined) spec.port = ext.port;
  if (ext.pool !== undefined) spec.pool = ext.pool;
  const placement = placementOf(ctx, at('deploy', 'placement'), deploy.placement);
  if (placement) spec.placement = placement;
  const reservations = reservationsOf(ctx, at('deploy', 'resources', 'reservations'), deploy);
  if (reservations) spec.reservations = reservations;
  if (mode === 'app') applyAppNetworking(ctx, path, raw, spec, ext.port);
  else if (raw.expose !== undefined) ctx.diag.warn(at('expose'), 'ignored: the service runs on the host network, where every port it listens on is reachable', 'key');
  // Compose clients reach a service by the name the file gives it (`with_depends_on`); Berth's name is the derived one.
  if (spec.composeName !== undefined) {
    for (const n of spec.networks ?? []) if (!n.aliases.includes(spec.composeName)) n.aliases.push(spec.composeName);
  }
  statefulUpdates(ctx, path, raw, spec);
  if (ext.test) spec.test = ext.test;
  Object.assign(spec, securityOf(ctx, path, raw), runtimeOf(ctx, path, raw));
  const { pids, ...access } = hostAccessOf(ctx, path, raw);
  Object.assign(spec, access);
  if (pids !== undefined) spec.limits.pids = pids;
  if (spec.sysctls && mode === 'host') {
    ctx.diag.warn(at('sysctls'), 'ignored on the host network (the service has x-berth.port or network_mode: host): its sysctls are the host\'s; they apply on the app network');
  }
  // One target per file across both lists; volumes and tmpfs mounts are checked by Docker itself.
  const targets = new Map<string, string>();
  const secrets = fileMounts(ctx, 'secrets', at('secrets'), raw.secrets, ctx.fileDefinitions.secrets, targets);
  if (secrets.length > 0) spec.secrets = secrets;
  const configs = fileMounts(ctx, 'configs', at('configs'), raw.configs, ctx.fileDefinitions.configs, targets);
  if (configs.length > 0) spec.configs = configs;
  return spec;
}

/** App-network mode: networks, published ports, the routed port; a fixed host port means stop-first releases. */
function applyAppNetworking(ctx: SpecContext, path: SpecPath, raw: Json, spec: ServiceSpec, xPort: number | undefined): void {
  const net = appNetworking(ctx, path, raw, xPort, spec.replicas);
  Object.assign(spec, net);
  if (spec.health.type === 'tcp') spec.health = { ...spec.health, published: true };
  const fixed = net.publish?.find((p) => p.published !== undefined);
  if (fixed && spec.update && spec.update.strategy !== 'recreate') {
    const xUpdate = isRecord(raw['x-berth']) ? raw['x-berth'].update : undefined;
    if (!isRecord(xUpdate) || xUpdate.strategy === undefined) {
      spec.update = { ...spec.update, strategy: 'recreate' };
      ctx.diag.warn([...path, 'ports'], `host port ${fixed.published} can be held by one container at a time: releases stop the old container before starting the new one (a short gap); ` +
        'drop the host port to get zero-downtime releases through the ingress');
    } else {
      ctx.diag.error([...path, 'x-berth', 'update', 'strategy'], `the ${spec.update.strategy} strategy runs two containers at once, but host port ${fixed.published} can be held by one only: ` +
        'use strategy: recreate, or drop the host port');
    }
  }
}

/**
 * A service writing to a named volume keeps its data there: two processes must not open one data
 * directory (a database's files), so the releases of its one replica stop the old container before
 * starting the new one unless `x-berth.update.strategy` says otherwise — then it is warned. Several
 * replicas share the volume anyway (warned). Read-only mounts share safely.
 */
function statefulUpdates(ctx: SpecContext, path: SpecPath, raw: Json, spec: ServiceSpec): void {
  const data = spec.volumes.filter((v) => v.type === 'volume' && !v.readOnly).map((v) => v.source);
  if (data.length === 0 || !spec.update) return;
  const names = data.map((d) => `"${d}"`).join(', ');
  const xBerth = isRecord(raw['x-berth']) ? raw['x-berth'] : undefined;
  const explicit = isRecord(xBerth?.update) && xBerth.update.strategy !== undefined;
  if (spec.replicas > 1) {
    // They open it at once anyway: stopping first during releases would only add a gap.
    ctx.diag.warn([...path, 'volumes'], `the ${spec.replicas} replicas all write to volume ${names} at once (releases roll as usual): ` +
      'only software made to share one data directory works so; keep one replica for a database');
    return;
  }
  if (spec.update.strategy === 'recreate' || spec.update.strategy === 'reload') return;
  if (!explicit) {
    spec.update = { ...spec.update, strategy: 'recreate' };
    ctx.diag.warn([...path, 'volumes'], `stateful: releases stop the old container before starting the new one (a short gap), so two processes never open volume ${names} at once; ` +
      'set x-berth.update.strategy to choose otherwise');
    return;
  }
  ctx.diag.warn([...path, 'x-berth', 'update', 'strategy'], `the ${spec.update.strategy} strategy runs the old and the new container at once, both writing to volume ${names}: ` +
    'a database would be opened twice; use strategy: recreate unless the software is made for it');
}

/** Diagnostics that drop what they are told (a look-ahead parse whose problems are reported later). */
function silentDiag(ctx: SpecContext): SpecContext['diag'] {
  return new Proxy(ctx.diag, { get: (t, k) => (k === 'error' || k === 'warn' ? () => undefined : Reflect.get(t, k)) });
}

/** Warns about each key of a service Berth ignores (a key already in error is not warned about again). */
export function warnUnsupportedKeys(ctx: SpecContext, path: SpecPath, raw: Json): void {
  for (const key of Object.keys(raw)) {
    if (SUPPORTED_KEYS.has(key) || ctx.diag.hasErrorsUnder([...path, key])) continue;
    if (key.startsWith('x-')) {
      // Other x- keys are the user's own business; but `x-bert` is most likely a typo.
      const near = closestMatch(key, ['x-berth']);
      if (near) ctx.diag.warn([...path, key], `ignored; did you mean \`x-berth\`?`, 'key');
      continue;
    }
    ctx.diag.warn([...path, key], IGNORED_BECAUSE[key] ?? NOT_SUPPORTED, 'key');
  }
}

function warnUnsupportedDeployKeys(ctx: SpecContext, path: SpecPath, deploy: Json): void {
  const warnKey = (p: SpecPath): void => ctx.diag.warn(p, NOT_SUPPORTED, 'key');
  for (const [key, value] of Object.entries(deploy)) {
    if (key.startsWith('x-') || key === 'replicas' || key === 'restart_policy' || key === 'placement') continue;
    if (key === 'mode' && value === 'replicated') continue;
    if (key !== 'resources' || !isRecord(value)) {
      warnKey([...path, key]);
      continue;
    }
    for (const [rkey, rvalue] of Object.entries(value)) {
      if (rkey.startsWith('x-')) continue;
      if (rkey === 'reservations' && isRecord(rvalue)) {
        for (const k of Object.keys(rvalue)) if (k !== 'cpus' && k !== 'memory' && !k.startsWith('x-')) warnKey([...path, key, rkey, k]);
        continue;
      }
      if (rkey !== 'limits' || !isRecord(rvalue)) {
        warnKey([...path, key, rkey]);
        continue;
      }
      for (const lkey of Object.keys(rvalue)) {
        if (lkey !== 'cpus' && lkey !== 'memory' && lkey !== 'pids' && !lkey.startsWith('x-')) warnKey([...path, key, rkey, lkey]);
      }
    }
  }
  if (isRecord(deploy.restart_policy) && deploy.restart_policy.window !== undefined) {
    warnKey([...path, 'restart_policy', 'window']);
  }
}

function imageOf(ctx: SpecContext, name: string, raw: Json, build: BuildSpec | undefined): string {
  if (typeof raw.image === 'string') {
    if (raw.image.trim() === '' || /\s/.test(raw.image)) {
      ctx.diag.error(['services', name, 'image'], `${JSON.stringify(raw.image)} is not an image reference: write e.g. nginx:1.27 or registry.example.com/team/app:v3`);
    }
    return raw.image;
  }
  if (build || raw.build !== undefined) return `berth-${ctx.appName}/${derivedServiceName(name)}:latest`;
  ctx.diag.error(['services', name], 'needs `image` (an image to run) or `build` (a directory with a Dockerfile)');
  return '';
}

function normalizeBuild(ctx: SpecContext, path: SpecPath, raw: unknown): BuildSpec | undefined {
  const b: Json = typeof raw === 'string' ? { context: raw } : isRecord(raw) ? raw : {};
  for (const key of Object.keys(b)) {
    if (!['context', 'dockerfile', 'args', 'target', 'dockerfile_inline', 'secrets'].includes(key) && !key.startsWith('x-')) ctx.diag.warn([...path, key], NOT_SUPPORTED, 'key');
  }
  const extra: Pick<BuildSpec, 'target' | 'dockerfileInline' | 'secrets'> = {};
  if (b.target !== undefined && b.target !== null) {
    const t = scalarToString(b.target);
    if (/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(t)) extra.target = t;
    else ctx.diag.error([...path, 'target'], `${JSON.stringify(t)} is not a build stage name: write the name after \`FROM ... AS\`, e.g. runtime`);
  }
  if (typeof b.dockerfile_inline === 'string') {
    if (b.dockerfile !== undefined) ctx.diag.error([...path, 'dockerfile_inline'], 'dockerfile and dockerfile_inline are both set: keep one of them');
    else if (b.dockerfile_inline.trim() === '') ctx.diag.error([...path, 'dockerfile_inline'], 'dockerfile_inline is empty: write the Dockerfile, e.g. "FROM berth/busybox"');
    else extra.dockerfileInline = b.dockerfile_inline;
  }
  if (Array.isArray(b.secrets)) {
    const secrets: Array<{ source: string; target: string; mount?: FileMountSpec }> = [];
    b.secrets.forEach((item, i) => {
      const source = isRecord(item) ? item.source : item;
      const target = isRecord(item) && item.target !== undefined ? item.target : source;
      if (typeof source !== 'string' || !/^[a-zA-Z0-9._-]+$/.test(source) || typeof target !== 'string' || !/^[a-zA-Z0-9._/-]+$/.test(target) || target.includes('..')) {
        ctx.diag.error([...path, 'secrets', i], 'a build secret is a secret name, or {source: NAME, target: ID}');
        return;
      }
      secrets.push({ source, target });
    });
    if (secrets.length > 0) {
      extra.secrets = secrets;
      secrets.forEach((sec, i) => {
        const def = ctx.fileDefinitions.secrets.get(sec.source);
        if (def) {
          // Broken definitions were reported where they are defined.
          if (!def.broken) {
            sec.mount = { name: sec.source, target: `/run/secrets/${sec.target}`, uid: 0, gid: 0, mode: 0o400, from: def.from,
              ...(def.value !== undefined ? { value: def.value } : {}), ...(def.key !== undefined ? { key: def.key } : {}) };
          }
          return;
        }
        const near = closestMatch(sec.source, [...ctx.fileDefinitions.secrets.keys()]);
        ctx.diag.error([...path, 'secrets', i], `undefined secret "${sec.source}": ${near ? `did you mean "${near}"?` : 'define it under the top-level `secrets:`'}`);
      });
    }
  }
  const contextRaw = typeof b.context === 'string' ? b.context : '.';
  const contextPath = typeof raw === 'string' ? path : [...path, 'context'];
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(contextRaw) || contextRaw.startsWith('git@')) {
    ctx.diag.error(contextPath, `remote build contexts are not supported yet: clone "${contextRaw}" and point \`context\` at the local directory`);
    return undefined;
  }
  const context = resolvePosix(ctx.opts.baseDir, contextRaw);
  noteHostPath(ctx, `services.${derivedServiceName(String(path[1]))}.build.context`, contextPath);
  let dockerfile = typeof b.dockerfile === 'string' ? b.dockerfile : 'Dockerfile';
  if (dockerfile.startsWith('/')) {
    // The Docker build API wants the Dockerfile relative to the context.
    const abs = normalizePosix(dockerfile);
    if (!isWithin(context, abs) || abs === context) {
      ctx.diag.error([...path, 'dockerfile'], `"${dockerfile}" is outside the build context ${context}: move it into the context or give a path relative to it`);
      return undefined;
    }
    dockerfile = abs.slice(context === '/' ? 1 : context.length + 1);
  } else if (normalizePosix(dockerfile).startsWith('..')) {
    ctx.diag.error([...path, 'dockerfile'], `"${dockerfile}" is outside the build context ${context}: move it into the context`);
    return undefined;
  }
  if (typeof b.dockerfile === 'string') noteHostPath(ctx, `services.${derivedServiceName(String(path[1]))}.build.dockerfile`, [...path, 'dockerfile']);
  const args: Record<string, string> = {};
  for (const { key, value, index } of listOrDict(b.args)) {
    const v = value ?? ctx.opts.env[key];
    if (v === undefined) {
      ctx.diag.warn([...path, 'args', index], `build argument "${key}" has no value and is not set in the environment; left out`);
    } else args[key] = v;
  }
  return { context, dockerfile, args, ...extra };
}

function argvOf(ctx: SpecContext, path: SpecPath, raw: unknown): string[] | undefined {
  if (Array.isArray(raw)) return raw.map(scalarToString);
  if (typeof raw !== 'string') return undefined;
  const r = splitShellWords(raw);
  if (!r.ok) {
    ctx.diag.error(path, r.message);
    return undefined;
  }
  return r.argv;
}

/** env_file entries in order, then `environment`, which wins (as in docker compose). */
function environmentOf(ctx: SpecContext, path: SpecPath, raw: Json): Record<string, string> {
  const env: Record<string, string> = {};
  envFileEntries(raw.env_file).forEach((entry, i) => {
    const entryPath = typeof raw.env_file === 'string' ? [...path, 'env_file'] : [...path, 'env_file', i];
    Object.assign(env, readEnvFile(ctx, entryPath, entry));
  });
  for (const { key, value, index } of listOrDict(raw.environment)) {
    const v = value ?? ctx.opts.env[key];
    if (v === undefined) {
      ctx.diag.warn([...path, 'environment', index], `"${key}" has no value here and is not set in the environment; left out`);
      continue;
    }
    env[key] = v;
  }
  return env;
}

function envFileEntries(raw: unknown): Array<{ path: string; required: unknown; format?: unknown }> {
  const list = typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw : [];
  return list.map((e) => (isRecord(e) ? { path: String(e.path), required: e.required ?? true, format: e.format } : { path: String(e), required: true }));
}

function readEnvFile(ctx: SpecContext, path: SpecPath, entry: { path: string; required: unknown; format?: unknown }): Record<string, string> {
  if (entry.format !== undefined) ctx.diag.warn([...path, 'format'], `${NOT_SUPPORTED}: the file is read as KEY=VALUE lines`, 'key');
  const required = parseBool(entry.required);
  if (required.error !== undefined) {
    ctx.diag.error([...path, 'required'], required.error);
    return {};
  }
  const abs = resolvePosix(ctx.opts.baseDir, entry.path);
  const text = ctx.opts.readFile(abs);
  if (text === undefined) {
    if (required.value) ctx.diag.error(path, `env file "${entry.path}" not found (looked for ${abs}): create it, or add \`required: false\``);
    return {};
  }
  // Problems inside the env file point into that file, named as the user would find it.
  const shownFile = entry.path.startsWith('/') ? abs : resolvePosix(dirnamePosix(ctx.diag.file), entry.path);
  const parsed = parseEnvFile(text);
  for (const p of parsed.problems) ctx.diag.errorAt({ line: p.line, col: p.col }, formatPath(path), p.message, shownFile);
  const vars = { ...parsed.vars };
  for (const key of parsed.bareKeys) {
    const v = ctx.opts.env[key];
    if (v !== undefined) vars[key] = v;
  }
  return vars;
}

/** `xPort` 0: app-network mode, where `ports` are published (appNetworking reads them). */
function portsOf(ctx: SpecContext, path: SpecPath, raw: unknown, xPort: number | undefined): string[] {
  if (!Array.isArray(raw)) return [];
  const ports = raw.map((p) => (isRecord(p) ? renderLongPort(p) : scalarToString(p)));
  if (ports.length > 0 && xPort === undefined) {
    const guess = containerPort(ports[0]!);
    const example = guess === undefined ? '' : ` (e.g. x-berth: {port: ${guess}})`;
    ctx.diag.warn(path, `ports are not published: with network_mode: host the service runs on the host network, where Berth allocates a port per instance; set x-berth.port${example}, or drop network_mode: host to run it on the app's network with its ports published`);
  }
  return ports;
}

/** Long port syntax back to the short form: `[host_ip:][published:]target[/protocol]`. */
function renderLongPort(p: Json): string {
  let s = p.target === undefined ? '' : String(p.target);
  if (p.published !== undefined && p.published !== null) s = `${String(p.published)}:${s}`;
  if (typeof p.host_ip === 'string' && p.host_ip !== '') s = `${p.host_ip}:${s}`;
  if (typeof p.protocol === 'string' && p.protocol !== '') s += `/${p.protocol}`;
  return s;
}

/** The container port of a short-syntax entry, when it is a single number (`8080:80/tcp` → 80). */
function containerPort(port: string): number | undefined {
  const target = port.split('/')[0]!.split(':').pop()!;
  return /^\d+$/.test(target) && Number(target) >= 1 && Number(target) <= 65535 ? Number(target) : undefined;
}

function replicasOf(ctx: SpecContext, path: SpecPath, raw: Json, deploy: Json): number {
  const fromDeploy = deploy.replicas === undefined ? undefined : take(ctx, [...path, 'deploy', 'replicas'], parseCount(deploy.replicas));
  const fromScale = raw.scale === undefined ? undefined : take(ctx, [...path, 'scale'], parseCount(raw.scale));
  if (fromDeploy !== undefined && fromScale !== undefined && fromDeploy !== fromScale) {
    ctx.diag.error([...path, 'scale'], `scale (${fromScale}) and deploy.replicas (${fromDeploy}) disagree: keep only one of them`);
  }
  return fromDeploy ?? fromScale ?? 1;
}

function limitsOf(ctx: SpecContext, path: SpecPath, deploy: Json): ServiceSpec['limits'] {
  const resources = isRecord(deploy.resources) ? deploy.resources : {};
  const limits = isRecord(resources.limits) ? resources.limits : {};
  const out: ServiceSpec['limits'] = {};
  if (limits.cpus !== undefined) {
    const n = take(ctx, [...path, 'cpus'], parseCpus(limits.cpus));
    if (n !== undefined) out.nanoCpus = n;
  }
  if (limits.memory !== undefined) {
    const m = take(ctx, [...path, 'memory'], positive(parseSize(limits.memory), 'a memory limit'));
    if (m !== undefined) out.memoryBytes = m;
  }
  if (limits.pids !== undefined) {
    const n = take(ctx, [...path, 'pids'], parseCount(limits.pids));
    if (n !== undefined) out.pids = n;
  }
  return out;
}

function positive(p: ReturnType<typeof parseSize>, what: string): ReturnType<typeof parseSize> {
  return p.error === undefined && p.value <= 0 ? { error: `${what} must be larger than 0, e.g. 512m` } : p;
}

function restartOf(ctx: SpecContext, path: SpecPath, raw: Json, deploy: Json): RestartPolicy {
  const fromTop = raw.restart === undefined ? undefined : restartFromTopLevel(ctx, [...path, 'restart'], raw.restart);
  if (!isRecord(deploy.restart_policy)) return fromTop ?? { ...DEFAULT_RESTART };
  if (raw.restart !== undefined) {
    ctx.diag.warn([...path, 'restart'], 'ignored: deploy.restart_policy is also set and takes precedence; keep only one of them', 'key');
  }
  const rp = deploy.restart_policy;
  const p = [...path, 'deploy', 'restart_policy'];
  const policy: RestartPolicy = { ...DEFAULT_RESTART };
  if (rp.condition !== undefined) {
    if (rp.condition === 'none' || rp.condition === 'on-failure' || rp.condition === 'any') policy.condition = rp.condition;
    else ctx.diag.error([...p, 'condition'], `${JSON.stringify(rp.condition)} is not a restart condition: use none, on-failure or any`);
  }
  if (rp.max_attempts !== undefined) {
    // As in Swarm, 0 means "no limit".
    const n = take(ctx, [...p, 'max_attempts'], parseCount(rp.max_attempts));
    if (n !== undefined && n > 0) policy.maxAttempts = n;
  }
  if (rp.delay !== undefined) {
    const d = take(ctx, [...p, 'delay'], parseDuration(rp.delay));
    if (d !== undefined) policy.delayMs = d;
  }
  return policy;
}

/** Top-level `restart:` (docker run's policies) mapped onto the deploy.restart_policy model. */
function restartFromTopLevel(ctx: SpecContext, path: SpecPath, raw: unknown): RestartPolicy | undefined {
  const s = scalarToString(raw).trim();
  const base = { delayMs: DEFAULT_RESTART.delayMs };
  if (s === 'no') return { ...base, condition: 'none' };
  if (s === 'always' || s === 'unless-stopped') return { ...base, condition: 'any' };
  if (s === 'on-failure') return { ...base, condition: 'on-failure' };
  const m = /^on-failure:(\d+)$/.exec(s);
  if (m) return Number(m[1]) > 0 ? { ...base, condition: 'on-failure', maxAttempts: Number(m[1]) } : { ...base, condition: 'on-failure' };
  ctx.diag.error(path, `${JSON.stringify(raw)} is not a restart policy: use "no", always, on-failure, on-failure:N or unless-stopped`);
  return undefined;
}

function labelsOf(ctx: SpecContext, path: SpecPath, raw: unknown): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const { key, value, index } of listOrDict(raw)) {
    // Berth finds and adopts its containers by `berth.*` labels; a user label must not fake one.
    if (key === 'berth' || key.startsWith('berth.')) {
      ctx.diag.error([...path, index], `label "${key}": labels starting with "berth." are reserved for Berth; choose another prefix`, typeof index === 'string' ? 'key' : 'value');
      continue;
    }
    labels[key] = value ?? '';
  }
  return labels;
}

function stopSignalOf(ctx: SpecContext, path: SpecPath, raw: unknown): string {
  if (raw === undefined || raw === null) return 'SIGTERM';
  const s = scalarToString(raw).trim().toUpperCase();
  if (/^\d+$/.test(s)) return s;
  if (/^(SIG)?[A-Z][A-Z0-9]*([+-]\d+)?$/.test(s)) return s.startsWith('SIG') ? s : `SIG${s}`;
  ctx.diag.error(path, `${JSON.stringify(raw)} is not a signal: write e.g. SIGTERM, SIGINT or SIGQUIT`);
  return 'SIGTERM';
}

/**
 * depends_on, list and long form: the names (Berth's) in order, and the conditions other than
 * `service_started`. `required: false` lets a dependency be absent (e.g. in an inactive profile).
 */
function dependsOnOf(ctx: SpecContext, self: string, path: SpecPath, raw: unknown): { names: string[]; conditions: Record<string, DependsOnCondition>; restartWith: string[] } {
  const entries: Array<{ name: string; at: SpecPath; where: 'key' | 'value'; long?: Json }> = Array.isArray(raw)
    ? raw.map((n, i) => ({ name: String(n), at: [...path, i], where: 'value' as const }))
    : isRecord(raw)
      ? Object.entries(raw).map(([n, v]) => ({ name: n, at: [...path, n], where: 'key' as const, ...(isRecord(v) ? { long: v } : {}) }))
      : [];
  const names: string[] = [];
  const conditions: Record<string, DependsOnCondition> = {};
  const restartWith: string[] = [];
  for (const e of entries) {
    let required = true;
    let restart = false;
    let condition: DependsOnCondition | 'service_started' = 'service_started';
    if (e.long) {
      if (e.long.required !== undefined) {
        const b = parseBool(e.long.required);
        if (b.error !== undefined) ctx.diag.error([...e.at, 'required'], b.error);
        else required = b.value;
      }
      const c = e.long.condition;
      if (c === 'service_healthy' || c === 'service_completed_successfully') condition = c;
      else if (c !== undefined && c !== 'service_started') {
        ctx.diag.error([...e.at, 'condition'], `${JSON.stringify(c)} is not a depends_on condition: use service_started, service_healthy or service_completed_successfully`);
      }
      if (e.long.restart !== undefined) {
        const b = parseBool(e.long.restart);
        if (b.error !== undefined) ctx.diag.error([...e.at, 'restart'], b.error);
        else restart = b.value;
      }
    }
    const profiles = ctx.inactiveServices.get(e.name);
    if (e.name === self) {
      ctx.diag.error(e.at, `service "${self}" cannot depend on itself`, e.where);
    } else if (profiles !== undefined) {
      if (required) {
        const which = profiles.length === 1 ? `profile ${profiles[0]}, which is` : `profiles ${profiles.join(', ')}, which are`;
        ctx.diag.error(e.at, `service "${e.name}" is only in ${which} not active: run with --profile ${profiles[0]}, or mark the dependency \`required: false\``, e.where);
      }
    } else if (!ctx.serviceNames.includes(e.name)) {
      const near = closestMatch(e.name, ctx.serviceNames.filter((n) => n !== self));
      const hint = near ? `did you mean "${near}"?` : `defined services: ${ctx.serviceNames.join(', ')}`;
      if (required) ctx.diag.error(e.at, `unknown service "${e.name}": ${hint}`, e.where);
      else ctx.diag.warn(e.at, `unknown service "${e.name}" (required: false, so left out): ${hint}`, e.where);
    } else if (!names.includes(derivedServiceName(e.name))) {
      names.push(derivedServiceName(e.name));
      if (condition !== 'service_started') conditions[derivedServiceName(e.name)] = condition;
      if (restart) restartWith.push(derivedServiceName(e.name));
    }
  }
  return { names, conditions, restartWith };
}
