import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';

import type { GitHttpExchange } from '../core/builds.ts';

export interface GitHttpRequest extends GitHttpExchange<IncomingMessage, ServerResponse> {
  /** Directory holding APP.git repositories (GIT_PROJECT_ROOT). */
  projectRoot: string;
  /** PATH of git http-backend, which gets no other variable of the server's environment (default /usr/bin:/bin). */
  path?: string | undefined;
}

/**
 * Smart HTTP through `git http-backend` run as a CGI program: the request body (possibly gzip: git
 * decodes it itself given HTTP_CONTENT_ENCODING) is piped in, the CGI headers (`Status:`,
 * `Content-Type`, ...) are parsed and the body is streamed back as it comes, so that progress sent
 * on the side band (including the pre-receive hook's output) reaches the pusher live.
 */
export function serveGitHttp(o: GitHttpRequest): Promise<void> {
  return new Promise((resolve) => {
    const h = o.req.headers;
    const env: NodeJS.ProcessEnv = {
      PATH: o.path ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: o.projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: o.pathInfo,
      QUERY_STRING: o.query,
      REQUEST_METHOD: o.method,
      REMOTE_USER: o.remoteUser,
      REMOTE_ADDR: o.req.socket.remoteAddress ?? '',
      CONTENT_TYPE: String(h['content-type'] ?? ''),
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: 'HTTP/1.1',
      ...(h['content-length'] ? { CONTENT_LENGTH: String(h['content-length']) } : {}),
      ...(h['content-encoding'] ? { HTTP_CONTENT_ENCODING: String(h['content-encoding']) } : {}),
      ...(h['git-protocol'] ? { GIT_PROTOCOL: String(h['git-protocol']) } : {}),
    };
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve();
    };
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => o.onStderr?.(c));
    child.stdin.on('error', () => undefined);
    o.req.pipe(child.stdin);
    o.res.on('close', () => {
      if (child.exitCode === null) child.kill('SIGTERM');
    });

    let head = Buffer.alloc(0);
    let headersSent = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersSent) {
        o.res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = findHeaderEnd(head);
      if (!end) return;
      const { status, headers } = parseCgiHeaders(head.subarray(0, end.at).toString('latin1'));
      o.res.writeHead(status, headers);
      headersSent = true;
      const rest = head.subarray(end.at + end.len);
      if (rest.length) o.res.write(rest);
    });
    child.on('error', (err) => {
      if (!headersSent) {
        o.res.writeHead(500, { 'content-type': 'text/plain' });
        headersSent = true;
      }
      o.res.end(`git http-backend failed: ${err.message}\n`);
      finish();
    });
    child.on('close', (code) => {
      if (!headersSent) {
        o.res.writeHead(500, { 'content-type': 'text/plain' });
        o.res.end(`git http-backend exited with ${code} without a response\n`);
      } else {
        o.res.end();
      }
      finish();
    });
  });
}

function findHeaderEnd(b: Buffer): { at: number; len: number } | undefined {
  const crlf = b.indexOf('\r\n\r\n');
  const lf = b.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf <= lf)) return { at: crlf, len: 4 };
  if (lf >= 0) return { at: lf, len: 2 };
  return undefined;
}

/** CGI response headers: `Status: 404 Not Found` sets the status; the rest pass through. */
export function parseCgiHeaders(text: string): { status: number; headers: Record<string, string> } {
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    if (k === 'status') status = parseInt(v, 10) || 500;
    else headers[k] = v;
  }
  return { status, headers };
}
