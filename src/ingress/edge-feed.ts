import { randomBytes } from 'node:crypto';
import type { Clock, IngressRoute } from '../core/ports.ts';
import { isBehind, type EdgeConfig, type EdgeHostState } from '../core/edge.ts';

/**
 * The control plane's side of the edge hosts: the latest edge route table with its generation, the
 * long polls of edge agents waiting for a change, and what each agent last reported. Generations
 * count changes of the table's bytes (a publish of the same table is no change), within an epoch
 * that is new at every start of the control plane.
 */
export class EdgeFeed {
  readonly epoch: string;
  private generation = 0;
  private routes: IngressRoute[] = [];
  private text = '[]';
  private waiters = new Set<() => void>();
  private contacts = new Map<string, Omit<EdgeHostState, 'inSync'>>();
  private closed = false;

  constructor(private readonly clock: Clock, epoch = randomBytes(6).toString('hex')) {
    this.epoch = epoch;
  }

  /** Sets the edge route table; wakes waiting agents when it changed. */
  publish(routes: IngressRoute[]): void {
    const text = JSON.stringify(routes);
    if (text === this.text && this.generation > 0) return;
    this.text = text;
    this.routes = routes;
    this.generation++;
    this.wake();
  }

  current(): EdgeConfig {
    return { epoch: this.epoch, generation: this.generation, routes: this.routes };
  }

  /**
   * The current config once it differs from what the agent has (at once when it already does), or
   * the unchanged one after `timeoutMs`, or when `signal` aborts or the feed closes.
   */
  async wait(have: { epoch?: string; generation?: number }, timeoutMs: number, signal?: AbortSignal): Promise<EdgeConfig> {
    if (this.closed || this.generation === 0 || isBehind(have, this.current())) return this.current();
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
    return this.current();
  }

  /** Records an agent's poll: where from, and which generation its nginx serves (or why not). */
  contact(host: string, r: { address: string; applied?: number; appliedEpoch?: string; error?: string }): void {
    this.contacts.set(host, {
      host, address: r.address, lastContact: this.clock.now(),
      ...(r.applied !== undefined ? { applied: r.applied } : {}),
      ...(r.appliedEpoch !== undefined ? { appliedEpoch: r.appliedEpoch } : {}),
      ...(r.error ? { error: r.error } : {}),
    });
  }

  /** Edge hosts that asked since this control plane started, by name. */
  hosts(): EdgeHostState[] {
    return [...this.contacts.values()]
      .map((c) => ({ ...c, inSync: c.appliedEpoch === this.epoch && c.applied === this.generation }))
      .sort((a, b) => a.host.localeCompare(b.host));
  }

  /** Answers every waiting poll now (the API is closing). */
  close(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
