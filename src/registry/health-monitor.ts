import { request } from 'node:http';
import { connect } from 'node:net';
import type { Clock, Logger, ProbeResult } from '../core/ports.ts';
import type { HttpHealth, TcpHealth } from '../core/spec/types.ts';
import type { CheckResult, InstanceHealth, InstanceRecord, DesiredStateStore, EventStore, InstanceStore, ReconcileStore } from '../core/store.ts';
import { nextCheck, shouldAnnounce } from '../core/health-notes.ts';

type Probe = HttpHealth | TcpHealth;

interface Tracked {
  inst: InstanceRecord;
  probe: Probe;
  timer?: NodeJS.Timeout;
  failures: number;
  health: InstanceHealth;
  startedAt: number;
  stopped: boolean;
  /** Probes so far while starting. */
  startingProbes: number;
  /** The delay before the latest probe while starting (the schedule doubles it once past the fast window). */
  lastDelayMs: number;
  /** The latest result as stored on the instance's record. */
  check?: CheckResult;
  /** The failing result already announced with an event. */
  announced?: string;
}

/**
 * A starting instance is probed as often as a person polling by hand would (every 20 ms) for its first
 * 2 s, the time most services take to listen, so a deploy is routable within a few ms of its answer
 * (a doubling schedule from 25 ms probed at 375 and 775 ms: an app ready at 400 ms waited 375 ms).
 * Then less and less often: doubling up to 1 s (or the check's own interval, if shorter); an instance
 * that takes 30 s to start is probed ~130 times, not ~1,500. Many instances starting at once share a
 * budget (each probes at most every `starting × 4 ms`, ~250 probes a second in all), so a deploy of
 * hundreds of instances does not flood the machine with connects.
 */
const STARTING_FAST_MS = 20;
const STARTING_FAST_FOR_MS = 2000;
const STARTING_BUDGET_MS = 4;
const STARTING_MAX_MS = 1000;

/**
 * The delay before the next probe of a starting instance: `sinceStartMs` since it started, `lastMs`
 * the delay before the probe that just failed (0 for none yet), `starting` instances starting now,
 * `intervalMs` the check's own interval.
 */
export function startingProbeDelayMs(sinceStartMs: number, lastMs: number, starting: number, intervalMs: number): number {
  const cap = Math.min(STARTING_MAX_MS, intervalMs);
  const fast = Math.max(STARTING_FAST_MS, starting * STARTING_BUDGET_MS);
  if (sinceStartMs < STARTING_FAST_FOR_MS) return Math.min(cap, fast);
  return Math.min(cap, Math.max(fast, lastMs * 2));
}

/**
 * Runs Berth's own HTTP and TCP checks against running instances (Compose healthchecks run inside
 * the engine; the reconciler copies those). A flip is written to the store and reported through
 * `onChange`, which wakes the service's reconciler and re-renders the ingress.
 */
export class HealthMonitor {
  private readonly tracked = new Map<string, Tracked>();
  /**
   * Each release's probe (a release's spec never changes): refresh reads the releases it has not
   * seen, not one per instance (bench scale: 5,000 release reads per refresh, one refresh per round).
   */
  private readonly probes = new Map<string, Probe | undefined>();
  /** Tracked instances still starting, as of the last refresh (the starting probes' shared budget). */
  private starting = 0;
  /** The store's instanceVersion at the last refresh, and whether that refresh missed a release. */
  private seenVersion = -1;
  private releaseMissing = false;

  constructor(
    private readonly store: DesiredStateStore & InstanceStore & EventStore & Pick<ReconcileStore, 'writeBatch'>,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly onChange: (inst: InstanceRecord) => void,
    /**
     * A healthy instance turned unhealthy because it was unreachable (its last checks made no TCP
     * connection): connections to it from this host will get no answer either (the ingress cuts its own).
     */
    private readonly onUnreachable?: (inst: InstanceRecord) => void,
  ) {}

  /** Re-reads the instance records and starts/stops probes to match. Cheap; call after any change. */
  refresh(): void {
    // Nothing to do when no instance was written since the last refresh and it read every release it
    // needed; only the instances written since when the store can tell (bench scale: a pass over
    // 5,000 instances per flip, for one that changed).
    const version = this.store.instanceVersion();
    if (version === this.seenVersion && !this.releaseMissing) return;
    const written = this.seenVersion >= 0 && !this.releaseMissing ? this.store.instanceWritesSince(this.seenVersion) : undefined;
    this.seenVersion = version;
    this.releaseMissing = false;
    if (written) {
      for (const id of new Set(written)) {
        const inst = this.store.instanceRecord(id);
        const probe = inst && this.wanted(inst);
        if (inst && probe) this.track(inst, probe);
        else {
          const t = this.tracked.get(id);
          if (t) this.untrack(id, t);
        }
      }
      this.countStarting();
      return;
    }
    const want = new Map<string, { inst: Readonly<InstanceRecord>; probe: Probe }>();
    const releases = new Set<string>();
    for (const inst of this.store.allInstances()) {
      const probe = this.wanted(inst);
      if (inst.state === 'running' && inst.address) releases.add(inst.releaseId);
      if (probe) want.set(inst.id, { inst, probe });
    }
    for (const id of this.probes.keys()) if (!releases.has(id)) this.probes.delete(id);
    for (const [id, t] of this.tracked) {
      if (!want.has(id)) this.untrack(id, t);
    }
    for (const w of want.values()) this.track(w.inst, w.probe);
    this.countStarting();
  }

  /** Tracked instances still starting (the starting probes' shared budget). */
  private countStarting(): void {
    let starting = 0;
    for (const t of this.tracked.values()) if (t.health === 'starting') starting++;
    this.starting = starting;
  }

  /** The probe of an instance to be probed now; undefined: none (not running, or its release has no HTTP/TCP check). */
  private wanted(inst: Readonly<InstanceRecord>): Probe | undefined {
    // Many hosts: an instance whose task is not placed yet has no address to probe.
    if (inst.state !== 'running' || !inst.address) return undefined;
    return this.probeFor(inst);
  }

  /** Probes `w` from now on (kept if it is already: at its new address when its host's changed). */
  private track(w: Readonly<InstanceRecord>, probe: Probe): void {
    const had = this.tracked.get(w.id);
    // Its host's address became known (or changed): probe there from now on.
    if (had && had.inst.address !== w.address) had.inst = { ...had.inst, host: w.host, address: w.address };
    if (had) return;
    // The store's own record is shared: what is tracked is a copy of it as it is now.
    const inst: InstanceRecord = w.check ? { ...w, check: { ...w.check } } : { ...w };
    const t: Tracked = { inst, probe, failures: 0, health: inst.health, startedAt: inst.startedAt ?? this.clock.now(), stopped: false, startingProbes: 0, lastDelayMs: 0,
      ...(inst.check ? { check: inst.check } : {}) };
    this.tracked.set(w.id, t);
    this.schedule(t, 0);
  }

  /** The ids of the instances probed now, sorted (tests, diagnostics). */
  trackedIds(): string[] {
    return [...this.tracked.keys()].sort();
  }

  close(): void {
    for (const [id, t] of this.tracked) this.untrack(id, t);
  }

  /**
   * The engine says a healthy instance's process is gone (its container died or was sent SIGKILL):
   * it leaves the upstreams now, not at its next failing probe (up to an interval later) nor after the
   * reconciler's next look at the engine (a list and an inspect of each of the service's containers:
   * 50-500 ms under load). Written like a failed check (health, event, `onChange`); the reconciler
   * does the rest (restart policy, removal). Anything but a running, healthy instance is left alone.
   */
  down(id: string, why: string): void {
    const cur = this.store.getInstance(id);
    if (!cur || cur.state !== 'running' || cur.health !== 'healthy') return;
    const t = this.tracked.get(id);
    if (t) {
      t.health = 'unhealthy';
      t.failures = Math.max(t.failures, t.probe.retries);
    }
    this.store.writeBatch({
      observed: true,
      instances: [{ id, patch: { health: 'unhealthy' } }],
      events: [{ app: cur.app, env: cur.env, service: cur.service, instance: id, kind: 'health.unhealthy', message: `instance ${id} is unhealthy: ${why}` }],
    });
    this.logger.info({ instance: id, health: 'unhealthy', why }, 'health changed');
    this.onChange(cur);
  }

  private probeFor(inst: InstanceRecord): Probe | undefined {
    if (this.probes.has(inst.releaseId)) return this.probes.get(inst.releaseId);
    const rel = this.store.getRelease(inst.releaseId);
    const h = rel?.spec.health;
    const probe = h && (h.type === 'http' || h.type === 'tcp') ? h : undefined;
    // A release not (yet) readable is asked again next time.
    if (rel) this.probes.set(inst.releaseId, probe);
    else this.releaseMissing = true;
    return probe;
  }

  private untrack(id: string, t: Tracked): void {
    t.stopped = true;
    if (t.timer) clearTimeout(t.timer);
    this.tracked.delete(id);
  }

  private schedule(t: Tracked, delayMs: number): void {
    if (t.stopped) return;
    t.timer = setTimeout(() => void this.check(t), delayMs);
    t.timer.unref();
  }

  private async check(t: Tracked): Promise<void> {
    const result = await checkInstance(t.inst, t.probe);
    if (t.stopped) return;
    const ok = result.ok;
    this.note(t, result);
    const inStartPeriod = this.clock.now() - t.startedAt < t.probe.startPeriodMs;
    let next = t.health;
    if (ok) {
      t.failures = 0;
      next = 'healthy';
    } else {
      t.failures++;
      if (t.health === 'healthy' && t.failures >= t.probe.retries) next = 'unhealthy';
      if (t.health === 'starting' && !inStartPeriod && t.failures >= t.probe.retries && this.clock.now() - t.startedAt > 30_000) next = 'unhealthy';
    }
    if (next !== t.health) {
      t.health = next;
      const cur = this.store.getInstance(t.inst.id);
      if (cur && cur.state === 'running') {
        // The flip and its event in one transaction, not waiting for the disk (observed state: see StoreBatch.observed).
        this.store.writeBatch({
          observed: true,
          instances: [{ id: cur.id, patch: { health: next } }],
          events: [{ app: cur.app, env: cur.env, service: cur.service, instance: cur.id, kind: `health.${next}`,
            message: `instance ${cur.id} is ${next}${ok ? '' : ` (${t.failures} failed ${t.probe.type} checks; last: ${result.text})`}` }],
        });
        // How long the flip took to see: probes so far, and time since the instance started.
        this.logger.info({ instance: cur.id, health: next, probes: t.startingProbes + 1, sinceStartMs: this.clock.now() - t.startedAt }, 'health changed');
        this.onChange(cur);
        if (next === 'unhealthy' && result.unreachable) this.onUnreachable?.(cur);
      }
    }
    // A healthy instance that could not even be connected to (a dead host is silent) is asked again at
    // once: the check already waited its timeout, and requests sent there wait until it is judged.
    if (t.health === 'healthy' && !ok && result.unreachable) return this.schedule(t, 0);
    if (t.health !== 'starting') return this.schedule(t, t.probe.intervalMs);
    t.startingProbes++;
    t.lastDelayMs = startingProbeDelayMs(this.clock.now() - t.startedAt, t.lastDelayMs, this.starting, t.probe.intervalMs);
    this.schedule(t, t.lastDelayMs);
  }

  /**
   * Keeps the instance's latest result on its record when it changes (so a deploy and `status` can say
   * what is wrong), with an event once a check of an instance that is not healthy has failed the same
   * way for a moment.
   */
  private note(t: Tracked, result: ProbeResult): void {
    const now = this.clock.now();
    const check = nextCheck(t.check, result, now);
    if (check) {
      t.check = check;
      const cur = this.store.getInstance(t.inst.id);
      if (!cur || cur.state !== 'running') return;
      this.store.updateInstance(cur.id, { check });
    }
    if (shouldAnnounce(t.check, t.health === 'healthy', now, t.announced)) {
      const text = t.check!.text;
      t.announced = text;
      const i = t.inst;
      this.store.addEvent({ app: i.app, env: i.env, service: i.service, instance: i.id, kind: 'health.check_failed',
        message: `instance ${i.id} (${i.address}:${i.port}): ${text}` });
    }
  }
}

/** How long a connection to a published port must stay open to count (the proxy closes in ~3 ms when nothing listens). */
const PUBLISHED_HOLD_MS = 150;

/**
 * A TCP connection to a port nothing listens on can connect to itself when the kernel picks that same
 * port as the client's source port (a port in the ephemeral range, 32768-60999 on Linux): a
 * "simultaneous open". It proves nothing listens, not that something does.
 */
export function isSelfConnection(s: { localAddress?: string | undefined; localPort?: number | undefined; remoteAddress?: string | undefined; remotePort?: number | undefined }): boolean {
  return s.localPort !== undefined && s.localPort === s.remotePort && s.localAddress === s.remoteAddress;
}

/**
 * Runs a check's timeout verdict after the event loop's next I/O poll. When the server's event loop
 * was busy past the timeout, the timer runs first in the next turn, before the poll that would deliver
 * a connection the kernel made long ago: judged at once, a live instance would look "unreachable"
 * (no TCP connection) and have its connections cut. setImmediate runs after that poll: a connection
 * made by then has been seen (its handlers ran, a TCP check has already passed).
 */
function settleTimeout(verdict: () => void): void {
  setImmediate(verdict);
}

/** One HTTP (2xx/3xx) or TCP (connects) check of an instance. */
export async function probeInstance(inst: Pick<InstanceRecord, 'address' | 'port'>, p: Probe): Promise<boolean> {
  return (await checkInstance(inst, p)).ok;
}

/**
 * One HTTP (2xx/3xx) or TCP (connects) check of an instance, with its outcome in words:
 * `GET /healthz → 404`, `GET /healthz → connection refused on 127.0.0.1:20031`, `connected to 127.0.0.1:20031`.
 */
export function checkInstance(inst: Pick<InstanceRecord, 'address' | 'port'>, p: Probe): Promise<ProbeResult> {
  const where = `${inst.address}:${inst.port}`;
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: ProbeResult) => {
      if (!done) {
        done = true;
        resolve(r);
      }
    };
    const failed = (err: unknown): ProbeResult => {
      const code = (err as NodeJS.ErrnoException | undefined)?.code;
      const why = code === 'ECONNREFUSED' ? 'connection refused' : code === 'ECONNRESET' ? 'connection reset'
        : code === 'EHOSTUNREACH' ? 'host unreachable' : code ?? String((err as Error | undefined)?.message ?? err);
      const text = `${why} on ${where}`;
      const unreachable = code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT';
      return { ok: false, text: p.type === 'http' ? `GET ${p.path} → ${text}` : text, ...(code === 'ECONNREFUSED' ? { refused: true } : {}), ...(unreachable ? { unreachable: true } : {}) };
    };
    const timedOut = `no answer within ${p.timeoutMs >= 1000 ? `${Math.round(p.timeoutMs / 100) / 10}s` : `${p.timeoutMs} ms`} on ${where}`;
    if (p.type === 'tcp') {
      const s = connect({ host: inst.address, port: inst.port });
      s.setTimeout(p.timeoutMs, () => settleTimeout(() => {
        const unreachable = s.connecting;
        s.destroy();
        finish({ ok: false, text: timedOut, ...(unreachable ? { unreachable: true } : {}) });
      }));
      const self = () => { s.destroy(); finish({ ok: false, text: `connection refused on ${where}`, refused: true }); };
      if (!p.published) {
        s.on('connect', () => {
          if (isSelfConnection(s)) return self();
          s.end();
          finish({ ok: true, text: `connected to ${where}` });
        });
        s.on('error', (err) => finish(failed(err)));
        return;
      }
      // A published port: the engine's proxy accepts, then closes at once when nothing listens in the
      // container. A connection that stays open a moment reached the process.
      let hold: NodeJS.Timeout | undefined;
      const closedEarly = () => {
        if (hold) clearTimeout(hold);
        finish({ ok: false, text: `the published port ${where} closed the connection at once: nothing listens on the service's port in the container` });
      };
      s.on('connect', () => {
        if (isSelfConnection(s)) return self();
        hold = setTimeout(() => { s.destroy(); finish({ ok: true, text: `connected to ${where}` }); }, Math.min(PUBLISHED_HOLD_MS, p.timeoutMs));
      });
      s.on('end', closedEarly);
      s.on('close', closedEarly);
      s.on('error', (err) => { if (hold) clearTimeout(hold); finish(failed(err)); });
      return;
    }
    const req = request({ host: inst.address, port: inst.port, path: p.path, method: 'GET', agent: false, timeout: p.timeoutMs,
      headers: { 'user-agent': 'berth-health/1', connection: 'close' } }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      finish({ ok: code >= 200 && code < 400, text: `GET ${p.path} → ${code}` });
    });
    req.on('timeout', () => settleTimeout(() => {
      // Timed out before the TCP connection was made: the address is silent (a dead host), not the app slow.
      const unreachable = req.socket?.connecting === true;
      req.destroy();
      finish({ ok: false, text: `GET ${p.path} → ${timedOut}`, ...(unreachable ? { unreachable: true } : {}) });
    }));
    req.on('error', (err) => finish(failed(err)));
    req.end();
  });
}
