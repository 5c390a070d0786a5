/**
 * One run of `fn` for every request made in the same turn of the event loop. Used for work that
 * reads a whole table (the route table from every instance, the health monitor's instance set): a
 * burst of reconcile rounds at scale asks for it hundreds of times in a few milliseconds, and each
 * answer would only be replaced by the next.
 */
export class Coalesced {
  private next: Promise<void> | undefined;

  constructor(private readonly fn: () => void) {}

  /**
   * Asks for a run. Resolves once a run that started after this call has finished (rejects if it
   * threw); requests made before that run starts share it.
   */
  request(): Promise<void> {
    this.next ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.next = undefined;
        try {
          this.fn();
          resolve();
        } catch (err) {
          reject(err);
        }
      });
    });
    return this.next;
  }

  /** Asks for a run and does not wait for it; a failure is given to `onError`. */
  schedule(onError: (err: unknown) => void): void {
    this.request().catch(onError);
  }
}
