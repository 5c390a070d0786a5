import http from 'node:http';
import type { Readable } from 'node:stream';
import { BuildkitProgressPrinter, decodeTrace } from './buildkit-trace.ts';
import { LineSplitter } from './log-demux.ts';

export interface BuildkitBuildRequest {
  socketPath: string;
  /** Query parameters of POST /build (`version=2` is added). */
  params: Record<string, string>;
  /** The build context as a plain (uncompressed) tar stream. */
  context: Readable;
  signal?: AbortSignal;
  /** Progress lines, `--progress=plain` style. */
  onLine: (line: string) => void;
  /** A trace message that could not be decoded (the build goes on without its lines). */
  onTraceError?: (err: unknown) => void;
}

export type BuildkitBuildResult =
  /** The daemon ran the build: `error` is set when it failed. */
  | { kind: 'finished'; imageId?: string; error?: string }
  /** The daemon refused the request before building (e.g. BuildKit not supported or disabled). */
  | { kind: 'rejected'; status: number; message: string }
  | { kind: 'cancelled' };

interface BuildStreamEvent {
  id?: string;
  aux?: unknown;
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/**
 * One BuildKit build through dockerd's plain HTTP build API: the context goes up as a tar body and
 * no session is attached (dockerode's buildImage opens a gRPC session for version 2, which a local
 * tar context does not need). Aborting `signal` destroys the request; dockerd then cancels the
 * build, RUN containers included. Connection failures reject with the socket error.
 */
export function runBuildkitBuild(req: BuildkitBuildRequest): Promise<BuildkitBuildResult> {
  const query = new URLSearchParams({ ...req.params, version: '2' });
  return new Promise<BuildkitBuildResult>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      req.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const httpReq = http.request({
      socketPath: req.socketPath,
      path: `/build?${query.toString()}`,
      method: 'POST',
      headers: { 'content-type': 'application/x-tar' },
    });
    const onAbort = (): void => {
      req.context.unpipe(httpReq);
      req.context.destroy();
      httpReq.destroy();
      settle(() => resolve({ kind: 'cancelled' }));
    };
    if (req.signal?.aborted) {
      req.context.destroy();
      resolve({ kind: 'cancelled' });
      return;
    }
    req.signal?.addEventListener('abort', onAbort, { once: true });

    httpReq.on('error', (err) => settle(() => reject(err)));
    req.context.on('error', (err) => {
      httpReq.destroy(err);
      settle(() => reject(err));
    });
    httpReq.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => settle(() => reject(err)));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let message = body.trim();
          try {
            const j = JSON.parse(body) as { message?: unknown };
            if (typeof j.message === 'string') message = j.message;
          } catch {
            // not JSON: keep the body text
          }
          // The body may not have been read: this connection cannot carry another request.
          req.context.destroy();
          httpReq.destroy();
          settle(() => resolve({ kind: 'rejected', status, message }));
        });
        return;
      }
      const printer = new BuildkitProgressPrinter();
      const lines = new LineSplitter();
      let imageId: string | undefined;
      let error: string | undefined;
      const handle = (line: string): void => {
        let ev: BuildStreamEvent;
        try {
          ev = JSON.parse(line) as BuildStreamEvent;
        } catch {
          req.onLine(line);
          return;
        }
        if (ev.id === 'moby.buildkit.trace' && typeof ev.aux === 'string') {
          let out: string[];
          try {
            out = printer.update(decodeTrace(ev.aux));
          } catch (e) {
            req.onTraceError?.(e);
            return;
          }
          for (const l of out) req.onLine(l);
        } else if (ev.id === 'moby.image.id') {
          const id = (ev.aux as { ID?: unknown } | undefined)?.ID;
          if (typeof id === 'string') imageId = id;
        } else if (typeof ev.stream === 'string') {
          for (const l of ev.stream.split('\n')) if (l.trim()) req.onLine(l.trimEnd());
        } else if (typeof ev.status === 'string') {
          req.onLine(ev.status);
        }
        if (ev.errorDetail || ev.error) {
          error = ev.errorDetail?.message ?? ev.error ?? 'unknown build error';
        }
      };
      res.on('data', (chunk: Buffer) => {
        for (const l of lines.push(chunk)) handle(l);
      });
      res.on('error', (err) => settle(() => reject(err)));
      res.on('end', () => {
        for (const l of lines.end()) handle(l);
        for (const l of printer.end()) req.onLine(l);
        settle(() => resolve({ kind: 'finished', ...(imageId ? { imageId } : {}), ...(error !== undefined ? { error } : {}) }));
      });
      // A connection dropped mid-stream ends in 'close' without 'end'.
      res.on('close', () => {
        if (!res.complete) settle(() => reject(Object.assign(new Error('the Docker Engine closed the build stream early'), { code: 'ECONNRESET' })));
      });
    });
    req.context.pipe(httpReq);
  });
}
