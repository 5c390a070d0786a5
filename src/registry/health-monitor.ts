import { request } from 'node:http';
import { connect } from 'node:net';
import type { Clock, Logger } from '../core/ports.ts';
import type { HttpHealth, TcpHealth } from '../core/spec/types.ts';
import type { InstanceHealth, InstanceRecord, Store } from '../core/store.ts';

type Probe = HttpHealth | TcpHealth;

interface Tracked {
  inst: InstanceRecord;
  probe: Probe;
  timer?: NodeJS.Timeout;
  failures: number;
  health: InstanceHealth;
  startedAt: number;
  stopped: boolean;
}

/** While an instance is starting it is probed this often, so a deploy is routable as soon as it answers. */
const STARTING_INTERVAL_MS = 25;

/**
 * Runs Berth's own HTTP and TCP checks against running instances (Compose healthchecks run inside
 * the engine; the reconciler copies those). A flip is written to the store and reported through
 * `onChange`, which wakes the service's reconciler and re-renders the ingress.
 */
export class HealthMonitor {
  private readonly tracked = new Map<string, Tracked>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly onChange: (inst: InstanceRecord) => void,
  ) {}

  /** Re-reads the instance records and starts/stops probes to match. Cheap; call after any change. */
  refresh(): void {
    const want = new Map<string, { inst: InstanceRecord; probe: Probe }>();
    for (const inst of this.store.listInstances()) {
      if (inst.state !== 'running') continue;
      const probe = this.probeFor(inst);
      if (probe) want.set(inst.id, { inst, probe });
    }
    for (const [id, t] of this.tracked) {
      if (!want.has(id)) this.untrack(id, t);
    }
    for (const [id, w] of want) {
      if (this.tracked.has(id)) continue;
      const t: Tracked = { inst: w.inst, probe: w.probe, failures: 0, health: w.inst.health, startedAt: w.inst.startedAt ?? this.clock.now(), stopped: false };
      this.tracked.set(id, t);
      this.schedule(t, 0);
    }
  }

  close(): void {
    for (const [id, t] of this.tracked) this.untrack(id, t);
  }

  private probeFor(inst: InstanceRecord): Probe | undefined {
    const rel = this.store.getRelease(inst.releaseId);
    const h = rel?.spec.health;
    return h && (h.type === 'http' || h.type === 'tcp') ? h : undefined;
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
    const ok = await probeInstance(t.inst, t.probe);
    if (t.stopped) return;
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
        this.store.updateInstance(t.inst.id, { health: next });
        this.store.addEvent({ app: cur.app, env: cur.env, service: cur.service, instance: cur.id, kind: `health.${next}`,
          message: `instance ${cur.id} is ${next}${ok ? '' : ` (${t.failures} failed ${t.probe.type} checks)`}` });
        this.logger.info({ instance: cur.id, health: next }, 'health changed');
        this.onChange(cur);
      }
    }
    this.schedule(t, t.health === 'starting' ? STARTING_INTERVAL_MS : t.probe.intervalMs);
  }
}

/** One HTTP (2xx/3xx) or TCP (connects) check of an instance. */
export function probeInstance(inst: InstanceRecord, p: Probe): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean) => {
      if (!done) {
        done = true;
        resolve(ok);
      }
    };
    if (p.type === 'tcp') {
      const s = connect({ host: inst.address, port: inst.port });
      s.setTimeout(p.timeoutMs, () => { s.destroy(); finish(false); });
      s.on('connect', () => { s.end(); finish(true); });
      s.on('error', () => finish(false));
      return;
    }
    const req = request({ host: inst.address, port: inst.port, path: p.path, method: 'GET', agent: false, timeout: p.timeoutMs,
      headers: { 'user-agent': 'berth-health/1', connection: 'close' } }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      finish(code >= 200 && code < 400);
    });
    req.on('timeout', () => { req.destroy(); finish(false); });
    req.on('error', () => finish(false));
    req.end();
  });
}
