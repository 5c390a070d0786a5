/**
 * The pure planner for one service: given desired state, Berth's instance records and what the engine
 * reports, decide the next actions. No I/O, no clock: `now` comes in. The reconciler applies the
 * actions and calls again (level-driven), so a crash between any two actions converges.
 */
import type { InstanceHealth, InstanceState } from '../store.ts';
import type { RestartPolicy, UpdateSpec } from '../spec/types.ts';

/**
 * What the engine says of an instance's container. Many hosts add two: `pending` (its start was asked
 * but the task waits to be placed or to run) and `lost` (its host is down: it may come back running).
 */
export type Observed = 'missing' | 'created' | 'pending' | 'running' | 'exited' | 'lost';

export interface InstanceView {
  id: string;
  releaseId: string;
  state: InstanceState;
  health: InstanceHealth;
  observed: Observed;
  exitCode?: number;
  /** ms timestamp when the container started (for crash-loop reset). */
  startedAt?: number;
  createdAt: number;
  /** A person asked for this instance to be restarted: it is replaced like an instance of an old release. */
  replace?: boolean;
  /** Many hosts: the host it runs on (for the reasons it is moved with). */
  host?: string;
  /** Its host is draining: it is moved like a restart (a replacement elsewhere serves before it goes). */
  hostDraining?: boolean;
  /**
   * A stateful instance pinned to its host (named volumes), e.g. `pinned to h2 (volume data)`: never
   * moved by Berth on its own (not on host loss, not on a drain); `berth failover` moves it (it asks
   * for a replacement: `replace`, and a lost pinned instance asked to be replaced fails over).
   */
  pinned?: string;
}

export interface DesiredView {
  replicas: number;
  releaseId: string;
  restart: RestartPolicy;
  /** Consecutive failures so far and the earliest time a replacement may start. */
  failures: number;
  nextStartAt: number;
  /** Instances beyond `replicas` allowed while a new release rolls out (start-first). */
  maxSurge: number;
  /** How a new release replaces the running one; rolling when absent. */
  strategy?: UpdateSpec['strategy'];
  /** rolling: how many fewer than `replicas` may serve during the rollout. */
  maxUnavailable?: number;
  /** blue-green: the release the ingress routes to, when it switched, and how long the previous set idles. */
  routedReleaseId?: string;
  switchedAt?: number;
  keepPreviousMs?: number;
}

export interface Container {
  id: string;
  instance: string;
}

export type Action =
  /** Create and start the container of a pending instance. */
  | { kind: 'start'; instance: string }
  /** Start a container that exists but never ran (crash between create and start). */
  | { kind: 'start-existing'; instance: string }
  /** The container runs but the record still says pending: record it. */
  | { kind: 'mark-running'; instance: string }
  /** New instances of the desired release. */
  | { kind: 'create'; count: number }
  /** Leave the upstreams, drain, stop, remove, forget. */
  | { kind: 'stop'; instance: string; reason: string }
  /**
   * Its host is down: out of the upstreams at once, its engine object removed (so it cannot come back
   * as a duplicate when the host returns), forgotten; a replacement starts on another host (by count).
   */
  | { kind: 'failover'; instance: string; host: string }
  /** A pinned instance whose host is down: out of the upstreams, kept (its volume is there). */
  | { kind: 'unroute'; instance: string; reason: string }
  /** The instance ended on its own: forget it and count a failure (replacement follows by count). */
  | { kind: 'reap'; instance: string; exitCode?: number; countsAsFailure: boolean }
  /** The instance ended and policy says leave it: keep the record as exited (not routable). */
  | { kind: 'mark-exited'; instance: string; exitCode?: number }
  /** A container with Berth labels for this service but no record: remove it. */
  | { kind: 'remove-orphan'; containerId: string }
  /** blue-green: route to this release from now on (one upstream switch). */
  | { kind: 'switch'; releaseId: string }
  /** Nothing to do until then (crash-loop backoff, idle previous set); requeue. */
  | { kind: 'wait'; untilMs: number; reason: string };

/** The reason an instance that ended with exit code 0 is kept with: a one-shot service's "completed". */
export const COMPLETED_REASON = 'completed: exited with code 0';

/** A dependency as the dependent's first start sees it: its desired replicas and its instances. */
export interface DependencyView {
  replicas: number;
  instances: Array<{ state: string; health: string; reason?: string; check?: { ok: boolean; text: string; since: number } }>;
}

/** A dependency a service's first instances wait for, and the condition not met yet. */
export interface DependencyHold {
  service: string;
  condition: string;
}

const WANTED: Record<string, string> = { service_healthy: 'healthy', service_completed_successfully: 'completed successfully', service_started: 'started' };

/**
 * What the first instances of a service still wait for (depends_on, in order), or undefined when
 * they may start: service_started needs a running instance, service_healthy a healthy one,
 * service_completed_successfully one that completed (exit 0). A dependency that is not deployed or
 * scaled to 0 is nothing to wait for.
 */
export function dependencyWait(dependsOn: readonly string[], conditions: Readonly<Record<string, string>> | undefined,
  lookup: (service: string) => DependencyView | undefined): DependencyHold | undefined {
  for (const dep of dependsOn) {
    const view = lookup(dep);
    if (!view || view.replicas === 0) continue;
    const condition = conditions?.[dep] ?? 'service_started';
    const met = condition === 'service_healthy' ? view.instances.some((i) => i.state === 'running' && i.health === 'healthy')
      : condition === 'service_completed_successfully' ? view.instances.some((i) => i.state === 'exited' && i.reason === COMPLETED_REASON)
        : view.instances.some((i) => i.state === 'running');
    if (!met) return { service: dep, condition };
  }
  return undefined;
}

/** `waiting for db (healthy)`: what a held service says while it waits. */
export function dependencyWaitText(h: DependencyHold): string {
  return `waiting for ${h.service} (${WANTED[h.condition] ?? h.condition})`;
}

/**
 * Why a held service gave up, naming the dependency and what it last said:
 * `db did not become healthy in 60s: healthcheck exit 1: no response`, `migrate did not complete
 * successfully in 60s: exited with code 3`, `cache did not start in 60s: no instance is running`.
 */
export function dependencyTimeoutText(h: DependencyHold, waitedMs: number, view: DependencyView | undefined): string {
  const secs = `${Math.round(waitedMs / 1000)}s`;
  const verb = h.condition === 'service_healthy' ? 'become healthy' : h.condition === 'service_completed_successfully' ? 'complete successfully' : 'start';
  return `${h.service} did not ${verb} in ${secs}: ${dependencyLastWord(h, view)}`;
}

function dependencyLastWord(h: DependencyHold, view: DependencyView | undefined): string {
  const insts = view?.instances ?? [];
  const running = insts.filter((i) => i.state === 'running');
  const exited = insts.filter((i) => i.state === 'exited' && i.reason);
  const lastExit = exited.at(-1)?.reason;
  if (h.condition === 'service_completed_successfully') {
    if (lastExit) return lastExit;
    return running.length ? 'it is still running' : 'no instance has run yet';
  }
  if (running.length === 0) return `no instance is running${lastExit ? ` (the last one ${lastExit})` : ''}`;
  if (h.condition === 'service_started') return 'its instances are starting';
  // The newest failing check says most; a check that has not failed has not reported yet.
  const failing = running.filter((i) => i.check && !i.check.ok).sort((a, b) => b.check!.since - a.check!.since)[0];
  if (failing?.check) return failing.check.text;
  return `its health check has not passed yet (${running.length} instance${running.length === 1 ? '' : 's'} ${running.map((i) => i.health).join(', ')})`;
}

/** A run of this long resets the crash-loop counter. */
export const STABLE_RUN_MS = 30_000;

export function crashLoopDelayMs(failures: number, baseMs: number): number {
  if (failures <= 0) return 0;
  return Math.min(60_000, Math.max(baseMs, 250) * 2 ** (failures - 1));
}

export function planService(desired: DesiredView | undefined, instances: InstanceView[], orphans: Container[], now: number): Action[] {
  const actions: Action[] = orphans.map((c) => ({ kind: 'remove-orphan', containerId: c.id }));
  if (!desired) {
    for (const i of instances) actions.push({ kind: 'stop', instance: i.id, reason: 'service removed' });
    return actions;
  }

  const live: InstanceView[] = [];
  let reaped = false;
  for (const i of instances) {
    if (i.state === 'stopping') {
      actions.push({ kind: 'stop', instance: i.id, reason: 'continue stopping' });
    } else if (i.observed === 'lost' && (i.state === 'running' || i.state === 'pending')) {
      if (i.pinned && !i.replace) {
        // Its volume is on that host: kept (counted, so nothing replaces it silently), not routed.
        if (i.health !== 'unhealthy') actions.push({ kind: 'unroute', instance: i.id, reason: `its host ${i.host ?? '?'} is down; ${i.pinned}: not moved` });
        live.push({ ...i, health: 'unhealthy' });
      } else {
        actions.push({ kind: 'failover', instance: i.id, host: i.host ?? '?' });
      }
    } else if (i.state === 'exited' || (i.state === 'running' && (i.observed === 'running' || i.observed === 'pending'))) {
      // (A pending task is live but not serving: the pending bound is the reconciler's to judge.)
      live.push(i.hostDraining && !i.pinned ? { ...i, replace: true } : i);
    } else if (i.state === 'pending' && i.observed !== 'exited') {
      const kind = i.observed === 'missing' ? 'start' : i.observed === 'created' ? 'start-existing' : 'mark-running';
      actions.push({ kind, instance: i.id });
      live.push(i);
    } else {
      // It ended on its own (or its container vanished).
      const end = endAction(i, desired);
      actions.push(end);
      if (end.kind === 'mark-exited') live.push({ ...i, state: 'exited' });
      else reaped = true;
    }
  }

  // An instance asked to restart counts as old: the strategy replaces it (rolling: a new one serves first).
  const current = live.filter((i) => i.releaseId === desired.releaseId && !i.replace);
  const old = live.filter((i) => i.releaseId !== desired.releaseId || i.replace);

  // Scale down the current release: drop those not serving first, then the newest.
  if (current.length > desired.replicas) {
    const order = [...current].sort((a, b) => rank(a) - rank(b) || b.createdAt - a.createdAt);
    for (const i of order.slice(0, current.length - desired.replicas)) actions.push({ kind: 'stop', instance: i.id, reason: 'scaled down' });
  }

  const strategy = desired.strategy ?? 'rolling';
  // Restarting single instances of the routed release is a rolling replacement under blue-green too
  // (the API refuses it while another release's set is live); recreate stops first, as it always does.
  const restarting = old.some((i) => i.replace && i.releaseId === desired.releaseId);
  const replace = strategy === 'recreate' ? recreate : strategy === 'blue-green' && !restarting ? blueGreen : rolling;
  const { stops, createBudget, extra } = replace(desired, current, old, now);
  actions.push(...stops, ...extra);

  // A failure was just counted: the backoff it sets decides when the replacement starts (next round).
  if (reaped) return actions;

  // Scale up (or replace what ended), within the strategy's budget, honouring crash-loop backoff.
  const count = Math.min(desired.replicas - current.length, createBudget);
  if (count > 0) {
    if (now < desired.nextStartAt) actions.push({ kind: 'wait', untilMs: desired.nextStartAt, reason: 'crash-loop backoff' });
    else actions.push({ kind: 'create', count });
  }
  return actions;
}

interface Replacement {
  stops: Action[];
  /** How many new instances may be created this round. */
  createBudget: number;
  extra: Action[];
}

/**
 * Start-first rolling replacement: a serving old instance is stopped only while at least
 * `replicas - maxUnavailable` instances keep serving; live instances never exceed `replicas + maxSurge`.
 * Old instances that are not serving go at once.
 */
function rolling(d: DesiredView, current: InstanceView[], old: InstanceView[]): Replacement {
  const stops: Action[] = [];
  const healthyCurrent = current.filter(isServing).length;
  const servingOld = old.filter(isServing).sort((a, b) => a.createdAt - b.createdAt);
  for (const i of old) if (!isServing(i)) stops.push({ kind: 'stop', instance: i.id, reason: why(i, 'replaced (not serving)') });
  const minServing = Math.max(0, d.replicas - (d.maxUnavailable ?? 0));
  const stopOld = d.replicas === 0
    ? servingOld.length
    : Math.min(servingOld.length, Math.max(0, healthyCurrent + servingOld.length - minServing));
  for (const i of servingOld.slice(0, stopOld)) stops.push({ kind: 'stop', instance: i.id, reason: why(i, 'replaced by new release') });
  const createBudget = d.replicas + d.maxSurge - current.length - (servingOld.length - stopOld);
  return { stops, createBudget: Math.max(0, createBudget), extra: [] };
}

/**
 * Blue-green: the whole new set starts while the ingress keeps routing to the previous release; once
 * all are healthy, one switch; the previous set idles for `keepPreviousMs` (a rollback is one switch
 * back), then goes.
 */
function blueGreen(d: DesiredView, current: InstanceView[], old: InstanceView[], now: number): Replacement {
  const stops: Action[] = [];
  const extra: Action[] = [];
  const healthyCurrent = current.filter(isServing).length;
  if (d.routedReleaseId === undefined) {
    // Routing was not pinned yet (first deploy, or the service used another strategy until now):
    // pin it to what serves now before any green instance could join.
    const serving = old.find(isServing);
    if (serving) return { stops, createBudget: d.replicas, extra: [{ kind: 'switch', releaseId: serving.releaseId }] };
  }
  const routed = d.routedReleaseId;
  if (routed !== d.releaseId) {
    const servingRouted = old.filter((i) => i.releaseId === routed && isServing(i));
    if (healthyCurrent >= d.replicas || servingRouted.length === 0) {
      // All green are healthy (or there is nothing to protect): switch.
      extra.push({ kind: 'switch', releaseId: d.releaseId });
    }
    // Sets of releases that are neither routed nor desired are of no use.
    for (const i of old) if (i.releaseId !== routed) stops.push({ kind: 'stop', instance: i.id, reason: 'superseded release' });
    return { stops, createBudget: d.replicas, extra };
  }
  // Routed to the desired release: the previous set idles until the keep window ends.
  const until = (d.switchedAt ?? 0) + (d.keepPreviousMs ?? 0);
  const idle = old.filter(isServing);
  for (const i of old) if (!isServing(i)) stops.push({ kind: 'stop', instance: i.id, reason: 'previous set (not serving)' });
  if (idle.length > 0) {
    if (now >= until) for (const i of idle) stops.push({ kind: 'stop', instance: i.id, reason: 'previous set: keep window over' });
    else extra.push({ kind: 'wait', untilMs: until, reason: 'previous set kept idle for a fast rollback' });
  }
  return { stops, createBudget: d.replicas, extra };
}

/** Recreate: every old instance stops first; the new set starts once they are gone (a gap, by design). */
function recreate(_d: DesiredView, _current: InstanceView[], old: InstanceView[]): Replacement {
  const stops: Action[] = old.map((i) => ({ kind: 'stop', instance: i.id, reason: 'recreate: old set stops first' }));
  return { stops, createBudget: old.length > 0 ? 0 : Number.MAX_SAFE_INTEGER, extra: [] };
}

/** A drained host's instance says so (it is replaced like a restart, not by a new release). */
function why(i: InstanceView, otherwise: string): string {
  return i.hostDraining && !i.pinned ? `moved off draining host ${i.host ?? '?'}` : otherwise;
}

function isServing(i: InstanceView): boolean {
  return i.state === 'running' && i.health === 'healthy';
}

function rank(i: InstanceView): number {
  if (i.state === 'exited') return 0;
  if (i.state === 'pending') return 1;
  if (i.health === 'unhealthy') return 2;
  if (i.health === 'starting') return 3;
  return 4;
}

function endAction(i: InstanceView, d: DesiredView): Action {
  const failed = i.exitCode === undefined || i.exitCode !== 0;
  const restart = d.restart.condition === 'any' || (d.restart.condition === 'on-failure' && failed);
  const attemptsLeft = d.restart.maxAttempts === undefined || d.failures < d.restart.maxAttempts;
  const withCode = i.exitCode === undefined ? {} : { exitCode: i.exitCode };
  if (restart && attemptsLeft) return { kind: 'reap', instance: i.id, countsAsFailure: true, ...withCode };
  return { kind: 'mark-exited', instance: i.id, ...withCode };
}
