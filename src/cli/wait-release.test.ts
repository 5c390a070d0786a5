import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROGRESS_CHANGE_MS, PROGRESS_EVERY_MS, ProgressTicker } from './wait-release.ts';

/** A ticker on a clock the test moves, ticked every second as followUntil does; what it printed, with when. */
function ticker(lineAt: (ms: number) => string, untilMs: number): string[] {
  let now = 1_000_000;
  const t0 = now;
  const out: string[] = [];
  const t = new ProgressTicker({ now: () => now, print: (l) => out.push(`${now - t0} ${l}`) });
  for (; now - t0 <= untilMs; now += 1000) t.tickText(() => lineAt(now - t0));
  return out;
}

test('a wait prints what it waits on every 5 s; a change after the first line is printed when seen, at most every 2 s; durations are no change', () => {
  assert.equal(PROGRESS_EVERY_MS, 5000);
  assert.equal(PROGRESS_CHANGE_MS, 2000);
  const check = (ms: number) => (ms < 6000 ? 'connection refused on 127.0.0.1:10403' : ms < 7000 ? 'GET /healthz → 503' : 'GET /healthz → 404');
  const lines = ticker((ms) => `web 0/1 healthy; last check ${check(ms)} (i1 on 127.0.0.1:10403, for ${Math.floor(ms / 1000)}s)`, 16_000);
  assert.deepEqual(lines, [
    '5000   waiting 5s: web 0/1 healthy; last check connection refused on 127.0.0.1:10403 (i1 on 127.0.0.1:10403, for 5s)',
    // 503 at 6 s is within 2 s of the last line; at 7 s it is already 404: that is what is printed.
    '7000   waiting 7s: web 0/1 healthy; last check GET /healthz → 404 (i1 on 127.0.0.1:10403, for 7s)',
    '12000   waiting 12s: web 0/1 healthy; last check GET /healthz → 404 (i1 on 127.0.0.1:10403, for 12s)',
  ]);
});

test('a short wait prints nothing, however much changes before the first 5 s', () => {
  assert.deepEqual(ticker((ms) => `web ${Math.floor(ms / 1000)}/6 healthy`, 4000), []);
});

test('an empty line says nothing and does not count as printed', () => {
  const lines = ticker((ms) => (ms < 8000 ? '' : 'web pending'), 11_000);
  assert.deepEqual(lines, ['10000   waiting 10s: web pending']);
});
