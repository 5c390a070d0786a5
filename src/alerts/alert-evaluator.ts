import { readFileSync, statfsSync } from 'node:fs';
import type { Clock, Logger } from '../core/ports.ts';
import type { AlertRecord, AlertRule, AlertStore, EventStore } from '../core/store.ts';

/** What the evaluator needs of the metrics store: HTTP totals of a scope over a time range. */
export interface HttpTotals {
  (q: { app?: string; env?: string; service?: string; from: number; to: number }): { requests: number; errors5xx: number; p95?: number };
}

export interface Notification {
  /** Stable per transition: receivers can drop repeats (`rule:state:since`). */
  id: string;
  alert: string;
  state: 'firing' | 'resolved';
  value: number;
  threshold: number;
  metric: AlertRule['metric'];
  labels: { app?: string; env?: string; service?: string };
  startsAt: string;
  endsAt?: string;
  message: string;
}

/**
 * Evaluates alert rules continuously (every `intervalMs`) over events (restarts), the metrics store
 * (latency, 5xx ratio) and the host (disk, memory). ok → pending (while `for` runs) → firing →
 * resolved; only transitions notify, each with a stable id, delivered with retries. State lives in the
 * store, so a restart of Berth neither forgets a firing alert nor notifies it twice.
 */
export class AlertEvaluator {
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(private readonly d: {
    store: AlertStore & EventStore; clock: Clock; logger: Logger; http: HttpTotals; dataDir: string; intervalMs: number;
    notify: (webhook: string, n: Notification) => void;
  }) {}

  start(): void {
    this.timer = setInterval(() => void this.evaluate(), this.d.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One pass over every rule. */
  async evaluate(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const a of this.d.store.listAlerts()) {
        try {
          this.step(a, this.value(a.rule));
        } catch (err) {
          this.d.logger.warn({ alert: a.name, err: String(err) }, 'alert evaluation failed');
        }
      }
    } finally {
      this.running = false;
    }
  }

  value(r: AlertRule): number {
    const now = this.d.clock.now();
    const scope = { ...(r.app ? { app: r.app } : {}), ...(r.env ? { env: r.env } : {}), ...(r.service ? { service: r.service } : {}) };
    switch (r.metric) {
      case 'restarts':
        return this.d.store.listEvents({ ...scope, limit: 1000 }).filter((e) => e.kind === 'instance.crashed' && e.ts >= now - r.windowMs).length;
      case 'p95_latency':
        return this.d.http({ ...scope, from: now - r.windowMs, to: now }).p95 ?? 0;
      case 'error_ratio': {
        const t = this.d.http({ ...scope, from: now - r.windowMs, to: now });
        return t.requests === 0 ? 0 : t.errors5xx / t.requests;
      }
      case 'host_disk': {
        const s = statfsSync(this.d.dataDir);
        return s.blocks === 0 ? 0 : 1 - s.bavail / s.blocks;
      }
      case 'host_memory': {
        const m = readFileSync('/proc/meminfo', 'utf8');
        const total = Number(/MemTotal:\s+(\d+)/.exec(m)?.[1] ?? 0);
        const avail = Number(/MemAvailable:\s+(\d+)/.exec(m)?.[1] ?? 0);
        return total === 0 ? 0 : 1 - avail / total;
      }
    }
  }

  private step(a: AlertRecord, value: number): void {
    const { store, clock } = this.d;
    const now = clock.now();
    const breached = value > a.rule.threshold;
    if (breached && a.state === 'ok') {
      if (a.rule.forMs > 0) return void store.updateAlert(a.name, { state: 'pending', pendingSince: now, value });
      return this.fire(a, value, now);
    }
    if (breached && a.state === 'pending') {
      if (now - a.pendingSince >= a.rule.forMs) return this.fire(a, value, now);
      return void store.updateAlert(a.name, { value });
    }
    if (!breached && a.state === 'pending') return void store.updateAlert(a.name, { state: 'ok', since: now, value });
    if (!breached && a.state === 'firing') return this.resolve(a, value, now);
    store.updateAlert(a.name, { value });
  }

  private fire(a: AlertRecord, value: number, now: number): void {
    this.d.store.updateAlert(a.name, { state: 'firing', since: now, value });
    this.transition(a, 'firing', value, now, now);
  }

  private resolve(a: AlertRecord, value: number, now: number): void {
    this.d.store.updateAlert(a.name, { state: 'ok', since: now, value });
    this.transition(a, 'resolved', value, a.since, now);
  }

  private transition(a: AlertRecord, state: 'firing' | 'resolved', value: number, startsAt: number, now: number): void {
    const r = a.rule;
    const scope = [r.app, r.env, r.service].filter(Boolean).join('/') || 'all';
    const message = `${a.name} ${state}: ${r.metric} of ${scope} is ${round(value)} (threshold ${r.threshold}${r.metric === 'restarts' ? ` in ${r.windowMs / 1000}s` : ''})`;
    this.d.store.addEvent({ app: r.app ?? '', env: r.env ?? '', service: r.service ?? '', instance: '', kind: `alert.${state}`, message });
    this.d.logger.info({ alert: a.name, state, value }, message);
    if (!r.webhook) return;
    this.d.notify(r.webhook, {
      id: `${a.name}:${state}:${startsAt}`, alert: a.name, state, value, threshold: r.threshold, metric: r.metric,
      labels: { ...(r.app ? { app: r.app } : {}), ...(r.env ? { env: r.env } : {}), ...(r.service ? { service: r.service } : {}) },
      startsAt: new Date(startsAt).toISOString(), ...(state === 'resolved' ? { endsAt: new Date(now).toISOString() } : {}), message,
    });
  }
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}
