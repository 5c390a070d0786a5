/**
 * LogCollector against an engine stub that ends a followed stream before the container's last lines
 * (what Docker 20.10 did under load): the collector reads the rest without follow, exactly once;
 * and one that bursts past the size bound between two retention rounds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogLine } from '../core/ports.ts';
import { systemClock } from '../core/ports.ts';
import { silentLogger } from '../lib/logger.ts';
import { LogCollector } from './log-collector.ts';
import { LogStore, parseTimeNs } from './log-store.ts';

const ID = 'c1';
const LINES: LogLine[] = Array.from({ length: 50 }, (_, i) => ({
  containerId: ID, stream: 'stdout' as const,
  // Two lines per instant: the resume must skip the ones already read at the checkpoint's instant.
  time: `2026-12-01T10:00:00.${String(Math.floor(i / 2)).padStart(9, '0')}Z`, text: `line ${i}`,
}));

function stubEngine(cutFollowAt: number) {
  const calls: { follow: boolean; since?: string }[] = [];
  const engine = {
    calls,
    async logs(_id: string, opts: { follow: boolean; since?: number | string }, onLine: (l: LogLine) => void): Promise<void> {
      calls.push({ follow: opts.follow, ...(opts.since !== undefined ? { since: String(opts.since) } : {}) });
      let from = LINES;
      if (opts.since !== undefined) {
        const [sec, frac = '0'] = String(opts.since).split('.');
        const ns = BigInt(sec!) * 1_000_000_000n + BigInt(frac.padEnd(9, '0'));
        from = LINES.filter((l) => parseTimeNs(l.time)! >= ns); // inclusive, as Docker's since is
      }
      // The followed stream ends early; a read without follow goes to the end.
      for (const l of opts.follow ? from.slice(0, cutFollowAt) : from) onLine({ ...l });
    },
    async inspect() { return undefined; },
  };
  return engine;
}

test('a followed stream that ends before the last lines: the rest is read without follow, every line once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-logc-'));
  const store = new LogStore(join(dir, 'logs.db'));
  const engine = stubEngine(13);
  const collector = new LogCollector({
    engine: engine as never, store, logger: silentLogger, clock: systemClock,
    listContainers: async () => [{ containerId: ID, app: 'a', env: 'prod', service: 'web', instance: 'i1', running: true }],
  });
  try {
    await collector.sync();
    for (let i = 0; i < 100 && collector.active.length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(collector.active.length, 0);
    await collector.close();
    const texts = store.search({ limit: 1000 }).lines.map((l) => l.text).reverse();
    assert.deepEqual(texts, LINES.map((l) => l.text), 'every line, in order, none twice');
    assert.deepEqual(engine.calls.map((c) => c.follow), [true, false], 'one followed read, then one to the end');
    assert.ok(engine.calls[1]!.since, 'the second read resumes from the checkpoint');
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a collector with a size bound hands it to the store: a burst with no retention round in between still keeps its newest lines', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-logc-'));
  const store = new LogStore(join(dir, 'logs.db'));
  const maxBytes = 1024 * 1024;
  const N = 20_000;
  const engine = {
    async logs(_id: string, _opts: unknown, onLine: (l: LogLine) => void): Promise<void> {
      for (let i = 0; i < N; i++) {
        onLine({ containerId: ID, stream: 'stdout', time: `2026-12-01T10:00:${String(Math.floor(i / 1000)).padStart(2, '0')}.${String(i % 1000).padStart(9, '0')}Z`, text: `burst ${i} GET /api/v1/orders/${i % 997} status=200` });
      }
    },
    async inspect() { return undefined; },
  };
  const collector = new LogCollector({
    engine: engine as never, store, logger: silentLogger, clock: systemClock,
    // The retention timer never fires within this test: only the bound handed over at creation seals partitions.
    retention: { maxBytes, intervalMs: 3_600_000 },
    listContainers: async () => [{ containerId: ID, app: 'a', env: 'prod', service: 'web', instance: 'i1', running: false }],
  });
  try {
    await collector.sync();
    for (let i = 0; i < 500 && collector.active.length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    await collector.close();
    assert.equal(store.stats().lines, N);
    assert.ok(store.stats().partitions >= 10, `sealed by size as the burst went in (${store.stats().partitions} partitions)`);
    await store.enforce({ maxBytes });
    assert.ok(store.sizeBytes() <= maxBytes);
    const st = store.stats();
    assert.ok(st.lines > 1000 && st.lines < N, `old lines dropped, a bound's worth kept (${st.lines})`);
    assert.equal(store.search({ limit: 1 }).lines[0]!.text, `burst ${N - 1} GET /api/v1/orders/${(N - 1) % 997} status=200`);
    // What is kept is the newest lines, each once, without a gap.
    const kept: number[] = [];
    for (let before: string | undefined; ;) {
      const page = store.search({ limit: 10_000, ...(before ? { before } : {}) });
      kept.push(...page.lines.map((l) => Number(l.text.split(' ')[1])));
      if (!page.next) break;
      before = page.next;
    }
    assert.deepEqual([kept.length, new Set(kept).size, Math.min(...kept)], [st.lines, st.lines, N - st.lines]);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
