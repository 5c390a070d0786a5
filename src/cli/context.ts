import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthClient, ApiError, Unreachable } from '../client/index.ts';
import { BerthError, formatIssue, type SpecIssue } from '../core/errors.ts';

/** Exit codes (documented in README): stable, so scripts can branch on them. */
export const EXIT = {
  ok: 0,
  failed: 1, // the operation ran and failed (e.g. a deploy that did not become healthy)
  usage: 2, // bad arguments, invalid spec or input
  notFound: 3,
  conflict: 4,
  unauthorized: 5,
  unavailable: 6, // server or engine unreachable
  internal: 70,
} as const;

export class CliFailure extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

export interface GlobalOpts {
  url?: string;
  token?: string;
  dataDir?: string;
  json?: boolean;
}

/** Finds the server the way a person on this machine expects: flags, then env, then the data dir. */
export function connect(o: GlobalOpts): BerthClient {
  const dataDir = o.dataDir ?? process.env.BERTH_DATA_DIR ?? '/var/lib/berth';
  let url = o.url ?? process.env.BERTH_URL;
  if (!url) {
    try {
      url = (JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')) as { url: string }).url;
    } catch {
      url = 'http://127.0.0.1:7070';
    }
  }
  let token = o.token ?? process.env.BERTH_TOKEN;
  if (!token) {
    try {
      token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new CliFailure(code === 'EACCES'
        ? `cannot read ${join(dataDir, 'admin.token')}: run as root or set BERTH_TOKEN`
        : `no token: ${join(dataDir, 'admin.token')} does not exist. Start the server (\`berth server\`) or set BERTH_TOKEN / --token`, EXIT.unauthorized);
    }
  }
  return new BerthClient({ url, token });
}

/**
 * Maps any error to a message, an exit code and (for --json) a stable error code; never a stack
 * trace for a user's mistake.
 */
export function explain(err: unknown): { message: string; exitCode: number; code?: string } {
  if (err instanceof CliFailure) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof Unreachable) return { message: err.message, exitCode: EXIT.unavailable, code: 'unreachable' };
  if (err instanceof ApiError) {
    const issues = (err.details as { issues?: SpecIssue[] } | undefined)?.issues;
    const message = err.code === 'invalid_spec' && Array.isArray(issues) ? issues.map(formatIssue).join('\n') : err.message;
    const byCode: Record<string, number> = {
      invalid_spec: EXIT.usage, invalid_input: EXIT.usage, not_found: EXIT.notFound, conflict: EXIT.conflict,
      unauthorized: EXIT.unauthorized, forbidden: EXIT.unauthorized, engine_unavailable: EXIT.unavailable,
    };
    return { message, exitCode: byCode[err.code] ?? (err.status >= 500 ? EXIT.internal : EXIT.failed), code: err.code };
  }
  if (err instanceof BerthError) {
    const byCode: Record<string, number> = { invalid_spec: EXIT.usage, invalid_input: EXIT.usage, not_found: EXIT.notFound, conflict: EXIT.conflict };
    return { message: err.message, exitCode: byCode[err.code] ?? EXIT.failed, code: err.code };
  }
  return { message: `internal error: ${(err as Error)?.stack ?? String(err)}`, exitCode: EXIT.internal, code: 'internal' };
}

/** Progress and decorations go to stderr, only on a terminal; results go to stdout. */
export const tty = process.stderr.isTTY === true;

export function progress(line: string): void {
  if (tty) process.stderr.write(`\r\x1b[2K${line}`);
}

export function progressDone(line?: string): void {
  if (tty) process.stderr.write(`\r\x1b[2K${line ? line + '\n' : ''}`);
  else if (line) process.stderr.write(line + '\n');
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n');
}

export function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
