/**
 * Placement maths for many hosts (pure): which hosts an instance may run on (pool, Compose/Swarm
 * constraints, max replicas per node, free capacity), where a set of new instances would go when
 * spread, and the refusal that names the pool, what was asked and what is free.
 * Engines place for real (Swarm); Berth uses this to refuse a deploy that cannot fit before anything
 * starts, and the fake engine uses it to place.
 */
import { InvalidInput } from './errors.ts';
import { DEFAULT_POOL, HOST_LABEL, type HostInfo, type Placement, type Resources } from './ports.ts';
import type { ServiceSpec } from './spec/types.ts';

const GIB = 1024 ** 3;

/**
 * Where an instance of a service may run and what it reserves (its reservations, else its limits):
 * the one reading of a service's placement — the capacity check, the pools' quotas and the engine's
 * spec (deploy/container-spec.ts) all go by it.
 */
export function placementOfService(s: ServiceSpec): Placement {
  const r = s.reservations;
  return {
    pool: s.pool ?? DEFAULT_POOL,
    constraints: [...s.placement?.constraints ?? []],
    spread: [...s.placement?.spread ?? []],
    ...(s.placement?.maxReplicasPerNode !== undefined ? { maxReplicasPerNode: s.placement.maxReplicasPerNode } : {}),
    reservation: { nanoCpus: r?.nanoCpus ?? s.limits.nanoCpus ?? 0, memoryBytes: r?.memoryBytes ?? s.limits.memoryBytes ?? 0 },
  };
}

/** The pool a host's labels put it in. */
export function poolOf(labels: Record<string, string>): string {
  return labels[HOST_LABEL.pool] || DEFAULT_POOL;
}

export interface Constraint {
  /** `node.labels.zone`, `node.hostname`, `node.role`, `node.id`. */
  key: string;
  op: '==' | '!=';
  value: string;
}

const CONSTRAINT = /^\s*(node\.(?:labels\.[A-Za-z0-9_.-]+|hostname|role|id|platform\.os|platform\.arch))\s*(==|!=)\s*(\S(?:.*\S)?)\s*$/;

/**
 * Parses one Compose/Swarm placement constraint (`node.labels.zone==a`, `node.role!=manager`).
 * @throws InvalidInput saying what a constraint looks like.
 */
export function parseConstraint(expr: string): Constraint {
  const m = CONSTRAINT.exec(expr);
  if (!m) {
    throw new InvalidInput(
      `placement constraint "${expr}" is not understood: write node.labels.NAME==VALUE (or !=), node.hostname==NAME, node.role==manager|worker or node.id==ID`,
    );
  }
  return { key: m[1]!, op: m[2] as '==' | '!=', value: m[3]! };
}

function descriptor(host: HostInfo, key: string): string | undefined {
  if (key.startsWith('node.labels.')) return host.labels[key.slice('node.labels.'.length)];
  switch (key) {
    case 'node.hostname':
      return host.name;
    case 'node.role':
      return host.role;
    case 'node.id':
      return host.id;
    case 'node.platform.os':
      return 'linux';
    default:
      return undefined;
  }
}

/** Whether the host satisfies the constraint (a missing label is not equal to anything). */
export function satisfies(host: HostInfo, c: Constraint): boolean {
  const v = descriptor(host, c.key);
  return c.op === '==' ? v === c.value : v !== c.value;
}

/** Free CPU and memory of a host (capacity minus reservations, never below 0). */
export function freeOf(host: HostInfo): Resources {
  return {
    nanoCpus: Math.max(0, host.capacity.nanoCpus - host.reserved.nanoCpus),
    memoryBytes: Math.max(0, host.capacity.memoryBytes - host.reserved.memoryBytes),
  };
}

/** `2 CPUs / 3 GiB`, `0.5 CPUs / 512 MiB`. */
export function formatResources(r: Resources): string {
  const cpus = Math.round((r.nanoCpus / 1e9) * 100) / 100;
  const mem = r.memoryBytes >= GIB ? `${Math.round((r.memoryBytes / GIB) * 100) / 100} GiB` : `${Math.round(r.memoryBytes / 1024 ** 2)} MiB`;
  return `${cpus} ${cpus === 1 ? 'CPU' : 'CPUs'} / ${mem}`;
}

export interface PlacementRequest {
  /** A name for messages (`web`). */
  name: string;
  placement: Placement;
  /** How many new instances. */
  count: number;
  /** Instances of this service already on each host (by host name), which spread and max_replicas_per_node count. */
  existing?: Record<string, number>;
}

export type PlanResult =
  | { ok: true; /** host name per new instance, request by request */ hosts: string[][] }
  | { ok: false; reason: string };

/**
 * Places the new instances of every request, one at a time, on the ready hosts of their pool that
 * satisfy their constraints, have room for the reservation and are under max_replicas_per_node;
 * spreading: the host with the fewest instances of the request (first by each spread descriptor's
 * value, e.g. zone), then the one with the fewest instances of all services, then the one with the
 * most free memory, then by name. Requests of one pool
 * share its capacity. Refused when an instance has no such host: the reason names the pool, what all
 * requests of that pool ask and what is free on how many hosts.
 */
export function planPlacement(hosts: HostInfo[], requests: PlacementRequest[]): PlanResult {
  const free = new Map(hosts.map((h) => [h.name, freeOf(h)]));
  // Every instance on a host, of any service (as Swarm's spread strategy counts a node's tasks): the
  // tie-break after the request's own spread, so services without reservations do not all start on
  // the same first hosts by name.
  const load = new Map(hosts.map((h) => [h.name, h.instances]));
  const out: string[][] = [];
  for (const req of requests) {
    const constraints = req.placement.constraints.map(parseConstraint);
    const candidates = hosts.filter((h) => h.state === 'ready' && h.pool === req.placement.pool && constraints.every((c) => satisfies(h, c)));
    const counts = new Map<string, number>(candidates.map((h) => [h.name, req.existing?.[h.name] ?? 0]));
    const placed: string[] = [];
    const r = req.placement.reservation;
    for (let i = 0; i < req.count; i++) {
      const fits = candidates.filter((h) => {
        const f = free.get(h.name)!;
        const max = req.placement.maxReplicasPerNode;
        return f.nanoCpus >= r.nanoCpus && f.memoryBytes >= r.memoryBytes && (max === undefined || counts.get(h.name)! < max);
      });
      if (fits.length === 0) return { ok: false, reason: refusal(hosts, requests, req, candidates.length) };
      // The request's instances per value of each spread descriptor (e.g. per zone), counted once per placement.
      const byValue = req.placement.spread.map((key) => {
        const m = new Map<string | undefined, number>();
        for (const o of candidates) m.set(descriptor(o, key), (m.get(descriptor(o, key)) ?? 0) + counts.get(o.name)!);
        return (h: HostInfo) => m.get(descriptor(h, key))!;
      });
      fits.sort((a, b) => {
        for (const count of byValue) {
          const d = count(a) - count(b);
          if (d !== 0) return d;
        }
        return counts.get(a.name)! - counts.get(b.name)! || load.get(a.name)! - load.get(b.name)!
          || free.get(b.name)!.memoryBytes - free.get(a.name)!.memoryBytes || (a.name < b.name ? -1 : 1);
      });
      const h = fits[0]!;
      const f = free.get(h.name)!;
      free.set(h.name, { nanoCpus: f.nanoCpus - r.nanoCpus, memoryBytes: f.memoryBytes - r.memoryBytes });
      counts.set(h.name, counts.get(h.name)! + 1);
      load.set(h.name, load.get(h.name)! + 1);
      placed.push(h.name);
    }
    out.push(placed);
  }
  return { ok: true, hosts: out };
}

function refusal(hosts: HostInfo[], requests: PlacementRequest[], req: PlacementRequest, candidates: number): string {
  const pool = req.placement.pool;
  const inPool = hosts.filter((h) => h.pool === pool);
  const ready = inPool.filter((h) => h.state === 'ready');
  if (ready.length === 0) {
    return inPool.length === 0
      ? `pool ${pool} has no hosts: label one with berth host label HOST ${HOST_LABEL.pool}=${pool}`
      : `pool ${pool} has no ready host (${inPool.map((h) => `${h.name} ${h.state}`).join(', ')})`;
  }
  if (candidates === 0) return `no ready host of pool ${pool} satisfies ${req.name}'s placement constraints ${req.placement.constraints.join(', ')}`;
  const asked = requests
    .filter((q) => q.placement.pool === pool)
    .reduce((s, q) => ({ nanoCpus: s.nanoCpus + q.count * q.placement.reservation.nanoCpus, memoryBytes: s.memoryBytes + q.count * q.placement.reservation.memoryBytes }), { nanoCpus: 0, memoryBytes: 0 });
  const free = ready.map(freeOf).reduce((s, f) => ({ nanoCpus: s.nanoCpus + f.nanoCpus, memoryBytes: s.memoryBytes + f.memoryBytes }), { nanoCpus: 0, memoryBytes: 0 });
  const max = req.placement.maxReplicasPerNode;
  const perNode = max === undefined ? '' : ` (at most ${max} of ${req.name} per host)`;
  return `pool ${pool}: asks ${formatResources(asked)}, free ${formatResources(free)} on ${ready.length} ${ready.length === 1 ? 'host' : 'hosts'}; ${req.name} (${formatResources(req.placement.reservation)} each) does not fit${perNode}`;
}
