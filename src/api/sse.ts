/**
 * Server-sent event streams that wake on store writes (core/store.ts `StoreWatch`), never on a timer:
 * the events stream, a deployment's progress, an app's status, a purge. Each stream re-reads what it
 * shows when a relevant change arrives (coalesced: a burst of writes is one read), so a missed or
 * spurious notification only costs a read, never a wrong answer.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { StoreChange, StoreWatch } from '../core/store.ts';

/** A comment line keeps idle connections (and proxies between) open; it carries no data. */
const KEEPALIVE_MS = 15_000;

export interface SseSink {
  /** One message: `event: NAME`, `data: JSON` (and `id:` when given). */
  send(event: string, data: unknown, id?: number): void;
}

export interface FollowOptions {
  store: StoreWatch;
  /** Whether a change may alter what this stream shows. */
  relevant(c: StoreChange): boolean;
  /**
   * Reads and sends what changed; returns true when the stream is complete (the server then ends the
   * response). Called once at the start (after subscribing, so nothing written in between is missed)
   * and after every relevant change.
   */
  wake(sink: SseSink): boolean;
  /** Also wake after this long without a change (a stream that waits for a deadline of its own); undefined: only on changes. */
  rewakeMs?(): number | undefined;
}

/**
 * Answers with `text/event-stream` and follows: `wake` runs at the start and on each relevant store
 * change until it says the stream is complete or the client goes away. Resolves with the reply once the
 * response has ended.
 */
export async function followSse(req: FastifyRequest, reply: FastifyReply, o: FollowOptions): Promise<FastifyReply> {
  const raw = reply.raw;
  raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  raw.write(': berth stream\n\n');
  const sink: SseSink = {
    send(event, data, id) {
      raw.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
  };
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let ended = false;
  let scheduled = false;
  let rewake: ReturnType<typeof setTimeout> | undefined;
  const run = () => {
    scheduled = false;
    if (ended) return;
    let done: boolean;
    try {
      done = o.wake(sink);
    } catch (err) {
      // The stream already answered 200: say what went wrong in the stream, then end it.
      sink.send('error', { code: 'internal', message: (err as Error).message });
      done = true;
    }
    if (done) return end();
    const ms = o.rewakeMs?.();
    if (rewake) clearTimeout(rewake);
    rewake = ms !== undefined ? setTimeout(schedule, ms) : undefined;
  };
  const schedule = () => {
    if (scheduled || ended) return;
    scheduled = true;
    setImmediate(run);
  };
  const end = () => {
    if (ended) return;
    ended = true;
    unwatch();
    clearInterval(keepalive);
    if (rewake) clearTimeout(rewake);
    raw.end();
    finish();
  };
  const unwatch = o.store.watch((c) => {
    if (o.relevant(c)) schedule();
  });
  const keepalive = setInterval(() => raw.write(': keep-alive\n\n'), KEEPALIVE_MS);
  keepalive.unref();
  raw.on('close', end);
  run();
  await finished;
  return reply;
}
