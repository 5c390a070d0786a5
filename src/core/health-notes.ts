/**
 * Why an instance is not healthy, in words: the latest check result (kept only when it changes) and
 * what a crashed instance said last. Pure: shared by the reconciler, the health monitor, the API and
 * the CLI.
 */
import type { CheckResult, CrashRecord } from './store.ts';

/** The result to store when it differs from `prev` (text or outcome); undefined when nothing changed. */
export function nextCheck(prev: CheckResult | undefined, result: { ok: boolean; text: string }, now: number): CheckResult | undefined {
  if (prev && prev.ok === result.ok && prev.text === result.text) return undefined;
  return { ok: result.ok, text: result.text, since: now };
}

/**
 * A failing check is worth an event once it has lasted this long: a process needs a moment to start
 * listening, and a `connection refused` in its first second is no news.
 */
export const ANNOUNCE_AFTER_MS = 2000;

/** Should this failing result of a not-yet-healthy instance be announced now (and was it not already)? */
export function shouldAnnounce(check: CheckResult | undefined, healthy: boolean, now: number, announced: string | undefined): boolean {
  return !!check && !check.ok && !healthy && now - check.since >= ANNOUNCE_AFTER_MS && announced !== check.text;
}

/** At most this many lines of a crashed instance's output are kept, each cut to LINE_MAX characters. */
export const CRASH_LINES = 5;
const LINE_MAX = 300;

/** Output as kept for a crash record: the last few non-empty lines, each cut short, and the last one on stderr. */
export function crashOutput(lines: { stream: 'stdout' | 'stderr'; text: string }[]): { output: string[]; lastError?: string } {
  const cut = (l: string) => (l.length > LINE_MAX ? `${l.slice(0, LINE_MAX)}…` : l);
  const kept = lines.map((l) => ({ ...l, text: l.text.replace(/\s+$/, '') })).filter((l) => l.text.trim() !== '');
  const lastError = kept.filter((l) => l.stream === 'stderr').at(-1)?.text;
  return { output: kept.slice(-CRASH_LINES).map((l) => cut(l.text)), ...(lastError !== undefined ? { lastError: cut(lastError) } : {}) };
}

/** `exited with code 1 after 0s (out of memory): "Error: listen EADDRINUSE …"` */
export function crashSummary(c: CrashRecord): string {
  const code = `exited with code ${c.exitCode ?? '?'}${c.oomKilled ? ' (out of memory)' : ''} after ${Math.round(c.ranMs / 1000)}s`;
  const last = c.lastError ?? c.output.at(-1);
  return last === undefined ? `${code}, printing nothing` : `${code}: ${JSON.stringify(last)}`;
}

/**
 * The reason for a service with a Compose healthcheck and a port whose engine check passes while
 * nothing accepts connections on the instance's address: the process ignores $PORT.
 */
export function portTrapText(address: string, port: number, defaultPort: number | undefined): string {
  return `nothing listens on ${address}:${port} — the process must listen on $PORT (${port} for this instance, set by Berth); ` +
    `its Compose healthcheck passes, so it probably listens on a fixed port${defaultPort !== undefined ? ` (${defaultPort}?)` : ''}`;
}
