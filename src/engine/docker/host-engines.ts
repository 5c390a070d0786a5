import { isIP } from 'node:net';
import Docker from 'dockerode';
import { BerthError, Conflict, EngineUnavailable, InvalidInput } from '../../core/errors.ts';
import { HOST_LABEL, type ContainerStats, type ExecOutput, type Logger, type LogLine } from '../../core/ports.ts';
import { DockerEngine } from './docker-engine.ts';
import { toBerthError } from './docker-errors.ts';
import type { SwarmNode } from './docker-hosts.ts';
import type { FollowedHost, HostEventSource } from './host-events.ts';

/** Docker's registered port for its API over TLS: where a host's dockerd listens for the control plane. */
export const ENGINE_TLS_PORT = 2376;

/** Berth's client certificate and key, and the cluster CA that signed the hosts' engine certificates. */
export interface EngineTls {
  ca: string;
  cert: string;
  key: string;
}

export interface EngineEndpoint {
  host: string;
  port: number;
}

/** How a host's engine answered the last time Berth reached for it. */
export interface HostEngineHealth {
  /** The node's hostname (HostInfo.name). */
  host: string;
  /** `tcp://ADDR:PORT`, or empty when the node has no address. */
  endpoint: string;
  up: boolean;
  /** Why it is not up (unreachable, refused TLS, the Swarm reports the node down). */
  error?: string;
  /** ms since epoch of the last attempt. */
  at: number;
}

type Node = Pick<SwarmNode, 'ID' | 'Spec' | 'Status' | 'ManagerStatus' | 'Description'>;

const nodeName = (n: Node): string => n.Description?.Hostname ?? n.Spec.Name ?? n.ID.slice(0, 12);

/**
 * Where the control plane reaches a node's Docker engine: the node label `io.berth.engine`
 * (`HOST`, `HOST:PORT` or `[IPv6]:PORT`) when the engine listens elsewhere than the Swarm address
 * (another interface, a NAT), else the node's Swarm address on ENGINE_TLS_PORT. Undefined when the
 * node has neither. A malformed label is InvalidInput naming the node and the label.
 */
export function engineEndpoint(node: Node): EngineEndpoint | undefined {
  const label = node.Spec.Labels?.[HOST_LABEL.engine]?.trim();
  if (label) {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+))(?::(\d{1,5}))?$/.exec(label);
    const host = m?.[1] ?? m?.[2];
    const port = m?.[3] ? Number(m[3]) : ENGINE_TLS_PORT;
    const hostOk = host !== undefined && (m?.[1] ? isIP(host) === 6 : isIP(host) === 4 || /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$/.test(host));
    if (!hostOk || port < 1 || port > 65535) {
      throw new InvalidInput(`host ${nodeName(node)}: label ${HOST_LABEL.engine}="${label}" is not HOST[:PORT] (e.g. 10.0.0.5:2376 or [fd00::5]:2376)`, { details: { field: HOST_LABEL.engine } });
    }
    return { host: host!, port };
  }
  const addr = node.Status?.Addr && node.Status.Addr !== '0.0.0.0' ? node.Status.Addr : node.ManagerStatus?.Addr?.replace(/:\d+$/, '');
  return addr ? { host: addr, port: ENGINE_TLS_PORT } : undefined;
}

export function endpointUrl(e: EngineEndpoint): string {
  return `tcp://${isIP(e.host) === 6 ? `[${e.host}]` : e.host}:${e.port}`;
}

/**
 * The control plane's clients of every host's Docker engine (cluster mode): TCP + mutual TLS with
 * Berth's client certificate, the cluster CA as the only trusted issuer, and the host's certificate
 * checked against the address dialled. One DockerEngine per node and endpoint, made on first use.
 * A connection that does not answer within `connectTimeoutMs` fails (EngineUnavailable naming the
 * host and endpoint); long streams (logs, exec) have no overall timeout. Remembers how each host's
 * engine last answered (`health()`: the `berth_host_engine_up` gauge).
 */
export class HostEngines {
  private readonly engines = new Map<string, { key: string; engine: DockerEngine }>();
  private readonly healthByHost = new Map<string, HostEngineHealth>();
  private readonly log: Logger;

  constructor(private readonly o: { tls: EngineTls; logger: Logger; connectTimeoutMs?: number; now?: () => number }) {
    this.log = o.logger.child({ component: 'host-engines' });
  }

  /** The engine of a node; throws EngineUnavailable without dialling when the Swarm reports the node down. */
  forNode(node: Node): { host: string; endpoint: string; engine: DockerEngine } {
    const host = nodeName(node);
    const ep = engineEndpoint(node);
    if (!ep) throw this.down(host, '', `host ${host} has no address the control plane can reach its engine on: label it ${HOST_LABEL.engine}=ADDR[:PORT]`);
    const endpoint = endpointUrl(ep);
    if (node.Status?.State && node.Status.State !== 'ready') {
      throw this.down(host, endpoint, `host ${host} is ${node.Status.State}${node.Status.Message ? ` (${node.Status.Message})` : ''}: its engine at ${endpoint} is not asked`);
    }
    const key = `${ep.host}:${ep.port}`;
    const cur = this.engines.get(node.ID);
    if (cur?.key === key) return { host, endpoint, engine: cur.engine };
    const docker = new Docker({
      host: ep.host, port: ep.port, protocol: 'https', ca: this.o.tls.ca, cert: this.o.tls.cert, key: this.o.tls.key,
      // Until the response starts: a host that does not answer fails fast; a followed log may stay quiet for hours.
      connectionTimeout: this.o.connectTimeoutMs ?? 5000,
    } as Docker.DockerOptions);
    const engine = new DockerEngine({ docker, socketPath: endpoint, hostName: host, logger: this.log });
    this.engines.set(node.ID, { key, engine });
    return { host, endpoint, engine };
  }

  /** Runs `fn` against a node's engine, recording whether the engine answered; failures to reach it name the host. */
  async on<T>(node: Node, what: string, fn: (engine: DockerEngine) => Promise<T>): Promise<T> {
    const { host, endpoint, engine } = this.forNode(node);
    try {
      const r = await fn(engine);
      this.mark(host, endpoint, true);
      return r;
    } catch (e) {
      if (!(e instanceof EngineUnavailable)) {
        // The engine answered (a 404, a refusal): it is up.
        if (e instanceof BerthError) this.mark(host, endpoint, true);
        throw e;
      }
      throw this.down(host, endpoint, `${what} on host ${host}: its Docker engine at ${endpoint} did not answer (${reason(e)}); ` +
        `check that its dockerd listens there with Berth's TLS material (the engine step of \`berth host add --address\`) and that the port is open from the control plane`, e);
    }
  }

  /** Pings every given node's engine (in parallel, each bounded by the connect timeout). */
  async check(nodes: Node[]): Promise<HostEngineHealth[]> {
    await Promise.all(nodes.map((n) => this.on(n, 'ping', (e) => e.ping()).catch(() => undefined)));
    const names = new Set(nodes.map(nodeName));
    for (const h of this.healthByHost.keys()) if (!names.has(h)) this.healthByHost.delete(h);
    return this.health();
  }

  health(): HostEngineHealth[] {
    return [...this.healthByHost.values()].sort((a, b) => a.host.localeCompare(b.host));
  }

  private mark(host: string, endpoint: string, up: boolean, error?: string): void {
    const prev = this.healthByHost.get(host);
    if (prev && prev.up !== up) {
      if (up) this.log.info({ host, endpoint }, 'host engine reachable again');
      else this.log.warn({ host, endpoint, error }, 'host engine unreachable');
    }
    this.healthByHost.set(host, { host, endpoint, up, ...(error ? { error } : {}), at: (this.o.now ?? Date.now)() });
  }

  private down(host: string, endpoint: string, message: string, cause?: unknown): EngineUnavailable {
    this.mark(host, endpoint, false, message);
    return new EngineUnavailable(message, cause ? { cause } : undefined);
  }
}

function reason(e: unknown): string {
  let c: unknown = e;
  for (let i = 0; i < 4 && c && typeof c === 'object'; i++) {
    const x = c as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof x.code === 'string' && x.code !== 'engine_unavailable') return x.code;
    c = x.cause;
  }
  return e instanceof Error ? e.message.replace(/^The Docker Engine at \S+ is not reachable/, 'not reachable').split(':')[0]! : String(e);
}

interface Task {
  ID: string;
  NodeID?: string;
  CreatedAt?: string;
  Status?: { State?: string; ContainerStatus?: { ContainerID?: string } };
}

/**
 * What Swarm's manager cannot do for an instance on another host — its logs with Docker's exact
 * `since`, its stats, a signal, an exec — done on that host's engine (HostEngines). An instance is a
 * one-task Swarm service (swarm-containers.ts): its id is the service's; each method finds the
 * service's task (the latest one with a container; logs read every task's container in order) and its
 * node through the manager, then calls the node's engine with the task's container id.
 */
export class SwarmDataPlane {
  private nodesCache?: { at: number; nodes: Promise<SwarmNode[]> };

  constructor(
    private readonly manager: Docker,
    private readonly managerName: string,
    readonly engines: HostEngines,
    private readonly o: { nodesTtlMs?: number; now?: () => number } = {},
  ) {}

  /** One resource-usage sample of the instance's running task; undefined when none runs. */
  async stats(serviceId: string): Promise<ContainerStats | undefined> {
    const t = await this.current(serviceId, false);
    if (!t) return undefined;
    return this.engines.on(t.node, `stats of ${serviceId.slice(0, 12)}`, (e) => e.stats(t.containerId));
  }

  /** A signal to the instance's running task's container (nothing runs: nothing to do). */
  async kill(serviceId: string, signal: string): Promise<void> {
    const t = await this.current(serviceId, true);
    if (!t) return;
    await this.engines.on(t.node, `${signal} to ${serviceId.slice(0, 12)}`, (e) => e.kill(t.containerId, signal));
  }

  async exec(serviceId: string, cmd: string[], out: ExecOutput, signal?: AbortSignal): Promise<{ exitCode: number }> {
    const t = await this.current(serviceId, true);
    if (!t) throw new Conflict(`instance ${serviceId.slice(0, 12)} has no running container to exec in`);
    return this.engines.on(t.node, `exec in ${serviceId.slice(0, 12)}`, (e) => e.exec(t.containerId, cmd, out, signal));
  }

  /**
   * The instance's output across its tasks (oldest first), lines stamped with the service id: each
   * earlier task's container is read to its end from `since`, the latest one followed when asked.
   * An earlier task on a host that cannot be reached is skipped (its lines come when the collector
   * reads again only if they are newer than what it stored since); the latest one's failure rejects.
   */
  async logs(serviceId: string, opts: { follow: boolean; tail?: number; since?: number | string; signal?: AbortSignal }, onLine: (l: LogLine) => void): Promise<void> {
    const tasks = (await this.tasks(serviceId)).filter((t) => t.Status?.ContainerStatus?.ContainerID && t.NodeID);
    if (tasks.length === 0) return;
    const nodes = await this.nodes();
    const relabel = (l: LogLine): void => onLine({ ...l, containerId: serviceId });
    // A tail is of the latest task only (what `docker logs --tail` of the instance means).
    const read = opts.tail !== undefined ? tasks.slice(-1) : tasks;
    for (let i = 0; i < read.length; i++) {
      if (opts.signal?.aborted) return;
      const t = read[i]!;
      const last = i === read.length - 1;
      const node = nodes.find((n) => n.ID === t.NodeID);
      const containerId = t.Status!.ContainerStatus!.ContainerID!;
      const run = (): Promise<void> => {
        if (!node) throw new EngineUnavailable(`the node of instance ${serviceId.slice(0, 12)}'s task ${t.ID.slice(0, 12)} is no longer in the Swarm`);
        return this.engines.on(node, `logs of ${serviceId.slice(0, 12)}`, (e) => e.logs(containerId, { ...opts, follow: last && opts.follow }, relabel));
      };
      if (last) return run();
      await run().catch(() => undefined);
    }
  }

  /** The latest task with a container (running only when `running`), and its node. */
  private async current(serviceId: string, running: boolean): Promise<{ node: SwarmNode; containerId: string } | undefined> {
    const tasks = (await this.tasks(serviceId)).filter((t) => t.Status?.ContainerStatus?.ContainerID && t.NodeID && (!running || t.Status?.State === 'running'));
    const t = tasks.at(-1);
    if (!t) return undefined;
    const node = (await this.nodes()).find((n) => n.ID === t.NodeID);
    if (!node) throw new EngineUnavailable(`the node of instance ${serviceId.slice(0, 12)} is no longer in the Swarm`);
    return { node, containerId: t.Status!.ContainerStatus!.ContainerID! };
  }

  private async tasks(serviceId: string): Promise<Task[]> {
    let tasks: Task[];
    try {
      tasks = (await this.manager.listTasks({ filters: { service: [serviceId] } })) as Task[];
    } catch (e) {
      throw toBerthError(e, this.managerName, `tasks of ${serviceId}`);
    }
    return tasks.sort((a, b) => (a.CreatedAt ?? '').localeCompare(b.CreatedAt ?? ''));
  }

  /** The Swarm's nodes, cached briefly: every stats round and log sync would list them per instance. */
  private async nodes(): Promise<SwarmNode[]> {
    const now = (this.o.now ?? Date.now)();
    if (this.nodesCache && now - this.nodesCache.at < (this.o.nodesTtlMs ?? 2000)) return this.nodesCache.nodes;
    const nodes = (this.manager.listNodes() as Promise<SwarmNode[]>).catch((e: unknown) => {
      this.nodesCache = undefined;
      throw toBerthError(e, this.managerName, 'list nodes');
    });
    this.nodesCache = { at: now, nodes };
    return nodes;
  }

  /**
   * The hosts whose engine events the feed follows (host-events.ts): every ready node with an engine
   * endpoint, keyed by node and endpoint; the manager's own node through `local` (its unix socket:
   * the manager engine's own watch follows Berth's plain containers, this one its task containers).
   * A node that is down, or has no endpoint or a bad one, is not followed (and is said once per change).
   */
  async followedHosts(local: HostEventSource): Promise<FollowedHost[]> {
    this.nodesCache = undefined;
    const [nodes, self] = await Promise.all([this.nodes(), this.selfNodeId()]);
    const out: FollowedHost[] = [];
    for (const n of nodes) {
      const name = nodeName(n);
      if (n.Status?.State && n.Status.State !== 'ready') continue;
      if (n.ID === self) {
        out.push({ key: `${n.ID}@local`, name, source: () => local, emit: true });
        continue;
      }
      let ep: EngineEndpoint | undefined;
      try {
        ep = engineEndpoint(n);
      } catch {
        ep = undefined;
      }
      if (!ep) continue;
      out.push({
        key: `${n.ID}@${endpointUrl(ep)}`, name, emit: true,
        source: () => {
          return this.engines.forNode(n).engine.taskEventSource();
        },
      });
    }
    return out;
  }

  private selfId: string | undefined;

  private async selfNodeId(): Promise<string | undefined> {
    if (this.selfId) return this.selfId;
    try {
      const info = (await this.manager.info()) as { Swarm?: { NodeID?: string } };
      this.selfId = info.Swarm?.NodeID || undefined;
    } catch (e) {
      throw toBerthError(e, this.managerName, 'info');
    }
    return this.selfId;
  }

  /** Pings every node's engine: HostEngines.health() afterwards says which answer. */
  async checkHosts(): Promise<HostEngineHealth[]> {
    this.nodesCache = undefined;
    return this.engines.check(await this.nodes());
  }
}

/**
 * An engine whose containers are one-task Swarm services (SwarmContainers, or the whole cluster
 * engine) with what the manager cannot do routed to the hosts' engines: logs, stats, exec, and every
 * signal but SIGKILL (which stays the containers role's: scale to 0, so Swarm records the stop).
 */
export function withHostEngines<T extends object>(base: T, dp: SwarmDataPlane): T & Pick<SwarmDataPlane, 'logs' | 'stats' | 'exec' | 'kill'> {
  const kill = (base as { kill?: (id: string, signal: string) => Promise<void> }).kill?.bind(base);
  const own = {
    logs: dp.logs.bind(dp),
    stats: dp.stats.bind(dp),
    exec: dp.exec.bind(dp),
    kill: (id: string, signal: string): Promise<void> => (kill && /^(SIG)?KILL$/.test(signal) ? kill(id, signal) : dp.kill(id, signal)),
  };
  return new Proxy(base, {
    get(target, prop, recv) {
      if (typeof prop === 'string' && prop in own) return own[prop as keyof typeof own];
      const v = Reflect.get(target, prop, recv) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as T & typeof own;
}
