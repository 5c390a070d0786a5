import type { Logger } from '../core/ports.ts';
import { WorkQueue, type Result } from './work-queue.ts';

/**
 * A controller as the manager sees it: the keys it owns, typed (`K`), how they are written on the
 * work queue (`deploy/ID`, `svc/APP/ENV/SERVICE`, ...) and read back, and one level-driven round.
 */
export interface Controller<K> {
  /** For logs and errors: `services`, `deployments`, `purges`. */
  readonly name: string;
  key(k: K): string;
  /** The typed key of a queue key this controller owns, else undefined. */
  parse(key: string): K | undefined;
  reconcile(k: K): Promise<Result>;
}

/** A typed enqueue: `wake(k)` queues controller K's key (deduplicated, serialised per key). */
export type Wake<K> = (k: K) => void;

type Listener<A extends unknown[]> = (...args: A) => void;

/**
 * Owns who wakes whom: controllers register here and get a typed `wake`; signals (a release
 * finished, a health flip, an engine event, a deployment's round) are typed events that the
 * composition root connects once, in one place, instead of closures threaded through every
 * constructor. One work queue runs every controller's keys.
 */
export class ControllerManager<Events extends { [name: string]: unknown[] }> {
  private readonly controllers: Controller<unknown>[] = [];
  private readonly listeners = new Map<keyof Events, Set<Listener<never[]>>>();
  private readonly rounds = new Map<string, Set<(k: unknown) => void>>();
  readonly queue: WorkQueue;

  constructor(logger: Logger, concurrency: number) {
    this.queue = new WorkQueue((key) => this.dispatch(key), logger, concurrency);
  }

  /** Registers a controller; the returned function wakes one of its keys. */
  register<K>(c: Controller<K>): Wake<K> {
    if (this.controllers.some((x) => x.name === c.name)) throw new Error(`controller ${c.name} is registered twice`);
    this.controllers.push(c as Controller<unknown>);
    return (k) => this.queue.add(c.key(k));
  }

  /** Called after every round of one of `c`'s keys (also a failed one): the record it works on may have changed. */
  afterRound<K>(c: Controller<K>, fn: (k: K) => void): () => void {
    let set = this.rounds.get(c.name);
    if (!set) this.rounds.set(c.name, (set = new Set()));
    const f = fn as (k: unknown) => void;
    set.add(f);
    return () => set.delete(f);
  }

  on<E extends keyof Events>(event: E, fn: Listener<Events[E]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const f = fn as unknown as Listener<never[]>;
    set.add(f);
    return () => set.delete(f);
  }

  emit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    for (const fn of this.listeners.get(event) ?? []) (fn as unknown as Listener<Events[E]>)(...args);
  }

  /** Resolves when no key is queued or running. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  stop(): void {
    this.queue.stop();
  }

  private async dispatch(key: string): Promise<Result> {
    for (const c of this.controllers) {
      const k = c.parse(key);
      if (k === undefined) continue;
      try {
        return await c.reconcile(k);
      } finally {
        for (const fn of this.rounds.get(c.name) ?? []) fn(k);
      }
    }
    return undefined;
  }
}
