/**
 * One run of `fn` for every request made in the same turn of the event loop. Used for work that
 * reads a whole table (the route table from every instance, the health monitor's instance set): a
 * burst of reconcile rounds at scale asks for it hundreds of times in a few milliseconds, and each
 * answer would only be replaced by the next.
 */
export class Coalesced {
  private next: Promise<void> | undefined;
  private lastRunAt = -Infinity;

  /**
   * `leading`: the first request after a quiet spell (no run for `leading.quietMs`) runs in a
   * microtask — after the caller's synchronous code, so its sibling requests still share the run, but
   * before the event loop takes other I/O (a health flip's routes: 1-13 ms sooner under load). A
   * request soon after a run waits for the next turn as before, so a burst costs two runs, not one each.
   */
  constructor(private readonly fn: () => void, private readonly leading?: { quietMs: number }) {}

  /**
   * Asks for a run. Resolves once a run that started after this call has finished (rejects if it
   * threw); requests made before that run starts share it.
   */
  request(): Promise<void> {
    this.next ??= new Promise<void>((resolve, reject) => {
      const run = () => {
        this.next = undefined;
        try {
          this.fn();
          resolve();
        } catch (err) {
          reject(err);
        } finally {
          this.lastRunAt = performance.now();
        }
      };
      if (this.leading && performance.now() - this.lastRunAt >= this.leading.quietMs) queueMicrotask(run);
      else setImmediate(run);
    });
    return this.next;
  }

  /** Asks for a run and does not wait for it; a failure is given to `onError`. */
  schedule(onError: (err: unknown) => void): void {
    this.request().catch(onError);
  }
}
