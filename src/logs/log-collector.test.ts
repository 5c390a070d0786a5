/**
 * LogCollector against an engine stub that ends a followed stream before the container's last lines
 * (what Docker 20.10 did under load): the collector reads the rest without follow, exactly once.
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
