import { z } from 'zod';
import { InvalidInput } from '../core/errors.ts';
import { parseConstraint } from '../core/placement.ts';
import { COMPOSE_NAME_PATTERN, MAX_NAME } from '../core/spec/names.ts';
import { ULIMITS } from '../core/spec/service-runtime.ts';
import { LINUX_CAPS, TMPFS_OPTION, USER_PATTERN } from '../core/spec/security.ts';
import { normaliseHost, normaliseRoutePath, type RouteCheck } from '../core/spec/routes.ts';
import { parseDuration, type DurationOptions } from '../core/spec/units.ts';

/** A duration field or parameter (`30s`, `1m30s`, `500ms`, `1h`) → milliseconds, by core's one parser. */
export function durationMs(o: DurationOptions = {}) {
  return z.string().transform((v, ctx) => {
    const r = parseDuration(v, o);
    if (r.error === undefined) return r.value;
    ctx.addIssue({ code: 'custom', message: r.error });
    return z.NEVER;
  });
}

/** Structural check of an AppSpec sent by a client (the CLI parses Compose files; the server trusts no client). */
const name = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes, starting with a letter or digit').max(63);
const ms = z.number().int().nonnegative();
const probe = { intervalMs: ms, timeoutMs: ms, retries: z.number().int().nonnegative(), startPeriodMs: ms };
const health = z.discriminatedUnion('type', [
  z.object({ type: z.literal('http'), path: z.string().startsWith('/'), ...probe }),
  z.object({ type: z.literal('tcp'), published: z.boolean().optional(), ...probe }),
  z.object({ type: z.literal('command'), test: z.array(z.string()).min(1), ...probe }),
  z.object({ type: z.literal('none') }),
]);
const strMap = z.record(z.string(), z.string());
const portNumber = z.number().int().min(1).max(65535);
const networkName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'letters, digits, "_", "." and "-"').max(63);
const alias = z.string().regex(/^[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$/, 'a DNS name').max(253);
const absPath = z.string().regex(/^\/[^\0]*$/, 'an absolute path');
const capDrop = z.string().refine((c) => c === 'ALL' || LINUX_CAPS.includes(c), 'a Linux capability without CAP_ (e.g. NET_RAW), or ALL');
// Which capabilities a service may have is the guardrail policy's to say (core/guard.ts), checked at deploy.
const capAdd = z.string().refine((c) => LINUX_CAPS.includes(c), 'a Linux capability without CAP_ (e.g. NET_BIND_SERVICE)');
const tmpfsOptions = z.string().refine((o) => o.split(',').every((x) => x === '' || TMPFS_OPTION.test(x)), 'tmpfs options such as size=64m,mode=1777,noexec');
/** A route host or path in its canonical form, by the grammar the parser and the renderer use. */
const canonical = (check: (raw: string) => RouteCheck) => z.string().transform((raw, ctx) => {
  const r = check(raw);
  if (r.ok) return r.value;
  ctx.addIssue({ code: 'custom', message: r.message });
  return z.NEVER;
});

/** A Compose secret or config mount: a value (sealed by the server, never stored as sent), a digest of one kept, or a configuration key. */
const fileMount = z.object({
  name: z.string().regex(/^[a-zA-Z0-9._-]+$/, 'a Compose secret or config name').max(256),
  target: absPath,
  uid: z.number().int().min(0).max(0x7fffffff),
  gid: z.number().int().min(0).max(0x7fffffff),
  mode: z.number().int().min(0).max(0o7777),
  from: z.enum(['file', 'environment', 'content', 'external']),
  value: z.string().max(512 * 1024).optional(),
  digest: z.string().regex(/^[0-9a-f]{64}$/, 'a digest the server gave').optional(),
  key: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'a configuration key (A-Z, 0-9, _)').max(128).optional(),
}).refine((m) => (m.from === 'external' ? m.key !== undefined && m.value === undefined : m.key === undefined && (m.value !== undefined || m.digest !== undefined)),
  'external mounts name a `key`; the others carry a `value` (or the `digest` of one kept)');

export const serviceSpecSchema = z.object({
  name,
  composeName: z.string().regex(COMPOSE_NAME_PATTERN, 'a Compose service name: letters, digits, ".", "_" and "-"').max(MAX_NAME).optional(),
  image: z.string().min(1),
  build: z.object({
    context: absPath, dockerfile: z.string().min(1), args: strMap,
    target: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a build stage name').max(128).optional(),
    dockerfileInline: z.string().min(1).max(1_000_000).optional(),
    secrets: z.array(z.object({ source: z.string().regex(/^[a-zA-Z0-9._-]+$/), target: z.string().regex(/^[a-zA-Z0-9._/-]+$/).refine((t) => !t.includes('..'), 'no ".."'),
      mount: fileMount.optional() })).optional(),
  }).optional(),
  command: z.array(z.string()).optional(),
  entrypoint: z.array(z.string()).optional(),
  environment: strMap,
  ports: z.array(z.string()),
  networkMode: z.enum(['host', 'app']).optional(),
  networks: z.array(z.object({ name: networkName, aliases: z.array(alias) })).min(1).optional(),
  publish: z.array(z.object({
    target: portNumber, published: portNumber.optional(), hostIp: z.string().regex(/^[0-9a-fA-F.:]+$/, 'an IP address').optional(), protocol: z.enum(['tcp', 'udp']),
  })).optional(),
  expose: z.array(z.string().regex(/^\d+(-\d+)?(\/(tcp|udp))?$/, 'a port, e.g. 5432 or 5432/tcp')).optional(),
  health,
  replicas: z.number().int().min(0).max(1000),
  limits: z.object({ nanoCpus: z.number().int().positive().optional(), memoryBytes: z.number().int().positive().optional(), pids: z.number().int().min(0).max(4_194_304).optional() }),
  // Many hosts: the pool, Compose's placement and reservations (core/spec/service-placement.ts).
  pool: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'a pool name: letters, digits, ".", "_" and "-"').optional(),
  placement: z.object({
    constraints: z.array(z.string().max(300).refine((c) => isConstraint(c), 'a placement constraint: node.labels.NAME==VALUE (or !=), node.hostname==NAME, node.role==manager|worker')).max(50),
    spread: z.array(z.string().regex(/^node\.labels\.[A-Za-z0-9_.-]+$/, 'a spread descriptor: node.labels.NAME')).max(10),
    maxReplicasPerNode: z.number().int().min(1).max(1000).optional(),
  }).optional(),
  reservations: z.object({ nanoCpus: z.number().int().nonnegative().optional(), memoryBytes: z.number().int().nonnegative().optional() }).optional(),
  restart: z.object({ condition: z.enum(['none', 'on-failure', 'any']), maxAttempts: z.number().int().nonnegative().optional(), delayMs: ms }),
  labels: strMap,
  stopSignal: z.string().regex(/^(SIG)?[A-Z0-9+-]+$|^\d+$/),
  stopGracePeriodMs: ms,
  volumes: z.array(z.object({ type: z.enum(['volume', 'bind', 'anonymous']), source: z.string(), target: absPath, readOnly: z.boolean() })
    .refine((v) => (v.type === 'anonymous') === (v.source === ''), 'source: a named volume or host path; empty only for an anonymous volume')),
  dependsOn: z.array(z.string()),
  dependsOnConditions: z.record(z.string(), z.enum(['service_healthy', 'service_completed_successfully'])).optional(),
  restartWith: z.array(z.string()).optional(),
  oneShot: z.boolean().optional(),
  shmSizeBytes: z.number().int().positive().optional(),
  port: z.number().int().min(1).max(65535).optional(),
  update: z.object({
    strategy: z.enum(['rolling', 'blue-green', 'reload', 'recreate']), maxSurge: z.number().int().min(0), maxUnavailable: z.number().int().min(0),
    keepPreviousMs: ms, signal: z.string().regex(/^SIG[A-Z0-9]+$/), onFailure: z.enum(['rollback', 'restart', 'none']), deadlineMs: ms,
  }).refine((u) => u.maxSurge + u.maxUnavailable > 0, 'max_surge and max_unavailable cannot both be 0').optional(),
  user: z.string().regex(USER_PATTERN, 'a user name or uid, optionally :group').optional(),
  readOnly: z.boolean().optional(),
  capAdd: z.array(capAdd).optional(),
  capDrop: z.array(capDrop).optional(),
  noNewPrivileges: z.boolean().optional(),
  // What a service takes from the host: refused by the guardrail policy at deploy unless exempted.
  privileged: z.boolean().optional(),
  hostNamespaces: z.array(z.enum(['pid', 'ipc', 'uts', 'userns', 'cgroup'])).max(5).optional(),
  devices: z.array(z.object({ source: absPath, target: absPath, permissions: z.string().regex(/^[rwm]{1,3}$/, 'r, w and/or m') })).max(100).optional(),
  unconfined: z.array(z.enum(['seccomp', 'apparmor'])).max(2).optional(),
  tmpfs: z.record(absPath, tmpfsOptions).optional(),
  secrets: z.array(fileMount).max(100).optional(),
  configs: z.array(fileMount).max(100).optional(),
  init: z.boolean().optional(),
  workingDir: absPath.optional(),
  ulimits: z.array(z.object({ name: z.enum(ULIMITS as [string, ...string[]]), soft: z.number().int().min(-1), hard: z.number().int().min(-1) })).optional(),
  sysctls: z.record(z.string().regex(/^net\.[a-zA-Z0-9_.-]+$/, 'a net.* sysctl (only network sysctls are set per container)'), z.string().max(4096)).optional(),
  extraHosts: z.array(z.string().regex(/^[A-Za-z0-9.-]+:[0-9a-fA-F:.]+$|^[A-Za-z0-9.-]+:host-gateway$/, 'host:ip')).optional(),
  pullPolicy: z.string().regex(/^(always|never|missing|build|refresh|daily|weekly|every_(\d+[wdhms])+)$/).optional(),
  routes: z.array(z.object({
    host: canonical(normaliseHost).optional(), path: canonical(normaliseRoutePath),
    tls: z.literal(false).optional(), redirect: z.literal(false).optional(), hstsSeconds: z.number().int().min(1).max(2 ** 31).optional(),
  }).refine((r) => r.host !== undefined || (r.tls === undefined && r.redirect === undefined && r.hstsSeconds === undefined), 'tls, redirect and hsts need a host')),
  /** A stored source's id (promote re-deploys services with theirs); a deploy that sends `source` replaces it. */
  source: z.string().regex(/^[0-9a-f]{32}$/, 'a source id').optional(),
  /** x-berth.test: run by the build of a service with a build section, in a container of the new image. */
  test: z.array(z.string()).min(1).optional(),
});

/** What the CLI or the pipeline parsed (core/spec/source.ts SpecSource): kept so that promote can interpolate it again. */
export const specSourceSchema = z.object({
  file: z.string().min(1).max(4096),
  text: z.string().max(1_000_000),
  baseDir: z.string().regex(/^\//, 'an absolute path').max(4096),
  files: z.record(z.string().regex(/^\//, 'an absolute path'), z.string().max(1_000_000)),
  variables: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, 'a variable name'), z.string().max(1_000_000)),
  environmentConfig: z.boolean().optional(),
  moreFiles: z.array(z.object({ file: z.string().min(1).max(4096), text: z.string().max(1_000_000) })).max(32).optional(),
  profiles: z.array(z.string().regex(/^[a-zA-Z0-9*][a-zA-Z0-9._-]*$/, 'a profile name')).max(64).optional(),
});

export const appSpecSchema = z.object({
  name,
  services: z.record(z.string(), serviceSpecSchema).refine((s) => Object.keys(s).length > 0, 'an app needs at least one service'),
  /** x-berth.pipeline: the image checks' policy applies to the builds of `berth deploy` too. */
  pipeline: z.object({
    branches: z.record(z.string(), name),
    checks: z.object({ maxChainDepth: z.number().int().min(1).max(100), strict: z.array(z.string()), warnOnly: z.array(z.string()) }),
  }).optional(),
});

export const deployBodySchema = z.object({
  env: name.default('prod'),
  spec: appSpecSchema,
  source: specSourceSchema.optional(),
  warnings: z.array(z.object({ file: z.string(), line: z.number(), col: z.number(), path: z.string(), message: z.string() })).default([]),
});

const replicas = z.number().int().min(0).max(1000);
/** One service (`service` + `replicas`) or several at once (`services: {web: 3, worker: 1}`, all or nothing). */
export const scaleBodySchema = z.object({
  env: name.default('prod'),
  service: name.optional(),
  replicas: replicas.optional(),
  services: z.record(name, replicas).optional(),
  /** Scale even when the memory limits of all instances would exceed the host's memory. */
  force: z.boolean().default(false),
}).refine((b) => (b.service !== undefined && b.replicas !== undefined && b.services === undefined) ||
  (b.service === undefined && b.replicas === undefined && b.services !== undefined && Object.keys(b.services).length > 0),
'give either service and replicas, or services: {NAME: REPLICAS, ...}');

export const execBodySchema = z.object({
  env: name.default('prod'),
  service: name,
  /** An instance id (default: a healthy instance of the current release). */
  instance: z.string().regex(/^[A-Za-z0-9_-]+$/).max(64).optional(),
  cmd: z.array(z.string().max(64 * 1024)).min(1, 'give the command to run, e.g. ["sh", "-c", "ls /"]').max(1000),
});

export const restartBodySchema = z.object({
  env: name.default('prod'),
  /** Only this service (default: every service of the app in env). */
  service: name.optional(),
});

/** `POST /v1/apps/APP/failover`: move a pinned (stateful) service to another host, its volumes empty there. */
export const failoverBodySchema = z.strictObject({
  env: name.default('prod'),
  service: name,
  /** The host it runs on from now on (`berth hosts` names them). */
  to: z.string().min(1).max(253).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a host name as `berth hosts` lists it'),
  /** Move it even though its host is up (its volumes' data stays there, unused). */
  force: z.boolean().default(false),
});

/** `POST /v1/apps/APP/instances/ID/restart`: the environment the instance runs in. */
export const instanceRestartBodySchema = z.object({
  env: name.default('prod'),
});

export const rollbackBodySchema = z.object({
  env: name.default('prod'),
  service: name.optional(),
  /** A release seq or id; default: the previous healthy release. */
  to: z.union([z.string(), z.number()]).transform(String).optional(),
});

export const reloadBodySchema = z.object({
  env: name.default('prod'),
  service: name,
});

/** A log cursor is the `next` of a page: a nanosecond timestamp, at most 2^63-1. */
const LOG_CURSOR_MAX = 9223372036854775807n;
const logCursor = z.string().refine((v) => /^\d{1,19}$/.test(v) && BigInt(v) <= LOG_CURSOR_MAX,
  { message: 'not a log cursor: pass the "next" value of a previous page (or leave before out for the newest lines)' });

/** `GET /v1/apps/APP/logs`: the filters, a page (`limit`, `before`) or a live tail (`follow`). */
export const logsQuery = z.object({
  env: z.string().default('prod'), service: z.string().optional(), instance: z.string().optional(),
  grep: z.string().max(500).optional(), level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).optional(),
  stream: z.enum(['stdout', 'stderr']).optional(), since: z.string().optional(), until: z.string().optional(),
  before: logCursor.optional(),
  follow: z.enum(['true', 'false', '1', '0']).optional(), limit: z.coerce.number().int().min(1).max(10_000).default(200),
});

/** `GET /v1/events`: one app's (env, service) or every app's, after an id or since a time. */
export const eventsQuery = z.object({
  app: z.string().optional(), env: z.string().optional(), service: z.string().optional(),
  after: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(1000).default(100),
  since: z.string().optional(), until: z.string().optional(),
});

/** `GET /v1/events/stream`: the same filters, following from `after`. */
export const eventsStreamQuery = z.object({ app: z.string().optional(), env: z.string().optional(), service: z.string().optional(),
  after: z.coerce.number().int().min(0).optional() });

/** A stream that starts with the events after `after` (an event id; default: from now). */
export const followQuery = z.object({ after: z.coerce.number().int().min(0).optional() });
export const appStreamQuery = z.object({ env: z.string().optional(), after: z.coerce.number().int().min(0).optional() });

/**
 * An in-process caller's spec (promotion, the push pipeline) read by the same schema as an HTTP body:
 * normalised hosts and paths, unknown keys dropped. A mistake is InvalidInput naming the field.
 */
export function parseAppSpec(spec: unknown): z.infer<typeof appSpecSchema> {
  const r = appSpecSchema.safeParse(spec);
  if (r.success) return r.data;
  throw new InvalidInput(r.error.issues.map((i) => `spec${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`).join('; '), { details: { issues: r.error.issues } });
}

function isConstraint(c: string): boolean {
  try {
    parseConstraint(c);
    return true;
  } catch {
    return false;
  }
}
