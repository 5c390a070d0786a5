import { DEFAULT_POOL, LABEL, type Clock, type ContainerInfo, type HostInfo, type HostState, type EngineContainers, type EngineNetworks, type EngineTelemetry, type EngineVolumes, type HostPathPolicy, type Logger, type NetworkInfo, type ProbeResult } from '../core/ports.ts';
import { BerthError, Conflict, EngineUnavailable, InvalidInput } from '../core/errors.ts';
import { planService, crashLoopDelayMs, COMPLETED_REASON, dependencyWait, dependencyWaitText, dependencyTimeoutText, STABLE_RUN_MS, type DependencyHold, type DependencyView, type Action, type InstanceView, type Observed } from '../core/plan/index.ts';
import type {
  CrashRecord, DesiredStateStore, EventStore, InstancePatch, InstanceRecord, InstanceStore, ReconcileStore, ReleasePatch, ReleaseRecord, ServiceKey,
  ServicePatch, ServiceRecord, ServiceSnapshot, StoreBatch,
} from '../core/store.ts';
import { ANNOUNCE_AFTER_MS, crashOutput, crashSummary, nextCheck, portTrapText, shouldAnnounce } from '../core/health-notes.ts';
import { waitingOn } from '../core/views.ts';
import type { Result } from '../reconcile/index.ts';
import { containerSpecFor, networkingFor, networkName, volumeName } from './container-spec.ts';
import { DEFAULT_UPDATE, type HealthSpec, type TcpHealth, type UpdateSpec } from '../core/spec/types.ts';
import { previousGoodRelease, rollbackTo } from './rollback.ts';
import { planPlacement } from '../core/placement.ts';
import { placementOfService } from '../core/pool-admission.ts';
import { DEFAULT_PENDING_BOUND_MS, pendingTimeoutText, pinnedText } from '../core/failover.ts';

export interface ServiceReconcilerDeps {
  store: DesiredStateStore & InstanceStore & EventStore & ReconcileStore;
  engine: EngineContainers & EngineVolumes & Pick<EngineNetworks, 'ensureNetwork'> & Pick<EngineTelemetry, 'logs'>;
  clock: Clock;
  logger: Logger;
  newId: () => string;
  /** Address other hosts/nginx reach instances on (host networking: the host's address). */
  hostAddress: string;
  portRange: { min: number; max: number };
  isPortFree: (port: number) => boolean;
  /** Called when routable instances may have changed; resolves when the ingress serves the new table. */
  routesChanged: () => Promise<void>;
  /** Called when instance records changed (health monitor re-reads them). */
  instancesChanged: () => void;
  /** Called when a release reached healthy or failed (wakes the deployments that wait for it). */
  releaseFinished: (k: ServiceKey) => void;
  /** Host path of the resolv.conf for containers of an app in an environment (Berth's DNS), if DNS for containers is on. */
  resolvConf?: (app: string, env: string) => string | undefined;
  /**
   * Berth's DNS for an app-network container: listens on its bridge's gateway (once per gateway), or
   * names the cluster address for an overlay, and says the servers and search domains the container
   * gets; undefined when DNS for containers is off (or cannot be had for that network).
   */
  networkDns?: (env: string, network: NetworkInfo) => Promise<{ servers: string[]; search: string[] } | undefined>;
  /** Configuration (plain values and decrypted secrets) of an app/env at a version, injected as environment. */
  configEnv?: (app: string, env: string, version: number) => Record<string, string>;
  /** Host directory holding an app/env's configuration files (mounted at /run/berth/config). */
  configDirOf?: (app: string, env: string) => string;
  /** The group that owns the configuration files: containers mounting them get it as a supplementary group. */
  configGid?: number;
  /**
   * Writes a release's Compose secret and config files (on a tmpfs) and returns their bind mounts;
   * throws (no container is created) when a value cannot be had.
   */
  fileMounts?: (rel: ReleaseRecord) => Array<{ source: string; target: string }>;
  /** Writes the configuration of an app/env at a version as files; returns the host directory to mount. */
  configFiles?: (app: string, env: string, version: number) => string | undefined;
  /**
   * Bind sources are checked again right before each container is created (a symlink swapped in since
   * the deploy is caught) and the container mounts the path as resolved then.
   */
  hostPaths?: HostPathPolicy;
  /**
   * App-network instances' container address and native port, by instance id, kept by the reconciler
   * from what the engine reports: the ingress goes there directly (the published port is the fallback).
   */
  directAddresses?: Map<string, { address: string; port: number }>;
  /** The installation's cluster id: app networks are named with it (container-spec.ts networkName). */
  networkScope?: string;
  /** One HTTP/TCP health probe of an instance (reload by signal; the port check of Compose-healthchecked services). */
  probe: (inst: InstanceRecord, health: HealthSpec) => Promise<ProbeResult>;
  /**
   * Many hosts: a host's last known state (deploy/HostMonitor). `down`: its instances are lost
   * (replaced elsewhere); `draining`: its instances are moved (replacement serves first).
   */
  hostState?: (host: string) => HostState | undefined;
  /**
   * Many hosts: the engine's hosts. New instances of a service are spread over them by Berth's plan
   * (core/placement.ts: per service, by zone, then free memory) and pinned with `node.hostname==`:
   * the Swarm balances all tasks of a node, not one service's.
   */
  hosts?: () => Promise<HostInfo[]>;
  /** How long a started instance may wait to be placed/run before its release fails (default 60 s). */
  pendingBoundMs?: number;
}

export function serviceKey(k: ServiceKey): string {
  return `svc/${k.app}/${k.env}/${k.service}`;
}

export function parseServiceKey(key: string): ServiceKey | undefined {
  const m = /^svc\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(key);
  return m ? { app: m[1]!, env: m[2]!, service: m[3]! } : undefined;
}

/** Without a health check, an instance must keep running this long to count as healthy. */
const NO_CHECK_READY_MS = 2000;

/** Failures of a new release's instances before the release is marked failed. */
export const RELEASE_FAILURE_LIMIT = 3;

/** Does anything accept connections on the instance's port? (A Compose healthcheck cannot tell: it runs inside.) */
const PORT_CHECK: TcpHealth = { type: 'tcp', intervalMs: 1000, timeoutMs: 1000, retries: 1, startPeriodMs: 0 };
/** How often to look again while a Compose-healthy instance's port refuses connections. */
const PORT_RECHECK_MS = 1000;

/** Lines of a crashed container's log read to find its last words. */
const CRASH_TAIL = 20;

/**
 * Level-driven reconciler of one service: observe (store records + engine containers), plan (pure),
 * apply, requeue. Safe to call at any time, any number of times; a crash anywhere converges on restart.
 */
export class ServiceReconciler {
  /** Per instance, the failing check result already announced with an event. */
  private readonly announced = new Map<string, string>();
  /**
   * Many hosts, per service with named volumes (app/env/service): the host its volumes live on. Learnt
   * from where its instances run (so after a restart from the first round), changed only by an explicit
   * failover (`failoverTo`); new instances get the constraint node.hostname==HOST.
   */
  private readonly pins = new Map<string, string>();
  /** Per service (app/env/service): the release and dependency it last said it waits for (said once, not every round). */
  private readonly holds = new Map<string, string>();

  constructor(private readonly d: ServiceReconcilerDeps) {}

  async reconcile(k: ServiceKey): Promise<Result> {
    const { engine, clock } = this.d;
    const snap = this.d.store.serviceSnapshot(k);
    const svc = snap.service;
    const release = snap.release;
    const records = snap.instances;
    const w = new RoundWrites(this.d.store, this.d.logger, k, snap);
    const t0 = clock.now();
    const containers = await engine.list({ [LABEL.app]: k.app, [LABEL.env]: k.env, [LABEL.service]: k.service });
    this.d.logger.debug({ ...k, containers: containers.length, listMs: clock.now() - t0 }, 'round: containers listed');
    const byInstance = new Map<string, ContainerInfo>();
    const orphans: { id: string; instance: string }[] = [];
    const known = new Set(records.map((r) => r.id));
    for (const c of containers) {
      const inst = c.labels[LABEL.instance] ?? '';
      if (!known.has(inst) || byInstance.has(inst)) orphans.push({ id: c.id, instance: inst });
      else byInstance.set(inst, c);
    }

    this.learnPin(w, k, records, byInstance);
    const sync = await this.syncHealth(w, records, byInstance, release);
    w.flush();
    let touched = this.notePlacement(w, records, byInstance);
    touched = sync.changed || this.noteDirectAddresses(w, records, byInstance) || touched;
    const views = records.map((r) => this.view(w, r, byInstance.get(r.id)));
    if (svc && release) {
      const reload = await this.reloadInPlace(w, k, svc, release, records, byInstance);
      if (reload) return reload;
    }
    const upd = updateOf(release);
    const desired = svc && release ? {
      replicas: svc.replicas, releaseId: svc.releaseId, restart: release.spec.restart, failures: svc.failures,
      nextStartAt: svc.nextStartAt, maxSurge: upd.maxSurge, maxUnavailable: upd.maxUnavailable,
      strategy: upd.strategy === 'reload' ? 'rolling' as const : upd.strategy, keepPreviousMs: upd.keepPreviousMs,
      ...(svc.routedReleaseId ? { routedReleaseId: svc.routedReleaseId } : {}), switchedAt: svc.switchedAt ?? 0,
    } : undefined;
    const actions = planService(desired, views, orphans, clock.now());
    let requeueAfterMs: number | undefined = sync.recheckMs;
    const stopActions = actions.filter((a) => a.kind === 'stop' || a.kind === 'failover');
    const creates: Extract<Action, { kind: 'create' }>[] = [];
    // Step: the instances to stop leave the upstreams first (one write), then stop in parallel.
    for (const a of stopActions) {
      if (a.kind === 'stop') this.markStopping(w, a.instance, a.reason);
      else this.markFailover(w, a.instance, a.host);
    }
    for (const a of actions) if (a.kind === 'unroute') this.unroute(w, a.instance, a.reason);
    w.flush();
    const stops = stopActions.map((a) => this.stopInstance(w, a.instance, byInstance.get(a.instance)));
    // A container that cannot start (a host port taken, a bind refused) fails the round, but the
    // release's deadline still counts: it is tracked below before the error goes to the queue.
    let startError: unknown;
    try {
      for (const a of actions) {
        if (a.kind === 'wait') {
          requeueAfterMs = Math.max(50, a.untilMs - clock.now());
          continue;
        }
        if (a.kind === 'stop' || a.kind === 'failover' || a.kind === 'unroute') continue;
        // The planner's surge budget counts the instances it stops as gone: creating before those
        // stops end would run replicas + 2 containers during a rollout.
        if (a.kind === 'create') {
          // depends_on: a service's first instances start once what it depends on is up (or done).
          const waitsFor = release && !views.some((i) => i.state === 'running') ? this.dependencyWait(k, release) : undefined;
          if (waitsFor !== undefined) {
            requeueAfterMs = 250;
            this.sayHold(w, k, release!, waitsFor);
          } else {
            creates.push(a);
          }
          continue;
        }
        touched = true;
        if (a.kind !== 'start' && a.kind !== 'start-existing') {
          await this.apply(w, k, a, svc, release, byInstance);
          continue;
        }
        try {
          await this.apply(w, k, a, svc, release, byInstance);
        } catch (err) {
          startError ??= err;
        }
      }
    } finally {
      // No work of this round may outlive it: after a failure the queue runs the key again.
      await Promise.allSettled(stops);
      // What the steps did is written (one transaction), whether or not one of them failed.
      w.flush();
    }
    if (stops.length) {
      touched = true;
      await Promise.all(stops);
    }
    for (const a of creates) {
      touched = true;
      try {
        await this.apply(w, k, a, svc, release, byInstance);
      } catch (err) {
        startError ??= err;
      }
    }
    if (touched) {
      this.d.instancesChanged();
      await this.d.routesChanged();
    }
    if (svc && release) {
      const again = await this.trackRelease(w, k, release, this.pendingTooLong(w, views, byInstance));
      if (again !== undefined) requeueAfterMs = Math.min(requeueAfterMs ?? again, again);
    }
    if (startError !== undefined) throw startError;
    // Anything changed this round: look again soon (level-driven; the next plan is usually empty).
    if (actions.some((a) => a.kind !== 'wait')) requeueAfterMs = Math.min(requeueAfterMs ?? 0, 0);
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }

  /**
   * Engine-run (Compose) health checks and 'no check' live in the engine's view; copy them to the records.
   * Without any check, an instance counts as healthy once it has kept running for NO_CHECK_READY_MS,
   * so a process that dies at once is not reported as a healthy release. A Compose healthcheck runs
   * inside the container and cannot see whether the process listens on its allocated port: for a
   * service with a port, Berth also connects to it, and an instance whose port refuses is not healthy.
   */
  private async syncHealth(w: RoundWrites, records: InstanceRecord[], byInstance: Map<string, ContainerInfo>, release?: ReleaseRecord): Promise<{ changed: boolean; recheckMs?: number }> {
    let changed = false;
    let recheckMs: number | undefined;
    const later = (ms: number) => (recheckMs = Math.min(recheckMs ?? Infinity, ms));
    await Promise.all(records.map(async (r) => {
      const c = byInstance.get(r.id);
      if (!c?.running || r.state !== 'running') return;
      const rel = r.releaseId === release?.id ? release : w.release(r.releaseId);
      const type = rel?.spec.health.type;
      let next = r.health;
      let result: ProbeResult | undefined;
      if (type === 'none') {
        const up = this.d.clock.now() - (c.startedAt ? Date.parse(c.startedAt) : this.d.clock.now());
        next = up >= NO_CHECK_READY_MS ? 'healthy' : 'starting';
        if (next === 'starting') later(NO_CHECK_READY_MS - up + 50);
      } else if (type === 'command') {
        next = c.health === 'healthy' ? 'healthy' : c.health === 'unhealthy' ? 'unhealthy' : r.health;
        if (c.healthLog) result = { ok: c.healthLog.exitCode === 0, text: healthcheckText(c.healthLog) };
        // (Behind a published port the engine's proxy accepts even when nothing listens: no proof there.)
        if (c.health === 'healthy' && rel?.spec.port !== undefined && rel.spec.networkMode !== 'app') {
          const port = await this.d.probe(r, PORT_CHECK);
          // Only a refusal is proof; a slow answer is not the process ignoring $PORT.
          if (port.refused) {
            next = r.health === 'healthy' ? 'unhealthy' : r.health;
            result = { ok: false, text: portTrapText(r.address, r.port, rel.spec.port) };
            later(PORT_RECHECK_MS);
          }
        }
      }
      const announceIn = result && this.noteCheck(w, r, result, next);
      if (announceIn !== undefined) later(announceIn);
      if (next !== r.health) {
        w.event(r, `health.${next}`, `instance ${r.id} is ${next}${next !== 'healthy' && r.check && !r.check.ok ? ` (${r.check.text})` : ''}`);
        w.instance(r.id, { health: next });
        changed = true;
      }
    }));
    return recheckMs === undefined ? { changed } : { changed, recheckMs };
  }

  /**
   * Keeps the latest check result on the record when it changes; once a check of an instance that is
   * not healthy has failed the same way for a moment, that is an event. Returns when to look again
   * for that, if not yet.
   */
  private noteCheck(w: RoundWrites, r: InstanceRecord, result: ProbeResult, health: InstanceRecord['health']): number | undefined {
    const now = this.d.clock.now();
    const check = nextCheck(r.check, result, now);
    if (check) w.instance(r.id, { check });
    if (shouldAnnounce(r.check, health === 'healthy', now, this.announced.get(r.id))) {
      this.announced.set(r.id, r.check!.text);
      w.event(r, 'health.check_failed', `instance ${r.id} (${r.address}:${r.port}): ${r.check!.text}`);
    } else if (r.check && !r.check.ok && health !== 'healthy' && this.announced.get(r.id) !== r.check.text) {
      return r.check.since + ANNOUNCE_AFTER_MS - now;
    }
    return undefined;
  }

  private async apply(w: RoundWrites, k: ServiceKey, a: Exclude<Action, { kind: 'wait' | 'stop' | 'failover' | 'unroute' }>, svc: ServiceRecord | undefined,
    release: ReleaseRecord | undefined, byInstance: Map<string, ContainerInfo>): Promise<void> {
    const { store, engine, clock } = this.d;
    switch (a.kind) {
      case 'switch': {
        const to = w.release(a.releaseId);
        w.service({ routedReleaseId: a.releaseId, switchedAt: clock.now() });
        w.event({ ...k, id: '' }, 'release.switched', `${k.service}: ingress now routes to release ${to?.seq ?? a.releaseId}`);
        w.flush();
        // One reload moves every request to the new set.
        await this.d.routesChanged();
        return;
      }
      case 'remove-orphan':
        this.d.logger.info({ container: a.containerId, ...k }, 'removing container Berth no longer wants');
        await engine.remove(a.containerId);
        return;
      case 'create': {
        if (!release) return;
        // The rows (and their ports) are written in one transaction before any container exists;
        // containers start in parallel; what they did is written in one transaction once all have ended.
        // Many hosts: the Swarm places the instance; its host and address are written once its task runs.
        const placed = engine.placesContainers?.() ?? false;
        const pins = placed ? await this.spreadPins(k, release, a.count, w) : [];
        const insts = store.createInstances(Array.from({ length: a.count }, () => ({
          id: this.d.newId(), app: k.app, env: k.env, service: k.service, releaseId: release.id, host: placed ? '' : engine.hostName,
          address: placed ? '' : this.d.hostAddress, state: 'pending' as const, health: 'starting' as const, createdAt: clock.now(),
        })), { ...this.d.portRange, isFree: this.d.isPortFree });
        for (const inst of insts) w.added(inst);
        // The engine starts containers one after another (Docker: 0.3-1 s apart under load): an
        // instance that has started is written and handed to the health monitor in the next turn of
        // the event loop, not once the last of its siblings has started (starts that end in the same
        // turn, as with a fake engine, still share the step's one write).
        let left = insts.length;
        let creating = true;
        let soon = false;
        const early = () => {
          if (--left === 0 || soon) return;
          soon = true;
          setImmediate(() => {
            soon = false;
            if (!creating) return;
            w.flush();
            this.d.instancesChanged();
          });
        };
        try {
          await allSettled(insts.map((inst, i) => this.startInstance(w, inst, release, pins[i]).then(early)));
        } finally {
          creating = false;
          w.flush();
        }
        return;
      }
      case 'start': {
        const inst = w.get(a.instance);
        const rel = inst && w.release(inst.releaseId);
        if (inst && rel) await this.startInstance(w, inst, rel);
        return;
      }
      case 'start-existing': {
        const c = byInstance.get(a.instance);
        if (!c) return;
        const inst = w.get(a.instance);
        if (inst) await this.startContainer(w, inst, c.id);
        else await engine.start(c.id);
        w.instance(a.instance, { state: 'running', containerId: c.id, startedAt: clock.now() });
        return;
      }
      case 'mark-running': {
        const c = byInstance.get(a.instance);
        w.instance(a.instance, { state: 'running', ...(c ? { containerId: c.id } : {}), startedAt: clock.now() });
        return;
      }
      case 'mark-exited': {
        const inst = w.get(a.instance);
        if (!inst) return;
        const completed = a.exitCode === 0;
        w.instance(a.instance, { state: 'exited', health: 'unhealthy', reason: completed ? COMPLETED_REASON : `exited with code ${a.exitCode ?? '?'}` });
        w.event(inst, completed ? 'instance.completed' : 'instance.exited', completed ? `instance ${inst.id} completed (exit code 0)`
          : `instance ${inst.id} exited with code ${a.exitCode ?? '?'}; restart policy keeps it stopped`);
        return;
      }
      case 'reap': {
        const inst = w.get(a.instance);
        if (!inst) return;
        const c = byInstance.get(a.instance);
        const ranMs = c?.startedAt && c.finishedAt ? Date.parse(c.finishedAt) - Date.parse(c.startedAt) : 0;
        const failures = ranMs >= STABLE_RUN_MS ? 1 : (svc?.failures ?? 0) + 1;
        const delay = crashLoopDelayMs(failures, release?.spec.restart.delayMs ?? 1000);
        // What the process said last is usually why it ended (a stack trace, "address already in use").
        const crash: CrashRecord | undefined = c ? {
          at: clock.now(), instance: inst.id, releaseId: inst.releaseId, ...(a.exitCode !== undefined ? { exitCode: a.exitCode } : {}),
          ...(c.oomKilled ? { oomKilled: true } : {}), ranMs, ...await this.lastOutput(c.id),
        } : undefined;
        w.event(inst, 'instance.crashed', crash
          ? `instance ${inst.id} ${crashSummary(crash)}; restart #${failures} in ${Math.round(delay / 100) / 10}s`
          : `instance ${inst.id}: its container disappeared; replacing it`);
        if (svc) w.service({ failures, nextStartAt: clock.now() + delay, ...(crash ? { lastCrash: crash } : {}) });
        this.announced.delete(inst.id);
        if (c) await engine.remove(c.id);
        w.deleteInstance(inst.id);
        return;
      }
    }
  }

  /** The last lines a container printed (stdout and stderr); none when the engine cannot say. */
  private async lastOutput(containerId: string): Promise<{ output: string[]; lastError?: string }> {
    const lines: { stream: 'stdout' | 'stderr'; text: string }[] = [];
    try {
      await this.d.engine.logs(containerId, { follow: false, tail: CRASH_TAIL }, (l) => void lines.push(l));
    } catch (err) {
      this.d.logger.warn({ container: containerId, err: String(err) }, 'could not read the output of a crashed container');
    }
    return crashOutput(lines);
  }

  /**
   * Many hosts: the host each of `count` new instances of the release goes to — the hosts with the
   * fewest of its instances first (by zone when spread), within its pool, constraints and free capacity.
   * None (Swarm places within the pool) when the plan cannot say: the hosts unknown, or nothing fits
   * now (then the task waits as pending and its release fails past the bound, with Swarm's reason).
   */
  private async spreadPins(k: ServiceKey, release: ReleaseRecord, count: number, w: RoundWrites): Promise<string[]> {
    if (!this.d.hosts) return [];
    let hosts: HostInfo[];
    try {
      hosts = await this.d.hosts();
    } catch (err) {
      this.d.logger.warn({ ...k, err: String(err) }, 'hosts unknown: new instances are placed by the Swarm alone');
      return [];
    }
    const existing: Record<string, number> = {};
    for (const r of w.instancesNow()) if (r.releaseId === release.id && r.state !== 'stopping' && r.host) existing[r.host] = (existing[r.host] ?? 0) + 1;
    const plan = planPlacement(hosts, [{ name: k.service, placement: placementOfService(release.spec), count, existing }]);
    return plan.ok ? plan.hosts[0]! : [];
  }

  private async startInstance(w: RoundWrites, inst: InstanceRecord, rel: ReleaseRecord, pin?: string): Promise<void> {
    const { engine, clock } = this.d;
    const prepStart = clock.now();
    for (const v of rel.spec.volumes) {
      if (v.type === 'volume') await engine.ensureVolume(volumeName(inst.app, inst.env, v.source), { [LABEL.app]: inst.app, [LABEL.env]: inst.env });
    }
    const bindSources = await this.resolveBinds(w, inst, rel);
    const fileMounts = this.releaseFiles(w, inst, rel);
    // App networks exist before a container joins them (adopted as they are when they do). The
    // container's DNS server is Berth's on its first network's gateway (an overlay's: the cluster
    // address): the engine's own DNS answers the networks' names (`db`) and forwards the rest
    // (`web.prod.berth`) there.
    let dns: { servers: string[]; search: string[] } | undefined;
    for (const n of networkingFor(rel, inst, this.scope())?.networks ?? []) {
      const compose = n.name.slice(networkName(this.scope(), inst.app, inst.env, '').length);
      const info = await engine.ensureNetwork(n.name, { [LABEL.app]: inst.app, [LABEL.env]: inst.env, [LABEL.network]: compose });
      if (!dns && this.d.networkDns) dns = await this.d.networkDns(inst.env, info);
    }
    const configEnv = this.d.configEnv?.(rel.app, rel.env, rel.spec.configVersion ?? 0) ?? {};
    this.d.configFiles?.(rel.app, rel.env, rel.spec.configVersion ?? 0);
    const cspec = containerSpecFor(rel, inst, { ...this.extras(inst.app, inst.env), configEnv, bindSources, fileMounts, ...(dns ? { dns } : {}) });
    // A stateful service stays with its volumes' host (this overrides the spread's pick).
    const volumePin = namedVolumes(rel).length ? this.pins.get(pinKey(inst)) : undefined;
    if (volumePin) {
      const p = cspec.placement ?? { pool: DEFAULT_POOL, constraints: [], spread: [], reservation: { nanoCpus: 0, memoryBytes: 0 } };
      cspec.placement = { ...p, constraints: [...p.constraints.filter((c) => !c.startsWith('node.hostname==')), `node.hostname==${volumePin}`] };
    } else if (pin && cspec.placement) {
      cspec.placement.constraints.push(`node.hostname==${pin}`);
    }
    const t0 = clock.now();
    const id = await engine.create(cspec);
    w.instance(inst.id, { containerId: id });
    const t1 = clock.now();
    await this.startContainer(w, inst, id);
    this.d.logger.debug({ instance: inst.id, prepareMs: t0 - prepStart, createMs: t1 - t0, startMs: clock.now() - t1 }, 'container created and started');
    const where = await this.placementOf(inst, id);
    w.instance(inst.id, { state: 'running', startedAt: clock.now(), health: 'starting', ...where });
    w.event(inst, 'instance.started', `instance ${inst.id} started on ${where.host ?? inst.host}:${inst.port} (release ${rel.seq})`);
  }

  /** Many hosts: where the engine placed a just-started instance (its task's host and that host's address). */
  private async placementOf(inst: InstanceRecord, containerId: string): Promise<{ host?: string; address?: string }> {
    if (!(this.d.engine.placesContainers?.() ?? false)) return {};
    const c = await this.d.engine.inspect(containerId);
    return c?.hostAddress && (c.host !== inst.host || c.hostAddress !== inst.address) ? { host: c.host, address: c.hostAddress } : {};
  }

  /**
   * Many hosts: an instance's host and address are where the engine reports its container (a Swarm
   * task's node): probes, upstreams and DNS use `address:port`. True when one changed.
   */
  private notePlacement(w: RoundWrites, records: InstanceRecord[], byInstance: Map<string, ContainerInfo>): boolean {
    let changed = false;
    for (const r of records) {
      const c = byInstance.get(r.id);
      if (!c?.hostAddress || !c.host || (c.host === r.host && c.hostAddress === r.address)) continue;
      w.instance(r.id, { host: c.host, address: c.hostAddress });
      changed = true;
    }
    return changed;
  }

  /** Keeps the direct addresses of this service's app-network instances current; true when one changed. */
  private noteDirectAddresses(w: RoundWrites, records: InstanceRecord[], byInstance: Map<string, ContainerInfo>): boolean {
    const direct = this.d.directAddresses;
    if (!direct) return false;
    let changed = false;
    for (const r of records) {
      const c = byInstance.get(r.id);
      const spec = w.release(r.releaseId)?.spec;
      const want = c?.running && c.ip && spec?.networkMode === 'app' && spec.port !== undefined ? { address: c.ip, port: spec.port } : undefined;
      const have = direct.get(r.id);
      if (want && (have?.address !== want.address || have.port !== want.port)) {
        direct.set(r.id, want);
        changed = true;
      } else if (!want && have) {
        direct.delete(r.id);
        changed = true;
      }
    }
    return changed;
  }

  /** Starts an instance's container; a refusal (a host port taken) is the instance's event, and the round's error. */
  private async startContainer(w: RoundWrites, inst: InstanceRecord, containerId: string): Promise<void> {
    try {
      await this.d.engine.start(containerId);
    } catch (err) {
      if (!(err instanceof BerthError) || err instanceof EngineUnavailable) throw err;
      // The port Berth allocated was taken between allocation and start (another program, or a
      // client's source port): this instance goes, and its replacement gets another port.
      if (err instanceof Conflict && err.message.startsWith(`host port ${inst.port} on 127.0.0.1 `)) {
        w.event(inst, 'instance.start_failed', `instance ${inst.id} could not start: its allocated port ${inst.port} was taken meanwhile; replacing it on another port`);
        await this.d.engine.remove(containerId);
        w.deleteInstance(inst.id);
        this.d.directAddresses?.delete(inst.id);
      } else {
        w.event(inst, 'instance.start_failed', `instance ${inst.id} could not start: ${err.message}`);
      }
      throw err;
    }
  }

  /** The release's secret and config files, written now; throws (no container is created) when one cannot be had. */
  private releaseFiles(w: RoundWrites, inst: InstanceRecord, rel: ReleaseRecord): Array<{ source: string; target: string }> {
    if (!rel.spec.secrets?.length && !rel.spec.configs?.length) return [];
    if (!this.d.fileMounts) throw new InvalidInput(`instance ${inst.id} not created: this server cannot mount secrets or configs`);
    try {
      return this.d.fileMounts(rel);
    } catch (err) {
      const message = `instance ${inst.id} not created: ${(err as Error).message}`;
      w.event(inst, 'instance.refused', message);
      throw new InvalidInput(message);
    }
  }

  /** Bind source → the path the policy resolved it to now; throws (no container is created) when one is refused. */
  private async resolveBinds(w: RoundWrites, inst: InstanceRecord, rel: ReleaseRecord): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    const policy = this.d.hostPaths;
    if (!policy) return out;
    for (const v of rel.spec.volumes) {
      if (v.type !== 'bind') continue;
      const r = await policy.bindSource(v.source);
      if (r.refused !== undefined) {
        const message = `instance ${inst.id} not created: ${r.refused}`;
        w.event(inst, 'instance.refused', message);
        throw new InvalidInput(message);
      }
      out[v.source] = r.path;
    }
    return out;
  }

  /** Takes an instance out of the upstreams (written with the step, before anything is stopped). */
  private markStopping(w: RoundWrites, id: string, reason: string): void {
    const inst = w.get(id);
    if (!inst || inst.state === 'stopping') return;
    w.instance(id, { state: 'stopping', reason });
    w.event(inst, 'instance.stopping', `instance ${id} stopping: ${reason}`);
  }

  /**
   * Its host is down: out of the upstreams (written with the step), then the stop path removes its
   * engine object — on Swarm its service, so the host's agent removes the task when it returns and no
   * duplicate ever serves — and forgets it; the planner's count starts a replacement in the pool.
   */
  private markFailover(w: RoundWrites, id: string, host: string): void {
    const inst = w.get(id);
    if (!inst || inst.state === 'stopping') return;
    const rel = w.release(inst.releaseId);
    const volumes = rel ? namedVolumes(rel) : [];
    const pin = volumes.length ? this.pins.get(pinKey(inst)) : undefined;
    w.instance(id, { state: 'stopping', reason: `failover: host ${host} is down` });
    w.event(inst, 'instance.failover', `instance ${id} on host ${host} is lost (host down): unrouted, removed, replaced ${pin
      ? `on ${pin} as asked (berth failover); volume${volumes.length === 1 ? '' : 's'} ${volumes.join(', ')} start${volumes.length === 1 ? 's' : ''} empty there`
      : 'on another host of its pool'}`);
  }

  /** A pinned instance whose host is down: unrouted, kept; said once (the health flip is the record). */
  private unroute(w: RoundWrites, id: string, reason: string): void {
    const inst = w.get(id);
    if (!inst) return;
    w.instance(id, { health: 'unhealthy', reason });
    w.event(inst, 'instance.lost', `instance ${id} unrouted: ${reason} (berth failover ${inst.app} ${inst.service} --env ${inst.env} --to HOST moves it, with an empty volume there)`);
  }

  /**
   * What the planner sees of an instance: its container's state, and on many hosts its host's
   * (lost when down, moved when draining) and whether it is pinned there by its named volumes.
   */
  private view(w: RoundWrites, r: InstanceRecord, c: ContainerInfo | undefined): InstanceView {
    const v = view(r, c);
    if (!c) return v;
    const hostState = c.host ? this.d.hostState?.(c.host) : undefined;
    if (c.state === 'lost' || (hostState === 'down' && !c.running && v.observed !== 'exited')) v.observed = 'lost';
    else if (c.pending !== undefined && !c.running && v.observed === 'created') v.observed = 'pending';
    if (c.host) v.host = c.host;
    if (hostState === 'draining') v.hostDraining = true;
    const rel = c.hostAddress !== undefined ? w.release(r.releaseId) : undefined;
    const volumes = rel ? namedVolumes(rel) : [];
    if (volumes.length) v.pinned = pinnedText(c.host, volumes);
    return v;
  }

  /** A stateful service's host, from where its instances run, unless a failover set it. */
  private learnPin(w: RoundWrites, k: ServiceKey, records: InstanceRecord[], byInstance: Map<string, ContainerInfo>): void {
    const key = pinKey(k);
    if (this.pins.has(key)) return;
    for (const r of records) {
      const c = byInstance.get(r.id);
      const rel = c?.hostAddress !== undefined && c.host ? w.release(r.releaseId) : undefined;
      if (rel && namedVolumes(rel).length) {
        this.pins.set(key, c!.host);
        return;
      }
    }
  }

  /**
   * `berth failover`: the service's volumes start over on `host` (empty there). New instances are
   * pinned to it; the caller asks for its instances to be replaced (a lost one is then removed and
   * started there).
   */
  failoverTo(k: ServiceKey, host: string): void {
    this.pins.set(pinKey(k), host);
  }

  /** The host a stateful service is pinned to, if any (status). */
  pinnedHost(k: ServiceKey): string | undefined {
    return this.pins.get(pinKey(k));
  }

  /** Instances started but still waiting to run past the bound: their release fails with the engine's reason. */
  private pendingTooLong(w: RoundWrites, views: InstanceView[], byInstance: Map<string, ContainerInfo>): Array<{ id: string; releaseId: string; text: string }> {
    const bound = this.d.pendingBoundMs ?? DEFAULT_PENDING_BOUND_MS;
    const now = this.d.clock.now();
    const out: Array<{ id: string; releaseId: string; text: string }> = [];
    for (const v of views) {
      if (v.observed !== 'pending' || v.state !== 'running') continue;
      const since = w.get(v.id)?.startedAt ?? v.createdAt;
      if (now - since <= bound) continue;
      out.push({ id: v.id, releaseId: v.releaseId, text: pendingTimeoutText(v.id, now - since, byInstance.get(v.id)?.pending ?? '') });
    }
    return out;
  }

  /**
   * Out of the upstreams first (markStopping, written; then wait until nginx serves without it), then
   * stop signal, then remove; the row goes with the round's next write.
   */
  private async stopInstance(w: RoundWrites, id: string, c: ContainerInfo | undefined): Promise<void> {
    const { engine } = this.d;
    const inst = w.get(id);
    if (!inst) return;
    await this.d.routesChanged();
    const containerId = c?.id ?? inst.containerId;
    if (containerId) {
      const rel = w.release(inst.releaseId);
      await engine.stop(containerId, Math.ceil((rel?.spec.stopGracePeriodMs ?? 10_000) / 1000));
      await engine.remove(containerId);
    }
    w.deleteInstance(id);
    this.announced.delete(id);
    this.d.directAddresses?.delete(id);
  }

  /** What the release's first instances wait for (depends_on), or undefined. */
  private dependencyWait(k: ServiceKey, release: ReleaseRecord): DependencyHold | undefined {
    if (release.spec.dependsOn.length === 0) return undefined;
    return dependencyWait(release.spec.dependsOn, release.spec.dependsOnConditions, (service) => this.dependencyView(k, service));
  }

  private dependencyView(k: ServiceKey, service: string): DependencyView | undefined {
    const { store } = this.d;
    const dk = { app: k.app, env: k.env, service };
    const svc = store.getService(dk);
    return svc && { replicas: svc.replicas, instances: store.listInstances(dk).filter((i) => i.releaseId === svc.releaseId || i.state === 'running') };
  }

  /** `web waiting for db (healthy)`, once per release and dependency (the deploy's output shows it). */
  private sayHold(w: RoundWrites, k: ServiceKey, release: ReleaseRecord, hold: DependencyHold): void {
    const key = `${k.app}/${k.env}/${k.service}`;
    const said = `${release.id} ${hold.service} ${hold.condition}`;
    if (this.holds.get(key) === said) return;
    this.holds.set(key, said);
    w.event({ ...k, id: '' }, 'dependency.waiting', `${k.service} ${dependencyWaitText(hold)}`);
  }

  /** Marks the desired release healthy or failed when it gets there. Returns a requeue delay while it progresses. */
  private async trackRelease(w: RoundWrites, k: ServiceKey, release: ReleaseRecord,
    pending: Array<{ id: string; releaseId: string; text: string }>): Promise<number | undefined> {
    if (release.status !== 'progressing') return undefined;
    // Never "healthy" while something of it waits to run: past the bound, the release fails with the reason.
    const stuck = pending.find((p) => p.releaseId === release.id);
    if (stuck) {
      this.failRelease(w, k, release, stuck.text);
      return 0;
    }
    const { clock } = this.d;
    const upd = updateOf(release);
    // The service and instances as this round left them (it may have counted a crash, started or stopped instances).
    const svc = w.serviceNow();
    if (!svc) return undefined;
    const insts = w.instancesNow();
    const current = insts.filter((i) => i.releaseId === release.id && i.state === 'running');
    const others = insts.filter((i) => i.releaseId !== release.id || i.state === 'stopping');
    // A one-shot service is done when its instances completed (exit 0), not while they run.
    const healthy = release.spec.oneShot
      ? insts.filter((i) => i.releaseId === release.id && i.state === 'exited' && i.reason === COMPLETED_REASON).length >= svc.replicas
      : current.filter((i) => i.health === 'healthy').length >= svc.replicas;
    // Blue-green is done once the ingress routes to it (the previous set may idle on); the others once
    // the previous release's instances are gone.
    const done = upd.strategy === 'blue-green' ? healthy && svc.routedReleaseId === release.id : healthy && others.length === 0;
    if (done) {
      // Healthy means routed: the ingress serves these instances before the release says so.
      await this.d.routesChanged();
      w.releasePatch(release.id, { status: 'healthy', finishedAt: clock.now() });
      w.event({ ...k, id: '' }, 'release.healthy', `release ${release.seq} of ${k.service} is healthy (${svc.replicas} replicas)`);
      w.flush();
      this.d.releaseFinished(k);
      return undefined;
    }
    // From when this release became the target (a rollback to an old release gets its whole deadline).
    const age = clock.now() - (svc.rolloutStartedAt || release.createdAt);
    const deadline = upd.deadlineMs;
    if (svc.failures >= RELEASE_FAILURE_LIMIT || age > deadline) {
      const crash = svc.lastCrash?.releaseId === release.id ? svc.lastCrash : undefined;
      // Never started because a dependency held it: the dependency is the cause, in its own words.
      const hold = current.length === 0 && svc.failures < RELEASE_FAILURE_LIMIT && !insts.some((i) => i.releaseId === release.id)
        ? this.dependencyWait(k, release) : undefined;
      const why = hold ? dependencyTimeoutText(hold, deadline, this.dependencyView(k, hold.service))
        : svc.failures >= RELEASE_FAILURE_LIMIT
        ? `its instances crashed ${svc.failures} times in a row (crash loop)${crash ? `; the last ${crashSummary(crash)}` : ''}`
        : `it did not become healthy within ${Math.round(deadline / 1000)}s: ${waitingOn({
          healthy: current.filter((i) => i.health === 'healthy').length, desired: svc.replicas, releaseSeq: release.seq,
          instances: current.map((i) => ({ ...i, release: release.seq })),
          ...(crash && crash.at >= (svc.rolloutStartedAt ?? 0) ? { lastCrash: crash } : {}),
        }, clock.now())}`;
      this.failRelease(w, k, release, why);
      return 0;
    }
    return 500;
  }

  /** Marks a release failed and, when the service says so, goes back to the last healthy release. */
  private failRelease(w: RoundWrites, k: ServiceKey, release: ReleaseRecord, why: string): void {
    const { store, clock } = this.d;
    const prev = updateOf(release).onFailure === 'rollback' ? previousGoodRelease(store, k, release) : undefined;
    w.releasePatch(release.id, { status: 'failed', message: why + (prev ? `; rolled back to release ${prev.seq}` : ''), finishedAt: clock.now() });
    w.event({ ...k, id: '' }, 'release.failed', `release ${release.seq} of ${k.service} failed: ${why}`);
    w.flush();
    if (prev) rollbackTo(store, clock, k, prev, `release ${release.seq} failed: ${why}`);
    this.d.releaseFinished(k);
  }

  /**
   * Reload by signal: instances stay (same container, same start time); Berth sends the signal and
   * waits until the health check passes again, one instance at a time so capacity stays. Used for
   * `berth reload` and for releases of a reload-strategy service whose container would not change.
   */
  private async reloadInPlace(w: RoundWrites, k: ServiceKey, svc: ServiceRecord, release: ReleaseRecord, records: InstanceRecord[],
    byInstance: Map<string, ContainerInfo>): Promise<Result | undefined> {
    const { engine, clock } = this.d;
    const upd = updateOf(release);
    const running = records.filter((r) => r.state === 'running' && byInstance.get(r.id)?.running);
    const requested = (svc.reloadRequestedAt ?? 0) > (svc.reloadedAt ?? 0);
    let targets: InstanceRecord[] = [];
    if (upd.strategy === 'reload') {
      targets = running.filter((r) => {
        if (r.releaseId === release.id) return false;
        const from = w.release(r.releaseId);
        // A configuration change can be applied in place too: the files under /run/berth/config are
        // rewritten before the signal (environment variables keep their values from container start).
        return from !== undefined && sameContainer(from, release, r, this.extras(r.app, r.env));
      });
    }
    // Only these take the release in place; `berth reload` signals every running instance but moves
    // none to another release (a blue-green set kept idle for a rollback stays the release it runs).
    const inPlace = new Set(targets.map((r) => r.id));
    if (requested) targets = running;
    if (targets.length === 0) return undefined;
    this.d.configFiles?.(release.app, release.env, release.spec.configVersion ?? 0);
    for (const r of targets) {
      const c = byInstance.get(r.id)!;
      const from = inPlace.has(r.id) ? w.release(r.releaseId) : undefined;
      await engine.kill(c.id, upd.signal);
      w.event(r, 'instance.reloaded', `instance ${r.id}: sent ${upd.signal}${from ? ` for release ${release.seq} (in place, was ${from.seq})` : ''}`);
      const ok = await this.healthyAgain(r, release.spec.health, clock.now() + upd.deadlineMs);
      // Each instance's outcome is written before the next is signalled (a restart does not signal it again).
      if (ok) {
        if (from) w.instance(r.id, { releaseId: release.id });
        w.flush();
        continue;
      }
      const why = `instance ${r.id} did not pass its health check after ${upd.signal}`;
      if (upd.onFailure === 'restart') {
        w.event(r, 'instance.reload_failed', `${why}; restarting it`);
        this.markStopping(w, r.id, 'reload failed');
        w.flush();
        await this.stopInstance(w, r.id, c);
        w.flush();
      } else if (from) {
        this.failRelease(w, k, release, why);
        return { requeueAfterMs: 0 };
      } else {
        w.event(r, 'instance.reload_failed', why);
        w.flush();
      }
    }
    if (requested) w.service({ reloadedAt: svc.reloadRequestedAt ?? clock.now() });
    w.flush();
    return { requeueAfterMs: 0 };
  }

  private scope(): string {
    return this.d.networkScope ?? 'local';
  }

  private extras(app: string, env: string): { resolvConf?: string; configDir?: string; configGid?: number; scope: string } {
    const resolvConf = this.d.resolvConf?.(app, env);
    const configDir = this.d.configFiles ? this.configDirOf(app, env) : undefined;
    return {
      scope: this.scope(),
      ...(resolvConf ? { resolvConf } : {}),
      ...(configDir ? { configDir, ...(this.d.configGid !== undefined ? { configGid: this.d.configGid } : {}) } : {}),
    };
  }

  private configDirOf(app: string, env: string): string | undefined {
    return this.d.configDirOf?.(app, env);
  }

  private async healthyAgain(inst: InstanceRecord, health: HealthSpec, deadline: number): Promise<boolean> {
    // Give the process a moment to act on the signal before the first probe.
    await sleep(100);
    while (this.d.clock.now() < deadline) {
      if (health.type === 'http' || health.type === 'tcp') {
        if ((await this.d.probe(inst, health)).ok) return true;
      } else if (health.type === 'command') {
        const c = inst.containerId ? await this.d.engine.inspect(inst.containerId) : undefined;
        if (c?.running && c.health === 'healthy') return true;
      } else {
        const c = inst.containerId ? await this.d.engine.inspect(inst.containerId) : undefined;
        return c?.running === true;
      }
      await sleep(100);
    }
    return false;
  }

}

/**
 * One round's view of the service and its writes. Reads come from the snapshot taken at the start
 * (kept up to date with the round's own writes); writes are buffered and flushed as one transaction
 * per step. Events are logged at once and recorded with the step's write.
 */
class RoundWrites {
  private batch: StoreBatch = {};
  private readonly rows: Map<string, InstanceRecord>;
  private svcNow: ServiceRecord | undefined;

  constructor(private readonly store: ReconcileStore & DesiredStateStore, private readonly logger: Logger,
    private readonly k: ServiceKey, private readonly snap: ServiceSnapshot) {
    this.rows = new Map(snap.instances.map((i) => [i.id, i]));
    this.svcNow = snap.service && { ...snap.service };
  }

  /** The instance as this round knows it (undefined once deleted). */
  get(id: string): InstanceRecord | undefined {
    return this.rows.get(id);
  }

  /** A release by id: from the snapshot, else read (and kept) once. */
  release(id: string): ReleaseRecord | undefined {
    let r = this.snap.releases.get(id);
    if (!r) {
      r = this.store.getRelease(id);
      if (r) this.snap.releases.set(id, r);
    }
    return r;
  }

  serviceNow(): ServiceRecord | undefined {
    return this.svcNow;
  }

  instancesNow(): InstanceRecord[] {
    return [...this.rows.values()];
  }

  /** An instance the round inserted itself (rows are written before their containers exist). */
  added(inst: InstanceRecord): void {
    this.rows.set(inst.id, inst);
  }

  instance(id: string, patch: InstancePatch): void {
    const list = (this.batch.instances ??= []);
    const cur = list.find((x) => x.id === id);
    if (cur) Object.assign(cur.patch, patch);
    else list.push({ id, patch: { ...patch } });
    const row = this.rows.get(id);
    if (row) Object.assign(row, patch);
  }

  deleteInstance(id: string): void {
    (this.batch.deleteInstances ??= []).push(id);
    this.rows.delete(id);
  }

  service(patch: ServicePatch): void {
    this.batch.service = { key: this.k, patch: { ...this.batch.service?.patch, ...patch } };
    if (this.svcNow) Object.assign(this.svcNow, patch);
  }

  releasePatch(id: string, patch: ReleasePatch): void {
    (this.batch.releases ??= []).push({ id, patch });
  }

  event(i: { app: string; env: string; service: string; id: string }, kind: string, message: string): void {
    (this.batch.events ??= []).push({ app: i.app, env: i.env, service: i.service, instance: i.id, kind, message });
    this.logger.info({ app: i.app, env: i.env, service: i.service, instance: i.id, kind }, message);
  }

  /** Writes what the step did, in one transaction; nothing when it did nothing. */
  flush(): void {
    const b = this.batch;
    if (!b.instances?.length && !b.deleteInstances?.length && !b.service && !b.releases?.length && !b.events?.length) return;
    this.batch = {};
    this.store.writeBatch(b);
  }
}

/** Like Promise.all, but settles only once every promise has: no engine call outlives a failed round. */
async function allSettled(ps: Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(ps)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

function view(r: InstanceRecord, c: ContainerInfo | undefined): InstanceView {
  let observed: Observed = 'missing';
  if (c) observed = c.running ? 'running' : c.state === 'created' ? 'created' : 'exited';
  const v: InstanceView = { id: r.id, releaseId: r.releaseId, state: r.state, health: r.health, observed, createdAt: r.createdAt };
  if (c?.exitCode !== undefined) v.exitCode = c.exitCode;
  if (r.startedAt !== undefined) v.startedAt = r.startedAt;
  if (r.replaceRequestedAt !== undefined) v.replace = true;
  return v;
}

function pinKey(k: { app: string; env: string; service: string }): string {
  return `${k.app}/${k.env}/${k.service}`;
}

/** The named volumes a release mounts (what pins it to a host on many hosts). */
function namedVolumes(rel: ReleaseRecord): string[] {
  return rel.spec.volumes.filter((m) => m.type === 'volume').map((m) => m.source);
}

function updateOf(release: ReleaseRecord | undefined): UpdateSpec {
  return release?.spec.update ?? DEFAULT_UPDATE;
}

/** Would an instance of `from` run the same container under `to`? (Then a reload can apply the release in place.) */
function sameContainer(from: ReleaseRecord, to: ReleaseRecord, inst: InstanceRecord, extra: { resolvConf?: string; scope: string }): boolean {
  const strip = (rel: ReleaseRecord) => {
    const spec = containerSpecFor(rel, inst, extra);
    delete spec.labels[LABEL.release];
    delete spec.env.BERTH_RELEASE;
    return JSON.stringify(spec);
  };
  // Secret and config files are written per release: a changed one (or an external one at another
  // config version) needs a new container.
  const files = (rel: ReleaseRecord) => JSON.stringify([rel.spec.secrets ?? [], rel.spec.configs ?? []]);
  const external = [...to.spec.secrets ?? [], ...to.spec.configs ?? []].some((m) => m.from === 'external');
  if (files(from) !== files(to) || (external && from.spec.configVersion !== to.spec.configVersion)) return false;
  return strip(from) === strip(to);
}

/** `healthcheck exit 1: curl: (7) Failed to connect …` — the last line the check printed. */
function healthcheckText(log: { exitCode: number; output: string }): string {
  const last = log.output.split('\n').map((l) => l.trim()).filter(Boolean).at(-1);
  const cut = last && last.length > 200 ? `${last.slice(0, 200)}…` : last;
  return `healthcheck exit ${log.exitCode}${cut ? `: ${cut}` : ''}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
