/**
 * The one way commands print results. Without --json: the human form (tables, sentences) that
 * `human` writes. With --json: exactly one JSON document on stdout — a list is an array (`[]` when
 * empty), anything else one object. Commands that follow something live (`deploy`, `logs -f`,
 * `events -f`, `build logs -f`, rollouts) print NDJSON instead: one object per line, as it happens.
 * Errors with --json are `{"error":{"code","message"}}` on stderr (main.ts).
 */
import type { GlobalOpts } from './context.ts';

export function output(g: GlobalOpts, value: unknown, human: () => void): void {
  if (g.json) process.stdout.write(JSON.stringify(value) + '\n');
  else human();
}

/** One line of an NDJSON stream (--json on a command that follows something live). */
export function ndjson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

/** Exit code → the `error.code` of a JSON error when the error carries no code of its own. */
export const ERROR_CODE_OF_EXIT: Record<number, string> = {
  1: 'failed', 2: 'invalid_input', 3: 'not_found', 4: 'conflict', 5: 'unauthorized', 6: 'unreachable', 70: 'internal',
};

export function jsonError(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } }) + '\n';
}
