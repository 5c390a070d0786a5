import { createHash } from 'node:crypto';
import { Conflict, EngineUnavailable, ExternalCommandFailed, NotFound } from '../../core/errors.ts';
import { planPlacement, poolOf } from '../../core/placement.ts';
import {
  DEFAULT_POOL,
  HOST_LABEL,
  LABEL,
  systemClock,
  type Clock,
  type ContainerHealth,
  type ContainerInfo,
  type ContainerSpec,
  type ContainerStats,
  type Engine,
  type EngineEvent,
  type LogLine,
  type ImageInfo,
  type BuildOptions,
  type ClusterMode,
  type HostInfo,
  type HostState,
  type NetworkInfo,
  type PullProgress,
  type Resources,
} from '../../core/ports.ts';

/** Calls whose next invocation a test can make fail (`failNext`). */
export type FailingCall = 'build' | 'push' | 'pull' | 'create' | 'start' | 'stop' | 'remove';

interface FakeContainer {
  info: ContainerInfo;
  spec: ContainerSpec;
  logs: LogLine[];
  stats?: ContainerStats;
}

/** A simulated host of a fake cluster (constructor option `hosts`). */
export interface FakeHostOptions {
  name: string;
  /** Default: 10.99.X.Y from the host's position. */
  address?: string;
  /** Sets the label io.berth.pool (default pool when absent). */
  pool?: string;
  labels?: Record<string, string>;
  role?: 'manager' | 'worker';
  /** Default 2 CPUs and 4 GiB. */
  cpus?: number;
  memoryBytes?: number;
}

interface FakeHost {
  id: string;
  name: string;
  address: string;
  role: 'manager' | 'worker';
  labels: Record<string, string>;
  capacity: Resources;
  draining: boolean;
  up: boolean;
}

/** A service's key from its containers' labels (undefined without all three). */
function serviceKeyOf(labels: Record<string, string | undefined>): string | undefined {
  const app = labels[LABEL.app];
  const env = labels[LABEL.env];
  const service = labels[LABEL.service];
  return app === undefined || env === undefined || service === undefined ? undefined : `${app}\0${env}\0${service}`;
}

/** The containers by id, with indexes by service (labels) and by name, kept by set and delete (a container's labels and name never change). */
class ContainerMap extends Map<string, FakeContainer> {
  private readonly services = new Map<string, Set<FakeContainer>>();
  private readonly names = new Map<string, FakeContainer>();

  override set(id: string, c: FakeContainer): this {
    const old = this.get(id);
    if (old) this.unindex(old);
    super.set(id, c);
    const k = serviceKeyOf(c.info.labels);
    if (k !== undefined) {
      let set = this.services.get(k);
      if (!set) this.services.set(k, (set = new Set()));
      set.add(c);
    }
    this.names.set(c.info.name, c);
    return this;
  }

  override delete(id: string): boolean {
    const old = this.get(id);
    if (old) this.unindex(old);
    return super.delete(id);
  }

  ofService(key: string): Iterable<FakeContainer> {
    return this.services.get(key) ?? [];
  }

  named(name: string): FakeContainer | undefined {
    return this.names.get(name);
  }

  private unindex(c: FakeContainer): void {
    const k = serviceKeyOf(c.info.labels);
    if (k !== undefined) this.services.get(k)?.delete(c);
    if (this.names.get(c.info.name) === c) this.names.delete(c.info.name);
  }
}

/**
 * In-memory Engine for unit tests of controllers. Containers move through created → running → exited
 * like Docker's; events are delivered synchronously to watchers. Test hooks simulate what the real
 * engine does on its own: a container dying (`crash`), health flips (`setHealth`), an engine outage
 * (`outage`/`recover`). It never replaces the real-engine test suite.
 */
export class FakeEngine implements Engine {
  readonly hostName: string;
  /** Every mutating call, e.g. `create web-1`, `stop <id>`: for assertions on what a controller did. */
  readonly calls: string[] = [];
  private readonly containers = new ContainerMap();
  private readonly images: Map<string, string>;
  /** Images in the registries a pull reads (reference → id). */
  private readonly remote = new Map<string, string>();
  private readonly volumes = new Map<string, Record<string, string>>();
  private readonly watchers = new Set<(e: EngineEvent) => void>();
  private readonly clock: Clock;
  private down = false;
  private seq = 0;
  private readonly failures = new Map<FailingCall, Error[]>();
  private held: Promise<void> | undefined;
  private mode: ClusterMode;
  private readonly hostMap = new Map<string, FakeHost>();
  private pendingReason: string | undefined;

  /**
   * `hosts`: a simulated Swarm of these hosts (hostName is the first one's, its manager); without it,
   * one-host mode on `hostName` (address 127.0.0.1, 2 CPUs, 4 GiB). In a cluster, `create` places the
   * container like core/placement's planPlacement (pool, constraints, spread over the service's
   * instances, capacity) and refuses with its reason (Conflict) when nothing fits: where Swarm would
   * leave a task Pending, the fake creates nothing.
   */
  constructor(opts: { hostName?: string; images?: string[]; clock?: Clock; hosts?: FakeHostOptions[] } = {}) {
    this.mode = opts.hosts && opts.hosts.length > 0 ? 'swarm' : 'single';
    const hosts = this.mode === 'swarm' ? opts.hosts! : [{ name: opts.hostName ?? 'fake-host', address: '127.0.0.1', role: 'manager' as const }];
    hosts.forEach((h, i) => this.addHost(h, i));
    this.hostName = hosts[0]!.name;
    this.images = new Map();
    for (const ref of opts.images ?? []) this.addImage(ref);
    this.clock = opts.clock ?? systemClock;
  }

  async ping(): Promise<void> {
    this.check();
  }

  async list(labels: Record<string, string>): Promise<ContainerInfo[]> {
    this.check();
    const want = Object.entries(labels);
    // A service's containers from the index (a reconcile round lists its service's: at 5,000
    // containers a scan per round was most of the simulated engine's time in bench scale).
    const svc = serviceKeyOf(labels);
    return [...(svc === undefined ? this.containers.values() : this.ofService(svc))]
      .filter((c) => want.every(([k, v]) => c.info.labels[k] === v))
      .map((c) => structuredClone(c.info));
  }

  private ofService(key: string): Iterable<FakeContainer> {
    return this.containers.ofService(key);
  }

  async inspect(id: string): Promise<ContainerInfo | undefined> {
    this.check();
    const c = this.find(id);
    return c && structuredClone(c.info);
  }

  async imageExists(ref: string): Promise<boolean> {
    this.check();
    return this.images.has(ref);
  }

  async imageId(ref: string): Promise<string | undefined> {
    this.check();
    return this.images.get(ref);
  }

  async imageInfo(ref: string): Promise<ImageInfo | undefined> {
    this.check();
    const id = this.images.get(ref);
    return id === undefined ? undefined : { id, env: [], user: '', hasHealthcheck: false, sizeBytes: 1024 * 1024, labels: {} };
  }

  async build(opts: Pick<BuildOptions, 'tag'> & Partial<BuildOptions>, onProgress?: (line: string) => void): Promise<void> {
    this.check();
    if (opts.signal?.aborted) throw cancelled(`build of ${opts.tag}`);
    this.failIfAsked('build');
    this.calls.push(`build ${opts.tag}`);
    if (this.held) {
      onProgress?.(`#1 [1/1] building ${opts.tag} (held)`);
      await this.waitHeld(opts.signal, `build of ${opts.tag}`);
    }
    onProgress?.(`Successfully tagged ${opts.tag}`);
    this.addImage(opts.tag);
  }

  async tag(source: string, repo: string, tag: string): Promise<void> {
    this.check();
    this.calls.push(`tag ${source} ${repo}:${tag}`);
    const id = this.images.get(source) ?? ([...this.images.values()].includes(source) ? source : undefined);
    if (!id) throw new Error(`no such image: ${source}`);
    this.images.set(`${repo}:${tag}`, id);
  }

  /** Pulls from the fake's registries (`addRemoteImage`): the local reference then names the remote image's id. */
  async pull(ref: string, opts: { onProgress?: (p: PullProgress) => void; signal?: AbortSignal } = {}): Promise<void> {
    this.check();
    if (opts.signal?.aborted) throw cancelled(`pull of ${ref}`);
    this.failIfAsked('pull');
    this.calls.push(`pull ${ref}`);
    const id = this.remote.get(ref);
    if (!id) throw new Error(`pulling ${ref} failed: manifest unknown`);
    opts.onProgress?.({ layers: 1, layersDone: 1, bytes: 1, totalBytes: 1 });
    this.images.set(ref, id);
  }

  /** An image the fake's registries hold (a new id each call: a tag that moved). */
  addRemoteImage(ref: string): void {
    this.remote.set(ref, `sha256:fakeremote${String(++this.seq).padStart(54, '0')}`);
  }

  /** Pushes: the digest is derived from the image id; `repo@digest` then resolves like Docker's RepoDigests. */
  async push(ref: string, onProgress?: (line: string) => void, signal?: AbortSignal): Promise<{ digest: string }> {
    this.check();
    if (signal?.aborted) throw cancelled(`push of ${ref}`);
    this.failIfAsked('push');
    this.calls.push(`push ${ref}`);
    if (this.held) await this.waitHeld(signal, `push of ${ref}`);
    const id = this.images.get(ref);
    if (!id) throw new Error(`no such image: ${ref}`);
    const digest = `sha256:${createHash('sha256').update(id).digest('hex')}`;
    const repo = ref.replace(/:[^:/]+$/, '');
    this.images.set(`${repo}@${digest}`, id);
    onProgress?.(`${ref.split(':').pop()}: digest: ${digest} size: 1`);
    return { digest };
  }

  async ensureVolume(name: string, labels: Record<string, string>): Promise<void> {
    this.check();
    if (!this.volumes.has(name)) this.volumes.set(name, { ...labels });
  }

  async removeVolume(name: string): Promise<boolean> {
    this.check();
    return this.volumes.delete(name);
  }

  /** Networks by name, with their labels. */
  readonly networks = new Map<string, Record<string, string>>();

  async ensureNetwork(name: string, labels: Record<string, string>): Promise<NetworkInfo> {
    this.check();
    if (!this.networks.has(name)) {
      this.networks.set(name, { ...labels });
      this.calls.push(`network ${name}`);
    }
    return this.networkInfo(name, this.networks.get(name) ?? {});
  }

  async listNetworks(labels: Record<string, string>): Promise<NetworkInfo[]> {
    this.check();
    return [...this.networks].filter(([, l]) => Object.entries(labels).every(([k, v]) => l[k] === v)).map(([name, l]) => this.networkInfo(name, l));
  }

  /** A fake network's gateway: 10.250.N.1, N its place in the map. */
  private networkInfo(name: string, labels: Record<string, string>): NetworkInfo {
    const n = [...this.networks.keys()].indexOf(name);
    return { name, id: name, labels: { ...labels }, gateway: `10.250.${n % 256}.1` };
  }

  async removeNetwork(name: string): Promise<boolean> {
    this.check();
    const used = [...this.containers.values()].some((c) => c.spec.network?.networks.some((n) => n.name === name));
    if (used) throw new Conflict(`network ${name} has containers attached`);
    return this.networks.delete(name);
  }

  async volumeUsage(names: string[]): Promise<Record<string, { sizeBytes: number | null; containers: number }>> {
    this.check();
    const out: Record<string, { sizeBytes: number | null; containers: number }> = {};
    for (const n of names) if (this.volumes.has(n)) out[n] = { sizeBytes: 0, containers: 0 };
    return out;
  }

  async create(spec: ContainerSpec): Promise<string> {
    this.check();
    this.failIfAsked('create');
    this.calls.push(`create ${spec.name}`);
    // Like Docker, a reference or an image id (releases run images by id).
    if (!this.images.has(spec.image) && ![...this.images.values()].includes(spec.image)) {
      throw new NotFound(`image ${spec.image} does not exist: build it first`);
    }
    const same = this.containers.named(spec.name);
    if (same) {
      const ours = same.info.labels[LABEL.managed] === 'true' && same.info.labels[LABEL.cluster] === spec.labels[LABEL.cluster];
      if (same.info.running || !ours) throw new Conflict(`a container named ${spec.name} already exists`);
      this.containers.delete(same.info.id);
    }
    const host = this.place(spec);
    const id = `fake${String(++this.seq).padStart(8, '0')}`;
    const labels = { ...spec.labels, [LABEL.managed]: 'true' };
    const info: ContainerInfo = { id, name: spec.name, image: spec.image, labels, state: 'created', running: false, health: 'none', host: host.name };
    if (this.mode === 'swarm') info.hostAddress = host.address;
    this.containers.set(id, { info, spec: structuredClone(spec), logs: [] });
    this.emit(id, 'create');
    return id;
  }

  async start(id: string): Promise<void> {
    this.check();
    this.failIfAsked('start');
    this.calls.push(`start ${id}`);
    const c = this.get(id);
    if (c.info.running) return;
    if (c.info.state === 'lost') throw new EngineUnavailable(`host ${c.info.host} of container ${c.info.name} is down`);
    if (this.pendingReason !== undefined) {
      // Like a Swarm task the scheduler cannot place: asked to run, does not.
      c.info.pending = this.pendingReason;
      return;
    }
    delete c.info.pending;
    Object.assign(c.info, { state: 'running', running: true, startedAt: this.iso(), health: c.spec.healthcheck ? 'starting' : 'none' });
    delete c.info.exitCode;
    delete c.info.finishedAt;
    this.emit(id, 'start');
  }

  async stop(id: string, _timeoutS: number): Promise<void> {
    this.check();
    this.failIfAsked('stop');
    this.calls.push(`stop ${id}`);
    const c = this.find(id);
    if (c) delete c.info.pending;
    if (c?.info.running) this.exit(c, 0, 'stop');
  }

  async kill(id: string, signal: string): Promise<void> {
    this.check();
    this.calls.push(`kill ${id} ${signal}`);
    const c = this.find(id);
    if (c?.info.running) this.exit(c, signal === 'SIGKILL' || signal === 'KILL' ? 137 : 143, 'kill');
  }

  async remove(id: string): Promise<void> {
    this.check();
    this.failIfAsked('remove');
    this.calls.push(`remove ${id}`);
    const c = this.find(id);
    if (!c) return;
    if (c.info.running) this.exit(c, 137, 'kill');
    this.containers.delete(c.info.id);
    this.emit(c.info.id, 'destroy', c.info.labels);
  }

  watch(onEvent: (e: EngineEvent) => void): () => void {
    this.watchers.add(onEvent);
    onEvent(this.down ? { kind: 'disconnected', error: 'fake engine is down' } : { kind: 'connected' });
    return () => void this.watchers.delete(onEvent);
  }

  async logs(id: string, opts: { follow: boolean; tail?: number }, onLine: (l: LogLine) => void): Promise<void> {
    this.check();
    const lines = this.get(id).logs;
    for (const l of opts.tail === undefined ? lines : lines.slice(-opts.tail)) onLine({ ...l });
  }

  async stats(id: string): Promise<ContainerStats | undefined> {
    this.check();
    const c = this.find(id);
    if (!c?.info.running) return undefined;
    return { ...(c.stats ?? { cpuPercent: 0, memoryBytes: 0, memoryLimitBytes: 0, netRxBytes: 0, netTxBytes: 0, blockReadBytes: 0, blockWriteBytes: 0 }) };
  }

  // ---- hosts (EngineHosts) ----

  async clusterMode(): Promise<ClusterMode> {
    this.check();
    return this.mode;
  }

  async hosts(): Promise<HostInfo[]> {
    this.check();
    const usage = this.usage();
    return [...this.hostMap.values()].map((h) => this.hostInfo(h, usage));
  }

  async labelHost(host: string, labels: Record<string, string | null>): Promise<HostInfo> {
    this.check();
    this.clusterOnly('label');
    const h = this.host(host);
    this.calls.push(`label ${h.name} ${Object.entries(labels).map(([k, v]) => (v === null ? `-${k}` : `${k}=${v}`)).join(' ')}`);
    for (const [k, v] of Object.entries(labels)) {
      if (v === null) delete h.labels[k];
      else h.labels[k] = v;
    }
    return this.hostInfo(h);
  }

  async drainHost(host: string, drain: boolean): Promise<HostInfo> {
    this.check();
    this.clusterOnly('drain');
    const h = this.host(host);
    this.calls.push(`${drain ? 'drain' : 'activate'} ${h.name}`);
    if (h.draining !== drain) {
      h.draining = drain;
      this.emitHost(h);
    }
    return this.hostInfo(h);
  }

  async removeHost(host: string, opts: { force: boolean }): Promise<void> {
    this.check();
    this.clusterOnly('remove');
    const h = this.host(host);
    const info = this.hostInfo(h);
    if (!opts.force && info.state === 'ready') throw new Conflict(`host ${h.name} is ready: drain it first (berth host drain ${h.name}), or force`);
    if (!opts.force && info.instances > 0) throw new Conflict(`host ${h.name} still runs ${info.instances} instances: wait until the drain has moved them, or force`);
    if (h.role === 'manager' && [...this.hostMap.values()].filter((o) => o.role === 'manager').length === 1) throw new Conflict(`host ${h.name} is the cluster's only manager`);
    this.calls.push(`rm host ${h.name}`);
    for (const c of [...this.containers.values()].filter((x) => x.info.host === h.name)) {
      this.containers.delete(c.info.id);
      this.emit(c.info.id, 'destroy', c.info.labels);
    }
    this.hostMap.delete(h.id);
  }

  async initCluster(opts: { advertiseAddr: string }): Promise<void> {
    this.check();
    if (this.mode === 'swarm') throw new Conflict('this engine is in a Swarm already: berth hosts lists its hosts');
    this.calls.push(`swarm init ${opts.advertiseAddr}`);
    this.mode = 'swarm';
    const h = [...this.hostMap.values()][0]!;
    h.address = opts.advertiseAddr;
  }

  async joinInfo(): Promise<{ token: string; managers: string[] }> {
    this.check();
    this.clusterOnly('add');
    return { token: 'SWMTKN-1-fake', managers: [...this.hostMap.values()].filter((h) => h.role === 'manager').map((h) => `${h.address}:2377`) };
  }

  /** Adds a host to the simulated cluster (it is ready at once). */
  addHost(opts: FakeHostOptions, index = this.hostMap.size): HostInfo {
    if ([...this.hostMap.values()].some((h) => h.name === opts.name)) throw new Error(`fake: host ${opts.name} exists`);
    const h: FakeHost = {
      id: `node${String(index + 1).padStart(4, '0')}`,
      name: opts.name,
      address: opts.address ?? `10.99.${Math.floor((index + 1) / 250)}.${((index + 1) % 250) + 1}`,
      role: opts.role ?? (index === 0 ? 'manager' : 'worker'),
      labels: { ...opts.labels, ...(opts.pool ? { [HOST_LABEL.pool]: opts.pool } : {}) },
      capacity: { nanoCpus: (opts.cpus ?? 2) * 1e9, memoryBytes: opts.memoryBytes ?? 4 * 1024 ** 3 },
      draining: false,
      up: true,
    };
    this.hostMap.set(h.id, h);
    return this.hostInfo(h);
  }

  /**
   * The host dies (its link cut, its engine gone): state `down`, its containers `lost` (not running,
   * a `lost` event each). They are still listed: what runs there is unknown until it returns.
   */
  hostDown(host: string): void {
    const h = this.host(host);
    if (!h.up) return;
    h.up = false;
    this.emitHost(h);
    for (const c of this.containers.values()) {
      if (c.info.host !== h.name || c.info.state === 'lost') continue;
      c.info.state = 'lost';
      c.info.running = false;
      this.emit(c.info.id, 'lost');
    }
  }

  /**
   * The host returns (a partition healed): containers still there (not removed meanwhile) run again,
   * as their processes never stopped; anything Berth did not remove comes back as a duplicate.
   */
  hostUp(host: string): void {
    const h = this.host(host);
    if (h.up) return;
    h.up = true;
    this.emitHost(h);
    for (const c of this.containers.values()) {
      if (c.info.host !== h.name || c.info.state !== 'lost') continue;
      Object.assign(c.info, { state: 'running', running: true });
      this.emit(c.info.id, 'start');
    }
  }

  /** Per host name: the instances running (or created) there and what they reserve, in one pass. */
  private usage(): Map<string, { reserved: Resources; instances: number }> {
    const out = new Map<string, { reserved: Resources; instances: number }>();
    for (const c of this.containers.values()) {
      if (!(c.info.running || c.info.state === 'created')) continue;
      let u = out.get(c.info.host);
      if (!u) out.set(c.info.host, (u = { reserved: { nanoCpus: 0, memoryBytes: 0 }, instances: 0 }));
      u.instances++;
      const r = c.spec.placement?.reservation;
      if (r) {
        u.reserved.nanoCpus += r.nanoCpus;
        u.reserved.memoryBytes += r.memoryBytes;
      }
    }
    return out;
  }

  /** `usage`: from usage() when many hosts are described at once (one pass over the containers, not one per host). */
  private hostInfo(h: FakeHost, usage = this.usage()): HostInfo {
    const u = usage.get(h.name);
    const reserved: Resources = u ? { ...u.reserved } : { nanoCpus: 0, memoryBytes: 0 };
    const instances = u?.instances ?? 0;
    const state: HostState = !h.up ? 'down' : h.draining ? 'draining' : 'ready';
    return {
      id: h.id, name: h.name, address: h.address, role: h.role, pool: poolOf(h.labels), labels: { ...h.labels }, state,
      ...(state === 'down' ? { message: 'heartbeat failure' } : {}), capacity: { ...h.capacity }, reserved, instances,
    };
  }

  private place(spec: ContainerSpec): FakeHost {
    if (this.mode === 'single') return [...this.hostMap.values()][0]!;
    const placement = spec.placement ?? { pool: DEFAULT_POOL, constraints: [], spread: [], reservation: { nanoCpus: 0, memoryBytes: 0 } };
    const same = (c: FakeContainer): boolean => [LABEL.app, LABEL.env, LABEL.service].every((k) => c.info.labels[k] === spec.labels[k]) && c.info.state !== 'exited';
    const existing: Record<string, number> = {};
    const svc = serviceKeyOf(spec.labels);
    for (const c of svc === undefined ? this.containers.values() : this.ofService(svc)) if (same(c)) existing[c.info.host] = (existing[c.info.host] ?? 0) + 1;
    const usage = this.usage();
    const plan = planPlacement([...this.hostMap.values()].map((h) => this.hostInfo(h, usage)), [{ name: spec.name, placement, count: 1, existing }]);
    if (!plan.ok) throw new Conflict(plan.reason);
    return [...this.hostMap.values()].find((h) => h.name === plan.hosts[0]![0])!;
  }

  private host(idOrName: string): FakeHost {
    const h = this.hostMap.get(idOrName) ?? [...this.hostMap.values()].find((x) => x.name === idOrName);
    if (!h) throw new NotFound(`no host ${idOrName}: berth hosts lists them`);
    return h;
  }

  private clusterOnly(what: string): void {
    if (this.mode === 'single') throw new Conflict(`cannot ${what} a host in one-host mode: run berth cluster init first`);
  }

  private emitHost(h: FakeHost): void {
    if (this.down) return;
    const state = this.hostInfo(h).state;
    for (const w of this.watchers) w({ kind: 'host', id: h.id, name: h.name, state });
  }

  // ---- test hooks ----

  /**
   * Starts from now on leave their container `created` with this reason in `pending` (a Swarm task
   * the scheduler cannot place: a host port in use, no capacity); `undefined` lets them run again and
   * starts those pending now.
   */
  pendStarts(reason: string | undefined): void {
    this.pendingReason = reason;
    if (reason !== undefined) return;
    for (const c of this.containers.values()) {
      if (c.info.pending === undefined) continue;
      delete c.info.pending;
      Object.assign(c.info, { state: 'running', running: true, startedAt: this.iso(), health: c.spec.healthcheck ? 'starting' : 'none' });
      this.emit(c.info.id, 'start');
    }
  }

  /** Every container as the engine sees it now, uncopied (a benchmark's view of a large fake cluster; do not modify). */
  containersNow(): readonly ContainerInfo[] {
    return [...this.containers.values()].map((c) => c.info);
  }

  /** What `stats(id)` returns for this container from now on (zeros until set). */
  setStats(id: string, stats: Partial<ContainerStats>): void {
    const c = this.get(id);
    c.stats = { cpuPercent: 0, memoryBytes: 0, memoryLimitBytes: 0, netRxBytes: 0, netTxBytes: 0, blockReadBytes: 0, blockWriteBytes: 0, ...c.stats, ...stats };
  }

  /**
   * Builds and pushes started from now on wait (after being recorded in `calls`) until the returned
   * function is called, so a test can abort one midway; an aborted one rejects saying it was cancelled.
   */
  holdBuilds(): () => void {
    const gate = { open: (): void => {} };
    const opened = new Promise<void>((resolve) => (gate.open = resolve));
    this.held = opened;
    return () => {
      if (this.held === opened) this.held = undefined;
      gate.open();
    };
  }

  /** Adds (or rebuilds: new id) an image. */
  addImage(ref: string): void {
    this.images.set(ref, `sha256:fake${String(++this.seq).padStart(60, '0')}`);
  }

  /** The container's process exits on its own (crash, OOM). */
  crash(id: string, exitCode: number, opts: { oomKilled?: boolean } = {}): void {
    const c = this.get(id);
    if (!c.info.running) throw new Error(`fake: container ${id} is not running`);
    if (opts.oomKilled) this.emit(id, 'oom');
    this.exit(c, exitCode, undefined, opts.oomKilled ?? false);
  }

  /** The engine's health check flips; emits `health_status: <health>` like Docker. `log`: the check's latest result. */
  setHealth(id: string, health: Exclude<ContainerHealth, 'none'>, log?: { exitCode: number; output: string }): void {
    const c = this.get(id);
    c.info.health = health;
    if (log) c.info.healthLog = { ...log };
    this.emit(id, `health_status: ${health}`);
  }

  appendLog(id: string, stream: 'stdout' | 'stderr', text: string): void {
    this.get(id).logs.push({ containerId: id, stream, time: this.iso(), text });
  }

  /**
   * The next call of `op` rejects with `error` (once per failNext), before it has any effect and
   * before it is recorded in `calls`: a daemon error or a control-plane crash at that point.
   */
  failNext(op: FailingCall, error: Error = new Error(`fake: ${op} failed (failNext)`)): void {
    this.failures.set(op, [...(this.failures.get(op) ?? []), error]);
  }

  /** The engine becomes unreachable: calls reject with EngineUnavailable, watchers see `disconnected`. */
  outage(): void {
    if (this.down) return;
    this.down = true;
    for (const w of this.watchers) w({ kind: 'disconnected', error: 'fake engine is down' });
  }

  /** The engine answers again; watchers see `connected` (and should resync: events were missed). */
  recover(): void {
    if (!this.down) return;
    this.down = false;
    for (const w of this.watchers) w({ kind: 'connected' });
  }

  private exit(c: FakeContainer, exitCode: number, before: string | undefined, oomKilled = false): void {
    if (before) this.emit(c.info.id, before);
    Object.assign(c.info, { state: 'exited', running: false, exitCode, oomKilled, finishedAt: this.iso() });
    if (c.info.health !== 'none') c.info.health = 'unhealthy';
    this.emit(c.info.id, 'die');
  }

  private emit(id: string, action: string, labels?: Record<string, string>): void {
    if (this.down) return;
    const l = labels ?? this.get(id).info.labels;
    for (const w of this.watchers) w({ kind: 'container', action, id, labels: { ...l } });
  }

  private find(id: string): FakeContainer | undefined {
    return this.containers.get(id) ?? this.containers.named(id);
  }

  private get(id: string): FakeContainer {
    const c = this.find(id);
    if (!c) throw new NotFound(`no such container: ${id}`);
    return c;
  }

  private failIfAsked(op: FailingCall): void {
    const err = this.failures.get(op)?.shift();
    if (err) throw err;
  }

  private check(): void {
    if (this.down) throw new EngineUnavailable('the fake engine is down (outage() was called)');
  }

  private waitHeld(signal: AbortSignal | undefined, what: string): Promise<void> {
    const held = this.held ?? Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(cancelled(what));
      signal?.addEventListener('abort', onAbort, { once: true });
      void held.then(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  private iso(): string {
    return new Date(this.clock.now()).toISOString();
  }

  /** Like Docker: refuses (false) while any container's image is this image, by reference or id. */
  async pruneBuildCache(_keepBytes: number): Promise<number> {
    this.check();
    this.calls.push('prune build cache');
    return 0;
  }

  async removeImage(ref: string): Promise<boolean> {
    this.check();
    const id = this.images.get(ref);
    if (id === undefined) return false;
    const inUse = [...this.containers.values()].some((c) => c.spec.image === id || this.images.get(c.spec.image) === id);
    if (inUse) return false;
    this.calls.push(`rmi ${ref}`);
    this.images.delete(ref);
    return true;
  }
}

/** What the Docker engine rejects an aborted build or push with. */
function cancelled(what: string): ExternalCommandFailed {
  return new ExternalCommandFailed(`the ${what} was cancelled (its request was aborted)`);
}
