import type { Logger } from '../core/ports.ts';
import { backoffMs } from '../lib/backoff.ts';

/** What a reconcile call wants next: nothing, or to run again after a delay. */
export type Result = { requeueAfterMs?: number } | void;

/**
 * A keyed work queue in the style of client-go's: a key is queued at most once; a key being worked
 * on is never worked on twice at once (re-adds while running are remembered and run after); failures
 * are retried with per-key exponential backoff; different keys run concurrently up to `concurrency`.
 */
export class WorkQueue {
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private order: string[] = [];
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly reconcile: (key: string) => Promise<Result>,
    private readonly logger: Logger,
    private readonly concurrency = 4,
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.order.push(key);
    this.pump();
  }

  /** Adds the key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    const at = Date.now() + delayMs;
    const cur = this.timers.get(key);
    if (cur && cur.at <= at) return;
    if (cur) clearTimeout(cur.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, Math.max(0, delayMs));
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Resolves when nothing is queued or running (timers may still be pending). */
  idle(): Promise<void> {
    if (this.queued.size === 0 && this.running.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    // Keys not yet started will never start: drop them (level-driven: the next start resyncs every
    // key), so idle() waits only for the runs in flight instead of hanging on queued work.
    this.queued.clear();
    this.order = [];
    this.dirty.clear();
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.concurrency) {
      const idx = this.order.findIndex((k) => !this.running.has(k));
      if (idx < 0) break;
      const key = this.order.splice(idx, 1)[0]!;
      this.queued.delete(key);
      this.running.add(key);
      void this.run(key);
    }
    if (this.queued.size === 0 && this.running.size === 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of w) r();
    }
  }

  private async run(key: string): Promise<void> {
    try {
      const res = await this.reconcile(key);
      this.failures.delete(key);
      if (res && res.requeueAfterMs !== undefined) this.addAfter(key, res.requeueAfterMs);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = backoffMs(n - 1, 200, 30_000);
      this.logger.warn({ key, err: String(err), attempt: n, retryInMs: delay }, 'reconcile failed; will retry');
      this.addAfter(key, delay);
    } finally {
      this.running.delete(key);
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
