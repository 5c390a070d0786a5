/** Text helpers shared by the server and the CLI (pure). */

/**
 * A message as one short line for a record or a table cell (a build's in `berth builds`): the first
 * line (and the next one when the first only introduces it, ending in ':'), white space collapsed,
 * at most `max` characters. The whole text belongs elsewhere (a build's log).
 */
export function summaryLine(text: string, max = 200): string {
  const lines = text.split('\n').map((l) => l.replace(/\s+/g, ' ').trim()).filter(Boolean);
  let s = lines[0] ?? '';
  if (s.endsWith(':') && lines[1]) s = `${s} ${lines[1]}`;
  return s.length > max ? `${s.slice(0, max - 1).trimEnd()}…` : s;
}
