import type Docker from 'dockerode';
import { LABEL, type NetworkInfo } from '../../core/ports.ts';

/** A Docker network as the API inspects and lists it (the fields read here). */
export type Network = {
  Name: string;
  Id: string;
  Driver?: string;
  Scope?: string;
  Labels?: Record<string, string>;
  IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string }> };
  Containers?: Record<string, unknown>;
};

/**
 * The create body of an app network: one host, a bridge; cluster mode, an attachable Swarm overlay
 * (Swarm services and standalone containers may join it) spanning every host a task of it lands on.
 * Both on a /24 of Berth's pool (BERTH_NETWORK_POOL), so one pool and one subnet choice serve both.
 * Overlays are not encrypted: Docker's encrypted overlays are IPsec ESP between hosts, which needs the
 * kernel's xfrm states (missing on the test machines' kernel: "function not implemented"), and costs
 * CPU on every packet; docs/DESIGN.md says what this means for a host network that is not private.
 */
export function networkCreateBody(name: string, labels: Record<string, string>, subnet: { cidr: string; gateway: string }, driver: 'bridge' | 'overlay'): Docker.NetworkCreateOptions {
  return {
    Name: name, Driver: driver, CheckDuplicate: true, Attachable: true,
    ...(driver === 'overlay' ? { Scope: 'swarm' } : {}),
    IPAM: { Driver: 'default', Config: [{ Subnet: subnet.cidr, Gateway: subnet.gateway }] },
    Labels: { ...labels, [LABEL.managed]: 'true' },
  };
}

/** An app network as Berth sees it: an overlay's gateway is no address of any host (NetworkInfo.overlay), so it has none. */
export function networkInfoOf(n: Network): NetworkInfo {
  const base = { name: n.Name, id: n.Id, labels: { ...(n.Labels ?? {}) } };
  if (n.Driver === 'overlay') return { ...base, overlay: true };
  const gateway = (n.IPAM?.Config ?? []).map((c) => c.Gateway).find((g) => g && !g.includes(':'));
  return { ...base, ...(gateway ? { gateway } : {}) };
}
