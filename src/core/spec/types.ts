/**
 * The normalized app spec: what Berth understood from a Compose file plus `x-berth` extensions.
 * All durations are milliseconds, all sizes bytes. This is a plain-JSON structure: it is sent from
 * the CLI to the server and stored as desired state.
 */

export interface HttpHealth {
  type: 'http';
  /** Path requested on 127.0.0.1:PORT; 2xx/3xx is healthy. */
  path: string;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures before the instance is unhealthy. */
  retries: number;
  startPeriodMs: number;
}

export interface TcpHealth {
  type: 'tcp';
  /**
   * The port is published by the engine's proxy (app-network mode): the proxy accepts a connection
   * even when nothing listens in the container and then closes it, so a connection only counts when
   * it stays open a moment. Absent for host-mode services.
   */
  published?: boolean;
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/** Compose `healthcheck`: run by the Docker Engine inside the container. */
export interface CommandHealth {
  type: 'command';
  /** Docker form: ["CMD", ...] or ["CMD-SHELL", "..."]. */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/** No check: a running container counts as healthy. */
export interface NoHealth {
  type: 'none';
}

export type HealthSpec = HttpHealth | TcpHealth | CommandHealth | NoHealth;

export interface RouteSpec {
  /** Host name matched by the ingress; undefined matches any host. */
  host?: string;
  /** Path prefix, always starting with '/'. */
  path: string;
  /**
   * HTTPS options (`tls`, `redirect`, `hsts` in x-berth). Absent means the default, so specs stored
   * before HTTPS existed hash the same: a route with a host gets a certificate when the server has one
   * or can get one (ACME), and once it has one, HTTP is redirected to HTTPS; HSTS is opt-in.
   */
  tls?: false;
  /** `redirect: false`: serve plain HTTP as well as HTTPS (no 308 to HTTPS). */
  redirect?: false;
  /** `hsts`: send Strict-Transport-Security with this max-age (seconds) on HTTPS responses. */
  hstsSeconds?: number;
}

export interface VolumeMount {
  /** `anonymous`: a volume of the container's own (Compose `- /data`), gone with the container. */
  type: 'volume' | 'bind' | 'anonymous';
  /** Named volume (app-scoped by Berth), absolute host path for binds, "" for anonymous volumes. */
  source: string;
  target: string;
  readOnly: boolean;
}

/**
 * A Compose secret or config as a service mounts it (`services.X.secrets` / `configs`, short or long
 * syntax), with where its value comes from. The client sends `value` (read from `file`, an
 * `environment` variable or `content`); the server seals it in its encrypted store and keeps only
 * `digest` (an HMAC of the value) in the spec, so neither berth.db nor the release hash holds it.
 * `external` values are read from Berth's configuration store of the environment (`key`), pinned to
 * the release's config version like every configuration value.
 */
export interface FileMountSpec {
  /** The name under the top-level `secrets:` / `configs:`. */
  name: string;
  /** Absolute path of the file in the container (secrets: /run/secrets/NAME by default; configs: /NAME). */
  target: string;
  /** Numeric owner of the file in the container (default 0). */
  uid: number;
  gid: number;
  /** Permission bits (default 0o444). */
  mode: number;
  from: 'file' | 'environment' | 'content' | 'external';
  /** The value as the client read it; never stored (the server replaces it by `digest`). */
  value?: string;
  /** HMAC-SHA256 of the value under Berth's secret key, set by the server. */
  digest?: string;
  /** external: the configuration key holding the value (`berth config set APP --env ENV --secret KEY=...`). */
  key?: string;
}

export interface BuildSpec {
  /** Absolute path of the build context on the machine that parsed the file. */
  context: string;
  /** Dockerfile path relative to the context. */
  dockerfile: string;
  args: Record<string, string>;
  /** `build.target`: the stage of a multi-stage Dockerfile to build (default: the last). */
  target?: string;
  /** `build.dockerfile_inline`: the Dockerfile's text, instead of a file in the context. */
  dockerfileInline?: string;
  /**
   * `build.secrets`: Compose secrets the build may mount (`RUN --mount=type=secret,id=TARGET`), with
   * where the value comes from (`mount`, as for a service's secrets: the client sends the value, the
   * server seals it and keeps its digest; the build reads it through a BuildKit session, never a file).
   */
  secrets?: Array<{ source: string; target: string; mount?: FileMountSpec }>;
}

/** One Compose `ports` entry: `[host_ip:][published:]target[/protocol]`. */
export interface PortPublish {
  /** Port inside the container. */
  target: number;
  /** Fixed host port; absent: Berth lets the engine pick one on 127.0.0.1 (the routed port gets an allocated one). */
  published?: number;
  /** Host address of a fixed port (Compose's default: every address). */
  hostIp?: string;
  protocol: 'tcp' | 'udp';
}

/** A network of the app (per environment) a service joins, with the extra names it answers to there. */
export interface NetworkAttachment {
  /** Name under the Compose file's top-level `networks` (`default` when the service names none). */
  name: string;
  aliases: string[];
}

/**
 * How a service's containers are networked:
 * - host: the host's network; Berth allocates a port per instance and passes it as PORT.
 * - app: one Docker network per app, environment and Compose network; services find each other by
 *   name (and aliases) on their native ports; `port` is the container port, published per instance on
 *   a Berth-allocated port of 127.0.0.1 that the ingress, health checks and discovery use.
 */
export type NetworkMode = 'host' | 'app';

export interface RestartPolicy {
  condition: 'none' | 'on-failure' | 'any';
  /** Undefined: no limit. */
  maxAttempts?: number;
  /** Base delay for Berth's exponential backoff. */
  delayMs: number;
}

/**
 * How a new release replaces the running one (`x-berth.update`).
 * - rolling: start-first; at most `maxSurge` extra instances, at most `maxUnavailable` fewer serving.
 * - blue-green: the whole new set starts and turns healthy, then one upstream switch; the previous set
 *   stays running (idle) for `keepPreviousMs` so a rollback is one switch.
 * - reload: instances are kept; Berth sends `signal` and waits for health again (container-level
 *   changes such as image or environment fall back to rolling).
 * - recreate: stop all, then start the new set — the one strategy with a gap (single writers).
 */
export interface UpdateSpec {
  strategy: 'rolling' | 'blue-green' | 'reload' | 'recreate';
  maxSurge: number;
  maxUnavailable: number;
  keepPreviousMs: number;
  signal: string;
  /** What to do when a release fails: roll back to the previous release, restart (reload only), or leave it. */
  onFailure: 'rollback' | 'restart' | 'none';
  /** A release that is not healthy within this long has failed. */
  deadlineMs: number;
}

export const DEFAULT_UPDATE: UpdateSpec = {
  strategy: 'rolling', maxSurge: 1, maxUnavailable: 0, keepPreviousMs: 300_000, signal: 'SIGHUP', onFailure: 'rollback', deadlineMs: 180_000,
};

export type DependsOnCondition = 'service_healthy' | 'service_completed_successfully';

export interface ServiceSpec {
  /**
   * Berth's name of the service: its Compose name in lower case, `_` and `.` → `-` (a DNS label, also
   * used for containers, upstreams, volumes, labels and directories).
   */
  name: string;
  /** The name as the Compose file wrote it, when it differs from `name` (`serviceA`, `with_depends_on`). */
  composeName?: string;
  /** Image reference to run. When `build` is set and image is absent, Berth names it `berth-APP/SERVICE:latest`. */
  image: string;
  build?: BuildSpec;
  /** Normalized argv; undefined keeps the image default. */
  command?: string[];
  entrypoint?: string[];
  environment: Record<string, string>;
  /** Compose `ports` as written (short syntax), kept for information; `publish` holds what they mean. */
  ports: string[];
  /** Network mode; absent in specs stored before modes existed, and for host mode (the default then). */
  networkMode?: NetworkMode;
  /** App-network mode: the app's networks the service joins (absent: the app's `default` network only). */
  networks?: NetworkAttachment[];
  /** App-network mode: the `ports` entries to publish on the host. */
  publish?: PortPublish[];
  /** Compose `expose`: ports reachable by the app's other services (documentation: the app's network reaches every port). */
  expose?: string[];
  health: HealthSpec;
  replicas: number;
  /** `pids` is set by the server's guardrail policy when the file sets none (core/guard.ts); memory likewise. */
  limits: { nanoCpus?: number; memoryBytes?: number; pids?: number };
  /**
   * Many hosts: `x-berth.pool` of the service, else the file's top-level `x-berth.pool`; absent: the
   * default pool. Nothing of the service ever runs outside it.
   */
  pool?: string;
  /** Compose `deploy.placement`: Swarm constraints (`node.labels.zone==a`), spread descriptors, max replicas per host. */
  placement?: { constraints: string[]; spread: string[]; maxReplicasPerNode?: number };
  /** Compose `deploy.resources.reservations` (absent: the limits are the reservation). */
  reservations?: { nanoCpus?: number; memoryBytes?: number };
  restart: RestartPolicy;
  labels: Record<string, string>;
  stopSignal: string;
  stopGracePeriodMs: number;
  volumes: VolumeMount[];
  /** depends_on (Berth's names): these start before this service does. */
  dependsOn: string[];
  /** depends_on conditions other than service_started: this service's first instances wait for them. */
  dependsOnConditions?: Record<string, DependsOnCondition>;
  /**
   * depends_on entries with `restart: true` (Berth's names): when a deploy replaces one of these, this
   * service is restarted after it (a new release of the same spec), as Compose restarts it.
   */
  restartWith?: string[];
  /**
   * A one-shot service (another depends on it with service_completed_successfully): it runs to its
   * end; exit 0 is "completed", not a crash, and it is not restarted (restart defaults to on-failure).
   */
  oneShot?: boolean;
  shmSizeBytes?: number;
  /**
   * Host mode: x-berth.port, the port the process listens on by default; Berth allocates one and passes
   * it as PORT. App-network mode: the container port the ingress and health checks reach (x-berth.port,
   * else the first `ports` entry), published per instance on an allocated port of 127.0.0.1.
   */
  port?: number;
  routes: RouteSpec[];
  /** x-berth.update; absent in specs stored before strategies existed (read as DEFAULT_UPDATE). */
  update?: UpdateSpec;
  /** Version of the app's configuration (config center) this release runs with; set by the server, never by a client. */
  configVersion?: number;
  /**
   * `berth restart`: how many times this spec was restarted. A restart is a new release with the next
   * generation (its containers carry it as a label, so none is "the same container"); not part of the
   * release hash, so a later deploy of an unchanged file is still no change. Set by the server only.
   */
  restartGeneration?: number;
  /** x-berth.test: the command the pipeline runs in a container of a freshly built image (argv). Build-time only. */
  test?: string[];
  /** `user`: the user (name or uid, optionally `:group`) the process runs as; absent: the image's USER. */
  user?: string;
  /** `read_only`: the container's root filesystem is read-only (volumes and tmpfs stay writable). */
  readOnly?: boolean;
  /** `cap_add`: capabilities given back on top of Berth's defaults (only Docker's default set; normalized, no CAP_ prefix). */
  capAdd?: string[];
  /** `cap_drop`: capabilities dropped on top of Berth's defaults, or ["ALL"]. */
  capDrop?: string[];
  /** `security_opt: [no-new-privileges:false]` turns it off; absent: on (Berth's default). */
  noNewPrivileges?: boolean;
  /** `privileged: true`: every capability and device of the host. Refused by the default guardrail policy (core/guard.ts). */
  privileged?: boolean;
  /** `pid`, `ipc`, `uts`, `userns_mode`, `cgroup: host`: namespaces shared with the host. */
  hostNamespaces?: Array<'pid' | 'ipc' | 'uts' | 'userns' | 'cgroup'>;
  /** `devices`: host devices given to the container. */
  devices?: Array<{ source: string; target: string; permissions: string }>;
  /** `security_opt: [seccomp=unconfined, apparmor=unconfined]`. */
  unconfined?: Array<'seccomp' | 'apparmor'>;
  /**
   * The guardrail exemptions this release was accepted with (set by the server only, never by a
   * client; not part of the release hash): status warns once one has expired.
   */
  exemptions?: Array<{ id: string; key: string; expiresAt: number }>;
  /** `init`: run an init process (Docker's tini) as PID 1, reaping zombies and forwarding signals. */
  init?: boolean;
  /** `working_dir`: the process's working directory (absolute). */
  workingDir?: string;
  /** `ulimits`: resource limits of the process. */
  ulimits?: Array<{ name: string; soft: number; hard: number }>;
  /** `sysctls`: network sysctls (net.* only) of the container's network namespace (not applied on the host network). */
  sysctls?: Record<string, string>;
  /** `extra_hosts`: `host:ip` entries added to /etc/hosts. */
  extraHosts?: string[];
  /** `pull_policy` as written (missing for if_not_present): when the image is pulled. */
  pullPolicy?: string;
  /** `tmpfs`: in-memory mounts, target → mount options ("" for Docker's defaults). */
  tmpfs?: Record<string, string>;
  /** `secrets:` files mounted read-only into the container (from a tmpfs, never from disk). */
  secrets?: FileMountSpec[];
  /** `configs:` files, mounted like secrets. */
  configs?: FileMountSpec[];
  /**
   * Id of the stored source (Compose text and variables) this service was deployed from, so that
   * `promote` can interpolate it again for the target environment. Set by the server; not part of the
   * release hash.
   */
  source?: string;
}

export interface AppSpec {
  /** App name: [a-z0-9][a-z0-9-]*, from --app, the Compose `name:` or the file's directory. */
  name: string;
  services: Record<string, ServiceSpec>;
  /** Top-level `x-berth.pipeline`: which branch deploys to which environment (git push / webhooks), and the checks' policy. */
  pipeline?: PipelineSpec;
}

export interface PipelineSpec {
  branches: Record<string, string>;
  checks: CheckPolicy;
}

/** `x-berth.pipeline.checks`: how strict the image standards are for this app. */
export interface CheckPolicy {
  /** Levels an image chain may have (base → runtime/middleware → app). */
  maxChainDepth: number;
  /** Checks whose warning fails the build (e.g. non-root, healthcheck). */
  strict: string[];
  /** Checks whose failure only warns (a documented, visible exception). */
  warnOnly: string[];
}

export const DEFAULT_CHECK_POLICY: CheckPolicy = { maxChainDepth: 3, strict: [], warnOnly: [] };

/** A key Berth read but does not act on (yet), or a questionable value. Never silently dropped. */
export interface SpecWarning {
  file: string;
  line: number;
  col: number;
  path: string;
  message: string;
}

export interface ParseOptions {
  /** File name used in messages (as the user gave it). */
  file: string;
  /** Variables for interpolation (the CLI passes its environment plus a `.env` next to the file). */
  env: Record<string, string>;
  /** Absolute directory of the Compose file; relative build contexts, env_files and binds resolve against it. */
  baseDir: string;
  /** App name override (--app). */
  appName?: string;
  /**
   * The environment the spec is deployed to. When set, interpolation also has `BERTH_ENV` (this) and
   * `BERTH_APP` (the app's name), over the caller's variables of the same names.
   */
  environment?: string;
  /** Files merged over the main one, in order (`-f a.yaml -f b.yaml`, or compose.override.yaml): shown name and text; relative paths resolve against baseDir. */
  moreFiles?: Array<{ file: string; text: string }>;
  /** Active profiles (`--profile`, COMPOSE_PROFILES); `*` activates all. */
  profiles?: string[];
  /** Reads an env_file, an included or extended Compose file (absolute path); undefined if missing. Injected: core does no I/O. */
  readFile: (absPath: string) => string | undefined;
  /**
   * Reads a secret's or config's `file` (absolute path). Separate from readFile so that what it reads
   * is never kept with a deployment's source; absent: readFile.
   */
  readSecretFile?: (absPath: string) => string | undefined;
}

export interface ParseResult {
  spec: AppSpec;
  warnings: SpecWarning[];
  /**
   * Where the host paths of the spec were written, by their path in the spec (`services.web.volumes[0]`,
   * `services.web.build.context`): the server decides which host paths may be used, and its refusals
   * name spec paths that the CLI turns back into file:line:col with this.
   */
  hostPathSources: Record<string, { file?: string; line: number; col: number; path: string }>;
  /** Services left out because none of their `profiles` is active: Compose name → its profiles. */
  inactive?: Record<string, string[]>;
  /** Names of the caller's variables the file looked up (set or not; BERTH_ENV and BERTH_APP excluded when Berth set them). */
  variablesUsed: string[];
}
