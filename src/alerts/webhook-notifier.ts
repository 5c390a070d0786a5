import type { Logger } from '../core/ports.ts';
import { backoffMs } from '../lib/backoff.ts';
import type { Notification } from './alert-evaluator.ts';

/**
 * Delivers notifications by POSTing JSON, retrying with exponential backoff (1 s … 30 s, 8 attempts);
 * a notification already delivered is never sent again (keyed by its id), so a receiver sees each
 * transition once unless it failed to answer 2xx.
 */
export class WebhookNotifier {
  private readonly delivered = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly logger: Logger, private readonly maxAttempts = 8) {}

  notify(url: string, n: Notification): void {
    if (this.delivered.has(`${url} ${n.id}`)) return;
    void this.attempt(url, n, 0);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
  }

  private async attempt(url: string, n: Notification, attempt: number): Promise<void> {
    if (this.closed) return;
    try {
      const res = await fetch(url, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-berth-notification-id': n.id },
        body: JSON.stringify(n), signal: AbortSignal.timeout(5000),
      });
      if (res.ok) {
        this.delivered.add(`${url} ${n.id}`);
        return;
      }
      throw new Error(`HTTP ${res.status}`);
    } catch (err) {
      if (attempt + 1 >= this.maxAttempts) {
        this.logger.error({ url, notification: n.id, err: String(err) }, 'alert notification failed; giving up');
        return;
      }
      const delay = backoffMs(attempt, 1000, 30_000);
      this.logger.warn({ url, notification: n.id, err: String(err), retryInMs: delay }, 'alert notification failed; will retry');
      const t = setTimeout(() => {
        this.timers.delete(t);
        void this.attempt(url, n, attempt + 1);
      }, delay);
      t.unref();
      this.timers.add(t);
    }
  }
}
