/**
 * Interfaces between the domain and its adapters. Implementations are chosen only in server/.
 */
import type { RouteOwner } from './spec/routes.ts';
import type { AppSpec, FileMountSpec } from './spec/types.ts';
import type { CertView, ConfigEntryView, ConfigKind, ConfigVersionView, ConfigWriteView } from './views.ts';

/** Labels Berth puts on every container it manages (and on the images and test containers of its builds). */
export const LABEL = {
  managed: 'io.berth.managed',
  /** Which Berth installation (data dir) owns the container: servers never touch another's containers. */
  cluster: 'io.berth.cluster',
  app: 'io.berth.app',
  env: 'io.berth.env',
  service: 'io.berth.service',
  release: 'io.berth.release',
  instance: 'io.berth.instance',
  port: 'io.berth.port',
  /** App networks: the Compose network name (per app and environment) a Docker network stands for. */
  network: 'io.berth.network',
  /** `berth restart`: the restart generation of the release (a restarted release runs new containers). */
  restart: 'io.berth.restart',
  /** Images built from git: the commit, its time (ISO 8601), and how deep the image's chain of Berth-built bases is. */
  commit: 'io.berth.commit',
  commitTime: 'io.berth.commit-time',
  depth: 'io.berth.depth',
  /** A build's test container: the build id and the service under test. */
  build: 'io.berth.build',
  test: 'io.berth.test',
} as const;

export interface Mount {
  type: 'volume' | 'bind';
  source: string;
  target: string;
  readOnly: boolean;
}

/**
 * An app-network container: the engine networks it joins (created with EngineNetworks.ensureNetwork)
 * with the names it answers to on each, and the ports published on the host.
 */
export interface ContainerNetworking {
  networks: { name: string; aliases: string[] }[];
  /** `hostPort` 0: the engine picks a free port on `hostIp`. */
  publish: { target: number; protocol: 'tcp' | 'udp'; hostIp: string; hostPort: number }[];
}

/** Everything needed to create one container. */
export interface ContainerSpec {
  /** App-network mode; absent: the host's network. */
  network?: ContainerNetworking;
  /** DNS servers and search domains for an app-network container (behind the engine's own DNS, which answers its networks' names first). */
  dns?: { servers: string[]; search: string[] };
  name: string;
  image: string;
  labels: Record<string, string>;
  env: Record<string, string>;
  cmd?: string[];
  entrypoint?: string[];
  nanoCpus?: number;
  memoryBytes?: number;
  shmSizeBytes?: number;
  stopSignal?: string;
  /** Seconds the engine waits after stopSignal before SIGKILL. */
  stopTimeoutS?: number;
  mounts: Mount[];
  /**
   * Supplementary groups of the container's process (numeric gids): the group that may read the
   * configuration files mounted at /run/berth/config, whatever user the process runs as.
   */
  groupAdd?: string[];
  /** Docker-run health check (Compose healthcheck), durations in ms. */
  healthcheck?: { test: string[]; intervalMs: number; timeoutMs: number; retries: number; startPeriodMs: number };
  /** User (name or uid[:group]); absent: the image's USER. */
  user?: string;
  readOnlyRootfs?: boolean;
  /** tmpfs mounts: target → mount options. */
  tmpfs?: Record<string, string>;
  /**
   * Capabilities on top of / taken from Docker's defaults; absent: Berth's defaults
   * (core/spec/security.ts: Docker's minus NET_RAW, MKNOD, AUDIT_WRITE, SETFCAP, SYS_CHROOT).
   */
  capAdd?: string[];
  capDrop?: string[];
  /** Absent or true: the process cannot gain privileges (setuid binaries, file capabilities). */
  noNewPrivileges?: boolean;
  /** An init process as PID 1 (Docker's tini). */
  init?: boolean;
  workingDir?: string;
  ulimits?: Array<{ name: string; soft: number; hard: number }>;
  /** net.* sysctls; applied only when the container has a network namespace of its own (not `host`). */
  sysctls?: Record<string, string>;
  /** `host:ip` entries for /etc/hosts. */
  extraHosts?: string[];
  /** Most processes (threads included) the container may have; absent: none. */
  pidsLimit?: number;
  /** Only with a guardrail exemption (core/guard.ts): privileged, the host's namespaces, devices, no seccomp/AppArmor profile. */
  privileged?: boolean;
  hostNamespaces?: Array<'pid' | 'ipc' | 'uts' | 'userns' | 'cgroup'>;
  devices?: Array<{ source: string; target: string; permissions: string }>;
  unconfined?: Array<'seccomp' | 'apparmor'>;
  /**
   * Many hosts: where the container may run and what it reserves (engines of one host ignore it).
   * Nothing of it ever runs outside `placement.pool`.
   */
  placement?: Placement;
}

/** CPU and memory, as hosts offer them and instances reserve them. */
export interface Resources {
  nanoCpus: number;
  memoryBytes: number;
}

/** Labels Berth reads on hosts (Swarm node labels). */
export const HOST_LABEL = {
  /** The host's pool; a host without it is in DEFAULT_POOL. */
  pool: 'io.berth.pool',
  /** Replicas spread over zones where hosts carry one. */
  zone: 'zone',
  /**
   * Where the control plane reaches the host's Docker engine (TCP + mutual TLS): `HOST[:PORT]`.
   * Absent: the node's Swarm address, port 2376 (engine/docker/host-engines.ts engineEndpoint).
   */
  engine: 'io.berth.engine',
} as const;

export const DEFAULT_POOL = 'default';

/**
 * Where an instance may run: its pool, Compose's `deploy.placement` (constraints in Swarm's syntax,
 * e.g. `node.labels.zone==a`, `node.hostname!=h1`; spread preferences; max_replicas_per_node) and its
 * reservation (Compose's reservations, its limits when it has none).
 */
export interface Placement {
  pool: string;
  constraints: string[];
  /** Spread over the values of these descriptors, e.g. `node.labels.zone`. */
  spread: string[];
  maxReplicasPerNode?: number;
  reservation: Resources;
}

/** ready: takes instances; draining: its instances move away, nothing new lands; down: unreachable. */
export type HostState = 'ready' | 'down' | 'draining';

/** One host of the engine (a Swarm node; one-host mode: the engine's own host). */
export interface HostInfo {
  /** The engine's id for it (Swarm node id; one-host mode: the host name). */
  id: string;
  /** Host name: ContainerInfo.host of the instances there. */
  name: string;
  /** The address Berth routes to for instances there (health probes, ingress upstreams, DNS). */
  address: string;
  role: 'manager' | 'worker';
  /** labels[HOST_LABEL.pool] or DEFAULT_POOL. */
  pool: string;
  labels: Record<string, string>;
  state: HostState;
  /** The engine's words when it is not ready (e.g. `heartbeat failure`). */
  message?: string;
  capacity: Resources;
  /** Sum of the reservations of the Berth containers running there. */
  reserved: Resources;
  /** Berth containers running there: on one host this installation's only (its cluster label), on a Swarm node every Berth task (they all take its room). */
  instances: number;
}

/** How the engine runs: one plain engine, or a manager of a Swarm (many hosts). */
export type ClusterMode = 'single' | 'swarm';

/**
 * Engine role: the hosts instances run on. One-host mode has exactly one, ready, in DEFAULT_POOL,
 * and refuses changes (Conflict, saying how to start cluster mode). Host ids or names are accepted.
 */
export interface EngineHosts {
  clusterMode(): Promise<ClusterMode>;
  hosts(): Promise<HostInfo[]>;
  /** Sets labels (a null value removes one); NotFound for an unknown host. */
  labelHost(host: string, labels: Record<string, string | null>): Promise<HostInfo>;
  /**
   * Draining: nothing new lands on the host; its instances keep running until Berth has moved them
   * (started elsewhere, unrouted, removed), so a drain drops no request. False: ready again.
   */
  drainHost(host: string, drain: boolean): Promise<HostInfo>;
  /** Forgets a host; Conflict while it is ready or still runs instances (drain it first) unless force. */
  removeHost(host: string, opts: { force: boolean }): Promise<void>;
  /**
   * One-host mode → cluster mode: the engine's host becomes the only manager of a new Swarm, listening
   * on `advertiseAddr` (the address other hosts reach it on). Conflict when it is in a Swarm already.
   */
  initCluster(opts: { advertiseAddr: string }): Promise<void>;
  /** What a new host needs to join as a worker: the join token (a credential) and the managers' `ADDR:PORT`. */
  joinInfo(): Promise<{ token: string; managers: string[] }>;
}

/**
 * The values of Compose secrets and configs (ServiceSpec.secrets/configs). The server never stores a
 * value a client sent: `prepare` replaces it by its digest (sealing the value in the encrypted store
 * when `keep`), and checks that every `external` one is set for the environment. `valueOf` gives a
 * release's value back when a container needs its file.
 */
export interface SpecFilesPort {
  /** @throws InvalidInput naming the secret (and how to set it) when one cannot be had; nothing is kept then. */
  prepare(app: string, env: string, spec: AppSpec, opts: { keep: boolean }): AppSpec;
  valueOf(app: string, env: string, mount: FileMountSpec, configVersion: number): string;
}

/** A host path as the server resolved it (every symlink followed), or why it may not be used. */
export type HostPathVerdict = { path: string; refused?: undefined } | { refused: string; path?: undefined; /** The Dockerfile is what was refused. */ dockerfile?: boolean };

/**
 * Which host paths may reach a container (bind-mount sources) or a build (contexts): paths resolve
 * on the server's filesystem, symlinks included, against roots the server's admin configured.
 * Refusals are sentences that say how an admin allows a path.
 */
export interface HostPathPolicy {
  bindSource(path: string): Promise<HostPathVerdict>;
  /** The context directory, checked like a bind source; `dockerfile` (relative to it) must resolve inside it. */
  buildContext(context: string, dockerfile: string): Promise<HostPathVerdict>;
}

export type ContainerHealth = 'none' | 'starting' | 'healthy' | 'unhealthy';

export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
  /**
   * Docker's state string: created, running, paused, restarting, removing, exited, dead; many hosts
   * also: `lost` (its host is down: what it does there is unknown; it may come back running).
   */
  state: string;
  running: boolean;
  exitCode?: number;
  oomKilled?: boolean;
  /** ISO timestamps as reported by the engine (absent when never started/finished). */
  startedAt?: string;
  finishedAt?: string;
  /** Engine-run health check status ('none' when the container has no healthcheck). */
  health: ContainerHealth;
  /** The engine-run health check's latest result: exit code and output. */
  healthLog?: { exitCode: number; output: string };
  /** Host the container runs on (engine's host name/id). */
  host: string;
  /** App-network mode: the container's address on its first network (reachable from its host). */
  ip?: string;
  /** Many hosts: the address of the container's host that Berth routes to (HostInfo.address). */
  hostAddress?: string;
  /**
   * Many hosts: its start was asked but it does not run yet (state `created`): the engine's word on
   * why, e.g. Swarm's `no suitable node (host-mode port already in use on 3 nodes)`, or its task state.
   */
  pending?: string;
}

export interface ImageInfo {
  id: string;
  env: string[];
  user: string;
  hasHealthcheck: boolean;
  sizeBytes: number;
  labels: Record<string, string>;
}

export type EngineEvent =
  | { kind: 'container'; action: string; id: string; labels: Record<string, string> }
  /** The engine became unreachable (stream ended/failed). */
  | { kind: 'disconnected'; error: string }
  /** The engine is reachable again after a disconnect (or at first connect). */
  | { kind: 'connected' }
  /** A host changed state (many hosts). */
  | { kind: 'host'; id: string; name: string; state: HostState };

/** One health probe's outcome, worded for people (`GET /healthz → 404`, `connection refused on 127.0.0.1:20031`). */
export interface ProbeResult {
  ok: boolean;
  text: string;
  /** The connection was refused: nothing listens on the address. */
  refused?: boolean;
  /** No connection was made at all: the connect timed out or the host is unreachable (a dead host or a cut link), not a slow answer. */
  unreachable?: boolean;
}

export interface LogLine {
  containerId: string;
  stream: 'stdout' | 'stderr';
  /** RFC3339Nano timestamp from the engine. */
  time: string;
  text: string;
}

/**
 * One resource-usage sample of a running container (Docker stats API, one-shot). Counters (network,
 * block I/O) are totals since the container started; cpuPercent is over the engine's own sampling
 * window, computed like `docker stats` (100 % = one full core).
 */
export interface ContainerStats {
  cpuPercent: number;
  /** Memory in use minus page cache (cgroup v2: inactive_file; v1: cache), like `docker stats`. */
  memoryBytes: number;
  /** The container's memory limit (the host's memory when unlimited). */
  memoryLimitBytes: number;
  /** 0 with host networking (Docker then has no per-container network counters); counted in app-network mode. */
  netRxBytes: number;
  netTxBytes: number;
  blockReadBytes: number;
  blockWriteBytes: number;
}

/** What Engine.build builds, and how. */
export interface BuildOptions {
  /** Local directory sent as the build context (`.dockerignore` honoured). */
  context: string;
  /** Dockerfile path relative to `context`. */
  dockerfile: string;
  tag: string;
  args: Record<string, string>;
  /** Labels put on the image (metadata only: they add no build steps). */
  labels?: Record<string, string>;
  /**
   * Memory the build's RUN steps may use, bytes. A step that needs more is killed and the build fails
   * with an error naming the limit. Builds running at the same time share the sum of their limits.
   */
  memoryBytes?: number;
  /** The stage of a multi-stage Dockerfile to build (default: the last). */
  target?: string;
  /** The Dockerfile's text (Compose's dockerfile_inline) instead of `dockerfile` in the context. */
  dockerfileInline?: string;
  /**
   * Build secrets by id (`RUN --mount=type=secret,id=ID` reads the value at /run/secrets/ID): served
   * from memory to the build only, never in the image, its history, the build log or a file.
   */
  secrets?: Record<string, string>;
  /** Aborting cancels the build on the engine; build() then rejects with an error saying it was cancelled. */
  signal?: AbortSignal;
  /**
   * The context as a tar stream (e.g. `git archive` of a commit) instead of reading the `context`
   * directory, which then only names it in messages. A factory: the engine may need to send it twice.
   * `dockerfileText` and `dockerignore` (the context's .dockerignore, applied by the engine) come with it.
   */
  contextTar?: { open: () => NodeJS.ReadableStream; dockerfileText: string; dockerignore?: string };
}

/** How far a pull is: its layers (done = downloaded and extracted, or already there) and bytes downloaded of those known. */
export interface PullProgress {
  layers: number;
  layersDone: number;
  bytes: number;
  totalBytes: number;
}

/** Engine role: containers on the engine's host(s): what runs, and creating, starting, stopping and removing it. */
export interface EngineContainers {
  /** Name of the host this engine places containers on. */
  readonly hostName: string;
  /**
   * Many hosts (cluster mode, as last read by `list`): the engine picks each new container's host, so
   * its host and address are known only once it runs (ContainerInfo.host/hostAddress). Absent/false:
   * containers run on `hostName`.
   */
  placesContainers?(): boolean;
  ping(): Promise<void>;
  /** Containers carrying all the given labels (any state). */
  list(labels: Record<string, string>): Promise<ContainerInfo[]>;
  inspect(id: string): Promise<ContainerInfo | undefined>;
  /** Creates (does not start) a container; returns its id. Sets json-file log rotation and no engine restart policy. */
  create(spec: ContainerSpec): Promise<string>;
  start(id: string): Promise<void>;
  /** Sends the container's stop signal, SIGKILL after timeoutS. Missing or stopped containers are fine. */
  stop(id: string, timeoutS: number): Promise<void>;
  kill(id: string, signal: string): Promise<void>;
  /** Removes the container (force). Missing containers are fine. */
  remove(id: string): Promise<void>;
}

/** A network of the engine that Berth made (app networks). */
export interface NetworkInfo {
  name: string;
  id: string;
  labels: Record<string, string>;
  /** The network's gateway address on the engine's host (Berth's DNS listens there for its containers); absent when the engine has none. */
  gateway?: string;
  /**
   * A Swarm overlay spanning the cluster's hosts (cluster mode): its gateway lives in each host's
   * overlay sandbox, no address of any host, so it has none here; its containers reach Berth's DNS on
   * the cluster address instead.
   */
  overlay?: boolean;
}

/**
 * Engine role: app networks. One host: a Docker bridge network (containers of different networks
 * cannot reach each other: the engine's host does not forward between them); many hosts (the engine
 * a Swarm manager): an attachable Swarm overlay (VXLAN between the hosts), one per app, environment
 * and Compose network as on one host.
 */
export interface EngineNetworks {
  /** Creates the network unless one of that name exists (concurrent calls create it once); the network as it is. */
  ensureNetwork(name: string, labels: Record<string, string>): Promise<NetworkInfo>;
  /** Networks carrying all the given labels. */
  listNetworks(labels: Record<string, string>): Promise<NetworkInfo[]>;
  /** Removes a network. False when there was none; Conflict while a container is attached to it. */
  removeNetwork(name: string): Promise<boolean>;
}

/** Engine role: named volumes of containers. */
export interface EngineVolumes {
  ensureVolume(name: string, labels: Record<string, string>): Promise<void>;
  /**
   * Removes a volume. False when there was none; a volume a container still uses is a Conflict
   * naming it (nothing is forced: its data would go while something runs on it).
   */
  removeVolume(name: string): Promise<boolean>;
  /**
   * What the engine knows of these volumes (Docker's disk usage): size in bytes (null when the engine
   * has not measured it) and how many containers mount each. Volumes that do not exist are left out.
   */
  volumeUsage(names: string[]): Promise<Record<string, VolumeUsage>>;
}

export interface VolumeUsage {
  sizeBytes: number | null;
  containers: number;
}

/** `berth volumes`: the API reads volume sizes through this port (the engine's volumeUsage), never the engine itself. */
export interface VolumeUsagePort {
  volumeUsage(names: string[]): Promise<Record<string, VolumeUsage>>;
}

/** Engine role: images and builds: look-ups, building, tagging and pushing, removal and build-cache trimming. */
export interface EngineImages {
  imageExists(ref: string): Promise<boolean>;
  /** The image's id (`sha256:…`), or undefined when the engine does not have it. */
  imageId(ref: string): Promise<string | undefined>;
  /** What the image's config says (for the image standards checks), or undefined when the engine does not have it. */
  imageInfo(ref: string): Promise<ImageInfo | undefined>;
  /**
   * Builds an image from a local context directory and tags it `opts.tag`. `onProgress` receives
   * output lines (`#5 [2/4] COPY . ./`, `#5 CACHED`, `#7 0.412 <RUN output>`, `#7 DONE 1.3s`).
   */
  build(opts: BuildOptions, onProgress?: (line: string) => void): Promise<void>;
  /** Tags a local image (`source`: reference or id) as `repo:tag`. */
  tag(source: string, repo: string, tag: string): Promise<void>;
  /**
   * Pushes a local `registry/repo:tag` to its registry (Berth's own on loopback); resolves with the
   * manifest digest (`sha256:…`) the registry stored. `onProgress` receives output lines. Aborting
   * `signal` stops the push; push() then rejects with an error saying it was cancelled.
   */
  push(ref: string, onProgress?: (line: string) => void, signal?: AbortSignal): Promise<{ digest: string }>;
  /**
   * Pulls `ref` from its registry (core/image-ref.registryOf), with the credentials Berth has for
   * that registry (X-Registry-Auth of this one request; nothing is written to disk). `onProgress`
   * gets the layers and bytes so far; aborting `signal` stops the pull. Rejects with the engine's
   * message (auth, not found, unreachable: core/image-ref.classifyPullError tells them apart).
   */
  pull(ref: string, opts?: { onProgress?: (p: PullProgress) => void; signal?: AbortSignal }): Promise<void>;
  /**
   * Removes one image reference (tag, `repo@digest` or id; the image goes with its last reference).
   * False, removing nothing, when any container (any state, any installation) uses the image, or
   * when the reference does not exist.
   */
  removeImage(ref: string): Promise<boolean>;
  /** Trims the engine's build cache down to about `keepBytes`; resolves with the bytes freed. */
  pruneBuildCache(keepBytes: number): Promise<number>;
}

/** Engine role: what running containers do: the engine's container events, their logs and resource usage. */
export interface EngineTelemetry {
  /**
   * Subscribes to container events. Reconnects by itself with backoff after the engine goes away,
   * emitting `disconnected` then `connected`. Returns an unsubscribe function.
   */
  watch(onEvent: (e: EngineEvent) => void): () => void;
  /**
   * Reads logs (demuxed). With follow, keeps calling onLine until the signal aborts or the container ends.
   * `since` (inclusive): Unix seconds as a number, or Docker's exact `"seconds.nanoseconds"` string.
   */
  logs(id: string, opts: { follow: boolean; tail?: number; since?: number | string; signal?: AbortSignal }, onLine: (l: LogLine) => void): Promise<void>;
  /** One resource-usage sample (no streaming); undefined when the container is missing or not running. */
  stats(id: string): Promise<ContainerStats | undefined>;
}

/**
 * A container engine on one or more hosts: every role. The Docker engine (one host) implements it now;
 * a Swarm engine later. All methods reject with EngineUnavailable when the engine cannot be reached.
 * Consumers depend on the roles they use (EngineContainers, EngineVolumes, EngineImages, EngineTelemetry).
 */
export interface Engine extends EngineContainers, EngineVolumes, EngineNetworks, EngineImages, EngineTelemetry, EngineHosts {}

/**
 * Cluster mode: what `berth host add --address` hands a new host so the control plane can reach its
 * Docker engine over TCP with mutual TLS (the cluster CA's server certificate for that address, and
 * the CA its clients must be issued by). tls/cluster-ca.ts implements it; the API never holds the CA.
 */
export interface EngineTlsPort {
  issueEngine(o: { host: string; addresses: string[] }): Promise<{ caPem: string; certPem: string; keyPem: string }>;
}

/** Output of a command run in a container, chunk by chunk as it arrives (raw bytes). */
export interface ExecOutput {
  stdout(chunk: Uint8Array): void;
  stderr(chunk: Uint8Array): void;
}

/**
 * Runs a command in a running container: `berth exec`. The one engine call an API handler makes,
 * behind this narrow port (the api room never sees the Engine). Resolves with the command's exit code
 * once its output has ended. Aborting `signal` stops reading and detaches; the engine offers no way
 * to kill an exec'd process, so a command still running is left to end by itself.
 */
export interface ExecPort {
  exec(containerId: string, cmd: string[], out: ExecOutput, signal?: AbortSignal): Promise<{ exitCode: number }>;
}

/** One upstream server: an instance's address. */
export interface Backend {
  address: string;
  port: number;
  /** Instance id, for comments in rendered config and for tests. */
  instance: string;
}

/** A route on the ingress and the healthy backends behind it. */
export interface IngressRoute {
  /** Upstream name, unique per route set: e.g. `myapp.prod.web.0` (core/spec/routes.ts `upstreamName`). */
  upstream: string;
  /** Undefined: any host (default server). */
  host?: string;
  /** Path prefix starting with '/', matched on segment boundaries: `/api` serves `/api` and `/api/...`, not `/apix`. */
  path: string;
  backends: Backend[];
  /** The service the route belongs to (for events about it). */
  owner?: RouteOwner;
  /**
   * When the owner first claimed this host and path (ms). Of two routes for one host and path, the
   * earlier claim is served and the other refused; undefined counts as latest.
   */
  claimedAt?: number;
  /**
   * The route's HTTPS options (x-berth `tls`, `redirect`, `hsts`), from its spec; undefined: the
   * defaults (wants a certificate for its host, redirects once it has one, no HSTS).
   */
  https?: { wantsCert: boolean; redirect: boolean; hstsSeconds?: number };
  /**
   * The certificate nginx serves for this route's host (files nginx's master reads), set by the TLS
   * wiring only when the host has a current one. Without it the route is served over HTTP only.
   */
  tls?: { certFile: string; keyFile: string };
}

/**
 * The ingress data plane (nginx). `apply` is cheap and coalesced: the writer renders and reloads at
 * most once per coalescing window, only when the rendered bytes changed, after testing the candidate.
 */
export interface Ingress {
  /** Starts nginx, or adopts one already running from our prefix (no dropped listen socket). */
  start(): Promise<void>;
  /** Sets the complete desired route table; returns at once. */
  apply(routes: IngressRoute[]): void;
  /** Waits until everything applied so far is live in nginx (config written, reload done and effective). */
  flush(): Promise<void>;
  /** Stops the writer's timers; nginx keeps running (the data plane outlives the control plane). */
  close(): Promise<void>;
  /** Port clients connect to. */
  readonly port: number;
}

/**
 * Certificates for routes' hosts (the tls room), as the API uses them. Each method validates its
 * input and throws InvalidInput/NotFound/Conflict; none waits for a CA.
 */
export interface CertificatesPort {
  list(): CertView[];
  /** Stores an uploaded certificate after checking it (key matches, covers the host, current); replaces any other for the host. */
  upload(host: string, certPem: string, keyPem: string): Promise<CertView>;
  /** Forgets the host's certificate (a route that still wants one gets a new one from ACME). */
  remove(host: string): Promise<boolean>;
  /** Asks for an ACME renewal now; returns at once (the status says `renewing`). */
  renew(host: string): CertView;
}

/**
 * An app's configuration and secrets per environment, as the API reads and writes them
 * (config/ConfigStore implements it). Lists mask secrets; `get` reveals one only when asked.
 */
export interface ConfigEntriesPort {
  /** The app/env's current configuration version (0: none yet). */
  version(app: string, env: string): number;
  list(app: string, env: string): ConfigEntryView[];
  get(app: string, env: string, key: string, opts?: { reveal?: boolean }): ConfigEntryView;
  history(app: string, env: string): ConfigVersionView[];
  /** Sets keys as one new version (none when nothing changes); validates every entry first. */
  set(app: string, env: string, entries: { key: string; value: string; kind: ConfigKind }[], who: string): Pick<ConfigWriteView, 'version' | 'changed' | 'changes'>;
  unset(app: string, env: string, keys: string[], who: string): Pick<ConfigWriteView, 'version' | 'changed' | 'changes'>;
}

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}
