/** Typed calls of the host API (issue 13): hosts, their labels, drain, removal; cluster init and join. */
import type { BerthClient } from './client.ts';

export type { ClusterMode, HostInfo } from '../core/ports.ts';

export function listHosts(c: BerthClient) {
  return c.call('get', '/v1/hosts', {});
}

/** Sets labels and removes the keys in `remove`. */
export function labelHost(c: BerthClient, host: string, set: Record<string, string>, remove: string[] = []) {
  return c.call('put', '/v1/hosts/{host}/labels', { path: { host }, body: { set, remove } });
}

/** drain false: ready again. */
export function drainHost(c: BerthClient, host: string, drain = true) {
  return c.call('post', '/v1/hosts/{host}/drain', { path: { host }, body: { drain } });
}

export function removeHost(c: BerthClient, host: string, force = false) {
  return c.call('delete', '/v1/hosts/{host}', { path: { host }, query: { force: force ? 'true' : undefined } });
}

export function clusterInit(c: BerthClient, advertiseAddr: string) {
  return c.call('post', '/v1/cluster/init', { body: { advertiseAddr } });
}

/** What a new host runs to join (the token is a credential). */
export function clusterJoin(c: BerthClient, pool?: string, address?: string) {
  return c.call('get', '/v1/cluster/join', { query: { pool, address } });
}

/** Edge hosts: the generation each one's nginx serves and its agent's last contact. */
export function listEdgeHosts(c: BerthClient) {
  return c.call('get', '/v1/edge/hosts', {});
}

/** An edge host's token (a credential for its edge config only) and its agent's systemd unit. */
export function edgeToken(c: BerthClient, host: string, port?: number, httpsPort?: number) {
  return c.call('post', '/v1/edge/tokens', { body: { host, ...(port !== undefined ? { port } : {}), ...(httpsPort !== undefined ? { httpsPort } : {}) } });
}
