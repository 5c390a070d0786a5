import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import { Conflict, EngineUnavailable, ExternalCommandFailed, InvalidInput, NotFound } from '../../core/errors.ts';
import {
  LABEL,
  type BuildOptions,
  type ContainerHealth,
  type ContainerInfo,
  type ContainerSpec,
  type NetworkInfo,
  type ContainerStats,
  type Engine,
  type EngineEvent,
  type LogLine,
  type Logger,
  type ImageInfo,
  type ExecOutput,
  type ExecPort,
  type PullProgress,
  type VolumeUsage,
  type ClusterMode,
  type HostInfo,
} from '../../core/ports.ts';
import { registryOf } from '../../core/image-ref.ts';
import { backoffMs } from '../../lib/backoff.ts';
import { BERTH_DROPPED_CAPS } from '../../core/spec/security.ts';
import { dockerfileBaseImages, filterContextTar, isLoopbackRegistryRef, listContextFiles, packContext } from './build-context.ts';
import { BuildMemoryPool, openBuildMemoryPool } from './build-memory.ts';
import { openSecretsSession, type BuildkitSession } from './buildkit-session.ts';
import { runBuildkitBuild } from './buildkit-build.ts';
import { DockerHosts } from './docker-hosts.ts';
import { HostEvents, type FollowedHost, type HostEventSource, type HostEventsHealth, type ObservedContainer } from './host-events.ts';
import type { SwarmShipping } from './swarm-shipping.ts';
import { SwarmContainers, isServiceId } from './swarm-containers.ts';
import { networkCreateBody, networkInfoOf, type Network } from './app-networks.ts';
import { dockerMessage, isAbortError, isConnectionError, statusOf, toBerthError } from './docker-errors.ts';
import { FrameDemuxer, LineSplitter, LogDemuxer, splitTimestamp } from './log-demux.ts';

/** The name a Dockerfile given as text (dockerfile_inline) has in the build context. */
const INLINE_DOCKERFILE = '.berth-dockerfile-inline';

export interface DockerEngineOptions {
  /** Unix socket of the Docker Engine API; default /var/run/docker.sock. */
  socketPath?: string;
  /**
   * A client made elsewhere (another host's engine over TCP + TLS: host-engines.ts); `socketPath`
   * then only names that engine in messages.
   */
  docker?: Docker;
  /** Name reported as ContainerInfo.host; default os.hostname(). */
  hostName?: string;
  /**
   * The installation's labels (its cluster id, host-setup.ts scopedEngine): a plain engine's one host
   * counts only this installation's containers as its instances, not another Berth's on the same engine.
   */
  scope?: Record<string, string>;
  logger: Logger;
  /** json-file log rotation put on every container: size per file ('10m') and number of files (3). */
  logMaxSize?: string;
  logMaxFile?: number;
  /** Reconnect backoff of watch(): first delay and cap, ms (200 → 5000). */
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  /** How many containers list() inspects at once. */
  inspectConcurrency?: number;
  /**
   * Which of dockerd's builders build() uses: BuildKit (default; labels are metadata, cached steps
   * are cheap) or the classic one. BuildKit falls back to the classic builder by itself when the
   * daemon refuses it, or when a build asks for a memory limit that cannot be put on BuildKit here.
   */
  builder?: 'buildkit' | 'legacy';
  /**
   * dockerd's `--cgroup-parent`, under whose `buildkit` child BuildKit runs RUN steps; the memory limit
   * of builds is put on that child. Default: `docker` (dockerd's default with the cgroupfs driver).
   */
  buildCgroupParent?: string;
  /** Where the cgroup hierarchy is mounted; default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** Where in-flight memory-limited builds register (shared by all Berth processes of the host); default /run/berth/build-memory. */
  buildMemoryRegistryDir?: string;
  /**
   * Credentials for a loopback registry (`127.0.0.1:PORT`, Berth's own, which requires them): pushes
   * to it and pulls from it (a build's `FROM` one of its images) carry them. Undefined: anonymous.
   */
  registryAuth?: (registryHost: string) => { username: string; password: string } | undefined;
  /**
   * IPv4 block the app networks' subnets (/24 each) are taken from; default 10.208.0.0/12. Docker's
   * own default pools hold ~30 networks, too few for an app and environment each.
   */
  networkPool?: string;
}

/**
 * Container events that say nothing about lifecycle: every engine health check alone produces
 * exec_create/exec_start/exec_die, which would wake reconcilers for nothing.
 */
const NOISE_ACTIONS = /^(exec_|attach$|detach$|resize$|top$|commit$|copy$|archive-path$|extract-to-dir$|export$)/;

/** Docker's zero time, reported for never started/finished containers. */
const ZERO_TIME = '0001-01-01T00:00:00Z';
const NS_PER_MS = 1_000_000;
const PING_TIMEOUT_MS = 5000;
/** How long the engine's Swarm membership is taken as known (re-read after; at once after initCluster). */
const MODE_TTL_MS = 5000;
/** Docker's label on the container of a Swarm task: those are listed as their service (SwarmContainers). */
const SWARM_TASK_LABEL = 'com.docker.swarm.service.id';
/** How often cluster mode's host feed re-reads the Swarm's nodes (hosts joined, gone, down, back). */
const HOST_FEED_SYNC_MS = 5000;

/**
 * The Engine over one local Docker Engine (dockerode on a unix socket). Every container runs with host
 * networking, no engine restart policy (berth restarts) and json-file log rotation. Images are only ever
 * built locally: nothing is pulled, except a build's base image from a loopback registry (Berth's own).
 */
export class DockerEngine implements Engine, ExecPort {
  readonly hostName: string;
  readonly socketPath: string;
  private readonly docker: Docker;
  private readonly log: Logger;
  private readonly logMaxSize: string;
  private readonly logMaxFile: number;
  private readonly reconnectBaseMs: number;
  private readonly reconnectMaxMs: number;
  private readonly inspectConcurrency: number;
  private readonly builder: 'buildkit' | 'legacy';
  private readonly buildCgroupParent: string | undefined;
  private readonly cgroupRoot: string;
  private readonly buildMemoryRegistryDir: string;
  private readonly registryAuth: DockerEngineOptions['registryAuth'];
  private readonly networkPool: string;
  /** Why the daemon refused a BuildKit build, once it has: later builds go to the legacy builder. */
  private buildkitRefusal: string | undefined;
  private memoryPool: Promise<BuildMemoryPool | string> | undefined;
  private readonly hostsRole: DockerHosts;
  /** Cluster mode: the containers role as one Swarm service per instance (swarm-containers.ts). */
  private readonly swarm: SwarmContainers;
  private mode: { value: ClusterMode; at: number } | undefined;
  /** Cluster mode: how an instance's host engine is reached (host-engines.ts SwarmDataPlane), made on first use. */
  private dataPlaneMaker: ((manager: Docker, managerName: string) => Promise<RemoteDataPlane>) | undefined;
  private dataPlane: Promise<RemoteDataPlane> | undefined;
  private dataPlaneReady: RemoteDataPlane | undefined;
  /** Cluster mode: every host's engine events (host-events.ts), fed to this engine's watchers. */
  private hostEvents: HostEvents | undefined;
  private readonly hostListeners = new Set<(e: EngineEvent) => void>();
  private hostFeedTimer: NodeJS.Timeout | undefined;
  private hostFeedSyncing = false;

  constructor(opts: DockerEngineOptions) {
    this.socketPath = opts.socketPath ?? '/var/run/docker.sock';
    this.hostName = opts.hostName ?? os.hostname();
    this.log = opts.logger.child({ component: 'docker-engine' });
    this.logMaxSize = opts.logMaxSize ?? '10m';
    this.logMaxFile = opts.logMaxFile ?? 3;
    this.reconnectBaseMs = opts.reconnectBaseMs ?? 200;
    this.reconnectMaxMs = opts.reconnectMaxMs ?? 5000;
    this.inspectConcurrency = opts.inspectConcurrency ?? 8;
    this.builder = opts.builder ?? 'buildkit';
    this.buildCgroupParent = opts.buildCgroupParent;
    this.cgroupRoot = opts.cgroupRoot ?? '/sys/fs/cgroup';
    this.buildMemoryRegistryDir = opts.buildMemoryRegistryDir ?? '/run/berth/build-memory';
    this.registryAuth = opts.registryAuth;
    this.networkPool = opts.networkPool ?? '10.208.0.0/12';
    this.docker = opts.docker ?? new Docker({ socketPath: this.socketPath });
    this.hostsRole = new DockerHosts(this.docker, this.socketPath, this.hostName, opts.scope ?? {});
    this.swarm = new SwarmContainers(this.docker, this.socketPath, this.hostName, { logMaxSize: this.logMaxSize, logMaxFile: this.logMaxFile });
  }

  /**
   * Cluster mode: how instances on other hosts get their image (by digest from Berth's registry on
   * the cluster address, swarm-shipping.ts) and Berth's files (as Swarm secrets).
   */
  useShipping(s: SwarmShipping | undefined): void {
    this.swarm.useShipping(s);
  }

  /**
   * Cluster mode: logs, stats, signals (but SIGKILL: scale to 0) and exec of an instance that is a
   * Swarm service go to the engine of the host its task runs on (host-engines.ts), which `make`
   * builds on first use from the manager's client. Without it they fail as before (a service id is
   * no container here).
   */
  useDataPlane(make: (manager: Docker, managerName: string) => Promise<RemoteDataPlane>): void {
    this.dataPlaneMaker = make;
    this.dataPlane = undefined;
    this.dataPlaneReady = undefined;
  }

  private remote(): Promise<RemoteDataPlane> | undefined {
    if (!this.dataPlaneMaker) return undefined;
    if (!this.dataPlane) {
      const p = this.dataPlaneMaker(this.docker, this.socketPath);
      this.dataPlane = p;
      p.then((dp) => (this.dataPlaneReady = dp), (err: unknown) => {
        if (this.dataPlane === p) this.dataPlane = undefined;
        this.log.error({ err: String(err) }, 'host engines unavailable: logs, stats, signals and exec of instances on other hosts fail');
      });
    }
    return this.dataPlane;
  }

  /** Each host engine's last answer (cluster mode; empty before the first use). */
  hostEngineHealth(): HostEngineHealthLike[] {
    return this.dataPlaneReady?.engines.health() ?? [];
  }

  /** Pings every host's engine (cluster mode only; nothing otherwise). */
  async checkHostEngines(): Promise<void> {
    if (!this.placesContainers()) return;
    const dp = await this.remote()?.catch(() => undefined);
    await dp?.checkHosts();
  }

  // Hosts (EngineHosts): one host, or the nodes of the Swarm this engine manages (docker-hosts.ts).
  async clusterMode(): Promise<ClusterMode> {
    const value = await this.hostsRole.clusterMode();
    this.mode = { value, at: Date.now() };
    return value;
  }

  /**
   * Cluster mode as last read (refreshed at most every MODE_TTL_MS by list/create): new instances are
   * Swarm services placed by the Swarm. Containers made before (one-host mode) keep being listed and
   * handled as containers, by their ids, until they are replaced.
   */
  placesContainers(): boolean {
    return this.mode?.value === 'swarm';
  }

  /** The cluster mode, read again when older than MODE_TTL_MS (what creates and deploy admission go by). */
  async currentMode(): Promise<ClusterMode> {
    if (!this.mode || Date.now() - this.mode.at > MODE_TTL_MS) await this.clusterMode();
    return this.mode!.value;
  }

  private async swarmMode(): Promise<boolean> {
    return (await this.currentMode()) === 'swarm';
  }

  /** Swarm API calls of the containers role in cluster mode (figures in docs/DESIGN.md). */
  get swarmCalls(): number {
    return this.swarm.calls;
  }

  hosts(): Promise<HostInfo[]> {
    return this.hostsRole.hosts();
  }

  labelHost(host: string, labels: Record<string, string | null>): Promise<HostInfo> {
    return this.hostsRole.labelHost(host, labels);
  }

  drainHost(host: string, drain: boolean): Promise<HostInfo> {
    return this.hostsRole.drainHost(host, drain);
  }

  removeHost(host: string, opts: { force: boolean }): Promise<void> {
    return this.hostsRole.removeHost(host, opts);
  }

  async initCluster(opts: { advertiseAddr: string }): Promise<void> {
    await this.hostsRole.initCluster(opts);
    // New instances are Swarm services from now on, not after the mode's cache expires.
    this.mode = undefined;
  }

  joinInfo(): Promise<{ token: string; managers: string[] }> {
    return this.hostsRole.joinInfo();
  }

  async ping(): Promise<void> {
    await this.call('ping', () => this.docker.ping());
  }

  async list(labels: Record<string, string>): Promise<ContainerInfo[]> {
    const [services, containers] = await Promise.all([(await this.swarmMode()) ? this.swarm.list(labels) : [], this.listContainers(labels)]);
    return [...services, ...containers];
  }

  /** Plain containers (not the containers of Swarm tasks on this host: those are listed as their services). */
  private async listContainers(labels: Record<string, string>): Promise<ContainerInfo[]> {
    const filters = { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) };
    const rows = (await this.call('list containers', () => this.docker.listContainers({ all: true, filters }))).filter((r) => !r.Labels?.[SWARM_TASK_LABEL]);
    // The list endpoint lacks exit code, OOM, start/finish times and health details: inspect each.
    const infos = await mapLimit(rows, this.inspectConcurrency, (r) => this.inspect(r.Id));
    return infos.filter((i): i is ContainerInfo => i !== undefined);
  }

  async inspect(id: string): Promise<ContainerInfo | undefined> {
    if (isServiceId(id)) return this.swarm.inspect(id);
    try {
      const c = await this.docker.getContainer(id).inspect();
      return this.toInfo(c);
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw toBerthError(e, this.socketPath, `inspect container ${id}`);
    }
  }

  async imageExists(ref: string): Promise<boolean> {
    return (await this.imageId(ref)) !== undefined;
  }

  async imageId(ref: string): Promise<string | undefined> {
    try {
      return (await this.docker.getImage(ref).inspect()).Id;
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw toBerthError(e, this.socketPath, `inspect image ${ref}`);
    }
  }

  async imageInfo(ref: string): Promise<ImageInfo | undefined> {
    try {
      const i = await this.docker.getImage(ref).inspect();
      const test = i.Config?.Healthcheck?.Test ?? [];
      return {
        id: i.Id, env: i.Config?.Env ?? [], user: i.Config?.User ?? '', hasHealthcheck: test.length > 0 && test[0] !== 'NONE',
        sizeBytes: i.Size ?? 0, labels: i.Config?.Labels ?? {},
      };
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw toBerthError(e, this.socketPath, `inspect image ${ref}`);
    }
  }

  async build(opts: BuildOptions, onProgress?: (line: string) => void): Promise<void> {
    const { signal } = opts;
    if (signal?.aborted) throw buildCancelled(opts.tag, signal);
    const inline = opts.dockerfileInline;
    if (inline !== undefined) {
      if (opts.contextTar) throw new InvalidInput(`build ${opts.tag}: dockerfile_inline is not supported for builds from a commit; commit the Dockerfile`);
      opts = { ...opts, dockerfile: INLINE_DOCKERFILE };
    }
    // A missing base image would make dockerd try a registry pull (impossible here, and not ours to
    // attempt): name it instead. Loopback registries (berth's own) may be pulled from.
    const dockerfilePath = path.join(opts.context, opts.dockerfile);
    let dockerfileText: string;
    if (opts.contextTar) dockerfileText = opts.contextTar.dockerfileText;
    else if (inline !== undefined) dockerfileText = inline;
    else {
      try {
        dockerfileText = await readFile(dockerfilePath, 'utf8');
      } catch (e) {
        throw new NotFound(`cannot read the Dockerfile ${dockerfilePath}: ${(e as Error).message}`, { cause: e });
      }
    }
    const bases = dockerfileBaseImages(dockerfileText, opts.args);
    for (const base of bases) {
      if (isLoopbackRegistryRef(base)) {
        // Pulled here, with credentials: neither builder would send Berth's registry any (BuildKit
        // has no session here), and both use a local image before asking a registry.
        if (!(await this.imageExists(base))) await this.pullBase(base, onProgress, signal);
        continue;
      }
      if (!(await this.imageExists(base))) {
        throw new NotFound(
          `base image ${base} (FROM in ${dockerfilePath}) does not exist on the Docker Engine at ` +
            `${this.socketPath}: build it first (berth never pulls from remote registries; base images come from \`bash scripts/images.sh\`).`,
        );
      }
    }
    const files = opts.contextTar ? [] : await listContextFiles(opts.context, opts.dockerfile);
    // A tar given by the caller is filtered on its way through; a directory is packed from its listing.
    const context = (): Readable => {
      const t = opts.contextTar;
      return t ? filterContextTar(t.open() as Readable, t.dockerignore ?? '', opts.dockerfile)
        : packContext(opts.context, files, inline !== undefined ? { name: INLINE_DOCKERFILE, text: inline } : undefined);
    };
    const out = new BuildOutput(onProgress);

    let buildkit = this.builder === 'buildkit' && this.buildkitRefusal === undefined;
    let release: (() => Promise<void>) | undefined;
    if (buildkit && opts.memoryBytes) {
      const pool = await this.buildMemoryPool();
      if (typeof pool === 'string') {
        buildkit = false;
      } else {
        try {
          release = await pool.acquire(opts.memoryBytes);
        } catch (e) {
          this.log.warn({ err: (e as Error).message, cgroup: pool.dir }, 'cannot set the BuildKit memory limit; this build uses the legacy builder');
          buildkit = false;
        }
      }
    }
    const secrets = Object.entries(opts.secrets ?? {});
    if (secrets.length > 0 && !buildkit) {
      if (release) await release().catch(() => undefined);
      throw new InvalidInput(`build ${opts.tag}: build secrets (${secrets.map(([k]) => k).join(', ')}) need BuildKit, which this Docker Engine ` +
        `does not run${this.buildkitRefusal ? ` (${this.buildkitRefusal})` : ''}: enable BuildKit in the engine, or build without build.secrets`);
    }
    let session: BuildkitSession | undefined;
    try {
      if (buildkit) {
        if (signal?.aborted) throw buildCancelled(opts.tag, signal);
        // Secrets reach the build through a session of ours (never a file, an argument or the context).
        if (secrets.length > 0) session = await this.call(`build ${opts.tag}`, () => openSecretsSession(this.socketPath, new Map(secrets)));
        const res = await this.call(`build ${opts.tag}`, () =>
          runBuildkitBuild({
            socketPath: this.socketPath,
            params: {
              t: opts.tag,
              dockerfile: opts.dockerfile,
              buildargs: JSON.stringify(opts.args),
              ...(opts.target ? { target: opts.target } : {}),
              labels: JSON.stringify(opts.labels ?? {}),
              // RUN steps use the host's network: Berth's daemons run without a bridge (--bridge=none),
              // where BuildKit's default network fails with "network bridge not found".
              networkmode: 'host',
              ...(session ? { session: session.id } : {}),
            },
            context: context(),
            ...(signal ? { signal } : {}),
            onLine: (l) => out.line(l),
            onTraceError: (err) => this.log.debug({ err: (err as Error).message }, 'undecodable BuildKit trace message'),
          }),
        );
        if (res.kind === 'cancelled') throw buildCancelled(opts.tag, signal);
        if (res.kind === 'finished') {
          if (res.error !== undefined) throw this.buildFailed(opts, res.error, out);
          return;
        }
        if (!isBuildkitRefusal(res.message)) {
          throw toBerthError(Object.assign(new Error(res.message), { statusCode: res.status, json: { message: res.message } }), this.socketPath, `build ${opts.tag}`);
        }
        this.buildkitRefusal = res.message;
        if (secrets.length > 0) {
          throw new InvalidInput(`build ${opts.tag}: build secrets (${secrets.map(([k]) => k).join(', ')}) need BuildKit, which this Docker Engine refused: ${res.message}`);
        }
        this.log.warn({ reason: res.message }, 'the Docker Engine refused a BuildKit build; using the legacy builder from now on');
        if (release) {
          await release();
          release = undefined;
        }
      }
      await this.legacyBuild(opts, context, out);
    } finally {
      session?.close();
      if (release) {
        await release().catch((e: unknown) =>
          this.log.warn({ err: (e as Error).message }, 'could not lower the BuildKit memory limit after a build; it stays higher until the next build'),
        );
      }
    }
  }

  /** The classic builder: every label a LABEL step and a commit, but memory limits per RUN container. */
  private async legacyBuild(opts: BuildOptions, context: () => Readable, out: BuildOutput): Promise<void> {
    const { signal } = opts;
    if (signal?.aborted) throw buildCancelled(opts.tag, signal);
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.buildImage(context(), {
        t: opts.tag, dockerfile: opts.dockerfile, buildargs: opts.args, labels: opts.labels ?? {}, rm: true, forcerm: true,
        ...(opts.target ? { target: opts.target } : {}),
        // A build's RUN steps get at most this much memory, so a build cannot take a small server down.
        ...(opts.memoryBytes ? { memory: opts.memoryBytes, memswap: opts.memoryBytes } : {}),
        ...(signal ? { abortSignal: signal } : {}),
      });
    } catch (e) {
      if (signal?.aborted) throw buildCancelled(opts.tag, signal);
      throw toBerthError(e, this.socketPath, `build ${opts.tag}`);
    }
    let buildError: string | undefined;
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: unknown) => {
          if (signal?.aborted) reject(buildCancelled(opts.tag, signal));
          else if (err) reject(toBerthError(err, this.socketPath, `build ${opts.tag}`));
          else resolve();
        },
        (ev: { stream?: string; status?: string; error?: string; errorDetail?: { message?: string } }) => {
          if (typeof ev.stream === 'string') {
            for (const l of ev.stream.split('\n')) if (l.trim()) out.line(l.trimEnd());
          } else if (typeof ev.status === 'string') {
            out.line(ev.status);
          }
          if (ev.errorDetail || ev.error) {
            buildError = ev.errorDetail?.message ?? ev.error ?? 'unknown build error';
            out.line(`ERROR: ${buildError}`);
          }
        },
      );
    });
    if (signal?.aborted) throw buildCancelled(opts.tag, signal);
    if (buildError !== undefined) throw this.buildFailed(opts, buildError, out);
  }

  private buildFailed(opts: BuildOptions, error: string, out: BuildOutput): ExternalCommandFailed {
    // SIGKILL (exit code 137) of a RUN step under a memory limit is the kernel's OOM killer: say so,
    // with the limit and how to raise it, instead of a bare exit code.
    const oom = opts.memoryBytes && /(exit code:|non-zero code:)\s*137\b/.test(error)
      ? `a RUN step was killed (exit code 137) because the build hit its memory limit of ${formatMiB(opts.memoryBytes)} ` +
        '(raise it with BERTH_BUILD_MEMORY_MB, or make the step use less memory). '
      : '';
    return new ExternalCommandFailed(`building ${opts.tag} from ${opts.context} failed: ${oom}${error}\n--- last build output ---\n${out.tail()}`);
  }

  /** The cgroup pool that limits BuildKit RUN steps, or why there is none (looked up once). */
  private buildMemoryPool(): Promise<BuildMemoryPool | string> {
    this.memoryPool ??= (async () => {
      let parent = this.buildCgroupParent;
      if (parent === undefined) {
        const info = (await this.call('info', () => this.docker.info())) as { CgroupDriver?: string };
        // With the systemd driver BuildKit puts each RUN step in its own systemd scope beside every
        // other container: there is no parent that holds only build steps.
        if (info.CgroupDriver === 'systemd') return 'dockerd uses the systemd cgroup driver, where BuildKit RUN steps have no common cgroup to limit';
        parent = 'docker';
      }
      return openBuildMemoryPool({ cgroupRoot: this.cgroupRoot, daemonCgroupParent: parent, registryDir: this.buildMemoryRegistryDir });
    })().then((pool) => {
      if (typeof pool === 'string') this.log.warn({ reason: pool }, 'BuildKit builds cannot be memory-limited here; builds with a memory limit use the legacy builder');
      return pool;
    });
    const p = this.memoryPool;
    // An unreachable engine is not a verdict on cgroups: look again next time.
    p.catch(() => {
      if (this.memoryPool === p) this.memoryPool = undefined;
    });
    return p;
  }

  async tag(source: string, repo: string, tag: string): Promise<void> {
    await this.call(`tag ${source} as ${repo}:${tag}`, () => this.docker.getImage(source).tag({ repo, tag }));
  }

  /**
   * X-Registry-Auth for the reference's registry: the credentials Berth has for it (its own
   * registry's, or a `berth registry login`), else none (dockerd insists on the header).
   */
  private authFor(ref: string): { serveraddress: string; username?: string; password?: string } {
    const host = registryOf(ref);
    return { serveraddress: host, ...(this.registryAuth?.(host) ?? {}) };
  }

  /** A build's base image from a registry (with the registry's credentials: BuildKit has no session here to ask for them). */
  private async pullBase(ref: string, onProgress?: (line: string) => void, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw buildCancelled(ref, signal);
    onProgress?.(`pulling ${ref}`);
    try {
      await this.pull(ref, { ...(signal ? { signal } : {}) });
    } catch (e) {
      if (signal?.aborted) throw buildCancelled(ref, signal);
      throw e;
    }
  }

  async pull(ref: string, opts: { onProgress?: (p: PullProgress) => void; signal?: AbortSignal } = {}): Promise<void> {
    const { signal, onProgress } = opts;
    if (signal?.aborted) throw new ExternalCommandFailed(`pull of ${ref} cancelled`);
    const at = ref.indexOf('@');
    const colon = ref.lastIndexOf(':');
    const [repo, tag] = at >= 0 ? [ref.slice(0, at), ref.slice(at + 1)] : colon > ref.lastIndexOf('/') ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
    let stream: NodeJS.ReadableStream;
    try {
      stream = (await this.docker.createImage(this.authFor(ref), { fromImage: repo, tag, ...(signal ? { abortSignal: signal } : {}) })) as unknown as NodeJS.ReadableStream;
    } catch (e) {
      if (signal?.aborted) throw new ExternalCommandFailed(`pull of ${ref} cancelled`);
      const err = toBerthError(e, this.socketPath, `pull ${ref}`);
      // dockerd answers a refused pull before streaming (e.g. 401/404 from the registry): its message is the reason.
      throw err instanceof EngineUnavailable ? err : new ExternalCommandFailed(`pulling ${ref} failed: ${dockerMessage(e)}`);
    }
    let failed: string | undefined;
    // Per layer: bytes downloaded of its size, and whether it is done (pulled, or already there).
    const layers = new Map<string, { current: number; total: number; done: boolean }>();
    const report = () => {
      let bytes = 0;
      let totalBytes = 0;
      let done = 0;
      for (const l of layers.values()) {
        bytes += l.done ? l.total : l.current;
        totalBytes += l.total;
        if (l.done) done++;
      }
      onProgress?.({ layers: layers.size, layersDone: done, bytes, totalBytes });
    };
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(stream, (err: unknown) => {
        if (signal?.aborted) reject(new ExternalCommandFailed(`pull of ${ref} cancelled`));
        else if (err) reject(toBerthError(err, this.socketPath, `pull ${ref}`));
        else resolve();
      }, (ev: { id?: string; status?: string; progressDetail?: { current?: number; total?: number }; error?: string; errorDetail?: { message?: string } }) => {
        if (ev.errorDetail || ev.error) failed = ev.errorDetail?.message ?? ev.error ?? 'unknown pull error';
        if (!ev.id || !ev.status || ev.id === tag) return;
        const l = layers.get(ev.id) ?? { current: 0, total: 0, done: false };
        layers.set(ev.id, l);
        if (ev.status === 'Downloading' && ev.progressDetail) {
          l.current = ev.progressDetail.current ?? l.current;
          l.total = ev.progressDetail.total ?? l.total;
        } else if (ev.status === 'Pull complete' || ev.status === 'Already exists') {
          l.done = true;
        }
        report();
      });
    });
    if (failed !== undefined) throw new ExternalCommandFailed(`pulling ${ref} failed: ${failed}`);
  }

  async push(ref: string, onProgress?: (line: string) => void, signal?: AbortSignal): Promise<{ digest: string }> {
    // Only Berth's own loopback registry: dockerd allows 127.0.0.0/8 without TLS by default, and it
    // requires Berth's credentials.
    if (!isLoopbackRegistryRef(ref)) throw new ExternalCommandFailed(`refusing to push ${ref}: berth only pushes to its own registry on 127.0.0.1`);
    if (signal?.aborted) throw pushCancelled(ref, signal);
    let stream: NodeJS.ReadableStream;
    try {
      stream = (await this.docker.getImage(ref).push({
        authconfig: this.authFor(ref),
        ...(signal ? { abortSignal: signal } : {}),
      })) as unknown as NodeJS.ReadableStream;
    } catch (e) {
      if (signal?.aborted) throw pushCancelled(ref, signal);
      throw toBerthError(e, this.socketPath, `push ${ref}`);
    }
    let digest: string | undefined;
    let pushError: string | undefined;
    const tail: string[] = [];
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: unknown) => {
          if (signal?.aborted) reject(pushCancelled(ref, signal));
          else if (err) reject(toBerthError(err, this.socketPath, `push ${ref}`));
          else resolve();
        },
        (ev: { status?: string; id?: string; progress?: string; error?: string; errorDetail?: { message?: string }; aux?: { Digest?: string } }) => {
          if (ev.aux?.Digest) digest = ev.aux.Digest;
          if (typeof ev.status === 'string' && !ev.progress) {
            const line = ev.id ? `${ev.id}: ${ev.status}` : ev.status;
            tail.push(line);
            if (tail.length > 30) tail.shift();
            onProgress?.(line);
            const m = /digest: (sha256:[0-9a-f]{64})/.exec(ev.status);
            if (m && !digest) digest = m[1];
          }
          if (ev.errorDetail || ev.error) pushError = ev.errorDetail?.message ?? ev.error ?? 'unknown push error';
        },
      );
    });
    if (signal?.aborted) throw pushCancelled(ref, signal);
    if (pushError !== undefined) throw new ExternalCommandFailed(`pushing ${ref} failed: ${pushError}\n--- last push output ---\n${tail.join('\n')}`);
    if (!digest) throw new ExternalCommandFailed(`pushing ${ref}: the engine reported no digest\n--- last push output ---\n${tail.join('\n')}`);
    return { digest };
  }

  async ensureVolume(name: string, labels: Record<string, string>): Promise<void> {
    try {
      await this.docker.getVolume(name).inspect();
      return;
    } catch (e) {
      if (statusOf(e) !== 404) throw toBerthError(e, this.socketPath, `inspect volume ${name}`);
    }
    await this.call(`create volume ${name}`, () => this.docker.createVolume({ Name: name, Labels: { ...labels, [LABEL.managed]: 'true' } }));
  }

  async removeVolume(name: string): Promise<boolean> {
    try {
      await this.docker.getVolume(name).remove();
      return true;
    } catch (e) {
      if (statusOf(e) === 404) return false;
      if (statusOf(e) === 409) throw new Conflict(`volume ${name} is still in use by a container: ${dockerMessage(e)}`);
      throw toBerthError(e, this.socketPath, `remove volume ${name}`);
    }
  }

  private readonly networkCreates = new Map<string, Promise<void>>();

  async ensureNetwork(name: string, labels: Record<string, string>): Promise<NetworkInfo> {
    // Docker allows two networks of one name: concurrent creates of this process are one create.
    let p = this.networkCreates.get(name);
    if (!p) {
      p = this.createNetwork(name, labels).finally(() => this.networkCreates.delete(name));
      this.networkCreates.set(name, p);
    }
    await p;
    const n = await this.inspectNetwork(name);
    if (!n) throw new EngineUnavailable(`network ${name} disappeared right after it was created`);
    return n;
  }

  private async createNetwork(name: string, labels: Record<string, string>): Promise<void> {
    const overlay = await this.swarmMode();
    const have = await this.inspectNetworkRaw(name);
    if (have) {
      if (!overlay || have.Driver === 'overlay') return;
      // Cluster mode on an engine that ran the app on one host: its bridge cannot span hosts. Empty, it
      // is replaced by the overlay; with containers still on it, it is refused by name.
      if (Object.keys(have.Containers ?? {}).length > 0) {
        throw new Conflict(`app network ${name} is a one-host bridge from before cluster mode and still has containers attached; ` +
          'an instance on a Swarm needs an overlay of that name: stop the app\'s old containers (berth rm APP, then deploy again)');
      }
      await this.removeNetwork(name);
    }
    const subnets = poolSubnets(this.networkPool);
    const used = new Set((await this.call('list networks', () => this.docker.listNetworks()))
      .flatMap((n) => (n.IPAM?.Config ?? []).map((c) => (c as { Subnet?: string }).Subnet ?? '')));
    // Start where the name hashes to: two servers on one engine rarely try the same subnet at once.
    const start = hashOf(name) % subnets.count;
    let lastError = 'every subnet is in use';
    for (let k = 0, tries = 0; k < subnets.count && tries < 20; k++) {
      const subnet = subnets.at((start + k) % subnets.count);
      if (used.has(subnet.cidr)) continue;
      tries++;
      try {
        await this.docker.createNetwork(networkCreateBody(name, labels, subnet, overlay ? 'overlay' : 'bridge'));
        return;
      } catch (e) {
        // Another process created it in between: that is the network we wanted.
        if (statusOf(e) === 409 && (await this.networkExists(name))) return;
        // Another server took this subnet since the list: the next one.
        if (/overlap|pool.*in use|already (allocated|in use)/i.test(dockerMessage(e))) {
          lastError = dockerMessage(e);
          continue;
        }
        throw toBerthError(e, this.socketPath, `create network ${name}`);
      }
    }
    throw new EngineUnavailable(`cannot create network ${name}: no free /24 in the network pool ${this.networkPool} (${lastError}); ` +
      'remove unused networks (berth rm --purge) or give a larger block with BERTH_NETWORK_POOL');
  }

  private async networkExists(name: string): Promise<boolean> {
    return (await this.inspectNetworkRaw(name)) !== undefined;
  }

  private async inspectNetwork(name: string): Promise<NetworkInfo | undefined> {
    const n = await this.inspectNetworkRaw(name);
    return n ? networkInfoOf(n) : undefined;
  }

  private async inspectNetworkRaw(name: string): Promise<Network | undefined> {
    try {
      const n = (await this.docker.getNetwork(name).inspect()) as Network;
      // Docker resolves a name prefix of an id too: only the exact name counts.
      return n.Name === name ? n : undefined;
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw toBerthError(e, this.socketPath, `inspect network ${name}`);
    }
  }

  async listNetworks(labels: Record<string, string>): Promise<NetworkInfo[]> {
    const filters = { label: Object.entries({ ...labels, [LABEL.managed]: 'true' }).map(([k, v]) => `${k}=${v}`) };
    const list = await this.call('list networks', () => this.docker.listNetworks({ filters }));
    return list.map((n) => networkInfoOf(n as Network));
  }

  async removeNetwork(name: string): Promise<boolean> {
    if (!(await this.networkExists(name))) return false;
    try {
      await this.docker.getNetwork(name).remove();
      return true;
    } catch (e) {
      if (statusOf(e) === 404) return false;
      // A bridge with containers (403/409); an overlay a Swarm service still names ("in use by task/service").
      if (statusOf(e) === 403 || statusOf(e) === 409 || /in use by|active endpoints/i.test(dockerMessage(e))) {
        throw new Conflict(`network ${name} still has containers attached: ${dockerMessage(e)}`);
      }
      throw toBerthError(e, this.socketPath, `remove network ${name}`);
    }
  }

  async volumeUsage(names: string[]): Promise<Record<string, VolumeUsage>> {
    const out: Record<string, VolumeUsage> = {};
    if (names.length === 0) return out;
    const want = new Set(names);
    // `docker system df -v`: the engine walks each volume's directory for its size (UsageData.Size, -1 when unknown).
    const df = await this.call('disk usage', () => this.docker.df()) as { Volumes?: Array<{ Name: string; UsageData?: { Size?: number; RefCount?: number } }> };
    for (const v of df.Volumes ?? []) {
      if (!want.has(v.Name)) continue;
      const size = v.UsageData?.Size;
      out[v.Name] = { sizeBytes: typeof size === 'number' && size >= 0 ? size : null, containers: Math.max(0, v.UsageData?.RefCount ?? 0) };
    }
    return out;
  }

  async create(spec: ContainerSpec): Promise<string> {
    if (await this.swarmMode()) return this.swarm.create(spec);
    const id = await this.createContainer(spec);
    // The create call attaches one network; the others are connected before the container starts.
    for (const n of spec.network?.networks.slice(1) ?? []) {
      try {
        await this.docker.getNetwork(n.name).connect({ Container: id, EndpointConfig: { Aliases: n.aliases } });
      } catch (e) {
        await this.remove(id);
        throw toBerthError(e, this.socketPath, `connect container ${spec.name} to network ${n.name}`);
      }
    }
    return id;
  }

  private async createContainer(spec: ContainerSpec): Promise<string> {
    const body = this.createBody(spec);
    try {
      return (await this.docker.createContainer(body)).id;
    } catch (e) {
      const status = statusOf(e);
      if (status === 404 && /image/i.test(dockerMessage(e))) {
        throw new NotFound(
          `image ${spec.image} does not exist on the Docker Engine at ${this.socketPath}: build it first ` +
            '(berth never pulls images; base images come from `bash scripts/images.sh`).',
          { cause: e },
        );
      }
      if (status !== 409) throw toBerthError(e, this.socketPath, `create container ${spec.name}`);
      // A container of that name exists: a leftover of ours (same berth installation) that no longer
      // runs, e.g. created just before a crash of the control plane, is replaced; anything else is a
      // real conflict.
      const stale = await this.inspectRaw(spec.name);
      if (!stale) return (await this.call(`create container ${spec.name}`, () => this.docker.createContainer(body))).id;
      const staleLabels = stale.Config?.Labels ?? {};
      const ours = staleLabels[LABEL.managed] === 'true' && staleLabels[LABEL.cluster] === spec.labels[LABEL.cluster];
      if (!ours || stale.State?.Running) {
        throw new Conflict(
          `a container named ${spec.name} already exists (${stale.Id.slice(0, 12)}, ` +
            `${stale.State?.Running ? 'running' : 'not running'}, ${ours ? 'managed by this berth' : 'not managed by this berth'}); remove it or pick another name`,
          { cause: e },
        );
      }
      this.log.info({ container: stale.Id, name: spec.name }, 'removing stale container with the same name');
      await this.remove(stale.Id);
      return (await this.call(`create container ${spec.name}`, () => this.docker.createContainer(body))).id;
    }
  }

  async start(id: string): Promise<void> {
    if (isServiceId(id)) return this.swarm.start(id);
    try {
      await this.docker.getContainer(id).start();
    } catch (e) {
      if (statusOf(e) === 304) return; // already started
      const msg = dockerMessage(e);
      // "Bind for 0.0.0.0:8080 failed: port is already allocated", "listen tcp4 127.0.0.1:8080: bind: address already in use"
      const m = /port is already allocated|address already in use/i.test(msg) ? [...msg.matchAll(/(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:]*\]):(\d+)/gi)].at(-1) : undefined;
      if (m) {
        throw new Conflict(`host port ${m[2]} on ${m[1]} is already in use on this host (by another program or container): ` +
          'free it, or publish another port (or none: Berth then allocates one per instance)', { cause: e });
      }
      throw toBerthError(e, this.socketPath, `start container ${id}`);
    }
  }

  async stop(id: string, timeoutS: number): Promise<void> {
    if (isServiceId(id)) return this.swarm.stop(id, timeoutS);
    try {
      await this.docker.getContainer(id).stop({ t: Math.max(0, Math.round(timeoutS)) });
    } catch (e) {
      const s = statusOf(e);
      if (s === 304 || s === 404) return;
      throw toBerthError(e, this.socketPath, `stop container ${id}`);
    }
  }

  async kill(id: string, signal: string): Promise<void> {
    if (isServiceId(id)) {
      const dp = /^(SIG)?KILL$/i.test(signal) ? undefined : this.remote();
      return dp ? (await dp).kill(id, signal) : this.swarm.kill(id, signal);
    }
    try {
      await this.docker.getContainer(id).kill({ signal });
    } catch (e) {
      const s = statusOf(e);
      // 409 "is not running": nothing to signal, which is what the caller wanted.
      if (s === 404 || s === 304 || (s === 409 && /not running/i.test(dockerMessage(e)))) return;
      throw toBerthError(e, this.socketPath, `kill container ${id} with ${signal}`);
    }
  }

  async remove(id: string): Promise<void> {
    if (isServiceId(id)) return this.swarm.remove(id);
    try {
      // v: anonymous volumes go with their container (named volumes are never removed by this).
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (e) {
      const s = statusOf(e);
      if (s === 404 || s === 304) return;
      if (s === 409 && /already in progress/i.test(dockerMessage(e))) return;
      throw toBerthError(e, this.socketPath, `remove container ${id}`);
    }
  }

  /**
   * This engine's container events, and in cluster mode (a data plane given: useDataPlane) those of
   * every host's engine too (host-events.ts): a task's death or health flip on another host wakes its
   * service like a local container's.
   */
  watch(onEvent: (e: EngineEvent) => void): () => void {
    const unwatch = this.watchLocal(onEvent);
    if (!this.dataPlaneMaker) return unwatch;
    this.hostListeners.add(onEvent);
    this.startHostFeed();
    return () => {
      unwatch();
      this.hostListeners.delete(onEvent);
      if (this.hostListeners.size === 0) this.stopHostFeed();
    };
  }

  /** What the hosts' engines say about task containers (empty until cluster mode is watched). */
  hostEventsHealth(): HostEventsHealth[] {
    return this.hostEvents?.health() ?? [];
  }

  private startHostFeed(): void {
    if (this.hostFeedTimer) return;
    const feed = (this.hostEvents ??= new HostEvents({
      logger: this.log,
      onEvent: (host, e) => {
        // Deaths and health flips on other hosts are worth a line (rare, and why an instance went); the rest is debug.
        const notable = e.action === 'die' || e.action.startsWith('health_status');
        this.log[notable ? 'info' : 'debug']({ host, action: e.action, container: e.id.slice(0, 12), service: e.labels[SWARM_TASK_LABEL]?.slice(0, 12), app: e.labels[LABEL.app] }, 'host engine event');
        for (const l of [...this.hostListeners]) {
          try {
            l(e);
          } catch (err) {
            this.log.error({ err, event: e }, 'engine event handler threw');
          }
        }
      },
    }));
    this.swarm.observe((id) => feed.observed(id));
    const tick = (): void => void this.syncHostFeed();
    this.hostFeedTimer = setInterval(tick, HOST_FEED_SYNC_MS);
    this.hostFeedTimer.unref();
    tick();
  }

  private stopHostFeed(): void {
    if (this.hostFeedTimer) clearInterval(this.hostFeedTimer);
    this.hostFeedTimer = undefined;
    this.hostEvents?.stop();
  }

  /** Follows the Swarm's ready nodes' engines (none outside cluster mode); this host's through its own socket. */
  private async syncHostFeed(): Promise<void> {
    if (this.hostFeedSyncing || !this.hostFeedTimer) return;
    this.hostFeedSyncing = true;
    try {
      const feed = this.hostEvents!;
      if (!(await this.swarmMode())) return feed.sync([]);
      const dp = await this.remote();
      if (!dp || !this.hostFeedTimer) return;
      const local = this.taskEventSource();
      feed.sync(await dp.followedHosts(local));
    } catch (err) {
      this.log.warn({ err: String((err as Error)?.message ?? err) }, 'host engines\' events: hosts not listed; retrying');
    } finally {
      this.hostFeedSyncing = false;
    }
  }

  /**
   * This engine as the host feed follows it (host-events.ts): the events and a listing of Berth's
   * Swarm task containers here. Those carry Berth's labels as their service spec gives them (the
   * installation's `io.berth.cluster`, app, env, service), not `io.berth.managed`: that one is put
   * on plain containers only, so the cluster label is what is filtered on.
   */
  taskEventSource(): HostEventSource {
    return {
      watch: (cb) => this.watchLocal((e) => {
        if (e.kind !== 'container' || e.labels[SWARM_TASK_LABEL]) cb(e);
      }, LABEL.cluster),
      observe: () => this.taskContainers(),
    };
  }

  /** Berth's Swarm task containers on this engine, from one list call (the state and health its Status says). */
  async taskContainers(): Promise<Array<Omit<ObservedContainer, 'host' | 'at'>>> {
    const rows = await this.call('list containers', () => this.docker.listContainers({ all: true, filters: { label: [LABEL.cluster, SWARM_TASK_LABEL] } }));
    return rows.map((r) => {
      const exit = /^Exited \((\d+)\)/.exec(r.Status ?? '');
      const h = /\((?:health: )?(starting|healthy|unhealthy)\)/.exec(r.Status ?? '')?.[1] as ContainerHealth | undefined;
      return { id: r.Id, labels: { ...(r.Labels ?? {}) }, running: r.State === 'running', ...(exit ? { exitCode: Number(exit[1]) } : {}), health: h ?? 'none' };
    });
  }

  /** This engine's own event stream (`label`: the containers it is about; Berth's plain containers by default). */
  private watchLocal(onEvent: (e: EngineEvent) => void, label = `${LABEL.managed}=true`): () => void {
    let stopped = false;
    let state: 'init' | 'up' | 'down' = 'init';
    let attempt = 0;
    let timer: NodeJS.Timeout | undefined;
    let abort: AbortController | undefined;
    let stream: Readable | undefined;

    const emit = (e: EngineEvent): void => {
      try {
        onEvent(e);
      } catch (err) {
        this.log.error({ err, event: e }, 'engine event handler threw');
      }
    };

    const lost = (err: unknown): void => {
      if (stopped) return;
      stream = undefined;
      if (state !== 'down') {
        state = 'down';
        const msg = isConnectionError(err) ? toBerthError(err, this.socketPath, 'events').message : String((err as Error)?.message ?? err);
        this.log.warn({ err: msg }, 'Docker event stream lost; reconnecting');
        emit({ kind: 'disconnected', error: msg });
      }
      const delay = backoffMs(attempt++, this.reconnectBaseMs, this.reconnectMaxMs);
      timer = setTimeout(() => {
        timer = undefined;
        void retry();
      }, delay);
    };

    const retry = async (): Promise<void> => {
      if (stopped) return;
      const ac = (abort = new AbortController());
      // A wedged engine must not stall the retry loop: give each ping a deadline.
      const deadline = setTimeout(() => ac.abort(), PING_TIMEOUT_MS);
      try {
        // dockerode's ping takes an abortSignal, its typings do not say so.
        const ping = this.docker.ping.bind(this.docker) as unknown as (o: { abortSignal: AbortSignal }) => Promise<unknown>;
        await ping({ abortSignal: ac.signal });
      } catch (e) {
        lost(e);
        return;
      } finally {
        clearTimeout(deadline);
      }
      await subscribe();
    };

    const subscribe = async (): Promise<void> => {
      if (stopped) return;
      abort = new AbortController();
      let s: Readable;
      try {
        s = (await this.docker.getEvents({
          filters: { type: ['container'], label: [label] },
          abortSignal: abort.signal,
        })) as unknown as Readable;
      } catch (e) {
        lost(e);
        return;
      }
      if (stopped) {
        s.destroy();
        return;
      }
      stream = s;
      attempt = 0;
      state = 'up';
      this.log.debug('subscribed to Docker events');
      emit({ kind: 'connected' });
      const lines = new LineSplitter();
      let ended = false;
      const handle = (line: string): void => {
        let ev: { Type?: string; Action?: string; status?: string; id?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
        try {
          ev = JSON.parse(line) as typeof ev;
        } catch {
          this.log.warn({ line: line.slice(0, 200) }, 'unparsable Docker event');
          return;
        }
        if ((ev.Type ?? 'container') !== 'container') return;
        const action = ev.Action ?? ev.status;
        const id = ev.Actor?.ID ?? ev.id;
        if (!action || !id || NOISE_ACTIONS.test(action)) return;
        // Actor.Attributes holds the container's labels plus name/image (and exitCode on die).
        emit({ kind: 'container', action, id, labels: { ...(ev.Actor?.Attributes ?? {}) } });
      };
      const finish = (err?: unknown): void => {
        if (ended) return;
        ended = true;
        for (const l of lines.end()) handle(l);
        if (!stopped) lost(err ?? new Error('Docker event stream ended'));
      };
      s.on('data', (chunk: Buffer) => {
        for (const l of lines.push(chunk)) handle(l);
      });
      s.on('error', (err) => finish(err));
      s.on('end', () => finish());
      s.on('close', () => finish());
    };

    void subscribe();
    return () => {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      abort?.abort();
      stream?.destroy();
      stream = undefined;
    };
  }

  async logs(
    id: string,
    opts: { follow: boolean; tail?: number; since?: number | string; signal?: AbortSignal },
    onLine: (l: LogLine) => void,
  ): Promise<void> {
    if (opts.signal?.aborted) return;
    const dp = isServiceId(id) ? this.remote() : undefined;
    if (dp) return (await dp).logs(id, opts, onLine);
    const emit = (stream: 'stdout' | 'stderr', raw: string): void => {
      const { time, text } = splitTimestamp(raw);
      onLine({ containerId: id, stream, time, text });
    };
    const demux = new LogDemuxer(emit);
    const query = {
      stdout: true,
      stderr: true,
      timestamps: true,
      ...(opts.tail !== undefined ? { tail: Math.max(0, Math.floor(opts.tail)) } : {}),
      ...(opts.since !== undefined ? { since: typeof opts.since === 'string' ? opts.since : formatSince(opts.since) } : {}),
      ...(opts.signal ? { abortSignal: opts.signal } : {}),
    };
    const container = this.docker.getContainer(id);
    let res: Buffer | Readable;
    try {
      // dockerode resolves a Buffer without follow and a stream with it.
      res = opts.follow
        ? ((await container.logs({ ...query, follow: true })) as unknown as Readable)
        : ((await container.logs({ ...query, follow: false })) as unknown as Buffer);
    } catch (e) {
      if (isAbortError(e) || opts.signal?.aborted) return;
      throw toBerthError(e, this.socketPath, `logs of container ${id}`);
    }
    if (Buffer.isBuffer(res)) {
      demux.push(res);
      demux.end();
      return;
    }
    const s = res;
    await new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: unknown): void => {
        if (done) return;
        done = true;
        opts.signal?.removeEventListener('abort', onAbort);
        demux.end();
        if (err && !isAbortError(err) && !opts.signal?.aborted) reject(toBerthError(err, this.socketPath, `logs of container ${id}`));
        else resolve();
      };
      const onAbort = (): void => {
        s.destroy();
        finish();
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      s.on('data', (chunk: Buffer) => demux.push(chunk));
      s.on('error', (err) => finish(err));
      s.on('end', () => finish());
      s.on('close', () => finish());
    });
  }

  async exec(id: string, cmd: string[], out: ExecOutput, signal?: AbortSignal): Promise<{ exitCode: number }> {
    const dp = isServiceId(id) ? this.remote() : undefined;
    if (dp) return (await dp).exec(id, cmd, out, signal);
    const what = `exec in container ${id.slice(0, 12)}`;
    let stream: Readable;
    let ex: Docker.Exec;
    try {
      ex = await this.docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, AttachStdin: false, Tty: false });
      stream = (await ex.start({ hijack: true, stdin: false })) as unknown as Readable;
    } catch (e) {
      throw toBerthError(e, this.socketPath, what);
    }
    const demux = new FrameDemuxer((s, payload) => (s === 'stdout' ? out.stdout(payload) : out.stderr(payload)));
    await new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: unknown): void => {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        if (err && !signal?.aborted) reject(toBerthError(err, this.socketPath, what));
        else resolve();
      };
      const onAbort = (): void => {
        stream.destroy();
        finish();
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      stream.on('data', (chunk: Buffer) => demux.push(chunk));
      stream.on('error', (err) => finish(err));
      stream.on('end', () => finish());
      stream.on('close', () => finish());
    });
    if (signal?.aborted) return { exitCode: -1 };
    // The output has ended; the exit code is recorded a moment later.
    for (let i = 0; ; i++) {
      const info = await this.call(what, () => ex.inspect());
      if (!info.Running && info.ExitCode !== null) return { exitCode: info.ExitCode };
      if (i >= 100) throw new EngineUnavailable(`${what}: the command's output ended but Docker reports it still running`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stats(id: string): Promise<ContainerStats | undefined> {
    const dp = isServiceId(id) ? this.remote() : undefined;
    if (dp) return (await dp).stats(id);
    try {
      // stream:false makes Docker take two readings ~1 s apart, so precpu_stats is filled in.
      const raw = (await this.docker.getContainer(id).stats({ stream: false })) as unknown as DockerStatsJson;
      if (!raw.read || raw.read.startsWith('0001-')) return undefined; // not running: Docker sends zeros
      return containerStatsFromDocker(raw);
    } catch (e) {
      if (statusOf(e) === 404 || statusOf(e) === 409) return undefined;
      throw toBerthError(e, this.socketPath, `stats of container ${id}`);
    }
  }

  private async inspectRaw(idOrName: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(idOrName).inspect();
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw toBerthError(e, this.socketPath, `inspect container ${idOrName}`);
    }
  }

  private createBody(spec: ContainerSpec): Docker.ContainerCreateOptions {
    const body = this.createBodyWithoutSysctls(spec);
    // net.* sysctls belong to the container's own network namespace; on the host network they would be the host's (Docker refuses them).
    if (spec.sysctls && Object.keys(spec.sysctls).length > 0 && body.HostConfig && body.HostConfig.NetworkMode !== 'host') body.HostConfig.Sysctls = { ...spec.sysctls };
    return body;
  }

  private createBodyWithoutSysctls(spec: ContainerSpec): Docker.ContainerCreateOptions {
    const hc = spec.healthcheck;
    const net = spec.network;
    const first = net?.networks[0];
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (const p of net?.publish ?? []) {
      (bindings[`${p.target}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp, HostPort: p.hostPort ? String(p.hostPort) : '' });
    }
    return {
      ...(first ? { NetworkingConfig: { EndpointsConfig: { [first.name]: { Aliases: first.aliases } } } } : {}),
      ...(Object.keys(bindings).length ? { ExposedPorts: Object.fromEntries(Object.keys(bindings).map((k) => [k, {}])) } : {}),
      name: spec.name,
      Image: spec.image,
      Labels: { ...spec.labels, [LABEL.managed]: 'true' },
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      ...(spec.cmd ? { Cmd: spec.cmd } : {}),
      ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
      ...(spec.stopSignal ? { StopSignal: spec.stopSignal } : {}),
      ...(spec.user !== undefined ? { User: spec.user } : {}),
      ...(spec.workingDir !== undefined ? { WorkingDir: spec.workingDir } : {}),
      ...(spec.stopTimeoutS !== undefined ? { StopTimeout: Math.round(spec.stopTimeoutS) } : {}),
      ...(hc
        ? {
            Healthcheck: {
              Test: hc.test,
              Interval: Math.round(hc.intervalMs * NS_PER_MS),
              Timeout: Math.round(hc.timeoutMs * NS_PER_MS),
              Retries: hc.retries,
              StartPeriod: Math.round(hc.startPeriodMs * NS_PER_MS),
            },
          }
        : {}),
      HostConfig: {
        NetworkMode: first ? first.name : 'host',
        ...(Object.keys(bindings).length ? { PortBindings: bindings } : {}),
        RestartPolicy: { Name: 'no' },
        LogConfig: { Type: 'json-file', Config: { 'max-size': this.logMaxSize, 'max-file': String(this.logMaxFile) } },
        ...(spec.nanoCpus !== undefined ? { NanoCpus: Math.round(spec.nanoCpus) } : {}),
        ...(spec.memoryBytes !== undefined ? { Memory: Math.round(spec.memoryBytes) } : {}),
        ...(spec.shmSizeBytes !== undefined ? { ShmSize: Math.round(spec.shmSizeBytes) } : {}),
        ...(spec.groupAdd?.length ? { GroupAdd: spec.groupAdd } : {}),
        // Every container Berth creates (instances, pipeline tests) gets Berth's defaults unless its spec says otherwise.
        CapDrop: spec.capDrop ?? [...BERTH_DROPPED_CAPS],
        ...(spec.capAdd?.length ? { CapAdd: spec.capAdd } : {}),
        SecurityOpt: [...(spec.noNewPrivileges === false ? [] : ['no-new-privileges']), ...(spec.unconfined ?? []).map((u) => `${u}=unconfined`)],
        ...(spec.pidsLimit !== undefined ? { PidsLimit: spec.pidsLimit } : {}),
        ...(spec.privileged ? { Privileged: true } : {}),
        ...hostNamespaceModes(spec.hostNamespaces ?? []),
        ...(spec.devices?.length ? { Devices: spec.devices.map((d) => ({ PathOnHost: d.source, PathInContainer: d.target, CgroupPermissions: d.permissions })) } : {}),
        ...(spec.readOnlyRootfs ? { ReadonlyRootfs: true } : {}),
        ...(spec.tmpfs && Object.keys(spec.tmpfs).length ? { Tmpfs: { ...spec.tmpfs } } : {}),
        ...(spec.init ? { Init: true } : {}),
        ...(spec.ulimits?.length ? { Ulimits: spec.ulimits.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })) } : {}),
        ...(spec.extraHosts?.length ? { ExtraHosts: [...spec.extraHosts] } : {}),
        ...(spec.dns?.servers.length ? { Dns: [...spec.dns.servers], DnsSearch: [...spec.dns.search] } : {}),
        Mounts: spec.mounts.map((m) => ({
          Type: m.type,
          // An empty source is an anonymous volume, removed with the container (remove with v: true).
          Source: m.source,
          Target: m.target,
          ReadOnly: m.readOnly,
        })),
      },
    };
  }

  private toInfo(c: Docker.ContainerInspectInfo): ContainerInfo {
    const st = c.State;
    const h = (st as { Health?: { Status?: string; Log?: { ExitCode?: number; Output?: string }[] } }).Health;
    const healthStatus = h?.Status;
    const health: ContainerHealth =
      healthStatus === 'starting' || healthStatus === 'healthy' || healthStatus === 'unhealthy' ? healthStatus : 'none';
    const lastCheck = h?.Log?.at(-1);
    const info: ContainerInfo = {
      id: c.Id,
      name: c.Name.replace(/^\//, ''),
      image: c.Config?.Image ?? c.Image,
      labels: { ...(c.Config?.Labels ?? {}) },
      state: st.Status,
      running: st.Running,
      health,
      ...(lastCheck ? { healthLog: { exitCode: lastCheck.ExitCode ?? -1, output: lastCheck.Output ?? '' } } : {}),
      host: this.hostName,
    };
    const ip = Object.entries(c.NetworkSettings?.Networks ?? {}).find(([name, n]) => name !== 'host' && n?.IPAddress)?.[1]?.IPAddress;
    if (ip) info.ip = ip;
    const started = st.StartedAt && st.StartedAt !== ZERO_TIME;
    if (started) info.startedAt = st.StartedAt;
    if (st.FinishedAt && st.FinishedAt !== ZERO_TIME) info.finishedAt = st.FinishedAt;
    // ExitCode is 0 for never-started containers: report it once the container ran, or when a start
    // failed (Docker then keeps state `created` with ExitCode 127/128 and the reason in State.Error).
    if (!st.Running && (started || st.ExitCode !== 0)) info.exitCode = st.ExitCode;
    if (started) info.oomKilled = st.OOMKilled;
    return info;
  }

  /** Runs a Docker call, mapping its failures onto BerthErrors. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw toBerthError(e, this.socketPath, what);
    }
  }
  async removeImage(ref: string): Promise<boolean> {
    let id: string;
    try {
      id = (await this.docker.getImage(ref).inspect()).Id;
    } catch (e) {
      if (statusOf(e) === 404) return false;
      throw toBerthError(e, this.socketPath, `inspect image ${ref}`);
    }
    // Docker itself only refuses to delete an image's LAST reference while a container uses it;
    // untagging an image a container still runs would lose track of it, so any use refuses.
    const all = await this.call('list containers', () => this.docker.listContainers({ all: true }));
    if (all.some((c) => c.ImageID === id)) return false;
    try {
      await this.docker.getImage(ref).remove({ force: false, noprune: false });
      return true;
    } catch (e) {
      // 404: removed meanwhile; 409: a container was created from it meanwhile.
      if (statusOf(e) === 404 || statusOf(e) === 409) return false;
      throw toBerthError(e, this.socketPath, `remove image ${ref}`);
    }
  }

  async pruneBuildCache(keepBytes: number): Promise<number> {
    // dockerd 20.10 never collects BuildKit's cache by itself: on a small server it grows without end.
    // Not dockerode's pruneBuilder(): it sends no query, and an empty prune empties the whole cache.
    const res = await this.call('prune build cache', () => new Promise<{ SpaceReclaimed?: number }>((resolve, reject) => {
      this.docker.modem.dial({
        path: '/build/prune?', method: 'POST', options: { 'keep-storage': String(keepBytes) }, statusCodes: { 200: true, 500: 'server error' },
      }, (err: unknown, data: unknown) => (err ? reject(err) : resolve((data ?? {}) as { SpaceReclaimed?: number })));
    }));
    return res.SpaceReclaimed ?? 0;
  }
}

/** The subset of Docker's stats JSON that Berth reads (cgroup v1 and v2 shapes). */
export interface DockerStatsJson {
  read?: string;
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
  blkio_stats?: { io_service_bytes_recursive?: { op?: string; value?: number }[] | null };
}

/** Docker stats JSON → ContainerStats, with the same arithmetic as the `docker stats` CLI. */
export function containerStatsFromDocker(raw: DockerStatsJson): ContainerStats {
  const cpu = raw.cpu_stats ?? {};
  const pre = raw.precpu_stats ?? {};
  const cpuDelta = (cpu.cpu_usage?.total_usage ?? 0) - (pre.cpu_usage?.total_usage ?? 0);
  const sysDelta = (cpu.system_cpu_usage ?? 0) - (pre.system_cpu_usage ?? 0);
  const cpus = cpu.online_cpus || cpu.cpu_usage?.percpu_usage?.length || 1;
  const cpuPercent = cpuDelta > 0 && sysDelta > 0 ? (cpuDelta / sysDelta) * cpus * 100 : 0;
  const mem = raw.memory_stats ?? {};
  const ms = mem.stats ?? {};
  // cgroup v1 reports total_inactive_file, v2 inactive_file; the CLI subtracts whichever exists.
  const cache = ms.total_inactive_file ?? ms.inactive_file ?? 0;
  const usage = mem.usage ?? 0;
  const memoryBytes = cache < usage ? usage - cache : usage;
  // With host networking Docker has no per-container network namespace, so no `networks` key: the
  // only counters would be the host's. Report 0 rather than the host's traffic. App networks count.
  let netRxBytes = 0;
  let netTxBytes = 0;
  for (const n of Object.values(raw.networks ?? {})) {
    netRxBytes += n.rx_bytes ?? 0;
    netTxBytes += n.tx_bytes ?? 0;
  }
  let blockReadBytes = 0;
  let blockWriteBytes = 0;
  for (const e of raw.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = (e.op ?? '').toLowerCase();
    if (op === 'read') blockReadBytes += e.value ?? 0;
    else if (op === 'write') blockWriteBytes += e.value ?? 0;
  }
  return { cpuPercent, memoryBytes, memoryLimitBytes: mem.limit ?? 0, netRxBytes, netTxBytes, blockReadBytes, blockWriteBytes };
}

/** Progress lines of one build: passed on, and the last 30 kept for the error of a failed build. */
class BuildOutput {
  private readonly last: string[] = [];
  constructor(private readonly onProgress?: (line: string) => void) {}

  line(l: string): void {
    this.last.push(l);
    if (this.last.length > 30) this.last.shift();
    this.onProgress?.(l);
  }

  tail(): string {
    return this.last.join('\n');
  }
}

function buildCancelled(tag: string, signal: AbortSignal | undefined): ExternalCommandFailed {
  return new ExternalCommandFailed(`the build of ${tag} was cancelled (its request was aborted); nothing was tagged`, { cause: signal?.reason });
}

function pushCancelled(ref: string, signal: AbortSignal): ExternalCommandFailed {
  return new ExternalCommandFailed(`the push of ${ref} was cancelled (its request was aborted); push again to publish it`, { cause: signal.reason });
}

/**
 * True for dockerd's refusals of a BuildKit build request ("buildkit not supported by daemon",
 * "BuildKit is not enabled", an unknown builder version), as opposed to a bad build.
 */
export function isBuildkitRefusal(message: string): boolean {
  return /buildkit|builder version|unsupported.*version|version.*not supported/i.test(message);
}

function formatMiB(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return `${Number.isInteger(mib) ? mib : mib.toFixed(1)} MiB`;
}

/** Docker's `since`: Unix seconds with up to nanosecond fraction. */
function formatSince(unixSeconds: number): string {
  const s = Math.floor(unixSeconds);
  const ns = Math.round((unixSeconds - s) * 1e9);
  return `${s}.${String(Math.min(ns, 999_999_999)).padStart(9, '0')}`;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The /24 subnets of an IPv4 block (`10.208.0.0/12` → 4096 of them), by index. */
export function poolSubnets(pool: string): { count: number; at(i: number): { cidr: string; gateway: string } } {
  const [addr, bits] = pool.split('/') as [string, string];
  const base = addr.split('.').reduce((n, o) => n * 256 + Number(o), 0) >>> 0;
  const prefix = Number(bits);
  const count = 2 ** (24 - prefix);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const first = (base & mask) >>> 0;
  const dotted = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
  return {
    count,
    at: (i) => {
      const net = (first + i * 256) >>> 0;
      return { cidr: `${dotted(net)}/24`, gateway: dotted(net + 1) };
    },
  };
}

function hashOf(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}


/** `pid: host` and friends as Docker's HostConfig fields. */
function hostNamespaceModes(ns: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (ns.includes('pid')) out.PidMode = 'host';
  if (ns.includes('ipc')) out.IpcMode = 'host';
  if (ns.includes('uts')) out.UTSMode = 'host';
  if (ns.includes('userns')) out.UsernsMode = 'host';
  if (ns.includes('cgroup')) out.CgroupnsMode = 'host';
  return out;
}

/** The host-engine side of cluster mode as DockerEngine uses it (host-engines.ts SwarmDataPlane). */
export interface HostEngineHealthLike {
  host: string;
  endpoint: string;
  up: boolean;
  error?: string;
  at: number;
}

export interface RemoteDataPlane {
  logs(id: string, opts: { follow: boolean; tail?: number; since?: number | string; signal?: AbortSignal }, onLine: (l: LogLine) => void): Promise<void>;
  stats(id: string): Promise<ContainerStats | undefined>;
  kill(id: string, signal: string): Promise<void>;
  exec(id: string, cmd: string[], out: ExecOutput, signal?: AbortSignal): Promise<{ exitCode: number }>;
  checkHosts(): Promise<HostEngineHealthLike[]>;
  /** The hosts whose engines' events to follow: every ready node's (this host's through `local`). */
  followedHosts(local: HostEventSource): Promise<FollowedHost[]>;
  readonly engines: { health(): HostEngineHealthLike[] };
}
