import type Docker from 'dockerode';
import { Conflict, NotFound } from '../../core/errors.ts';
import { poolOf } from '../../core/placement.ts';
import { DEFAULT_POOL, LABEL, type ClusterMode, type HostInfo, type HostState, type Resources } from '../../core/ports.ts';
import { statusOf, toBerthError } from './docker-errors.ts';

/** What `docker info` says of the engine's Swarm membership. */
interface SwarmInfo {
  LocalNodeState?: string;
  ControlAvailable?: boolean;
  NodeID?: string;
  NodeAddr?: string;
}

interface DockerInfo {
  Name?: string;
  NCPU?: number;
  MemTotal?: number;
  Swarm?: SwarmInfo;
}

export interface SwarmNode {
  ID: string;
  Version: { Index: number };
  Spec: { Labels?: Record<string, string>; Role?: 'manager' | 'worker'; Availability?: 'active' | 'pause' | 'drain'; Name?: string };
  Description?: { Hostname?: string; Resources?: { NanoCPUs?: number; MemoryBytes?: number } };
  Status?: { State?: string; Message?: string; Addr?: string };
  ManagerStatus?: { Addr?: string };
}

export interface SwarmTask {
  NodeID?: string;
  DesiredState?: string;
  Status?: { State?: string };
  Spec?: { Resources?: { Reservations?: { NanoCPUs?: number; MemoryBytes?: number } }; ContainerSpec?: { Labels?: Record<string, string> } };
}

/**
 * The hosts role (EngineHosts) over the Docker API. A plain engine is one host (one-host mode);
 * an engine that is a Swarm manager lists the Swarm's nodes. Draining sets the node's availability to
 * `pause` (nothing new lands; its tasks keep running until Berth has moved them, then Berth may set
 * `drain`); a worker-only engine (joined but not a manager) cannot answer and says so.
 */
export class DockerHosts {
  constructor(
    private readonly docker: Docker,
    private readonly socketPath: string,
    private readonly hostName: string,
    /** The installation's labels: one-host mode counts only its containers (a Swarm node counts every Berth task: they all take its room). */
    private readonly scope: Record<string, string> = {},
  ) {}

  private async info(): Promise<DockerInfo> {
    return (await this.call('info', () => this.docker.info())) as DockerInfo;
  }

  async clusterMode(): Promise<ClusterMode> {
    const s = (await this.info()).Swarm;
    if (s?.LocalNodeState !== 'active') return 'single';
    if (!s.ControlAvailable) {
      throw new Conflict(`the engine at ${this.socketPath} is a Swarm worker: point Berth at a manager of the Swarm (docker node ls there)`);
    }
    return 'swarm';
  }

  async hosts(): Promise<HostInfo[]> {
    const info = await this.info();
    if (info.Swarm?.LocalNodeState !== 'active') return [await this.singleHost(info)];
    await this.clusterMode();
    const [nodes, tasks] = await Promise.all([
      this.call('list nodes', () => this.docker.listNodes()) as Promise<SwarmNode[]>,
      this.call('list tasks', () => this.docker.listTasks({ filters: { 'desired-state': ['running'] } })) as Promise<SwarmTask[]>,
    ]);
    return nodes.map((n) => nodeInfo(n, tasks));
  }

  async labelHost(host: string, labels: Record<string, string | null>): Promise<HostInfo> {
    const node = await this.node(host, 'label');
    const next = { ...node.Spec.Labels };
    for (const [k, v] of Object.entries(labels)) {
      if (v === null) delete next[k];
      else next[k] = v;
    }
    await this.update(node, { ...node.Spec, Labels: next });
    return this.hostOf(node.ID);
  }

  async drainHost(host: string, drain: boolean): Promise<HostInfo> {
    const node = await this.node(host, 'drain');
    await this.update(node, { ...node.Spec, Availability: drain ? 'pause' : 'active' });
    return this.hostOf(node.ID);
  }

  async removeHost(host: string, opts: { force: boolean }): Promise<void> {
    const node = await this.node(host, 'remove');
    const h = await this.hostOf(node.ID);
    if (!opts.force && h.state === 'ready') throw new Conflict(`host ${h.name} is ready: drain it first (berth host drain ${h.name}), or force`);
    if (!opts.force && h.instances > 0) throw new Conflict(`host ${h.name} still runs ${h.instances} instances: wait until the drain has moved them, or force`);
    if (node.Spec.Role === 'manager') throw new Conflict(`host ${h.name} is a manager: demote it first (docker node demote ${h.name})`);
    try {
      await this.docker.getNode(node.ID).remove({ force: opts.force });
    } catch (e) {
      // 400/412 from Docker: the node is not down yet (it still answers); name what to do.
      if (statusOf(e) === 400 || statusOf(e) === 412) {
        throw new Conflict(`host ${h.name} still answers the Swarm: run docker swarm leave on it first, or force`, { cause: e });
      }
      throw toBerthError(e, this.socketPath, `remove node ${h.name}`);
    }
  }

  async initCluster(opts: { advertiseAddr: string }): Promise<void> {
    const info = await this.info();
    if (info.Swarm?.LocalNodeState && info.Swarm.LocalNodeState !== 'inactive') {
      throw new Conflict(`the engine at ${this.socketPath} is in a Swarm already (${info.Swarm.LocalNodeState}): berth hosts lists its hosts`);
    }
    await this.call('swarm init', () => this.docker.swarmInit({
      ListenAddr: `${opts.advertiseAddr}:2377`, AdvertiseAddr: opts.advertiseAddr,
      // Overlays from a block that overlaps neither Berth's app networks (10.208.0.0/12) nor Docker's defaults.
      DefaultAddrPool: ['10.160.0.0/16'], SubnetSize: 24,
    }));
  }

  async joinInfo(): Promise<{ token: string; managers: string[] }> {
    await this.requireManager('add');
    const swarm = (await this.call('swarm inspect', () => this.docker.swarmInspect())) as { JoinTokens?: { Worker?: string } };
    const nodes = (await this.call('list nodes', () => this.docker.listNodes())) as SwarmNode[];
    const managers = nodes.filter((n) => n.ManagerStatus?.Addr).map((n) => n.ManagerStatus!.Addr!);
    return { token: swarm.JoinTokens?.Worker ?? '', managers };
  }

  private async hostOf(id: string): Promise<HostInfo> {
    const h = (await this.hosts()).find((x) => x.id === id);
    if (!h) throw new NotFound(`host ${id} is gone`);
    return h;
  }

  private async singleHost(info: DockerInfo): Promise<HostInfo> {
    const label = [`${LABEL.managed}=true`, ...Object.entries(this.scope).map(([k, v]) => `${k}=${v}`)];
    const tasks = await this.call('list containers', () => this.docker.listContainers({ filters: { label, status: ['running'] } }));
    const reserved: Resources = { nanoCpus: 0, memoryBytes: 0 };
    return {
      id: this.hostName, name: this.hostName, address: '127.0.0.1', role: 'manager', pool: DEFAULT_POOL, labels: {}, state: 'ready',
      capacity: { nanoCpus: (info.NCPU ?? 0) * 1e9, memoryBytes: info.MemTotal ?? 0 }, reserved, instances: tasks.length,
    };
  }

  private async requireManager(what: string): Promise<void> {
    const info = await this.info();
    if (info.Swarm?.LocalNodeState !== 'active') throw new Conflict(`cannot ${what} a host in one-host mode: run berth cluster init first`);
    await this.clusterMode();
  }

  private async node(host: string, what: string): Promise<SwarmNode> {
    await this.requireManager(what);
    const nodes = (await this.call('list nodes', () => this.docker.listNodes())) as SwarmNode[];
    const n = nodes.find((x) => x.ID === host) ?? nodes.find((x) => x.Description?.Hostname === host) ?? (host.length >= 6 ? nodes.find((x) => x.ID.startsWith(host)) : undefined);
    if (!n) throw new NotFound(`no host ${host}: berth hosts lists them`);
    return n;
  }

  private async update(node: SwarmNode, spec: SwarmNode['Spec']): Promise<void> {
    await this.call(`update node ${node.Description?.Hostname ?? node.ID}`, () => this.docker.getNode(node.ID).update({ version: node.Version.Index, ...spec }));
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw toBerthError(e, this.socketPath, what);
    }
  }
}

/** A Swarm node as a HostInfo; reservations and instances from the running Berth tasks on it. */
export function nodeInfo(n: SwarmNode, tasks: SwarmTask[]): HostInfo {
  const labels = { ...n.Spec.Labels };
  const down = n.Status?.State !== 'ready';
  const state: HostState = down ? 'down' : n.Spec.Availability === 'active' || n.Spec.Availability === undefined ? 'ready' : 'draining';
  const reserved: Resources = { nanoCpus: 0, memoryBytes: 0 };
  let instances = 0;
  for (const t of tasks) {
    if (t.NodeID !== n.ID || t.DesiredState !== 'running') continue;
    if (t.Spec?.ContainerSpec?.Labels?.[LABEL.managed] !== 'true') continue;
    instances++;
    reserved.nanoCpus += t.Spec.Resources?.Reservations?.NanoCPUs ?? 0;
    reserved.memoryBytes += t.Spec.Resources?.Reservations?.MemoryBytes ?? 0;
  }
  // A manager's Status.Addr can read 0.0.0.0; its ManagerStatus.Addr (IP:2377) names the real one.
  const addr = n.Status?.Addr && n.Status.Addr !== '0.0.0.0' ? n.Status.Addr : (n.ManagerStatus?.Addr ?? '').replace(/:\d+$/, '');
  const message = down ? (n.Status?.Message || n.Status?.State || 'down') : undefined;
  return {
    id: n.ID, name: n.Description?.Hostname ?? n.ID, address: addr, role: n.Spec.Role ?? 'worker', pool: poolOf(labels), labels, state,
    ...(message ? { message } : {}),
    capacity: { nanoCpus: n.Description?.Resources?.NanoCPUs ?? 0, memoryBytes: n.Description?.Resources?.MemoryBytes ?? 0 }, reserved, instances,
  };
}
