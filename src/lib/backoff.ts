/** Exponential backoff: base * 2^attempt, capped, with optional jitter in [0, jitterRatio). */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, jitter = 0): number {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(raw * (1 + jitter));
}

/** Waits until `check` returns a truthy value or the deadline passes. */
export async function waitFor<T>(check: () => Promise<T> | T, opts: { timeoutMs: number; intervalMs?: number; what?: string }): Promise<NonNullable<T>> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what ?? 'condition'}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
