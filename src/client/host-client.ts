/** Typed calls of the host API (issue 13): hosts, their labels, drain, removal; cluster init and join. */
import type { BerthClient } from './client.ts';
import type { ClusterMode, HostInfo } from '../core/ports.ts';

export type { ClusterMode, HostInfo } from '../core/ports.ts';

const enc = encodeURIComponent;

export function listHosts(c: BerthClient) {
  return c.request<{ mode: ClusterMode; hosts: HostInfo[] }>('GET', '/v1/hosts');
}

/** Sets labels and removes the keys in `remove`. */
export function labelHost(c: BerthClient, host: string, set: Record<string, string>, remove: string[] = []) {
  return c.request<{ host: HostInfo }>('PUT', `/v1/hosts/${enc(host)}/labels`, { set, remove });
}

/** drain false: ready again. */
export function drainHost(c: BerthClient, host: string, drain = true) {
  return c.request<{ host: HostInfo }>('POST', `/v1/hosts/${enc(host)}/drain`, { drain });
}

export function removeHost(c: BerthClient, host: string, force = false) {
  return c.request<void>('DELETE', `/v1/hosts/${enc(host)}${force ? '?force=true' : ''}`);
}

export function clusterInit(c: BerthClient, advertiseAddr: string) {
  return c.request<{ mode: ClusterMode; hosts: HostInfo[] }>('POST', '/v1/cluster/init', { advertiseAddr });
}

/** What a new host runs to join (the token is a credential). */
export function clusterJoin(c: BerthClient, pool?: string) {
  return c.request<{ token: string; managers: string[]; command: string; steps: string[] }>('GET', `/v1/cluster/join${pool ? `?pool=${enc(pool)}` : ''}`);
}
