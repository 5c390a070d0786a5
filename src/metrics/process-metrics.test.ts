import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessMetrics } from './process-metrics.ts';
import { renderFamilies } from './prometheus.ts';

/** The delay summary's maximum in a scrape (0 when it has no samples). */
const maxOf = (text: string) => Number(/^berth_event_loop_delay_seconds\{quantile="1"\} (\S+)$/m.exec(text)?.[1] ?? 0);
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
const block = (ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end) { /* the event loop is held, as a long synchronous write would */ }
};

test('process metrics: CPU, memory, start time, and a blocked event loop shows in the delay summary until its window has passed twice', async () => {
  const p = new ProcessMetrics();
  try {
    await tick(30);
    block(250);
    await tick(30);
    const text = renderFamilies(p.families());
    assert.match(text, /^# TYPE berth_event_loop_delay_seconds summary$/m);
    const value = (re: RegExp) => Number(re.exec(text)?.[1]);
    const max = maxOf(text);
    assert.ok(max >= 0.2, `the 250 ms block is the maximum: ${max}\n${text}`);
    assert.ok(value(/^berth_event_loop_delay_seconds_count (\S+)$/m) >= 1);
    assert.ok(value(/^process_cpu_seconds_total (\S+)$/m) > 0.2, 'the block was CPU time');
    assert.ok(value(/^process_resident_memory_bytes (\S+)$/m) > 10e6);
    const started = value(/^process_start_time_seconds (\S+)$/m);
    assert.ok(Math.abs(started - (Date.now() / 1000 - process.uptime())) < 2, `start time ${started}`);
    // Reading does not reset: a second scrape sees the same block.
    assert.ok(maxOf(renderFamilies(p.families())) >= 0.2);
    // The block happened in the window read now; one rotation later it is still read (the older histogram), two later it is gone.
    p.rotate();
    assert.ok(maxOf(renderFamilies(p.families())) >= 0.2, 'still within the last 30-60 s after one rotation');
    p.rotate();
    await tick(30);
    const after2 = maxOf(renderFamilies(p.families()));
    assert.ok(after2 < 0.2, `gone after two: ${after2}`);
  } finally {
    p.close();
  }
});
