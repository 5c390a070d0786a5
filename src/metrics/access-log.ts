import { open, stat } from 'node:fs/promises';
import type { Clock, Logger } from '../core/ports.ts';
import { parseUpstreamName, type RouteOwner } from '../core/spec/routes.ts';
import { LATENCY_BUCKETS, latencyBucket, type MetricsStore, type PointInput } from './metrics-store.ts';

export { parseUpstreamName, type RouteOwner };

/** Counters since the reader started, for `/metrics`. */
/** Requests per status class and a latency histogram, of a route or of an instance. */
export interface HttpCounter {
  owner: RouteOwner;
  byClass: Record<StatusClass, number>;
  /** Non-cumulative counts per LATENCY_BUCKETS bucket (+Inf last). */
  hist: number[];
  count: number;
  sumSeconds: number;
}

export interface HttpCounters {
  /** Key: route (upstream name). */
  routes: Map<string, HttpCounter>;
  /**
   * Key: instance id → the same figures for the requests that instance answered (all routes of its
   * service). Only instances that exist: an instance's entry goes when it is no longer known, so
   * the label's cardinality is bounded by the instances running, not by every instance ever seen.
   */
  instances?: Map<string, HttpCounter>;
}

/**
 * Which instance a backend address is: `of(owner, addr)` the id of the service's instance at
 * `addr` (`ip:port`, as nginx's `$upstream_addr` writes it), `has(id)` whether an instance exists.
 */
export interface InstanceIndex {
  of(owner: RouteOwner, addr: string): string | undefined;
  has(id: string): boolean;
}

export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';

export interface AccessLogReaderOptions {
  /** The `berth_json` access log (ingress/render.ts: PREFIX/logs/access.json.log). */
  path: string;
  store: MetricsStore;
  clock: Clock;
  logger: Logger;
  /** Maps an upstream name to its owner; defaults to splitting `app.env.service.index` (core/spec/routes.ts). */
  resolveRoute?: (upstream: string) => RouteOwner | undefined;
  /**
   * The instances as they are now (asked once per read that has lines): requests are also counted
   * per instance that answered them (`http_instance`). Without it, per route only.
   */
  instances?: () => InstanceIndex;
  /** Read the existing file from its start (tests); by default the first read starts at its end. */
  fromStart?: boolean;
  /** Most bytes read per `readOnce()`, so one call never holds the event loop for long. */
  maxBytesPerRead?: number;
  intervalMs?: number;
}

interface Line {
  time: number;
  route?: string;
  upstream?: string;
  upstream_addr?: string;
  status: number;
  request_time: number;
}

/**
 * Follows nginx's JSON access log: reads what was appended since the last call (byte offset kept in
 * memory), starts over when the file was rotated (other inode) or truncated (smaller than the offset),
 * keeps a partial last line for the next read. Requests are aggregated per route per 10 s bucket into
 * the store (count, status classes, latency histogram) and counted since start for `/metrics`.
 */
export class AccessLogReader {
  readonly counters: Required<HttpCounters> = { routes: new Map(), instances: new Map() };
  private offset = -1;
  private ino = -1;
  private partial = '';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly maxBytes: number;
  badLines = 0;

  constructor(private readonly o: AccessLogReaderOptions) {
    this.maxBytes = o.maxBytesPerRead ?? 8 * 1024 * 1024;
    if (o.fromStart) this.offset = 0;
  }

  start(): void {
    if (this.timer) return;
    const tick = (): void => {
      this.running = this.readOnce().then(() => undefined, (err: Error) => this.o.logger.warn({ err: err.message, path: this.o.path }, 'access log read failed'));
    };
    tick();
    this.timer = setInterval(tick, this.o.intervalMs ?? 2000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Reads and ingests what is new. Returns the number of complete lines read. */
  async readOnce(): Promise<number> {
    let st;
    try {
      st = await stat(this.o.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        // Not there yet (nginx not started) or mid-rotation: read the next file from its start.
        if (this.offset !== -1) this.offset = 0;
        this.partial = '';
        return 0;
      }
      throw err;
    }
    if (this.offset === -1) {
      // First look at a file written before we started: its requests were counted by a previous run.
      this.offset = st.size;
      this.ino = st.ino;
      return 0;
    }
    if (st.ino !== this.ino || st.size < this.offset) {
      if (this.ino !== -1) this.o.logger.info({ path: this.o.path }, 'access log rotated or truncated: reading from its start');
      this.ino = st.ino;
      this.offset = 0;
      this.partial = '';
    }
    if (st.size === this.offset) return 0;
    const len = Math.min(st.size - this.offset, this.maxBytes);
    const buf = Buffer.alloc(len);
    const fh = await open(this.o.path, 'r');
    let got = 0;
    try {
      while (got < len) {
        const { bytesRead } = await fh.read(buf, got, len - got, this.offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
    } finally {
      await fh.close();
    }
    this.offset += got;
    const text = this.partial + buf.subarray(0, got).toString('utf8');
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    this.ingest(lines);
    return lines.length;
  }

  private ingest(lines: string[]): void {
    const buckets = new Map<string, PointInput>();
    const index = lines.length > 0 ? this.o.instances?.() : undefined;
    for (const raw of lines) {
      if (raw.trim() === '') continue;
      let l: Line;
      try {
        l = JSON.parse(raw) as Line;
      } catch {
        this.badLines++;
        continue;
      }
      const route = l.route || l.upstream;
      if (!route || typeof l.status !== 'number' || typeof l.time !== 'number') continue;
      const owner = (this.o.resolveRoute ?? parseUpstreamName)(route);
      if (!owner) continue;
      const secs = typeof l.request_time === 'number' && Number.isFinite(l.request_time) ? l.request_time : 0;
      const cls = `${Math.min(5, Math.max(1, Math.floor(l.status / 100)))}xx` as StatusClass;
      const hb = latencyBucket(secs);

      let c = this.counters.routes.get(route);
      if (!c) this.counters.routes.set(route, (c = newCounters(owner)));
      c.owner = owner;
      tally(c, cls, hb, secs);
      const ts = Math.floor((l.time * 1000) / 10_000) * 10_000;
      addPoint(buckets, `${route}\u0000${ts}`, 'http', owner, route, ts, cls, hb, secs);

      const id = index && typeof l.upstream_addr === 'string' ? instanceOf(index, owner, l.upstream_addr) : undefined;
      if (id === undefined) continue;
      let ic = this.counters.instances.get(id);
      if (!ic) this.counters.instances.set(id, (ic = newCounters(owner)));
      tally(ic, cls, hb, secs);
      addPoint(buckets, `\u0001${id}\u0000${ts}`, 'http_instance', owner, id, ts, cls, hb, secs);
    }
    // Instances that are gone leave /metrics (their series stay in the store until retention ends).
    if (index) for (const id of this.counters.instances.keys()) if (!index.has(id)) this.counters.instances.delete(id);
    this.o.store.record([...buckets.values()]);
  }
}

/**
 * The instance that answered: the last address of `$upstream_addr` (nginx lists every backend it
 * tried, `a, b` or `a : b` across internal redirects; the last one gave the response), if it is one
 * of the route's service's instances. "" or "-" (nginx answered itself) and unix sockets are none.
 */
export function instanceOf(index: InstanceIndex, owner: RouteOwner, upstreamAddr: string): string | undefined {
  const last = upstreamAddr.split(/[,:]\s/).pop()?.trim();
  if (!last || last === '-' || last.startsWith('unix:')) return undefined;
  return index.of(owner, last);
}

function newCounters(owner: RouteOwner): HttpCounter {
  return { owner, byClass: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, hist: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0), count: 0, sumSeconds: 0 };
}

function tally(c: HttpCounter, cls: StatusClass, hb: number, secs: number): void {
  c.byClass[cls]++;
  c.hist[hb]!++;
  c.count++;
  c.sumSeconds += secs;
}

/** Adds one request to its 10 s point (route or instance series) in `buckets`. */
function addPoint(buckets: Map<string, PointInput>, key: string, kind: 'http' | 'http_instance', owner: RouteOwner, target: string,
  ts: number, cls: StatusClass, hb: number, secs: number): void {
  let p = buckets.get(key);
  if (!p) {
    p = { kind, ...owner, target, ts, n: 0, sum: 0, max: 0, status: { s2xx: 0, s3xx: 0, s4xx: 0, s5xx: 0 }, hist: new Array<number>(LATENCY_BUCKETS.length + 1).fill(0) };
    buckets.set(key, p);
  }
  p.n!++;
  p.sum! += secs;
  p.max = Math.max(p.max!, secs);
  p.hist![hb]!++;
  if (cls !== '1xx') p.status![`s${cls}`]++;
}
