/**
 * Reading server-sent events (the API's progress and event streams): one parser for the typed client
 * and the in-process test harness. Only what Berth's server writes: `event:`, `id:` and one `data:`
 * line per message, messages ended by a blank line.
 */

export interface SseFrame {
  /** The `event:` name; `message` when there is none. */
  event: string;
  /** The `id:` (Berth's ids are numbers: event sequence numbers). */
  id?: number;
  /** The `data:` line's text (JSON in Berth's streams). */
  data: string;
}

/** Takes the complete messages off the front of `buf`: them, and the rest (an unfinished message) to keep reading into. Messages without data are skipped. */
export function takeSseFrames(buf: string): { frames: SseFrame[]; rest: string } {
  const frames: SseFrame[] = [];
  let end: number;
  while ((end = buf.indexOf('\n\n')) >= 0) {
    const lines = buf.slice(0, end).split('\n');
    buf = buf.slice(end + 2);
    const data = lines.find((l) => l.startsWith('data: '));
    if (!data) continue;
    const id = lines.find((l) => l.startsWith('id: '));
    frames.push({ event: lines.find((l) => l.startsWith('event: '))?.slice(7) ?? 'message', ...(id ? { id: Number(id.slice(4)) } : {}), data: data.slice(6) });
  }
  return { frames, rest: buf };
}
