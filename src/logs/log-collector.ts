import type { Clock, EngineContainers, EngineTelemetry, Logger, LogLine } from '../core/ports.ts';
import { dockerSince, parseTimeNs, type IngestLine, type LogBatch, type LogCheckpoint, type LogFilter, type LogSource, type LogStore,
  type RetentionLimits, type StoredLine } from './log-store.ts';

/** A container whose output the collector keeps. */
export interface CollectedContainer extends LogSource {
  /**
   * false: the container has ended; it is read once to its end and not again. true or absent:
   * followed, and reopened on the next sync if its stream ended (a restarted container).
   */
  running?: boolean;
}

export interface LogCollectorOptions {
  engine: EngineContainers & EngineTelemetry;
  store: LogStore;
  /** The managed containers whose logs are kept (re-read on every sync). */
  listContainers: () => Promise<CollectedContainer[]>;
  logger: Logger;
  clock: Clock;
  /** Buffered lines are written at least this often (default 100 ms)… */
  flushIntervalMs?: number;
  /** …or as soon as this many are buffered (default 5000). */
  maxBatchLines?: number;
  /** How long a container that left the list may keep streaming before its stream is cut (default 2000 ms). */
  drainMs?: number;
  /** Retention applied every `intervalMs` (default 30 s); none when absent. */
  retention?: RetentionLimits & { intervalMs?: number };
}

interface Stream {
  source: LogSource;
  /** Where reading resumes: lines before tsNs, and the first countAtTs at tsNs, are already stored. */
  resume?: LogCheckpoint;
  skipAtResume: number;
  /** Checkpoint after the last buffered line. */
  cp?: LogCheckpoint;
  buffer: IngestLine[];
  abort?: AbortController;
  running?: Promise<void>;
  /** The last read reached the end of the container's log (it ended). */
  ended: boolean;
  leaving: boolean;
}

/**
 * Follows stdout/stderr of every managed container into the LogStore, exactly once across restarts:
 * each batch of lines is stored in one transaction with the container's checkpoint (last timestamp
 * and how many lines carried exactly that timestamp), and reading resumes from Docker's `since` at
 * that timestamp, skipping the lines already counted.
 */
export class LogCollector {
  private readonly engine: EngineContainers & EngineTelemetry;
  private readonly store: LogStore;
  private readonly listContainers: () => Promise<CollectedContainer[]>;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly flushIntervalMs: number;
  private readonly maxBatchLines: number;
  private readonly drainMs: number;
  private readonly retention?: RetentionLimits & { intervalMs?: number };
  private readonly streams = new Map<string, Stream>();
  private readonly pending = new Set<Promise<unknown>>();
  private flushTimer?: NodeJS.Timeout;
  private retentionTimer?: NodeJS.Timeout;
  private buffered = 0;
  private syncing?: Promise<void>;
  private resyncWanted = false;
  private closed = false;

  constructor(opts: LogCollectorOptions) {
    this.engine = opts.engine;
    this.store = opts.store;
    this.listContainers = opts.listContainers;
    this.log = opts.logger.child({ component: 'log-collector' });
    this.clock = opts.clock;
    this.flushIntervalMs = opts.flushIntervalMs ?? 100;
    this.maxBatchLines = opts.maxBatchLines ?? 5000;
    this.drainMs = opts.drainMs ?? 2000;
    if (opts.retention) this.retention = opts.retention;
    this.flushTimer = setInterval(() => this.flushSafe(), this.flushIntervalMs);
    this.flushTimer.unref();
    if (this.retention) {
      const limits = { ...this.retention };
      // The store seals partitions against the size bound as lines arrive, before the first round.
      this.store.setRetention(limits);
      this.retentionTimer = setInterval(() => {
        this.track(this.store.enforce(limits).catch((err: unknown) => this.log.error({ err }, 'log retention failed')));
      }, this.retention.intervalMs ?? 30_000);
      this.retentionTimer.unref();
    }
  }

  /**
   * Re-reads the container list: starts streams for new containers (and for ended ones that run
   * again), reads ended containers to their end, and lets containers that left the list drain
   * before their stream is cut. Concurrent calls coalesce.
   */
  sync(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.syncing) {
      this.resyncWanted = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      try {
        do {
          this.resyncWanted = false;
          await this.syncOnce();
        } while (this.resyncWanted && !this.closed);
      } finally {
        this.syncing = undefined;
      }
    })();
    return this.syncing;
  }

  /** Live lines matching the filter as they are stored (all replicas merged). Returns an unsubscribe function. */
  tail(filter: LogFilter, onLine: (l: StoredLine) => void): () => void {
    return this.store.subscribe(filter, onLine);
  }

  /** Writes what is buffered now. */
  flush(): void {
    if (this.buffered === 0) return;
    const batches: LogBatch[] = [];
    const taken: Stream[] = [];
    for (const s of this.streams.values()) {
      if (s.buffer.length === 0) continue;
      const b: LogBatch = { source: s.source, lines: s.buffer };
      if (s.cp) b.checkpoint = { ...s.cp };
      batches.push(b);
      taken.push(s);
    }
    // Buffers are cleared only once stored: a failed write is retried with the next flush.
    this.store.append(batches);
    for (const s of taken) s.buffer = [];
    this.buffered = 0;
  }

  /** Stops every stream, writes what is buffered and stops the timers. The store stays open (its owner closes it). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    for (const s of this.streams.values()) s.abort?.abort();
    await Promise.allSettled([...this.streams.values()].map((s) => s.running));
    await Promise.allSettled([...this.pending]);
    this.flush();
  }

  /** Containers currently streamed (for status and tests). */
  get active(): string[] {
    return [...this.streams.entries()].filter(([, s]) => s.running).map(([id]) => id);
  }

  // ---- internals

  private async syncOnce(): Promise<void> {
    let list: CollectedContainer[];
    try {
      list = await this.listContainers();
    } catch (err) {
      this.log.warn({ err }, 'cannot list containers for log collection; keeping current streams');
      return;
    }
    if (this.closed) return;
    const seen = new Set<string>();
    for (const c of list) {
      seen.add(c.containerId);
      let s = this.streams.get(c.containerId);
      if (!s) {
        const resume = this.store.checkpoint(c.containerId);
        s = { source: sourceOf(c), skipAtResume: 0, buffer: [], ended: false, leaving: false };
        if (resume) {
          s.resume = resume;
          s.cp = { ...resume };
        }
        this.streams.set(c.containerId, s);
      }
      s.leaving = false;
      if (s.running) continue;
      if (s.ended && c.running === false) continue;
      this.start(c.containerId, s, c.running !== false);
    }
    for (const [id, s] of this.streams) {
      if (seen.has(id) || s.leaving) continue;
      s.leaving = true;
      this.track(this.retire(id, s));
    }
  }

  private start(id: string, s: Stream, follow: boolean): void {
    // Resume from what is stored: Docker's since is inclusive, so lines at the checkpoint's exact
    // timestamp come again and the first countAtTs of them are skipped.
    const resume = s.cp;
    s.resume = resume ? { ...resume } : undefined;
    s.skipAtResume = resume?.countAtTs ?? 0;
    s.ended = false;
    const abort = new AbortController();
    s.abort = abort;
    const opts: Parameters<EngineTelemetry['logs']>[1] = { follow, signal: abort.signal };
    if (resume) opts.since = dockerSince(resume.tsNs);
    this.log.debug({ container: id, follow, since: opts.since }, 'log stream start');
    // A followed stream that ends by itself means the container stopped; the engine may end it before
    // the last lines the container wrote (seen with Docker 20.10 under load: a 60,000-line burst ended
    // at line 13,131). One more read without follow, from the checkpoint, takes the rest (exactly once:
    // it resumes like any other read).
    let catchUp = false;
    const run = this.engine.logs(id, opts, (l) => this.onLine(s, l))
      .then(() => {
        if (abort.signal.aborted) return;
        if (follow) catchUp = true;
        else s.ended = true;
      })
      .catch((err: unknown) => {
        this.log.warn({ err, container: id }, 'log stream failed; it resumes on the next sync');
      })
      .finally(() => {
        if (s.running === run) s.running = undefined;
        s.abort = undefined;
        this.flushSafe();
        if (catchUp && !this.closed && !s.leaving && !s.running) this.start(id, s, false);
      });
    s.running = run;
  }

  private onLine(s: Stream, l: LogLine): void {
    const ts = parseTimeNs(l.time);
    // Without a timestamp (never with timestamps=true) the line is kept at the last known instant.
    const tsNs = ts ?? s.cp?.tsNs ?? BigInt(Math.floor(this.clock.now())) * 1_000_000n;
    const r = s.resume;
    if (r) {
      if (tsNs < r.tsNs) return;
      if (tsNs === r.tsNs && s.skipAtResume > 0) {
        s.skipAtResume--;
        return;
      }
    }
    s.buffer.push({ tsNs, stream: l.stream, text: l.text });
    if (!s.cp || tsNs > s.cp.tsNs) s.cp = { tsNs, countAtTs: 1 };
    else if (tsNs === s.cp.tsNs) s.cp.countAtTs++;
    // A line older than the checkpoint (stdout and stderr are stamped by separate copiers) is stored
    // but does not move the checkpoint.
    if (++this.buffered >= this.maxBatchLines) this.flushSafe();
  }

  /** A container left the list: let its stream end by itself for a while, then cut it and forget it. */
  private async retire(id: string, s: Stream): Promise<void> {
    if (s.running) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([s.running, new Promise<void>((r) => (timer = setTimeout(r, this.drainMs)))]);
      if (timer) clearTimeout(timer);
      if (!s.leaving) return;
      s.abort?.abort();
      await s.running;
    }
    if (!s.leaving || this.closed) return;
    this.flushSafe();
    this.streams.delete(id);
    try {
      // The checkpoint is only dropped once the engine no longer knows the container: if it comes
      // back to the list, reading resumes where it stopped.
      if (!(await this.engine.inspect(id))) this.store.forget(id);
    } catch (err) {
      this.log.debug({ err, container: id }, 'inspect after log stream end failed');
    }
  }

  private flushSafe(): void {
    try {
      this.flush();
    } catch (err) {
      // The lines stay buffered (and the checkpoint unmoved); the next flush tries again.
      this.log.error({ err }, 'storing log lines failed');
    }
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }
}

function sourceOf(c: CollectedContainer): LogSource {
  return { containerId: c.containerId, app: c.app, env: c.env, service: c.service, instance: c.instance };
}
