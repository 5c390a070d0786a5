import { StringDecoder } from 'node:string_decoder';

export type StdStream = 'stdout' | 'stderr';

/**
 * Splits Docker's multiplexed (non-TTY) attach/log stream into lines. Each frame is an 8-byte header
 * (stream type, 3 zero bytes, big-endian payload length) and a payload; frames and lines are
 * independent, and network chunks cut both anywhere, so bytes are buffered until a frame is complete
 * and text per stream until a newline arrives. UTF-8 sequences split across frames are kept intact.
 */
export class LogDemuxer {
  private readonly frames = new FrameDemuxer((stream, payload) => this.feed(stream, payload));
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  private readonly partial: Record<StdStream, string> = { stdout: '', stderr: '' };

  constructor(private readonly onLine: (stream: StdStream, line: string) => void) {}

  /** Frames: 1 = stdout, 2 = stderr, 3 = engine error message (reported as stderr); 0 (stdin) is never sent. */
  push(chunk: Buffer): void {
    this.frames.push(chunk);
  }

  /** Emits what is left: a last line without a trailing newline. */
  end(): void {
    for (const s of ['stdout', 'stderr'] as const) {
      const rest = this.partial[s] + this.decoders[s].end();
      this.partial[s] = '';
      if (rest.length) this.onLine(s, rest);
    }
  }

  private feed(stream: StdStream, payload: Buffer): void {
    const text = this.partial[stream] + this.decoders[stream].write(payload);
    const parts = text.split('\n');
    this.partial[stream] = parts.pop() ?? '';
    for (const p of parts) this.onLine(stream, p.endsWith('\r') ? p.slice(0, -1) : p);
  }
}

/**
 * Docker's multiplexed stream as raw payloads (no line splitting, no decoding): for `exec`, whose
 * output may be binary and must be passed on exactly as it arrives.
 */
export class FrameDemuxer {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onData: (stream: StdStream, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = 0;
    while (this.pending.length - off >= 8) {
      const type = this.pending[off];
      const size = this.pending.readUInt32BE(off + 4);
      if (this.pending.length - off < 8 + size) break;
      const payload = this.pending.subarray(off + 8, off + 8 + size);
      off += 8 + size;
      if (size === 0) continue;
      if (type === 1) this.onData('stdout', payload);
      else if (type === 2 || type === 3) this.onData('stderr', payload);
    }
    this.pending = off === this.pending.length ? Buffer.alloc(0) : this.pending.subarray(off);
  }
}

/** Splits `2024-05-01T10:00:00.123456789Z text` (Docker's `timestamps=true` prefix) into time and text. */
export function splitTimestamp(line: string): { time: string; text: string } {
  const sp = line.indexOf(' ');
  const head = sp < 0 ? line : line.slice(0, sp);
  if (/^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})$/.test(head)) {
    return { time: head, text: sp < 0 ? '' : line.slice(sp + 1) };
  }
  return { time: '', text: line };
}

/** Splits a byte stream of newline-delimited JSON into lines (chunks may cut lines anywhere). */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private rest = '';

  push(chunk: Buffer | string): string[] {
    const text = this.rest + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    const parts = text.split('\n');
    this.rest = parts.pop() ?? '';
    return parts.map((p) => p.trim()).filter((p) => p.length > 0);
  }

  end(): string[] {
    const last = (this.rest + this.decoder.end()).trim();
    this.rest = '';
    return last ? [last] : [];
  }
}
