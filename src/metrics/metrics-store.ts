import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Clock } from '../core/ports.ts';
import type { MetricPointView } from '../core/views.ts';
import { HTTP_KINDS, METRIC_KINDS, type MetricKind, type MetricsQuery, type MetricsQueryPort, type MetricsResult, type SeriesKey } from '../core/metrics.ts';

export { METRIC_KINDS, type MetricKind, type MetricsQuery, type MetricsResult, type SeriesKey };
import { systemClock } from '../core/ports.ts';
import { makeSqlitePrivate } from '../lib/private-file.ts';


export const GAUGE_KINDS: readonly MetricKind[] = ['cpu', 'memory', 'memory_limit'];

/** Upper bounds (seconds) of the latency histogram; a last, implicit bucket is +Inf. */
export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];


/** One contribution to the 10 s bucket containing `ts`; contributions to the same bucket add up. */
export interface PointInput extends SeriesKey {
  ts: number;
  /** Samples (gauges, counters) or requests (`http`). */
  n: number;
  sum: number;
  max: number;
  /** `http` only: requests per status class. */
  status?: { s2xx: number; s3xx: number; s4xx: number; s5xx: number };
  /** `http` only: counts per LATENCY_BUCKETS bucket (length LATENCY_BUCKETS.length + 1). */
  hist?: number[];
}

/** One bucket of a series: core's wire type (core/views.ts), which this store computes. */
export type Point = MetricPointView;


interface Resolution {
  table: string;
  ms: number;
  retentionMs: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** 10 s for a day, 1 min for a week, 1 h for three months. */
export const RESOLUTIONS: readonly Resolution[] = [
  { table: 'points_10s', ms: 10_000, retentionMs: DAY },
  { table: 'points_1m', ms: 60_000, retentionMs: 7 * DAY },
  { table: 'points_1h', ms: HOUR, retentionMs: 90 * DAY },
];

export interface MetricsStoreOptions {
  clock?: Clock;
  /** Rows deleted per statement by prune(); prune stops after maxChunks statements per table. */
  pruneChunk?: number;
  maxChunks?: number;
}

function mergeHist(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  const x = JSON.parse(a) as number[];
  const y = JSON.parse(b) as number[];
  const out = x.length >= y.length ? x : y;
  const other = out === x ? y : x;
  for (let i = 0; i < other.length; i++) out[i] = (out[i] ?? 0) + (other[i] ?? 0);
  return JSON.stringify(out);
}

/** Bucket index of a latency in seconds. */
export function latencyBucket(seconds: number): number {
  const i = LATENCY_BUCKETS.findIndex((b) => seconds <= b);
  return i < 0 ? LATENCY_BUCKETS.length : i;
}

/**
 * Quantile from histogram counts, interpolating linearly inside the bucket like Prometheus'
 * histogram_quantile; the +Inf bucket is bounded by the observed max.
 */
export function histQuantile(q: number, hist: readonly number[], max: number): number | undefined {
  const total = hist.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    const c = hist[i] ?? 0;
    if (c > 0 && seen + c >= rank) {
      const lo = i === 0 ? 0 : LATENCY_BUCKETS[i - 1]!;
      const hi = i < LATENCY_BUCKETS.length ? Math.min(LATENCY_BUCKETS[i]!, Math.max(max, lo)) : Math.max(max, lo);
      return lo + (hi - lo) * ((rank - seen) / c);
    }
    seen += c;
  }
  return max;
}

/**
 * Time series of container stats and per-route HTTP figures in their own SQLite file (WAL), at 10 s
 * resolution rolled up into 1 min and 1 h tables. Size is bounded by retention (24 h / 7 d / 90 d),
 * applied by `prune()` in bounded chunks so it never holds the database for long.
 */
export class MetricsStore implements MetricsQueryPort {
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly pruneChunk: number;
  private readonly maxChunks: number;
  private readonly seriesIds = new Map<string, number>();

  constructor(readonly path: string, opts: MetricsStoreOptions = {}) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    makeSqlitePrivate(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.clock = opts.clock ?? systemClock;
    this.pruneChunk = opts.pruneChunk ?? 5000;
    this.maxChunks = opts.maxChunks ?? 20;
    this.db.function('hist_merge', { deterministic: true }, (a: unknown, b: unknown) => mergeHist(a as string | null, b as string | null));
    this.db.aggregate('hist_sum', {
      start: null as string | null,
      step: (acc: string | null, h: unknown) => mergeHist(acc, h as string | null),
    });
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS series (
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, app TEXT NOT NULL, env TEXT NOT NULL, service TEXT NOT NULL, target TEXT NOT NULL,
        UNIQUE (kind, app, env, service, target));
    `);
    for (const r of RESOLUTIONS) {
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS ${r.table} (
          series INTEGER NOT NULL, ts INTEGER NOT NULL, n REAL NOT NULL, sum REAL NOT NULL, max REAL NOT NULL,
          s2 REAL, s3 REAL, s4 REAL, s5 REAL, hist TEXT, PRIMARY KEY (series, ts)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS ${r.table}_ts ON ${r.table} (ts);
      `);
    }
  }

  close(): void {
    this.db.close();
  }

  /** Adds contributions to their 10 s buckets (one transaction). */
  record(points: readonly PointInput[]): void {
    if (points.length === 0) return;
    const up = this.db.prepare(`
      INSERT INTO points_10s (series, ts, n, sum, max, s2, s3, s4, s5, hist) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (series, ts) DO UPDATE SET n = n + excluded.n, sum = sum + excluded.sum, max = max(max, excluded.max),
        s2 = coalesce(s2, 0) + coalesce(excluded.s2, 0), s3 = coalesce(s3, 0) + coalesce(excluded.s3, 0),
        s4 = coalesce(s4, 0) + coalesce(excluded.s4, 0), s5 = coalesce(s5, 0) + coalesce(excluded.s5, 0),
        hist = hist_merge(hist, excluded.hist)`);
    this.db.transaction(() => {
      for (const p of points) {
        const ts = Math.floor(p.ts / 10_000) * 10_000;
        const s = p.status;
        up.run(this.seriesId(p), ts, p.n, p.sum, p.max, s?.s2xx ?? null, s?.s3xx ?? null, s?.s4xx ?? null, s?.s5xx ?? null,
          p.hist ? JSON.stringify(p.hist) : null);
      }
    })();
  }

  /**
   * Recomputes the 1 min and 1 h buckets that may have changed: the current partial bucket and the
   * few before it (late writes), plus everything since the last rolled-up bucket after a pause.
   */
  rollup(now = this.clock.now()): void {
    this.db.transaction(() => {
      for (let i = 1; i < RESOLUTIONS.length; i++) {
        const src = RESOLUTIONS[i - 1]!;
        const dst = RESOLUTIONS[i]!;
        const last = (this.db.prepare(`SELECT max(ts) AS t FROM ${dst.table}`).get() as { t: number | null }).t;
        const recent = Math.floor(now / dst.ms) * dst.ms - 2 * dst.ms;
        const from = Math.max(now - src.retentionMs, last === null ? 0 : Math.min(last, recent));
        this.db.prepare(`
          INSERT OR REPLACE INTO ${dst.table} (series, ts, n, sum, max, s2, s3, s4, s5, hist)
          SELECT series, (ts / ${dst.ms}) * ${dst.ms} AS b, sum(n), sum(sum), max(max), sum(s2), sum(s3), sum(s4), sum(s5), hist_sum(hist)
          FROM ${src.table} WHERE ts >= ? GROUP BY series, b`).run(Math.floor(from / dst.ms) * dst.ms);
      }
    })();
  }

  /** Deletes points past their retention, at most maxChunks × pruneChunk rows per table. Returns rows deleted. */
  prune(now = this.clock.now()): number {
    let deleted = 0;
    for (const r of RESOLUTIONS) {
      const del = this.db.prepare(`DELETE FROM ${r.table} WHERE (series, ts) IN (SELECT series, ts FROM ${r.table} WHERE ts < ? LIMIT ?)`);
      for (let i = 0; i < this.maxChunks; i++) {
        const c = del.run(now - r.retentionMs, this.pruneChunk).changes;
        deleted += c;
        if (c < this.pruneChunk) break;
      }
    }
    // Series of instances and routes that are gone for good.
    this.db.prepare(`DELETE FROM series WHERE id NOT IN (SELECT series FROM points_1h) AND id NOT IN (SELECT series FROM points_1m)
      AND id NOT IN (SELECT series FROM points_10s)`).run();
    this.seriesIds.clear();
    return deleted;
  }

  /** How many series (per instance, route and service) the app has. */
  appSeriesCount(app: string): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM series WHERE app = ?').get(app) as { n: number }).n;
  }

  /** Deletes every series of the app with all its points (`berth rm --purge`). Returns the series deleted. */
  purgeApp(app: string): number {
    const n = this.db.transaction(() => {
      for (const r of RESOLUTIONS) this.db.prepare(`DELETE FROM ${r.table} WHERE series IN (SELECT id FROM series WHERE app = ?)`).run(app);
      return this.db.prepare('DELETE FROM series WHERE app = ?').run(app).changes;
    })();
    this.seriesIds.clear();
    return n;
  }

  /** Rows per table, for tests and the size bound. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of ['series', ...RESOLUTIONS.map((r) => r.table)]) out[t] = (this.db.prepare(`SELECT count(*) AS c FROM ${t}`).get() as { c: number }).c;
    return out;
  }

  /**
   * HTTP totals of a scope over a time range, all services together: requests, 5xx responses and the
   * highest p95 of any service (what the alert evaluator's latency and error-ratio rules read).
   */
  httpTotals(q: { app?: string; env?: string; service?: string; from: number; to: number }): { requests: number; errors5xx: number; p95?: number } {
    const res = this.query({ kind: 'http', ...q, whole: true, groupBy: 'service' });
    let requests = 0;
    let errors5xx = 0;
    let p95: number | undefined;
    for (const s of res.series) {
      for (const p of s.points) {
        requests += p.n;
        errors5xx += p.s5xx ?? 0;
        if (p.p95 !== undefined) p95 = Math.max(p95 ?? 0, p.p95);
      }
    }
    return { requests, errors5xx, ...(p95 !== undefined ? { p95 } : {}) };
  }

  /**
   * Points of the matching series between from and to. With a step: the coarsest resolution not
   * coarser than it whose retention still covers `from`; without: the finest covering one that
   * gives at most 2000 points per series.
   */
  query(q: MetricsQuery): MetricsResult {
    const now = this.clock.now();
    const covers = RESOLUTIONS.filter((r) => now - q.from <= r.retentionMs);
    let res = (q.step === undefined
      ? covers.find((r) => (q.to - q.from) / r.ms <= 2000)
      : [...covers].reverse().find((r) => r.ms <= q.step!) ?? covers[0]) ?? RESOLUTIONS[RESOLUTIONS.length - 1]!;
    if (q.whole) res = covers[0] ?? res;
    const whole = q.whole === true;
    const stepMs = whole ? Math.max(1, q.to - q.from) : Math.max(res.ms, Math.ceil((q.step ?? res.ms) / res.ms) * res.ms);
    const where = ['s.kind = ?', 'p.ts >= ?', 'p.ts <= ?'];
    const args: (string | number)[] = [q.kind, whole ? q.from : Math.floor(q.from / stepMs) * stepMs, q.to];
    for (const f of ['app', 'env', 'service', 'target'] as const) {
      const v = q[f];
      if (v !== undefined) {
        where.push(`s.${f} = ?`);
        args.push(v);
      }
    }
    const gauge = GAUGE_KINDS.includes(q.kind);
    const bySvc = q.groupBy === 'service';
    // Gauges grouped per service: the sum of each instance's mean, so n is 1 per bucket.
    const nExpr = bySvc && gauge ? '1' : 'sum(p.n)';
    const sumExpr = bySvc && gauge ? 'sum(p.sum / p.n) / count(DISTINCT p.ts)' : 'sum(p.sum)';
    const keyCols = bySvc ? `s.app, s.env, s.service, '' AS target` : 's.app, s.env, s.service, s.target';
    const rows = this.db.prepare(`
      SELECT ${keyCols}, ${whole ? String(Math.floor(q.from)) : `(p.ts / ${stepMs}) * ${stepMs}`} AS b, ${nExpr} AS n, ${sumExpr} AS sum, max(p.max) AS max,
        sum(p.s2) AS s2, sum(p.s3) AS s3, sum(p.s4) AS s4, sum(p.s5) AS s5, hist_sum(p.hist) AS hist
      FROM ${res.table} p JOIN series s ON s.id = p.series
      WHERE ${where.join(' AND ')}
      GROUP BY ${bySvc ? 's.app, s.env, s.service' : 's.id'}, b ORDER BY s.app, s.env, s.service, target, b`).all(...args) as {
      app: string; env: string; service: string; target: string; b: number; n: number; sum: number; max: number;
      s2: number | null; s3: number | null; s4: number | null; s5: number | null; hist: string | null;
    }[];
    const out = new Map<string, { key: SeriesKey; points: Point[] }>();
    for (const r of rows) {
      const id = `${r.app}\u0000${r.env}\u0000${r.service}\u0000${r.target}`;
      let s = out.get(id);
      if (!s) out.set(id, (s = { key: { kind: q.kind, app: r.app, env: r.env, service: r.service, target: r.target }, points: [] }));
      s.points.push(toPoint(q.kind, r, stepMs));
    }
    return { resolutionMs: res.ms, stepMs, series: [...out.values()] };
  }

  private seriesId(k: SeriesKey): number {
    const id = `${k.kind}\u0000${k.app}\u0000${k.env}\u0000${k.service}\u0000${k.target}`;
    let v = this.seriesIds.get(id);
    if (v === undefined) {
      this.db.prepare('INSERT OR IGNORE INTO series (kind, app, env, service, target) VALUES (?, ?, ?, ?, ?)').run(k.kind, k.app, k.env, k.service, k.target);
      v = (this.db.prepare('SELECT id FROM series WHERE kind = ? AND app = ? AND env = ? AND service = ? AND target = ?')
        .get(k.kind, k.app, k.env, k.service, k.target) as { id: number }).id;
      this.seriesIds.set(id, v);
    }
    return v;
  }
}

function toPoint(kind: MetricKind, r: { b: number; n: number; sum: number; max: number; s2: number | null; s3: number | null; s4: number | null; s5: number | null; hist: string | null }, stepMs: number): Point {
  const secs = stepMs / 1000;
  if (GAUGE_KINDS.includes(kind)) return { ts: r.b, n: r.n, sum: r.sum, avg: r.n > 0 ? r.sum / r.n : 0, max: r.max };
  if (!HTTP_KINDS.includes(kind)) return { ts: r.b, n: r.n, sum: r.sum, avg: r.sum / secs, max: r.max, rate: r.sum / secs };
  const hist = r.hist ? (JSON.parse(r.hist) as number[]) : [];
  const p: Point = {
    ts: r.b, n: r.n, sum: r.sum, avg: r.n > 0 ? r.sum / r.n : 0, max: r.max, rate: r.n / secs,
    s2xx: r.s2 ?? 0, s3xx: r.s3 ?? 0, s4xx: r.s4 ?? 0, s5xx: r.s5 ?? 0,
  };
  for (const [name, q] of [['p50', 0.5], ['p95', 0.95], ['p99', 0.99]] as const) {
    const v = histQuantile(q, hist, r.max);
    if (v !== undefined) p[name] = v;
  }
  return p;
}
