import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BerthClient, ApiError, Unreachable } from '../client/index.ts';
import { BerthError, formatIssue, type SpecIssue } from '../core/errors.ts';
import { parseDuration } from '../core/spec/units.ts';

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

/**
 * A `--timeout` value in seconds: a plain number is seconds (`90`, as before), anything else a duration
 * in Berth's one grammar (`90s`, `2m`, `1m30s`). Invalid or not positive: exit 2 naming the flag.
 */
export function timeoutSeconds(raw: string, flag = '--timeout'): number {
  const s = raw.trim();
  if (/^\d+(\.\d+)?$/.test(s)) {
    const n = Number(s);
    if (n > 0) return n;
  } else {
    const d = parseDuration(s);
    if (d.value !== undefined && d.value > 0) return d.value / 1000;
    if (d.error) throw new CliFailure(`${flag} ${raw}: ${d.error}, or a number of seconds`, EXIT.usage);
  }
  throw new CliFailure(`${flag} ${raw}: must be more than 0 (seconds, or a duration such as 90s or 2m)`, EXIT.usage);
}

/** A `--limit` value: a whole number from 1 to `max` (the API's bound), else exit 2 naming the flag. */
export function limitOption(raw: string, max: number): number {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= max)) throw new CliFailure(`--limit "${raw}" must be a whole number from 1 to ${max}`, EXIT.usage);
  return n;
}

export interface GlobalOpts {
  url?: string;
  token?: string;
  dataDir?: string;
  json?: boolean;
}

/** The server's address: flag, env, the local server's DATA_DIR/server.json, the default. */
export function serverUrl(o: GlobalOpts): string {
  const dataDir = o.dataDir ?? process.env.BERTH_DATA_DIR ?? '/var/lib/berth';
  const url = o.url ?? process.env.BERTH_URL;
  if (url) return url;
  try {
    return (JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')) as { url: string }).url;
  } catch {
    return 'http://127.0.0.1:7070';
  }
}

/** Where `berth login` keeps its session tokens: BERTH_CONFIG_DIR, else $XDG_CONFIG_HOME/berth, else ~/.config/berth. */
export function cliConfigDir(): string {
  return process.env.BERTH_CONFIG_DIR ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'berth');
}

const credentialsFile = () => join(cliConfigDir(), 'credentials.json');

function readCredentials(): Record<string, { user: string; token: string; expiresAt: number }> {
  try {
    return JSON.parse(readFileSync(credentialsFile(), 'utf8')) as Record<string, { user: string; token: string; expiresAt: number }>;
  } catch {
    return {};
  }
}

/** Keeps (or, without a token, forgets) the session of one server, in a file only its owner can read (0600, in a 0700 directory). */
export function saveCredentials(url: string, entry: { user: string; token: string; expiresAt: number } | undefined): void {
  const all = readCredentials();
  if (entry) all[url] = entry;
  else delete all[url];
  mkdirSync(cliConfigDir(), { recursive: true, mode: 0o700 });
  const tmp = `${credentialsFile()}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(all, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, credentialsFile());
}

/** The session `berth login` stored for this server, if any. */
export function savedSession(url: string): { user: string; token: string; expiresAt: number } | undefined {
  return readCredentials()[url];
}

/**
 * Finds the server and a credential the way a person on this machine expects: --token, BERTH_TOKEN,
 * the session `berth login` stored for this server, then the local server's admin token.
 */
export function connect(o: GlobalOpts): BerthClient {
  const dataDir = o.dataDir ?? process.env.BERTH_DATA_DIR ?? '/var/lib/berth';
  const url = serverUrl(o);
  let token = o.token ?? process.env.BERTH_TOKEN ?? savedSession(url)?.token;
  if (!token) {
    try {
      token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new CliFailure(code === 'EACCES'
        ? `cannot read ${join(dataDir, 'admin.token')}: run as root, \`berth login\`, or set BERTH_TOKEN`
        : `no token: log in with \`berth login\`, or start the server (\`berth server\`) or set BERTH_TOKEN / --token`, EXIT.unauthorized);
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
