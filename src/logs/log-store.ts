import Database from 'better-sqlite3';
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { setImmediate as yieldTurn } from 'node:timers/promises';
import { InvalidInput } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import { systemClock } from '../core/ports.ts';
import { makeSqlitePrivate } from '../lib/private-file.ts';

/** Severity parsed from a line; pino/bunyan numbers map onto these. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

const LEVEL_CODE: Record<LogLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const CODE_LEVEL = new Map<number, LogLevel>(Object.entries(LEVEL_CODE).map(([k, v]) => [v, k as LogLevel]));

/** Which container a line came from and what it runs. */
export interface LogSource {
  containerId: string;
  app: string;
  env: string;
  service: string;
  instance: string;
}

/** One line as the collector hands it over: the engine's timestamp in nanoseconds since the epoch. */
export interface IngestLine {
  tsNs: bigint;
  stream: 'stdout' | 'stderr';
  text: string;
}

/**
 * How far a container's log has been taken: every line before `tsNs`, and the first `countAtTs`
 * lines stamped exactly `tsNs` (the engine's timestamps are not unique).
 */
export interface LogCheckpoint {
  tsNs: bigint;
  countAtTs: number;
}

export interface LogBatch {
  source: LogSource;
  lines: readonly IngestLine[];
  /** Written in the same transaction as the lines: after a crash, lines and checkpoint agree. */
  checkpoint?: LogCheckpoint;
}

/** A stored line as search and tail return it. */
export interface StoredLine extends LogSource {
  /** Unique key (nanosecond timestamp, as a decimal string); also the pagination cursor. */
  id: string;
  /** RFC3339 with nanoseconds. */
  time: string;
  /** Milliseconds since the epoch. */
  ts: number;
  stream: 'stdout' | 'stderr';
  level: LogLevel | null;
  text: string;
}

export interface LogFilter {
  app?: string;
  env?: string;
  service?: string;
  instance?: string;
  containerId?: string;
  stream?: 'stdout' | 'stderr';
  /** One level or any of several. Lines without a level never match. */
  level?: LogLevel | LogLevel[];
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  /**
   * Words that must all occur (case-insensitive, whole words: `err*` for a prefix); a "quoted phrase"
   * must occur as written. Punctuated words (`req=abc`, `/api/v1`) match as substrings.
   */
  text?: string;
}

export interface LogQuery extends LogFilter {
  /** Page size (default 100, at most 10,000). */
  limit?: number;
  /** Cursor: return lines older than this id (the `next` of the previous page). */
  before?: string;
}

export interface LogPage {
  lines: StoredLine[];
  /** Pass as `before` for the next (older) page; absent on the last page. */
  next?: string;
}

export interface RetentionLimits {
  /** Lines older than this go (at partition granularity, see `enforce`). */
  maxAgeMs?: number;
  /** Bound on the database file plus its WAL, in bytes. */
  maxBytes?: number;
}

export interface LogStoreOptions {
  clock?: Clock;
  /** A partition is sealed after this many lines even without retention limits (default 2,000,000). */
  partitionMaxLines?: number;
}

export interface LogStoreStats {
  lines: number;
  bytes: number;
  partitions: number;
  /** Epoch ms of the oldest and newest stored line (undefined when empty). */
  oldest?: number;
  newest?: number;
}

interface Part {
  id: number;
  minTs: bigint | null;
  maxTs: bigint | null;
  lines: number;
  createdMs: number;
  /** Estimated bytes on disk (lines and index), for sealing at insert time; see `lineBytes`. */
  estBytes: number;
}

/**
 * A line's estimated share of the file: its text plus a fixed row overhead, doubled for the index
 * and page slack. Measured (50,000 lines each) at 1.2–1.75× text+16 for short, padded, worded, JSON
 * and 60-word lines, 1.8× for the logs bench's 10,000,000: an overestimate, so a partition seals a
 * little early rather than late.
 */
const lineBytes = (text: string): number => (text.length + 16) * 2;

/** Partitions are sealed at a tenth of the size bound, but never below this (a tiny bound must not mean a partition per line). */
const MIN_SEAL_BYTES = 64 * 1024;

type Stmt = Database.Statement;

const NS_PER_MS = 1_000_000n;
/** Keys are SQLite integers (signed 64-bit): bounds beyond them are clamped, never passed on. */
const MAX_KEY = 9223372036854775807n;

/** A millisecond bound as a key bound, clamped to [0, MAX_KEY] (a year-275760 `until` overflows int64 nanoseconds). */
function nsOfMs(ms: number, name: string, round: (x: number) => number): bigint {
  if (!Number.isFinite(ms)) throw new InvalidInput(`${name}: ${ms} is not a time`);
  const ns = BigInt(round(ms)) * NS_PER_MS;
  return ns < 0n ? 0n : ns > MAX_KEY ? MAX_KEY : ns;
}
/** Lines deleted per transaction by purgeApp: bounds how long one step holds the event loop. */
const PURGE_BATCH = 5000;

/** Pages moved per incremental_vacuum step (4 KiB each): bounds how long one step holds the event loop. */
const VACUUM_STEP_PAGES = 4096;

/**
 * The log store: its own SQLite database (WAL), separate from the desired-state store so that heavy
 * log traffic never contends with it.
 *
 * Lines live in time partitions: `lines_N` (key = nanosecond timestamp, made unique by bumping a
 * colliding key by 1 ns) with an external-content FTS5 index `fts_N` (detail=none, no column sizes:
 * the smallest index that still answers word and prefix queries; phrases are checked against the
 * text). Retention drops whole partitions: with FTS5, deleting rows only adds tombstones and the
 * index would not shrink, whereas DROP TABLE frees every page at once; so that dropping a whole
 * partition never takes the newest lines, `append` seals a partition at a tenth of the size bound
 * (mid-batch if need be) and retention never drops the partition holding the newest line. Search walks partitions from
 * the newest and stops as soon as the page is full, so a newest-first query touches one or two.
 */
export class LogStore {
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly partitionMaxLines: number;
  private readonly sources = new Map<string, number>();
  private readonly sourceById = new Map<number, LogSource>();
  private readonly stmtCache = new Map<string, Stmt>();
  private readonly subscribers = new Set<{ filter: LogFilter; onLine: (l: StoredLine) => void }>();
  private parts: Part[] = [];
  private current!: Part;
  private insertLine!: Stmt;
  private insertFts!: Stmt;
  private readonly putCheckpoint: Stmt;
  private readonly getCheckpointStmt: Stmt;
  private readonly updatePart: Stmt;
  private readonly insertSource: Stmt;
  private closed = false;
  private enforcing = false;
  /** Estimated bytes at which the current partition is sealed, from the size bound (none: no bound known). */
  private sealBytes = Number.POSITIVE_INFINITY;

  constructor(readonly path: string, opts: LogStoreOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.partitionMaxLines = opts.partitionMaxLines ?? 2_000_000;
    mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    makeSqlitePrivate(path);
    // auto_vacuum must be chosen before the first table exists; it lets retention give pages back.
    this.db.pragma('auto_vacuum = INCREMENTAL');
    this.db.pragma('journal_mode = WAL');
    // NORMAL is enough: lines and checkpoints commit together, so a power cut loses both or neither
    // and the lost lines are read again from the engine.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('cache_size = -32768');
    this.db.pragma('journal_size_limit = 67108864');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS sources (id INTEGER PRIMARY KEY, container TEXT NOT NULL UNIQUE,
        app TEXT NOT NULL, env TEXT NOT NULL, service TEXT NOT NULL, instance TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS checkpoints (container TEXT PRIMARY KEY, ts_ns INTEGER NOT NULL,
        count_at_ts INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS parts (id INTEGER PRIMARY KEY, min_ts INTEGER, max_ts INTEGER,
        lines INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);
    `);
    this.putCheckpoint = this.db.prepare(`INSERT INTO checkpoints (container, ts_ns, count_at_ts, updated_ms) VALUES (?, ?, ?, ?)
      ON CONFLICT(container) DO UPDATE SET ts_ns = excluded.ts_ns, count_at_ts = excluded.count_at_ts, updated_ms = excluded.updated_ms`);
    this.getCheckpointStmt = this.db.prepare('SELECT ts_ns, count_at_ts FROM checkpoints WHERE container = ?').safeIntegers(true);
    this.updatePart = this.db.prepare('UPDATE parts SET min_ts = ?, max_ts = ?, lines = ? WHERE id = ?');
    this.insertSource = this.db.prepare('INSERT INTO sources (container, app, env, service, instance) VALUES (?, ?, ?, ?, ?)');
    for (const r of this.db.prepare('SELECT * FROM sources').all() as { id: number; container: string; app: string; env: string; service: string; instance: string }[]) {
      this.sources.set(r.container, r.id);
      this.sourceById.set(r.id, { containerId: r.container, app: r.app, env: r.env, service: r.service, instance: r.instance });
    }
    const rows = this.db.prepare('SELECT id, min_ts, max_ts, lines, created_ms FROM parts ORDER BY id').safeIntegers(true).all() as
      { id: bigint; min_ts: bigint | null; max_ts: bigint | null; lines: bigint; created_ms: bigint }[];
    this.parts = rows.map((r) => ({ id: Number(r.id), minTs: r.min_ts, maxTs: r.max_ts, lines: Number(r.lines), createdMs: Number(r.created_ms), estBytes: 0 }));
    // Reopened partitions: their share of the file, by line count.
    const total = this.totalLines();
    const perLine = total > 0 ? this.usedBytes() / total : 0;
    for (const p of this.parts) p.estBytes = p.lines * perLine;
    const last = this.parts.at(-1);
    if (last) this.useCurrent(last);
    else this.newPartition();
  }

  /**
   * Stores lines and checkpoints; each call is one transaction. Returns how many lines were stored.
   * A partition that reaches its share of the size bound (`setRetention`) or `partitionMaxLines` is
   * sealed between two lines, inside the same transaction, and the rest go to a new one: a burst
   * that outruns retention fills several partitions, so retention can drop its oldest part and keep
   * its newest.
   */
  append(batches: LogBatch | readonly LogBatch[]): number {
    const list = Array.isArray(batches) ? (batches as readonly LogBatch[]) : [batches as LogBatch];
    if (this.current.lines >= this.partitionMaxLines || this.current.estBytes >= this.sealBytes) this.newPartition();
    const stored: { key: bigint; src: number; stream: number; level: number | null; text: string }[] | undefined =
      this.subscribers.size ? [] : undefined;
    const now = this.clock.now();
    // What the transaction does to partitions is applied in memory only once it has committed.
    interface Fill { part: Part; minTs: bigint | null; maxTs: bigint | null; lines: number; estBytes: number; added: number }
    const fill = (part: Part): Fill => ({ part, minTs: part.minTs, maxTs: part.maxTs, lines: part.lines, estBytes: part.estBytes, added: 0 });
    const fills: Fill[] = [];
    let f = fill(this.current);
    let insertLine = this.insertLine;
    let insertFts = this.insertFts;
    let n = 0;
    this.db.transaction(() => {
      // FTS5 flushes its pending terms whenever a rowid is not above the previous one: lines of
      // several containers go in merged by time, or every container switch would cost a flush.
      const rows: { l: IngestLine; src: number }[] = [];
      for (const b of list) {
        const src = this.sourceId(b.source);
        for (const l of b.lines) rows.push({ l, src });
      }
      if (list.length > 1) rows.sort((a, b) => (a.l.tsNs < b.l.tsNs ? -1 : a.l.tsNs > b.l.tsNs ? 1 : 0));
      let lastKey: bigint | undefined;
      for (const { l, src } of rows) {
        // Seal between two lines, never inside a run of equal timestamps: its keys are made unique
        // within one partition only.
        if ((f.lines >= this.partitionMaxLines || f.estBytes >= this.sealBytes) && lastKey !== undefined && l.tsNs > lastKey) {
          if (f.added > 0) this.updatePart.run(f.minTs, f.maxTs, f.lines, f.part.id);
          fills.push(f);
          f = fill(this.createPartition(now));
          [insertLine, insertFts] = this.insertStatements(f.part.id);
        }
        const stream = l.stream === 'stderr' ? 1 : 0;
        const level = detectLevel(l.text);
        const code = level ? LEVEL_CODE[level] : null;
        let key = l.tsNs;
        // Keys are timestamps made unique: a collision (two lines in the same nanosecond) moves on by 1 ns.
        while (insertLine.run(key, src, stream, code, String(l.text)).changes === 0) key++;
        insertFts.run(key, l.text);
        if (f.minTs === null || key < f.minTs) f.minTs = key;
        if (f.maxTs === null || key > f.maxTs) f.maxTs = key;
        f.lines++;
        f.added++;
        f.estBytes += lineBytes(l.text);
        lastKey = key;
        stored?.push({ key, src, stream, level: code, text: l.text });
        n++;
      }
      for (const b of list) {
        if (b.checkpoint) this.putCheckpoint.run(b.source.containerId, b.checkpoint.tsNs, b.checkpoint.countAtTs, now);
      }
      if (f.added > 0) this.updatePart.run(f.minTs, f.maxTs, f.lines, f.part.id);
      fills.push(f);
    })();
    for (const x of fills) {
      x.part.minTs = x.minTs;
      x.part.maxTs = x.maxTs;
      x.part.lines = x.lines;
      x.part.estBytes = x.estBytes;
      if (!this.parts.includes(x.part)) this.parts.push(x.part);
    }
    if (f.part !== this.current) {
      this.current = f.part;
      this.insertLine = insertLine;
      this.insertFts = insertFts;
    }
    if (stored) {
      for (const r of stored) {
        const line = this.toStored(r.key, r.src, r.stream, r.level, r.text);
        for (const s of this.subscribers) {
          if (matchesFilter(line, s.filter)) {
            try {
              s.onLine(line);
            } catch {
              // A subscriber's failure is its own business; the store keeps serving the others.
            }
          }
        }
      }
    }
    return n;
  }

  /** The checkpoint stored for a container, if any. */
  checkpoint(containerId: string): LogCheckpoint | undefined {
    const r = this.getCheckpointStmt.get(containerId) as { ts_ns: bigint; count_at_ts: bigint } | undefined;
    return r ? { tsNs: r.ts_ns, countAtTs: Number(r.count_at_ts) } : undefined;
  }

  /** Drops a container's checkpoint (its container is gone for good: the engine no longer knows it). */
  forget(containerId: string): void {
    this.db.prepare('DELETE FROM checkpoints WHERE container = ?').run(containerId);
  }

  /** Lines matching the filter, newest first, one page at a time. */
  search(q: LogQuery): LogPage {
    const limit = Math.max(1, Math.min(10_000, Math.floor(q.limit ?? 100)));
    let upper: bigint | undefined = q.until !== undefined ? nsOfMs(q.until, 'until', Math.floor) : undefined;
    if (q.before !== undefined) {
      const b = /^\d{1,19}$/.test(q.before) ? BigInt(q.before) : undefined;
      if (b === undefined || b > MAX_KEY) throw new InvalidInput(`before: ${JSON.stringify(q.before.slice(0, 40))} is not a log cursor: pass the "next" of a previous page`);
      if (upper === undefined || b < upper) upper = b;
    }
    const lower: bigint | undefined = q.since !== undefined ? nsOfMs(q.since, 'since', Math.ceil) : undefined;
    const srcIds = this.matchingSources(q);
    if (srcIds && srcIds.length === 0) return { lines: [] };
    const text = q.text !== undefined ? compileText(q.text) : undefined;
    if (text && text.empty) return { lines: [] };

    const where: string[] = [];
    const params: (string | number | bigint)[] = [];
    if (text?.match) {
      where.push('{F} MATCH ?');
      params.push(text.match);
    }
    const keyCol = text?.match ? '{F}.rowid' : 'l.ts_ns';
    if (upper !== undefined) {
      where.push(`${keyCol} < ?`);
      params.push(upper);
    }
    if (lower !== undefined) {
      where.push(`${keyCol} >= ?`);
      params.push(lower);
    }
    if (srcIds) where.push(srcIds.length === 1 ? `l.src = ${srcIds[0]}` : `l.src IN (${srcIds.join(',')})`);
    if (q.stream) where.push(`l.stream = ${q.stream === 'stderr' ? 1 : 0}`);
    if (q.level !== undefined) {
      const codes = (Array.isArray(q.level) ? q.level : [q.level]).map((lv) => LEVEL_CODE[lv]).filter((c) => c !== undefined);
      if (codes.length === 0) return { lines: [] };
      where.push(codes.length === 1 ? `l.level = ${codes[0]}` : `l.level IN (${codes.join(',')})`);
    }
    for (const like of text?.likes ?? []) {
      where.push(`l.text LIKE ? ESCAPE '\\'`);
      params.push(like);
    }
    const whereSql = where.length ? `WHERE ${where.join(' AND ')}` : '';

    const out: { key: bigint; src: number; stream: number; level: number | null; text: string }[] = [];
    const parts = this.parts
      .filter((p) => p.lines > 0 && p.maxTs !== null && p.minTs !== null &&
        (upper === undefined || p.minTs < upper) && (lower === undefined || p.maxTs >= lower))
      .sort((a, b) => (a.maxTs! > b.maxTs! ? -1 : a.maxTs! < b.maxTs! ? 1 : 0));
    for (const p of parts) {
      // Partitions are visited newest first; once the page is full, one whose newest line is older
      // than the page's oldest cannot contribute.
      if (out.length >= limit && p.maxTs! < out[out.length - 1]!.key) break;
      // FTS5 wants its table's own name on the left of MATCH (an alias is taken for a column).
      const from = text?.match ? `fts_${p.id} JOIN lines_${p.id} l ON l.ts_ns = fts_${p.id}.rowid` : `lines_${p.id} l`;
      const sql = `SELECT l.ts_ns AS key, l.src, l.stream, l.level, l.text FROM ${from} ${whereSql} ORDER BY ${keyCol} DESC LIMIT ${limit}`
        .replaceAll('{F}', `fts_${p.id}`);
      const rows = this.stmt(sql).all(...params) as { key: bigint; src: bigint; stream: bigint; level: bigint | null; text: string }[];
      if (rows.length === 0) continue;
      for (const r of rows) out.push({ key: r.key, src: Number(r.src), stream: Number(r.stream), level: r.level === null ? null : Number(r.level), text: r.text });
      out.sort((a, b) => (a.key > b.key ? -1 : a.key < b.key ? 1 : 0));
      if (out.length > limit) out.length = limit;
    }
    const lines = out.map((r) => this.toStored(r.key, r.src, r.stream, r.level, r.text));
    const page: LogPage = { lines };
    if (lines.length === limit) page.next = lines[lines.length - 1]!.id;
    return page;
  }

  /** Calls `onLine` for every line appended from now on that matches the filter. Returns an unsubscribe function. */
  subscribe(filter: LogFilter, onLine: (l: StoredLine) => void): () => void {
    const s = { filter, onLine };
    this.subscribers.add(s);
    return () => {
      this.subscribers.delete(s);
    };
  }

  /**
   * Applies retention: drops partitions whose newest line is older than `maxAgeMs`, then the oldest
   * partitions while the file (plus WAL) exceeds `maxBytes` — never the one holding the newest line —
   * and gives the freed pages back to the file system in bounded steps, yielding to the event loop
   * between steps. It also seals the current partition once it is older than a tenth of `maxAgeMs`
   * or bigger than a tenth of `maxBytes` (`append` seals by size as lines arrive, `setRetention`), so that retention stays fine-grained: lines may outlive
   * `maxAgeMs` by up to a tenth of it, and the store stays below `maxBytes` plus at most one partition
   * (a tenth of it). Returns how many lines were dropped.
   */
  async enforce(limits: RetentionLimits): Promise<number> {
    if (this.enforcing || this.closed) return 0;
    this.enforcing = true;
    try {
      return await this.enforceOnce(limits);
    } finally {
      this.enforcing = false;
    }
  }

  /**
   * The size bound `append` seals partitions against (a tenth of `maxBytes` each, at least 64 KiB), so
   * that a burst between two `enforce` rounds never leaves all the newest lines in one partition
   * bigger than the bound. `enforce` sets it too; a collector with retention sets it on creation.
   */
  setRetention(limits: RetentionLimits): void {
    this.sealBytes = limits.maxBytes !== undefined ? Math.max(MIN_SEAL_BYTES, limits.maxBytes / 10) : Number.POSITIVE_INFINITY;
  }

  private async enforceOnce(limits: RetentionLimits): Promise<number> {
    this.setRetention(limits);
    const now = this.clock.now();
    let dropped = 0;
    const cur = this.current;
    if (cur.lines > 0) {
      const total = this.totalLines();
      const perLine = total > 0 ? this.usedBytes() / total : 0;
      const tooBig = limits.maxBytes !== undefined && cur.lines * perLine > limits.maxBytes / 10;
      const tooOld = limits.maxAgeMs !== undefined && now - cur.createdMs > limits.maxAgeMs / 10;
      if (tooBig || tooOld) this.newPartition();
    }
    if (limits.maxAgeMs !== undefined) {
      const cutoff = BigInt(Math.floor(now - limits.maxAgeMs)) * NS_PER_MS;
      for (const p of [...this.parts]) {
        if (p === this.current || this.closed) continue;
        if (p.maxTs === null || p.maxTs < cutoff) {
          dropped += this.dropPartition(p);
          await yieldTurn();
        }
      }
    }
    await this.vacuum();
    if (limits.maxBytes !== undefined) {
      while (!this.closed && this.sizeBytes() > limits.maxBytes) {
        // The partition holding the newest line is never dropped for size (nor the current one): the
        // store may exceed the bound by that one partition, whose size `append` keeps to a tenth of it.
        const byAge = this.parts
          .filter((p) => p.lines > 0 && p.maxTs !== null)
          .sort((a, b) => (a.maxTs! < b.maxTs! ? -1 : a.maxTs! > b.maxTs! ? 1 : a.id - b.id));
        const newest = byAge.at(-1);
        const oldest = [...this.parts.filter((p) => p.lines === 0 && p !== this.current), ...byAge]
          .find((p) => p !== this.current && p !== newest);
        if (!oldest) break;
        dropped += this.dropPartition(oldest);
        await yieldTurn();
        await this.vacuum();
      }
    }
    return dropped;
  }

  /** Bytes on disk: database pages (including free ones not yet given back) plus the WAL. */
  sizeBytes(): number {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const size = this.db.pragma('page_size', { simple: true }) as number;
    let wal = 0;
    try {
      wal = statSync(`${this.path}-wal`).size;
    } catch {
      wal = 0;
    }
    return pages * size + wal;
  }

  stats(): LogStoreStats {
    const withLines = this.parts.filter((p) => p.lines > 0 && p.minTs !== null && p.maxTs !== null);
    const s: LogStoreStats = { lines: this.totalLines(), bytes: this.sizeBytes(), partitions: this.parts.length };
    if (withLines.length) {
      s.oldest = Number(withLines.reduce((m, p) => (p.minTs! < m ? p.minTs! : m), withLines[0]!.minTs!) / NS_PER_MS);
      s.newest = Number(withLines.reduce((m, p) => (p.maxTs! > m ? p.maxTs! : m), withLines[0]!.maxTs!) / NS_PER_MS);
    }
    return s;
  }

  /** Starts a new partition for the next appends (retention drops whole partitions). */
  sealPartition(): void {
    if (this.current.lines > 0) this.newPartition();
  }

  /** How many containers of the app have lines stored (cheap: no line is read). */
  appSourceCount(app: string): number {
    let n = 0;
    for (const s of this.sourceById.values()) if (s.app === app) n++;
    return n;
  }

  /**
   * Deletes every line of the app's containers in every partition (their FTS entries with them), then
   * the containers' sources and checkpoints: `berth rm --purge`. Runs in batches, yielding to the
   * event loop between them, with secure_delete on (the freed bytes are overwritten: a line may
   * have printed a secret) and the WAL truncated at the end. Idempotent. Returns the lines deleted.
   */
  async purgeApp(app: string): Promise<number> {
    const ids = [...this.sourceById].filter(([, s]) => s.app === app).map(([id]) => id);
    if (ids.length === 0 || this.closed) return 0;
    const inList = ids.join(',');
    let deleted = 0;
    this.db.pragma('secure_delete = ON');
    try {
      for (const p of [...this.parts]) {
        for (;;) {
          // Retention may have dropped the partition while this yielded.
          if (this.closed || !this.parts.includes(p)) break;
          const n = this.db.transaction(() => {
            const keys = this.db.prepare(`SELECT ts_ns FROM lines_${p.id} WHERE src IN (${inList}) ORDER BY ts_ns LIMIT ${PURGE_BATCH}`).safeIntegers(true).all() as { ts_ns: bigint }[];
            if (keys.length === 0) return 0;
            const last = keys[keys.length - 1]!.ts_ns;
            const first = keys[0]!.ts_ns;
            // External-content FTS5: an entry is deleted by handing back the text it indexed.
            this.db.prepare(`INSERT INTO fts_${p.id}(fts_${p.id}, rowid, text) SELECT 'delete', ts_ns, text FROM lines_${p.id}
              WHERE src IN (${inList}) AND ts_ns BETWEEN ? AND ?`).run(first, last);
            const gone = this.db.prepare(`DELETE FROM lines_${p.id} WHERE src IN (${inList}) AND ts_ns BETWEEN ? AND ?`).run(first, last).changes;
            const before = p.lines;
            p.lines = Math.max(0, p.lines - gone);
            p.estBytes = before > 0 ? p.estBytes * (p.lines / before) : 0;
            this.updatePart.run(p.minTs, p.maxTs, p.lines, p.id);
            return gone;
          })();
          deleted += n;
          if (n === 0) break;
          await yieldTurn();
        }
      }
      if (this.closed) return deleted;
      this.db.transaction(() => {
        for (const id of ids) {
          const s = this.sourceById.get(id);
          if (s) {
            this.db.prepare('DELETE FROM checkpoints WHERE container = ?').run(s.containerId);
            this.sources.delete(s.containerId);
          }
          this.sourceById.delete(id);
        }
        this.db.prepare(`DELETE FROM sources WHERE id IN (${inList})`).run();
      })();
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      if (!this.closed) this.db.pragma('secure_delete = OFF');
    }
    return deleted;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.subscribers.clear();
    this.db.close();
  }

  // ---- internals

  private totalLines(): number {
    return this.parts.reduce((n, p) => n + p.lines, 0);
  }

  private usedBytes(): number {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    return (pages - free) * (this.db.pragma('page_size', { simple: true }) as number);
  }

  private newPartition(): void {
    const p = this.createPartition(this.clock.now());
    this.parts.push(p);
    this.useCurrent(p);
  }

  /** Creates a partition's tables and row (in the caller's transaction, if any); the caller adds it to `parts`. */
  private createPartition(created: number): Part {
    return this.db.transaction(() => {
      const id = Number(this.db.prepare('INSERT INTO parts (created_ms) VALUES (?)').run(created).lastInsertRowid);
      this.db.exec(`
        CREATE TABLE lines_${id} (ts_ns INTEGER PRIMARY KEY, src INTEGER NOT NULL, stream INTEGER NOT NULL, level INTEGER, text TEXT NOT NULL);
        CREATE VIRTUAL TABLE fts_${id} USING fts5(text, content='lines_${id}', content_rowid='ts_ns', detail=none, columnsize=0);
        INSERT INTO fts_${id}(fts_${id}, rank) VALUES ('automerge', 16);
      `);
      return { id, minTs: null, maxTs: null, lines: 0, createdMs: created, estBytes: 0 };
    })();
  }

  private insertStatements(id: number): [Stmt, Stmt] {
    return [
      this.db.prepare(`INSERT OR IGNORE INTO lines_${id} (ts_ns, src, stream, level, text) VALUES (?, ?, ?, ?, ?)`),
      this.db.prepare(`INSERT INTO fts_${id} (rowid, text) VALUES (?, ?)`),
    ];
  }

  private useCurrent(p: Part): void {
    this.current = p;
    [this.insertLine, this.insertFts] = this.insertStatements(p.id);
  }

  private dropPartition(p: Part): number {
    this.db.transaction(() => {
      this.db.exec(`DROP TABLE IF EXISTS fts_${p.id}; DROP TABLE IF EXISTS lines_${p.id};`);
      this.db.prepare('DELETE FROM parts WHERE id = ?').run(p.id);
    })();
    this.parts = this.parts.filter((x) => x !== p);
    for (const k of [...this.stmtCache.keys()]) if (k.includes(`lines_${p.id} `)) this.stmtCache.delete(k);
    return p.lines;
  }

  /** Returns free pages to the file system a few MB at a time, then truncates the WAL. */
  private async vacuum(): Promise<void> {
    while (!this.closed && (this.db.pragma('freelist_count', { simple: true }) as number) > 0) {
      this.db.pragma(`incremental_vacuum(${VACUUM_STEP_PAGES})`);
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      await yieldTurn();
    }
    if (!this.closed) this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  private sourceId(s: LogSource): number {
    const known = this.sources.get(s.containerId);
    if (known !== undefined) return known;
    const id = Number(this.insertSource.run(s.containerId, s.app, s.env, s.service, s.instance).lastInsertRowid);
    this.sources.set(s.containerId, id);
    this.sourceById.set(id, { ...s });
    return id;
  }

  /** Source ids matching the metadata filters; undefined when none is given (no restriction). */
  private matchingSources(f: LogFilter): number[] | undefined {
    if (f.app === undefined && f.env === undefined && f.service === undefined && f.instance === undefined && f.containerId === undefined) {
      return undefined;
    }
    const ids: number[] = [];
    for (const [id, s] of this.sourceById) {
      if ((f.app === undefined || s.app === f.app) && (f.env === undefined || s.env === f.env) &&
        (f.service === undefined || s.service === f.service) && (f.instance === undefined || s.instance === f.instance) &&
        (f.containerId === undefined || s.containerId === f.containerId)) ids.push(id);
    }
    return ids;
  }

  private stmt(sql: string): Stmt {
    let s = this.stmtCache.get(sql);
    if (!s) {
      s = this.db.prepare(sql).safeIntegers(true);
      if (this.stmtCache.size > 500) this.stmtCache.clear();
      this.stmtCache.set(sql, s);
    }
    return s;
  }

  private toStored(key: bigint, src: number, stream: number, level: number | null, text: string): StoredLine {
    const s = this.sourceById.get(src) ?? { containerId: '', app: '', env: '', service: '', instance: '' };
    return {
      id: key.toString(),
      time: formatTimeNs(key),
      ts: Number(key / NS_PER_MS),
      ...s,
      stream: stream === 1 ? 'stderr' : 'stdout',
      level: level === null ? null : (CODE_LEVEL.get(level) ?? null),
      text,
    };
  }
}

// ---- time

const DIGITS = /^\d+$/;
const HEAD = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/;
let lastHead = '';
let lastSeconds = '';

/** Nanoseconds since the epoch of an RFC3339(Nano) timestamp such as Docker's `2024-05-01T10:00:00.123456789Z`. */
export function parseTimeNs(time: string): bigint | undefined {
  // Fast path for Docker's own form (UTC, `Z`): lines of the same second share the date part.
  if (time.length >= 20 && time.charCodeAt(time.length - 1) === 90 /* Z */ && time.charCodeAt(19) === 46 /* . */) {
    const head = time.slice(0, 19);
    const frac = time.slice(20, -1);
    if (frac.length >= 1 && frac.length <= 9 && DIGITS.test(frac)) {
      if (head !== lastHead) {
        const ms = Date.parse(`${head}Z`);
        if (Number.isNaN(ms) || ms < 0 || !HEAD.test(head)) return undefined;
        lastHead = head;
        lastSeconds = String(ms / 1000);
      }
      return BigInt(lastSeconds + frac.padEnd(9, '0'));
    }
  }
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(time);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * NS_PER_MS + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/** RFC3339 with nine fraction digits, UTC. */
export function formatTimeNs(ns: bigint): string {
  const ms = ns / NS_PER_MS;
  const frac = ns % 1_000_000_000n;
  return `${new Date(Number(ms)).toISOString().slice(0, 19)}.${frac.toString().padStart(9, '0')}Z`;
}

/** Docker's `since` parameter (`seconds.nanoseconds`) for a nanosecond timestamp. */
export function dockerSince(ns: bigint): string {
  return `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`;
}

// ---- levels

const LEVEL_WORDS: Record<string, LogLevel> = {
  trace: 'trace', debug: 'debug', dbg: 'debug', info: 'info', information: 'info', notice: 'info',
  warn: 'warn', warning: 'warn', error: 'error', err: 'error', fatal: 'fatal', critical: 'fatal', crit: 'fatal',
  panic: 'fatal', emerg: 'fatal', alert: 'fatal',
};

function levelFromValue(v: unknown): LogLevel | null {
  if (typeof v === 'number' && Number.isFinite(v)) {
    // pino/bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
    if (v >= 60) return 'fatal';
    if (v >= 50) return 'error';
    if (v >= 40) return 'warn';
    if (v >= 30) return 'info';
    if (v >= 20) return 'debug';
    return v >= 10 ? 'trace' : null;
  }
  if (typeof v === 'string') {
    const n = Number(v);
    if (v.trim() !== '' && Number.isFinite(n)) return levelFromValue(n);
    return LEVEL_WORDS[v.trim().toLowerCase()] ?? null;
  }
  return null;
}

const LEADING_LEVEL = /^\s*\[?(TRACE|DEBUG|DBG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL|CRIT|PANIC)(?=[\]:\s|]|$)/i;

/**
 * The level a line carries: a JSON object's `level` (or `lvl`, `severity`; pino/bunyan numbers
 * too), else a leading level word (`ERROR ...`, `[warn] ...`, `info: ...`), else null.
 */
export function detectLevel(text: string): LogLevel | null {
  const c = text.charCodeAt(0);
  if (c === 123 /* { */ && text.charCodeAt(text.length - 1) === 125 /* } */) {
    try {
      const o = JSON.parse(text) as unknown;
      if (o && typeof o === 'object' && !Array.isArray(o)) {
        const r = o as Record<string, unknown>;
        const v = r.level ?? r.lvl ?? r.severity ?? r.loglevel ?? r['log.level'];
        if (v !== undefined) return levelFromValue(v);
      }
    } catch {
      // not JSON after all: fall through to the leading word
    }
  }
  const m = LEADING_LEVEL.exec(text);
  return m ? (LEVEL_WORDS[m[1]!.toLowerCase()] ?? null) : null;
}

// ---- text queries

const TOKEN = /[\p{L}\p{N}\p{Co}]+/gu;

interface CompiledText {
  /** FTS5 expression (tokens ANDed), or undefined when the query has no indexable token. */
  match?: string;
  /** LIKE patterns that must hold as well (phrases and punctuated words). */
  likes: string[];
  empty: boolean;
}

function likePattern(s: string): string {
  return `%${s.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

/**
 * Turns a user's search text into a safe FTS5 expression plus substring checks. FTS5 syntax in the
 * input is never interpreted (no operator injection): every token is quoted.
 */
export function compileText(input: string): CompiledText {
  const terms: string[] = [];
  const likes: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(input); m; m = re.exec(input)) {
    if (m[1] !== undefined) {
      const phrase = m[1].trim();
      if (!phrase) continue;
      const toks = phrase.match(TOKEN) ?? [];
      for (const t of toks) terms.push(`"${t}"`);
      if (toks.length !== 1 || toks[0] !== phrase) likes.push(likePattern(phrase));
      continue;
    }
    let word = m[2]!;
    const prefix = word.length > 1 && word.endsWith('*');
    if (prefix) word = word.slice(0, -1);
    const toks = word.match(TOKEN) ?? [];
    if (toks.length === 0) {
      likes.push(likePattern(word));
      continue;
    }
    toks.forEach((t, i) => terms.push(prefix && i === toks.length - 1 ? `"${t}"*` : `"${t}"`));
    // A punctuated word must occur as written (substring); a plain word is matched by its token.
    if (toks.length > 1 || toks[0] !== word) likes.push(likePattern(word));
  }
  const res: CompiledText = { likes, empty: terms.length === 0 && likes.length === 0 };
  if (terms.length) res.match = [...new Set(terms)].join(' AND ');
  return res;
}

/** Whether a line passes a filter (used for live tail; same meaning as `search`). */
export function matchesFilter(l: StoredLine, f: LogFilter): boolean {
  if (f.app !== undefined && l.app !== f.app) return false;
  if (f.env !== undefined && l.env !== f.env) return false;
  if (f.service !== undefined && l.service !== f.service) return false;
  if (f.instance !== undefined && l.instance !== f.instance) return false;
  if (f.containerId !== undefined && l.containerId !== f.containerId) return false;
  if (f.stream !== undefined && l.stream !== f.stream) return false;
  if (f.level !== undefined) {
    const want = Array.isArray(f.level) ? f.level : [f.level];
    if (l.level === null || !want.includes(l.level)) return false;
  }
  if (f.since !== undefined && l.ts < f.since) return false;
  if (f.until !== undefined && l.ts >= f.until) return false;
  if (f.text !== undefined && f.text.trim() !== '') {
    const lower = l.text.toLowerCase();
    const tokens = new Set((lower.match(TOKEN) ?? []));
    const re = /"([^"]*)"|(\S+)/g;
    for (let m = re.exec(f.text); m; m = re.exec(f.text)) {
      const raw = (m[1] ?? m[2]!).toLowerCase();
      if (m[2] !== undefined && raw.length > 1 && raw.endsWith('*')) {
        const stem = raw.slice(0, -1);
        const toks = stem.match(TOKEN) ?? [];
        const last = toks.at(-1);
        if (toks.length > 1 || (toks[0] ?? '') !== stem) {
          if (!lower.includes(stem)) return false;
        } else if (last && ![...tokens].some((t) => t.startsWith(last))) return false;
        continue;
      }
      const toks = raw.match(TOKEN) ?? [];
      if (toks.length === 1 && toks[0] === raw) {
        if (!tokens.has(raw)) return false;
      } else if (raw && !lower.includes(raw)) return false;
    }
  }
  return true;
}
