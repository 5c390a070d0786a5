/**
 * Failover words (issue 13): what Berth says about an instance whose host is down, a stateful
 * instance pinned to its host, and a task that waits to be placed. Pure, shared by the reconciler and
 * the status view.
 */

import type { HostInfo } from './ports.ts';
import type { ServiceKey } from './store.ts';

/** What `berth failover` needs of the server (the API holds no engine, no reconciler). */
export interface FailoverPort {
  /** The engine's hosts (to check the target). */
  hosts(): Promise<HostInfo[]>;
  /** New instances of the service are pinned to `host` from now on. */
  pinTo(k: ServiceKey, host: string): void;
}

/** The default bound on how long a started instance may wait to be placed/run before its release fails. */
export const DEFAULT_PENDING_BOUND_MS = 60_000;

/** `pinned to h2 (volume data)`: a stateful instance stays with its volumes' host. */
export function pinnedText(host: string, volumes: readonly string[]): string {
  return `pinned to ${host || 'its host'} (volume${volumes.length === 1 ? '' : 's'} ${volumes.join(', ')})`;
}

/**
 * Why a task waits, in Berth's words, from the engine's (Swarm's scheduler: `no suitable node
 * (host-mode port already in use on 1 node; insufficient resources on 2 nodes)`), keeping its text.
 */
export function pendingReasonText(engine: string): string {
  const why: string[] = [];
  if (/port already in use/i.test(engine)) why.push('its host port is taken on the hosts that could run it');
  if (/insufficient resources/i.test(engine)) why.push('no host of its pool has the CPU and memory it reserves free');
  if (/constraints not satisfied|no suitable node/i.test(engine) && why.length === 0) why.push('no host satisfies its placement (pool, constraints, max per host)');
  if (/not available for new tasks/i.test(engine) && why.length === 0) why.push('the hosts it may run on are down or draining');
  const said = engine.trim() ? `; the engine says: ${engine.trim()}` : '';
  return `${why.length ? why.join(' and ') : 'it was not placed or did not start'}${said}`;
}

/** `instance i7 waited 60s to be placed: its host port is taken …` */
export function pendingTimeoutText(instance: string, waitedMs: number, engine: string): string {
  return `instance ${instance} waited ${Math.round(waitedMs / 1000)}s to run: ${pendingReasonText(engine)}`;
}
