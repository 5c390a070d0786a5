/**
 * Pool admission (issue 13, many hosts): the one place that decides, before anything of a deployment
 * is written or started, whether its services fit their pools. Pure: the deployments service gathers
 * the hosts (EngineHosts) and the environment's current instances and calls `admit`; a refusal names
 * the pool, what was asked and what is free. Checks of other kinds (pool quotas, a team's grants on
 * pools) belong here too, as further steps of `admit`, so every deploy path meets them at once.
 */
import { planPlacement, type PlacementRequest } from './placement.ts';
import { DEFAULT_POOL, type HostInfo, type Placement, type Resources } from './ports.ts';
import type { AppSpec, ServiceSpec } from './spec/types.ts';

/** Where an instance of a service may run and what it reserves (its reservations, else its limits). */
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

/**
 * What a Swarm service cannot be given (Docker API 1.41), which a plain container can (with a
 * guardrail exemption): refused in cluster mode rather than silently dropped.
 */
export function swarmCannot(s: Pick<ServiceSpec, 'privileged' | 'hostNamespaces' | 'devices' | 'unconfined'>): string[] {
  const out: string[] = [];
  if (s.privileged) out.push('privileged');
  for (const n of s.hostNamespaces ?? []) out.push(`${n === 'userns' ? 'userns_mode' : n}: host`);
  if (s.devices?.length) out.push('devices');
  for (const u of s.unconfined ?? []) out.push(`security_opt ${u}=unconfined`);
  return out;
}

/** One running instance of the app in the environment, as the deployment would find it. */
export interface CurrentInstance {
  service: string;
  host: string;
  reservation: Resources;
}

export interface AdmissionInput {
  app: string;
  env: string;
  spec: AppSpec;
  hosts: HostInfo[];
  /** The environment's instances of this app now: those a release replaces give their reservation back. */
  current: CurrentInstance[];
}

export type Admission =
  | { ok: true; /** host names per service, in the order the instances would be placed */ hosts: Record<string, string[]> }
  | { ok: false; /** the pool that refused */ pool: string; /** a sentence with the numbers */ reason: string };

/**
 * Whether every service of the deployment fits its pool: its replicas on ready hosts of the pool
 * that satisfy its constraints and max_replicas_per_node, with room for its reservation. Instances
 * this deployment replaces give their reservations back first (a rolling release frees what it
 * replaces), except under blue-green, where the whole new set runs beside the old one until the switch.
 */
export function admit(input: AdmissionInput): Admission {
  const services = Object.values(input.spec.services).filter((s) => s.replicas > 0);
  for (const s of services) {
    const no = swarmCannot(s);
    if (no.length) {
      return { ok: false, pool: placementOfService(s).pool, reason: `services.${s.name} cannot run in cluster mode: a Swarm service cannot have ${no.join(', ')}; remove ${no.length === 1 ? 'it' : 'them'} (or run the app on a single-host Berth)` };
    }
  }
  const replaced = new Set(services.filter((s) => s.update?.strategy !== 'blue-green').map((s) => s.name));
  const hosts = input.hosts.map((h) => ({ ...h, reserved: { ...h.reserved } }));
  const byName = new Map(hosts.map((h) => [h.name, h]));
  for (const c of input.current) {
    const h = byName.get(c.host);
    if (!h || !replaced.has(c.service)) continue;
    h.reserved = { nanoCpus: Math.max(0, h.reserved.nanoCpus - c.reservation.nanoCpus), memoryBytes: Math.max(0, h.reserved.memoryBytes - c.reservation.memoryBytes) };
  }
  const requests: PlacementRequest[] = services.map((s) => ({ name: s.name, placement: placementOfService(s), count: s.replicas }));
  const plan = planPlacement(hosts, requests);
  if (!plan.ok) {
    const pool = requests.find((r) => plan.reason.includes(`pool ${r.placement.pool}:`) || plan.reason.includes(`pool ${r.placement.pool} `))?.placement.pool ?? DEFAULT_POOL;
    return { ok: false, pool, reason: `${input.app} in ${input.env} does not fit: ${plan.reason}` };
  }
  return { ok: true, hosts: Object.fromEntries(services.map((s, i) => [s.name, plan.hosts[i]!])) };
}
