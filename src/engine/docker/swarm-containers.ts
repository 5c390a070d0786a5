import type Docker from 'dockerode';
import { Conflict, InvalidInput, NotFound } from '../../core/errors.ts';
import { DEFAULT_POOL, HOST_LABEL, LABEL, type ContainerInfo, type ContainerSpec, type EngineContainers } from '../../core/ports.ts';
import { swarmCannot } from '../../core/pool-admission.ts';
import { statusOf, toBerthError } from './docker-errors.ts';
import type { SwarmNode } from './docker-hosts.ts';
import type { ObservedContainer } from './host-events.ts';
import { ensureSecrets, releaseSecrets, type ShippedFile, type SwarmShipping, type SwarmRegistryAuth } from './swarm-shipping.ts';

/** A Swarm task as the API lists it (the fields read here). */
interface Task {
  ID: string;
  ServiceID: string;
  NodeID?: string;
  CreatedAt?: string;
  DesiredState?: string;
  Status?: { State?: string; Err?: string; Message?: string; Timestamp?: string; ContainerStatus?: { ContainerID?: string; ExitCode?: number } };
}

interface Service {
  ID: string;
  Version: { Index: number };
  CreatedAt?: string;
  Spec: { Name: string; Labels?: Record<string, string>; Mode?: { Replicated?: { Replicas?: number } }; TaskTemplate: { ContainerSpec?: { Image?: string } } } & Record<string, unknown>;
}

const NS_PER_S = 1e9;
/** How long `start` waits for the task to run (then it is the reconciler's `pending`). */
const START_WAIT_MS = 5_000;
const START_POLL_MS = 100;

/** A Swarm service id (25 lowercase alphanumerics), as opposed to a container id (64 hex digits). */
export function isServiceId(id: string): boolean {
  return /^[a-z0-9]{25}$/.test(id);
}
/** Task states before a container runs. */
const STARTING = new Set(['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting']);

/**
 * The containers role on a Swarm (cluster mode): **one Swarm service per Berth instance** (replicas 0
 * or 1), so Berth's release strategies keep deciding which instance starts and stops when, and Swarm
 * never picks which task of a shared service dies (moby 30321/38841). `create` makes the service with
 * 0 replicas (like a created container: placed nowhere yet), `start` sets 1, `stop` 0, `remove`
 * removes it. Its id is the service id. The service's one task is the container: its node is
 * ContainerInfo.host/hostAddress, its state the container's (`lost` while its node is down).
 * Restart policy `none`: Berth restarts and replaces instances itself (crash-loop backoff, failover
 * within the pool). Placement: the pool as a constraint on the node label io.berth.pool (the default
 * pool: no other pool's label), Compose's constraints, spread preferences, max replicas per node,
 * reservations; limits as resources.
 */
export class SwarmContainers implements EngineContainers {
  /** Swarm API calls made (for the figures in docs/DESIGN.md). */
  calls = 0;
  private observed: ((containerId: string) => ObservedContainer | undefined) | undefined;

  constructor(
    private readonly docker: Docker,
    private readonly socketPath: string,
    readonly hostName: string,
    private readonly o: {
      logMaxSize: string; logMaxFile: number;
      /** Images by a reference every host pulls, Berth's files as Swarm secrets (swarm-shipping.ts); absent: as on one host. */
      shipping?: SwarmShipping;
    },
    private readonly startWaitMs = START_WAIT_MS,
  ) {}

  /**
   * What the hosts' engines last said about the tasks' containers (host-events.ts HostEvents): a
   * death or health flip there is known before the manager's task state says so, and the manager
   * never says a task container's health.
   */
  observe(fn: ((containerId: string) => ObservedContainer | undefined) | undefined): void {
    this.observed = fn;
  }

  /** Many hosts: from now on images and Berth's files go to every host (server/cluster-data-wiring.ts makes it). */
  useShipping(s: SwarmShipping | undefined): void {
    this.o.shipping = s;
  }

  async ping(): Promise<void> {
    await this.call('ping', () => this.docker.ping());
  }

  async create(spec: ContainerSpec): Promise<string> {
    const pools = spec.placement?.pool === DEFAULT_POOL || !spec.placement ? await this.otherPools() : [];
    const { body, auth } = await this.shipped(spec, pools);
    const createService = () => (auth ? this.docker.createService(auth, body) : this.docker.createService(body));
    try {
      const r = (await this.call(`create service ${spec.name}`, createService)) as { id?: string; ID?: string };
      return (r.id ?? r.ID)!;
    } catch (e) {
      if (!(e instanceof Conflict)) throw e;
      // A service of that name: a leftover of ours that runs nothing is replaced, anything else refused.
      const stale = await this.service(spec.name);
      const ours = stale?.Spec.Labels?.[LABEL.managed] === 'true' && stale.Spec.Labels[LABEL.cluster] === spec.labels[LABEL.cluster];
      if (!stale || !ours || (stale.Spec.Mode?.Replicated?.Replicas ?? 0) > 0) throw new Conflict(`a Swarm service named ${spec.name} already exists; remove it or pick another name`, { cause: e });
      await this.remove(stale.ID);
      const again = await this.shipped(spec, pools);
      const r = (await this.call(`create service ${spec.name}`, () => (again.auth ? this.docker.createService(again.auth, again.body) : this.docker.createService(again.body)))) as { id?: string; ID?: string };
      return (r.id ?? r.ID)!;
    }
  }

  /**
   * The service body with the data plane applied: the image every host pulls (and the registry
   * credentials Swarm hands to the host that pulls), Berth's files as Swarm secrets (encrypted in
   * Swarm's Raft log, on a tmpfs of the node) instead of bind mounts of this host's tmpfs.
   */
  private async shipped(spec: ContainerSpec, pools: string[]): Promise<{ body: Record<string, unknown>; auth?: SwarmRegistryAuth }> {
    const data = this.o.shipping;
    if (!data) return { body: serviceSpec(spec, pools, this.o) };
    const { ref, auth } = await data.image(spec.image);
    const kept: ContainerSpec['mounts'] = [];
    const files: ShippedFile[] = [];
    for (const m of spec.mounts) {
      const f = await data.files(m);
      if (f) files.push(...f);
      else kept.push(m);
    }
    const body = serviceSpec({ ...spec, image: ref, mounts: kept }, pools, this.o);
    if (files.length) {
      const secrets = await ensureSecrets(this.docker, spec.labels[LABEL.cluster] ?? '', files, () => this.calls++);
      ((body.TaskTemplate as { ContainerSpec: Record<string, unknown> }).ContainerSpec).Secrets = secrets;
    }
    return { body, ...(auth ? { auth } : {}) };
  }

  /**
   * Sets 1 replica, then waits a moment (START_WAIT_MS) for its task to run, so the instance's host is
   * usually known when start returns. A task that is still pending after that is not an error here:
   * the service reconciler sees it as `pending` (ContainerInfo.pending, with the Swarm's reason) and
   * fails its release past its bound.
   */
  async start(id: string): Promise<void> {
    await this.scale(id, 1);
    const deadline = Date.now() + this.startWaitMs;
    while (Date.now() < deadline) {
      const tasks = (await this.call('list tasks', () => this.docker.listTasks({ filters: { service: [id] } }))) as Task[];
      const st = [...tasks].sort((x, y) => (x.CreatedAt ?? '').localeCompare(y.CreatedAt ?? '')).at(-1)?.Status?.State ?? 'new';
      if (!STARTING.has(st)) return;
      await new Promise((r) => setTimeout(r, START_POLL_MS));
    }
  }

  /** Swarm stops the task with the stop signal and the grace period given at create (`timeoutS` is not per call on Swarm). */
  async stop(id: string, _timeoutS: number): Promise<void> {
    await this.scale(id, 0).catch((e: unknown) => {
      if (!(e instanceof NotFound)) throw e;
    });
  }

  /**
   * A signal to a task on another host cannot go through the manager's API: refused, saying so.
   * (Reloads by signal need the control plane on that host, or the instance replaced.)
   */
  async kill(id: string, signal: string): Promise<void> {
    if (signal === 'SIGKILL' || signal === 'KILL') return this.scale(id, 0);
    throw new Conflict(`cannot send ${signal} to instance ${id} in cluster mode: Swarm's API has no signal for a task on another host; restart the service instead (berth restart)`);
  }

  async remove(id: string): Promise<void> {
    // The secrets it used go with it unless another service still uses them (Swarm refuses those).
    const secrets = this.o.shipping ? secretIdsOf(await this.service(id)) : [];
    try {
      this.calls++;
      await this.docker.getService(id).remove();
    } catch (e) {
      if (statusOf(e) === 404) return;
      throw toBerthError(e, this.socketPath, `remove service ${id}`);
    }
    if (secrets.length) await releaseSecrets(this.docker, secrets, () => this.calls++);
  }

  async list(labels: Record<string, string>): Promise<ContainerInfo[]> {
    const filters = { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) };
    const [services, tasks, nodes] = await Promise.all([
      this.call('list services', () => this.docker.listServices({ filters })) as unknown as Promise<Service[]>,
      this.call('list tasks', () => this.docker.listTasks({ filters: { label: filters.label } })) as Promise<Task[]>,
      this.call('list nodes', () => this.docker.listNodes()) as Promise<SwarmNode[]>,
    ]);
    const byService = groupBy(tasks, (t) => t.ServiceID);
    const nodeById = new Map(nodes.map((n) => [n.ID, n]));
    return services.map((s) => toInfo(s, byService.get(s.ID) ?? [], nodeById, this.observed));
  }

  async inspect(id: string): Promise<ContainerInfo | undefined> {
    const s = await this.service(id);
    if (!s) return undefined;
    const [tasks, nodes] = await Promise.all([
      this.call('list tasks', () => this.docker.listTasks({ filters: { service: [s.ID] } })) as Promise<Task[]>,
      this.call('list nodes', () => this.docker.listNodes()) as Promise<SwarmNode[]>,
    ]);
    return toInfo(s, tasks, new Map(nodes.map((n) => [n.ID, n])), this.observed);
  }

  private async service(idOrName: string): Promise<Service | undefined> {
    try {
      this.calls++;
      return (await this.docker.getService(idOrName).inspect()) as unknown as Service;
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw toBerthError(e, this.socketPath, `inspect service ${idOrName}`);
    }
  }

  private async scale(id: string, replicas: number): Promise<void> {
    // The update carries the version it read: a concurrent update fails (409/500 "out of sequence") and is retried once.
    for (let attempt = 0; ; attempt++) {
      const s = await this.service(id);
      if (!s) throw new NotFound(`no service ${id}`);
      if ((s.Spec.Mode?.Replicated?.Replicas ?? 0) === replicas) return;
      try {
        this.calls++;
        await this.docker.getService(s.ID).update({ version: s.Version.Index, ...s.Spec, Mode: { Replicated: { Replicas: replicas } } });
        return;
      } catch (e) {
        if (attempt === 0 && /out of sequence/i.test(String((e as Error).message))) continue;
        throw toBerthError(e, this.socketPath, `scale service ${s.Spec.Name} to ${replicas}`);
      }
    }
  }

  /** Pools other than the default that hosts carry now: the default pool's constraint excludes them. */
  private async otherPools(): Promise<string[]> {
    const nodes = (await this.call('list nodes', () => this.docker.listNodes())) as SwarmNode[];
    return [...new Set(nodes.map((n) => n.Spec.Labels?.[HOST_LABEL.pool]).filter((p): p is string => !!p && p !== DEFAULT_POOL))].sort();
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.calls++;
    try {
      return await fn();
    } catch (e) {
      throw toBerthError(e, this.socketPath, what);
    }
  }
}

function secretIdsOf(s: Service | undefined): string[] {
  const refs = (s?.Spec.TaskTemplate.ContainerSpec as { Secrets?: Array<{ SecretID?: string }> } | undefined)?.Secrets ?? [];
  return [...new Set(refs.map((r) => r.SecretID).filter((x): x is string => !!x))];
}

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) m.set(key(x), [...(m.get(key(x)) ?? []), x]);
  return m;
}

/** Swarm placement constraints of an instance: its pool, then Compose's own. */
export function poolConstraints(pool: string, otherPools: string[]): string[] {
  if (pool !== DEFAULT_POOL) return [`node.labels.${HOST_LABEL.pool}==${pool}`];
  return otherPools.map((p) => `node.labels.${HOST_LABEL.pool}!=${p}`);
}

/** tmpfs options → Swarm's TmpfsOptions (size and mode only: the others cannot be said to Swarm, and are refused). */
function tmpfsMount(target: string, options: string, name: string): Record<string, unknown> {
  const t: { SizeBytes?: number; Mode?: number } = {};
  for (const opt of options.split(',').map((x) => x.trim()).filter(Boolean)) {
    const size = /^size=(\d+)([kmg]?)$/.exec(opt);
    const mode = /^mode=([0-7]{3,4})$/.exec(opt);
    if (size) t.SizeBytes = Number(size[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[size[2] as '' | 'k' | 'm' | 'g']);
    else if (mode) t.Mode = parseInt(mode[1]!, 8);
    else throw new InvalidInput(`instance ${name}: tmpfs option "${opt}" of ${target} cannot be given to a Swarm service (only size and mode): remove it to run in cluster mode`);
  }
  return { Type: 'tmpfs', Target: target, ...(t.SizeBytes !== undefined || t.Mode !== undefined ? { TmpfsOptions: t } : {}) };
}

/** The service body of one instance (see SwarmContainers). */
export function serviceSpec(spec: ContainerSpec, otherPools: string[], o: { logMaxSize: string; logMaxFile: number }): Record<string, unknown> {
  // Refused by name rather than dropped (deploys are refused earlier, by admission; this guards releases made before the switch).
  const refused = swarmCannot(spec);
  if (refused.length) throw new InvalidInput(`instance ${spec.name} cannot run in cluster mode: a Swarm service cannot have ${refused.join(', ')}`);
  const p = spec.placement;
  const hostNet = !spec.network;
  return {
    Name: spec.name,
    Labels: spec.labels,
    Mode: { Replicated: { Replicas: 0 } },
    TaskTemplate: {
      ContainerSpec: {
        Image: spec.image,
        Labels: spec.labels,
        Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
        ...(spec.entrypoint ? { Command: spec.entrypoint } : {}),
        ...(spec.cmd ? { Args: spec.cmd } : {}),
        ...(spec.user ? { User: spec.user } : {}),
        ...(spec.workingDir ? { Dir: spec.workingDir } : {}),
        ...(spec.groupAdd ? { Groups: spec.groupAdd } : {}),
        ...(spec.stopSignal ? { StopSignal: spec.stopSignal } : {}),
        StopGracePeriod: (spec.stopTimeoutS ?? 10) * NS_PER_S,
        ...(spec.healthcheck ? { Healthcheck: {
          Test: spec.healthcheck.test, Interval: spec.healthcheck.intervalMs * 1e6, Timeout: spec.healthcheck.timeoutMs * 1e6,
          Retries: spec.healthcheck.retries, StartPeriod: spec.healthcheck.startPeriodMs * 1e6,
        } } : {}),
        ...(spec.readOnlyRootfs ? { ReadOnly: true } : {}),
        ...(spec.init ? { Init: true } : {}),
        ...(spec.extraHosts ? { Hosts: spec.extraHosts.map((h) => { const [n, ip] = h.split(':'); return `${ip} ${n}`; }) } : {}),
        ...(spec.capAdd ? { CapabilityAdd: spec.capAdd } : {}),
        ...(spec.capDrop ? { CapabilityDrop: spec.capDrop } : {}),
        ...(spec.sysctls && !hostNet ? { Sysctls: spec.sysctls } : {}),
        ...(spec.ulimits ? { Ulimits: spec.ulimits.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })) } : {}),
        Mounts: [
          ...spec.mounts.map((m) => ({ Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly })),
          ...Object.entries(spec.tmpfs ?? {}).map(([target, opts]) => tmpfsMount(target, opts, spec.name)),
          // shm_size: Swarm has no ShmSize; a tmpfs of that size on /dev/shm is the same thing.
          ...(spec.shmSizeBytes ? [{ Type: 'tmpfs', Target: '/dev/shm', TmpfsOptions: { SizeBytes: spec.shmSizeBytes } }] : []),
        ],
        ...(spec.dns?.servers.length ? { DNSConfig: { Nameservers: spec.dns.servers, Search: spec.dns.search } } : {}),
        // Docker API 1.44+ (engines 25+); older engines ignore it (docs/DESIGN.md: cluster mode's gaps).
        ...(spec.noNewPrivileges !== false ? { Privileges: { NoNewPrivileges: true } } : {}),
      },
      Resources: {
        Limits: { ...(spec.nanoCpus ? { NanoCPUs: spec.nanoCpus } : {}), ...(spec.memoryBytes ? { MemoryBytes: spec.memoryBytes } : {}), ...(spec.pidsLimit ? { Pids: spec.pidsLimit } : {}) },
        Reservations: p ? { NanoCPUs: p.reservation.nanoCpus, MemoryBytes: p.reservation.memoryBytes } : {},
      },
      // Berth restarts crashed instances (with its crash-loop backoff) and replaces lost ones itself.
      RestartPolicy: { Condition: 'none' },
      Placement: {
        Constraints: [...poolConstraints(p?.pool ?? DEFAULT_POOL, otherPools), ...(p?.constraints ?? [])],
        Preferences: (p?.spread ?? []).map((d) => ({ Spread: { SpreadDescriptor: d } })),
        ...(p?.maxReplicasPerNode ? { MaxReplicas: p.maxReplicasPerNode } : {}),
      },
      Networks: hostNet ? [{ Target: 'host' }] : spec.network!.networks.map((n) => ({ Target: n.name, Aliases: n.aliases })),
      LogDriver: { Name: 'json-file', Options: { 'max-size': o.logMaxSize, 'max-file': String(o.logMaxFile) } },
    },
    ...(hostNet ? {} : { EndpointSpec: endpointSpec(spec.network!) }),
  };
}

/**
 * How an app-network instance is found and reached. `dnsrr`: its name and aliases on the overlay
 * resolve to its task's own address, and the several one-task services of one Compose service (which
 * share its name as an alias) to all their tasks' addresses — a client gets every replica, as on one
 * host. Not Swarm's default VIP: a VIP balances through IPVS in each container's namespace (the test
 * hosts' kernel has no IPVS: a VIP there never answered) and per one-task service it would give a
 * name per replica, not per Compose service. Ports are published in host mode on the task's host, on
 * Berth's allocated port (the ingress, health checks and the registry use hostAddress:port); Swarm's
 * ingress routing mesh (also IPVS) is not used.
 */
export function endpointSpec(net: NonNullable<ContainerSpec['network']>): Record<string, unknown> {
  return {
    Mode: 'dnsrr',
    ...(net.publish.length ? { Ports: net.publish.map((x) => ({ Protocol: x.protocol, TargetPort: x.target, PublishedPort: x.hostPort || undefined, PublishMode: 'host' })) } : {}),
  };
}

/** The service's latest task as a container. */
/**
 * An instance (a one-task service) as ContainerInfo: its latest task's state and node. `observed`:
 * what the task container's host engine said last (its events, followed by host-events.ts) — a
 * death there counts before the manager has heard of it, and its health is the engine's.
 */
export function toInfo(s: Service, tasks: Task[], nodes: Map<string, SwarmNode>, observed?: (containerId: string) => ObservedContainer | undefined): ContainerInfo {
  const t = [...tasks].sort((a, b) => (a.CreatedAt ?? '').localeCompare(b.CreatedAt ?? '')).at(-1);
  const labels = { ...s.Spec.Labels };
  const base = { id: s.ID, name: s.Spec.Name, image: s.Spec.TaskTemplate.ContainerSpec?.Image ?? '', labels, health: 'none' as const };
  const replicas = s.Spec.Mode?.Replicated?.Replicas ?? 0;
  // Scaled to 1 (started) but no task yet, or a task not running yet: pending, with the scheduler's word.
  if (!t) return { ...base, state: 'created', running: false, host: '', ...(replicas > 0 ? { pending: 'waiting for Swarm to create its task' } : {}) };
  const node = t.NodeID ? nodes.get(t.NodeID) : undefined;
  const host = node?.Description?.Hostname ?? '';
  const hostAddress = node ? (node.Status?.Addr && node.Status.Addr !== '0.0.0.0' ? node.Status.Addr : (node.ManagerStatus?.Addr ?? '').replace(/:\d+$/, '')) : undefined;
  const where = { host, ...(hostAddress ? { hostAddress } : {}) };
  const st = t.Status?.State ?? 'new';
  const nodeDown = node !== undefined && node.Status?.State !== 'ready';
  if (nodeDown && (st === 'running' || STARTING.has(st))) return { ...base, ...where, state: 'lost', running: false };
  if (st === 'orphaned') return { ...base, ...where, state: 'lost', running: false };
  const cid = t.Status?.ContainerStatus?.ContainerID;
  const seen = cid && (st === 'running' || STARTING.has(st)) ? observed?.(cid) : undefined;
  if (seen && !seen.running) {
    // Its engine reported the container's death; the manager has not recorded it yet.
    return {
      ...base, ...where, state: 'exited', running: false, ...(seen.health !== 'none' ? { health: seen.health } : {}),
      ...(seen.exitCode !== undefined ? { exitCode: seen.exitCode } : {}), ...(t.Status?.Timestamp ? { startedAt: t.Status.Timestamp } : {}),
      finishedAt: new Date(seen.at).toISOString(),
    };
  }
  if (st === 'running') {
    return { ...base, ...where, state: 'running', running: true, ...(seen ? { health: seen.health } : {}), ...(t.Status?.Timestamp ? { startedAt: t.Status.Timestamp } : {}) };
  }
  if (STARTING.has(st) && replicas > 0) return { ...base, ...where, state: 'created', running: false, pending: t.Status?.Err || `task ${st}` };
  const exitCode = t.Status?.ContainerStatus?.ExitCode;
  return {
    ...base, ...where, state: st === 'failed' || st === 'rejected' ? 'dead' : 'exited', running: false,
    ...(exitCode !== undefined ? { exitCode } : {}), ...(t.Status?.Timestamp ? { finishedAt: t.Status.Timestamp } : {}),
    ...(t.Status?.Err ? { healthLog: { exitCode: exitCode ?? -1, output: t.Status.Err } } : {}),
  };
}
