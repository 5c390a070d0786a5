/** Typed calls of the pool API (issues 13, 14): pools, their quotas and the teams granted each. */
import type { BerthClient } from './client.ts';

export type { PoolQuota, PoolView } from '../core/pools.ts';

export function listPools(c: BerthClient) {
  return c.call('get', '/v1/pools', {});
}

/** A number or string sets a limit, null removes it, absent keeps it. */
export function setPoolQuota(c: BerthClient, pool: string, quota: { cpus?: number | string | null; memory?: number | string | null; instances?: number | null }) {
  return c.call('put', '/v1/pools/{pool}/quota', { path: { pool }, body: quota });
}

/** team `*`: every team. */
export function grantPool(c: BerthClient, pool: string, team: string) {
  return c.call('post', '/v1/pools/{pool}/grants/{team}', { path: { pool, team } });
}

export function revokePool(c: BerthClient, pool: string, team: string) {
  return c.call('delete', '/v1/pools/{pool}/grants/{team}', { path: { pool, team } });
}
