/**
 * BuildKit's build progress as dockerd sends it over the plain HTTP build API: `{"id":
 * "moby.buildkit.trace","aux":"<base64>"}` lines, each a protobuf `moby.buildkit.v1.StatusResponse`.
 * A small decoder (only the fields Berth prints; unknown fields are skipped, so newer daemons that
 * add fields still decode) and a printer that turns the updates into lines in the style of
 * `docker build --progress=plain`. Dependency-free on purpose: dockerode's own decoder pulls in
 * protobufjs and a .proto file at run time for a handful of fields.
 */

/** One step of the build graph (`[2/5] RUN npm ci`, `[internal] load build context`). Times in ms since the epoch. */
export interface BuildkitVertex {
  digest: string;
  inputs: string[];
  name: string;
  cached: boolean;
  started?: number;
  completed?: number;
  error: string;
}

/** Progress of one sub-task of a vertex (a transfer, an export): `current` of `total` (0 when unknown). */
export interface BuildkitVertexStatus {
  id: string;
  vertex: string;
  name: string;
  current: number;
  total: number;
  timestamp?: number;
  started?: number;
  completed?: number;
}

/** Output of a RUN step: raw bytes, not split into lines (a message may end mid-line). */
export interface BuildkitVertexLog {
  vertex: string;
  timestamp?: number;
  /** 1 stdout, 2 stderr. */
  stream: number;
  msg: Uint8Array;
}

export interface BuildkitVertexWarning {
  vertex: string;
  level: number;
  short: string;
  detail: string[];
  url: string;
}

export interface BuildkitStatus {
  vertexes: BuildkitVertex[];
  statuses: BuildkitVertexStatus[];
  logs: BuildkitVertexLog[];
  warnings: BuildkitVertexWarning[];
}

/** The trace could not be decoded (truncated or not a StatusResponse). */
export class TraceDecodeError extends Error {}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;
const TWO_32 = 2 ** 32;

const utf8 = new TextDecoder('utf-8');

/** A cursor over one protobuf message (or embedded message). */
class Reader {
  pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly end = buf.length,
  ) {}

  more(): boolean {
    return this.pos < this.end;
  }

  /**
   * A varint as a JS number. Values above 2^53 lose precision, which is fine for what a trace holds
   * (sizes, seconds); negative int64s (10 bytes) come out as large positives and are not used here.
   */
  varint(): number {
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new TraceDecodeError('truncated varint');
      const b = this.buf[this.pos++]!;
      const bits = b & 0x7f;
      // Bitwise operators are 32-bit in JS: the low 28 bits go to `lo` with shifts, the rest by multiplication.
      if (shift < 28) lo |= bits << shift;
      else if (shift === 28) {
        lo |= (bits & 0x0f) << 28;
        hi = bits >> 4;
      } else hi += bits * 2 ** (shift - 32);
      if ((b & 0x80) === 0) return (lo >>> 0) + hi * TWO_32;
      shift += 7;
    }
    throw new TraceDecodeError('varint longer than 10 bytes');
  }

  bytes(): Uint8Array {
    const len = this.varint();
    if (this.pos + len > this.end) throw new TraceDecodeError('truncated length-delimited field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  string(): string {
    return utf8.decode(this.bytes());
  }

  /** A reader over an embedded message, advancing this one past it. */
  sub(): Reader {
    const len = this.varint();
    if (this.pos + len > this.end) throw new TraceDecodeError('truncated embedded message');
    const r = new Reader(this.buf, this.pos + len);
    r.pos = this.pos;
    this.pos += len;
    return r;
  }

  /** Returns [field number, wire type]. */
  tag(): [number, number] {
    const t = this.varint();
    return [Math.floor(t / 8), t & 7];
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_FIXED64) this.advance(8);
    else if (wire === WIRE_LEN) this.bytes();
    else if (wire === WIRE_FIXED32) this.advance(4);
    else throw new TraceDecodeError(`unsupported wire type ${wire}`);
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new TraceDecodeError('truncated fixed-width field');
    this.pos += n;
  }
}

/** Reads `fields` of a message; `on` returns false for fields it does not want (they are skipped). */
function readMessage(r: Reader, on: (field: number, wire: number, r: Reader) => boolean): void {
  while (r.more()) {
    const [field, wire] = r.tag();
    if (!on(field, wire, r)) r.skip(wire);
  }
}

/** google.protobuf.Timestamp → ms since the epoch. */
function readTimestamp(r: Reader): number {
  let seconds = 0;
  let nanos = 0;
  readMessage(r, (f, w, m) => {
    if (f === 1 && w === WIRE_VARINT) seconds = m.varint();
    else if (f === 2 && w === WIRE_VARINT) nanos = m.varint();
    else return false;
    return true;
  });
  return seconds * 1000 + nanos / 1e6;
}

function readVertex(r: Reader): BuildkitVertex {
  const v: BuildkitVertex = { digest: '', inputs: [], name: '', cached: false, error: '' };
  readMessage(r, (f, w, m) => {
    if (w === WIRE_LEN) {
      if (f === 1) v.digest = m.string();
      else if (f === 2) v.inputs.push(m.string());
      else if (f === 3) v.name = m.string();
      else if (f === 5) v.started = readTimestamp(m.sub());
      else if (f === 6) v.completed = readTimestamp(m.sub());
      else if (f === 7) v.error = m.string();
      else return false;
      return true;
    }
    if (f === 4 && w === WIRE_VARINT) {
      v.cached = m.varint() !== 0;
      return true;
    }
    return false;
  });
  return v;
}

function readVertexStatus(r: Reader): BuildkitVertexStatus {
  const s: BuildkitVertexStatus = { id: '', vertex: '', name: '', current: 0, total: 0 };
  readMessage(r, (f, w, m) => {
    if (w === WIRE_LEN) {
      if (f === 1) s.id = m.string();
      else if (f === 2) s.vertex = m.string();
      else if (f === 3) s.name = m.string();
      else if (f === 6) s.timestamp = readTimestamp(m.sub());
      else if (f === 7) s.started = readTimestamp(m.sub());
      else if (f === 8) s.completed = readTimestamp(m.sub());
      else return false;
      return true;
    }
    if (w === WIRE_VARINT && (f === 4 || f === 5)) {
      if (f === 4) s.current = m.varint();
      else s.total = m.varint();
      return true;
    }
    return false;
  });
  return s;
}

function readVertexLog(r: Reader): BuildkitVertexLog {
  const l: BuildkitVertexLog = { vertex: '', stream: 0, msg: new Uint8Array(0) };
  readMessage(r, (f, w, m) => {
    if (w === WIRE_LEN) {
      if (f === 1) l.vertex = m.string();
      else if (f === 2) l.timestamp = readTimestamp(m.sub());
      else if (f === 4) l.msg = m.bytes();
      else return false;
      return true;
    }
    if (f === 3 && w === WIRE_VARINT) {
      l.stream = m.varint();
      return true;
    }
    return false;
  });
  return l;
}

function readVertexWarning(r: Reader): BuildkitVertexWarning {
  const x: BuildkitVertexWarning = { vertex: '', level: 0, short: '', detail: [], url: '' };
  readMessage(r, (f, w, m) => {
    if (w === WIRE_LEN) {
      if (f === 1) x.vertex = m.string();
      else if (f === 3) x.short = m.string();
      else if (f === 4) x.detail.push(m.string());
      else if (f === 5) x.url = m.string();
      else return false;
      return true;
    }
    if (f === 2 && w === WIRE_VARINT) {
      x.level = m.varint();
      return true;
    }
    return false;
  });
  return x;
}

/** Decodes one StatusResponse. Throws TraceDecodeError on malformed input. */
export function decodeStatusResponse(bytes: Uint8Array): BuildkitStatus {
  const out: BuildkitStatus = { vertexes: [], statuses: [], logs: [], warnings: [] };
  readMessage(new Reader(bytes), (f, w, m) => {
    if (w !== WIRE_LEN) return false;
    if (f === 1) out.vertexes.push(readVertex(m.sub()));
    else if (f === 2) out.statuses.push(readVertexStatus(m.sub()));
    else if (f === 3) out.logs.push(readVertexLog(m.sub()));
    else if (f === 4) out.warnings.push(readVertexWarning(m.sub()));
    else return false;
    return true;
  });
  return out;
}

/** Decodes the `aux` of a `moby.buildkit.trace` line. */
export function decodeTrace(aux: string): BuildkitStatus {
  return decodeStatusResponse(Buffer.from(aux, 'base64'));
}

interface VertexState {
  index: number;
  name: string;
  started?: number;
  headerPrinted: boolean;
  finished: boolean;
  /** Bytes of an unfinished output line and the time of its first chunk. */
  partial: string;
  partialAt?: number;
  /** Per vertex, so a multi-byte character split across two log messages decodes whole. */
  decoder: InstanceType<typeof TextDecoder>;
  statusesDone: Set<string>;
}

/**
 * Turns BuildKit status updates into `--progress=plain` style lines:
 *
 *     #5 [2/3] COPY package.json ./
 *     #5 CACHED
 *     #7 [3/3] RUN npm test
 *     #7 0.412 ok 1 - adds
 *     #7 DONE 1.3s
 *     #8 ERROR: executor failed running [/bin/sh -c exit 1]: exit code: 1
 *
 * Each vertex is numbered in the order it is first seen and its name printed once, when it starts
 * (or completes from cache). Transfer/export sub-tasks print one line when they complete rather than
 * every progress tick, so a build log stays readable. Output of RUN steps is split into lines, each
 * prefixed with the seconds since its step started.
 */
export class BuildkitProgressPrinter {
  private readonly vertexes = new Map<string, VertexState>();
  private next = 1;

  /** The lines for one decoded StatusResponse. */
  update(s: BuildkitStatus): string[] {
    const out: string[] = [];
    const completedNow: { v: VertexState; raw: BuildkitVertex }[] = [];
    for (const raw of s.vertexes) {
      const v = this.vertex(raw.digest);
      if (raw.name) v.name = raw.name;
      if (raw.started !== undefined) v.started = raw.started;
      if (v.finished) continue;
      if (raw.started !== undefined || raw.completed !== undefined) this.header(v, out);
      if (raw.completed !== undefined) completedNow.push({ v, raw });
    }
    for (const st of s.statuses) {
      if (st.completed === undefined || !st.vertex) continue;
      const v = this.vertex(st.vertex);
      const key = st.id || st.name;
      if (v.statusesDone.has(key)) continue;
      v.statusesDone.add(key);
      this.header(v, out);
      const size = st.total > 0 ? ` ${formatBytes(st.current)} / ${formatBytes(st.total)}` : st.current > 0 ? ` ${formatBytes(st.current)}` : '';
      const secs = st.started !== undefined ? (st.completed - st.started) / 1000 : 0;
      out.push(`#${this.num(v)} ${key}${size}${secs > 0.01 ? ` ${secs.toFixed(1)}s` : ''} done`);
    }
    for (const l of s.logs) {
      const v = this.vertex(l.vertex);
      this.header(v, out);
      // A line's time is that of its first chunk, as BuildKit's own printer shows it.
      let lineAt = v.partial === '' ? l.timestamp : v.partialAt;
      const parts = (v.partial + v.decoder.decode(l.msg, { stream: true })).split('\n');
      v.partial = parts.pop() ?? '';
      for (const p of parts) {
        out.push(this.logLine(v, p, lineAt));
        lineAt = l.timestamp;
      }
      v.partialAt = v.partial === '' ? undefined : lineAt;
    }
    for (const w of s.warnings) {
      const v = w.vertex ? this.vertex(w.vertex) : undefined;
      out.push(`${v ? `#${this.num(v)} ` : ''}WARNING: ${w.short}`);
    }
    for (const { v, raw } of completedNow) {
      this.flushPartial(v, out);
      v.finished = true;
      if (raw.error) out.push(/context canceled$/.test(raw.error) ? `#${this.num(v)} CANCELED` : `#${this.num(v)} ERROR: ${raw.error}`);
      else if (raw.cached) out.push(`#${this.num(v)} CACHED`);
      else {
        const secs = v.started !== undefined && raw.completed !== undefined ? Math.max(0, (raw.completed - v.started) / 1000) : 0;
        out.push(`#${this.num(v)} DONE ${secs.toFixed(1)}s`);
      }
    }
    return out;
  }

  /** Output lines still waiting for their newline (call when the build's stream ends). */
  end(): string[] {
    const out: string[] = [];
    for (const v of this.vertexes.values()) this.flushPartial(v, out);
    return out;
  }

  private vertex(digest: string): VertexState {
    let v = this.vertexes.get(digest);
    if (!v) {
      v = { index: 0, name: '', headerPrinted: false, finished: false, partial: '', decoder: new TextDecoder('utf-8'), statusesDone: new Set() };
      this.vertexes.set(digest, v);
    }
    return v;
  }

  private header(v: VertexState, out: string[]): void {
    if (v.headerPrinted || !v.name) return;
    v.headerPrinted = true;
    out.push(`#${this.num(v)} ${v.name}`);
  }

  /**
   * A vertex's number, given when it first prints: BuildKit lists later steps before they start, so
   * numbering by first sight would print #7 before #4.
   */
  private num(v: VertexState): number {
    if (v.index === 0) v.index = this.next++;
    return v.index;
  }

  private logLine(v: VertexState, text: string, at: number | undefined): string {
    const secs = at !== undefined && v.started !== undefined ? Math.max(0, (at - v.started) / 1000) : 0;
    // Like BuildKit's printer: more digits while the number is short.
    const t = secs.toFixed(secs < 10 ? 3 : secs < 100 ? 2 : 1);
    return `#${this.num(v)} ${t} ${text.replace(/\r$/, '')}`;
  }

  private flushPartial(v: VertexState, out: string[]): void {
    if (v.partial === '') return;
    out.push(this.logLine(v, v.partial, v.partialAt));
    v.partial = '';
    v.partialAt = undefined;
  }
}

/** Decimal units as BuildKit prints them: 37B, 2.11kB, 107.10MB. */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${n}B` : `${v.toFixed(2)}${units[i]}`;
}
