import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { InvalidInput } from '../core/errors.ts';
import { compileText, detectLevel, dockerSince, formatTimeNs, LogStore, parseTimeNs, type IngestLine, type LogSource, type StoredLine } from './log-store.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDb(): string {
  const d = mkdtempSync(join(tmpdir(), 'berth-logstore-'));
  dirs.push(d);
  return join(d, 'logs.db');
}

const T0 = 1_700_000_000_000_000_000n; // ns
const src = (containerId: string, over: Partial<LogSource> = {}): LogSource =>
  ({ containerId, app: 'shop', env: 'prod', service: 'web', instance: `${containerId}-i`, ...over });
const lines = (from: number, n: number, text: (i: number) => string, stream: 'stdout' | 'stderr' = 'stdout', stepNs = 1000n): IngestLine[] =>
  Array.from({ length: n }, (_, k) => ({ tsNs: T0 + BigInt(from + k) * stepNs, stream, text: text(from + k) }));

function all(store: LogStore, q: Parameters<LogStore['search']>[0]): StoredLine[] {
  const out: StoredLine[] = [];
  let before: string | undefined;
  for (;;) {
    const page = store.search({ ...q, ...(before ? { before } : {}) });
    out.push(...page.lines);
    if (!page.next) return out;
    before = page.next;
  }
}

describe('time helpers', () => {
  test('parse and format RFC3339Nano exactly', () => {
    assert.equal(parseTimeNs('2023-11-14T22:13:20.123456789Z'), 1_700_000_000_123_456_789n);
    assert.equal(parseTimeNs('2023-11-14T22:13:20Z'), 1_700_000_000_000_000_000n);
    assert.equal(parseTimeNs('2023-11-14T22:13:20.5Z'), 1_700_000_000_500_000_000n);
    assert.equal(parseTimeNs('2023-11-14T23:13:20.000000001+01:00'), 1_700_000_000_000_000_001n);
    assert.equal(parseTimeNs('yesterday'), undefined);
    assert.equal(formatTimeNs(1_700_000_000_000_000_042n), '2023-11-14T22:13:20.000000042Z');
    assert.equal(dockerSince(1_700_000_000_000_000_042n), '1700000000.000000042');
  });
});

describe('detectLevel', () => {
  const cases: [string, string | null][] = [
    ['{"level":30,"msg":"hi"}', 'info'],
    ['{"level":50,"msg":"boom"}', 'error'],
    ['{"level":60}', 'fatal'],
    ['{"level":"warn","msg":"x"}', 'warn'],
    ['{"severity":"ERROR"}', 'error'],
    ['{"lvl":"debug"}', 'debug'],
    ['{"msg":"no level"}', null],
    ['{not json}', null],
    ['ERROR something broke', 'error'],
    ['[WARN] disk almost full', 'warn'],
    ['info: listening on 8080', 'info'],
    ['DEBUG', 'debug'],
    ['Error: ENOENT', 'error'],
    ['INFORMATIONAL text', null],
    ['errors happen', null],
    ['plain line', null],
    ['', null],
  ];
  for (const [text, want] of cases) test(JSON.stringify(text), () => assert.equal(detectLevel(text), want));
});

describe('compileText', () => {
  test('quotes every token: FTS5 syntax in the input is inert', () => {
    assert.deepEqual(compileText('error'), { match: '"error"', likes: [], empty: false });
    assert.deepEqual(compileText('conn* refused'), { match: '"conn"* AND "refused"', likes: [], empty: false });
    const c = compileText('NEAR(a b) OR "x y" -z');
    assert.equal(c.match, '"NEAR" AND "a" AND "b" AND "OR" AND "x" AND "y" AND "z"');
    assert.deepEqual(c.likes, ['%NEAR(a%', '%b)%', '%x y%', '%-z%']);
    assert.deepEqual(compileText('100%_done'), { match: '"100" AND "done"', likes: ['%100\\%\\_done%'], empty: false });
    assert.equal(compileText('   ').empty, true);
  });
});

describe('LogStore', () => {
  test('append + search: newest first, paginated, every line exactly once', () => {
    const store = new LogStore(tempDb());
    store.append({ source: src('c1'), lines: lines(0, 1000, (i) => `line ${i} from c1`) });
    store.append({ source: src('c2'), lines: lines(1000, 500, (i) => `line ${i} from c2`, 'stderr') });
    const got = all(store, { limit: 77 });
    assert.equal(got.length, 1500);
    assert.equal(new Set(got.map((l) => l.id)).size, 1500);
    for (let i = 1; i < got.length; i++) assert.ok(BigInt(got[i - 1]!.id) > BigInt(got[i]!.id), 'newest first');
    assert.equal(got[0]!.text, 'line 1499 from c2');
    assert.equal(got[0]!.stream, 'stderr');
    assert.equal(got[0]!.containerId, 'c2');
    assert.equal(got[0]!.instance, 'c2-i');
    assert.equal(got[0]!.time, formatTimeNs(T0 + 1499n * 1000n));
    assert.equal(got.at(-1)!.text, 'line 0 from c1');
    assert.equal(store.stats().lines, 1500);
    store.close();
  });

  test('filters: app, env, service, instance, container, stream, level, time range, text', () => {
    const store = new LogStore(tempDb());
    store.append([
      { source: src('a1', { app: 'shop', env: 'prod', service: 'web', instance: 'w1' }), lines: lines(0, 10, (i) => `INFO served request ${i} path=/api/v1/items`) },
      { source: src('a2', { app: 'shop', env: 'prod', service: 'web', instance: 'w2' }), lines: lines(10, 10, (i) => `ERROR timeout talking to db attempt=${i}`, 'stderr') },
      { source: src('a3', { app: 'shop', env: 'test', service: 'worker', instance: 'k1' }), lines: lines(20, 10, (i) => `{"level":40,"msg":"queue lag ${i}"}`) },
      { source: src('b1', { app: 'blog', env: 'prod', service: 'web', instance: 'b1' }), lines: lines(30, 10, (i) => `debug: render post ${i}`) },
    ]);
    const count = (q: Parameters<LogStore['search']>[0]) => all(store, { limit: 1000, ...q }).length;
    assert.equal(count({}), 40);
    assert.equal(count({ app: 'shop' }), 30);
    assert.equal(count({ app: 'shop', env: 'prod' }), 20);
    assert.equal(count({ app: 'shop', service: 'worker' }), 10);
    assert.equal(count({ instance: 'w2' }), 10);
    assert.equal(count({ containerId: 'b1' }), 10);
    assert.equal(count({ app: 'nope' }), 0);
    assert.equal(count({ stream: 'stderr' }), 10);
    assert.equal(count({ level: 'error' }), 10);
    assert.equal(count({ level: 'warn' }), 10);
    assert.equal(count({ level: ['warn', 'debug'] }), 20);
    assert.equal(count({ level: 'info', app: 'shop' }), 10);
    const ms = (i: number) => Number((T0 + BigInt(i) * 1000n) / 1_000_000n);
    // Lines are 1 µs apart: all 40 fall within the same millisecond.
    assert.equal(count({ since: ms(0) }), 40);
    assert.equal(count({ until: ms(0) }), 0);
    assert.equal(count({ since: ms(0) + 1 }), 0);
    assert.equal(count({ text: 'timeout' }), 10);
    assert.equal(count({ text: 'TIMEOUT db' }), 10);
    assert.equal(count({ text: 'timeout web' }), 0);
    assert.equal(count({ text: 'time*' }), 10);
    assert.equal(count({ text: 'attempt=17' }), 1);
    assert.equal(count({ text: 'path=/api/v1/items' }), 10);
    assert.equal(count({ text: '"talking to db"' }), 10);
    assert.equal(count({ text: '"db talking"' }), 0);
    assert.equal(count({ text: 'lag', app: 'shop', env: 'test' }), 10);
    assert.equal(count({ text: 'lag', app: 'shop', env: 'prod' }), 0);
    assert.equal(count({ text: 'request 5', stream: 'stdout' }), 1);
    assert.equal(count({ text: 'NEAR("x" OR' }), 0, 'FTS5 syntax is inert, never an error');
    assert.throws(() => store.search({ before: 'abc' }), (e: Error) => e instanceof InvalidInput && /before: .* is not a log cursor/.test(e.message));
    store.close();
  });

  test('purgeApp deletes every line of the app in every partition (and its FTS entries, sources, checkpoints), nothing of others', async () => {
    const path = tempDb();
    const store = new LogStore(path, { partitionMaxLines: 5000 });
    // 12000 lines of app gone in two containers across two partitions (more than one purge batch), and another app's.
    store.append({ source: src('g1', { app: 'gone' }), lines: lines(0, 6000, (i) => `gone zebra ${i}`), checkpoint: { tsNs: T0, countAtTs: 1 } });
    store.append({ source: src('k1', { app: 'kept' }), lines: lines(6000, 10, (i) => `kept zebra ${i}`) });
    store.append({ source: src('g2', { app: 'gone' }), lines: lines(6010, 6000, (i) => `gone zebra ${i}`) });
    assert.equal(store.appSourceCount('gone'), 2);
    assert.equal(await store.purgeApp('gone'), 12000);
    assert.equal(all(store, { app: 'gone', limit: 10_000 }).length, 0);
    assert.equal(all(store, { text: 'zebra', limit: 10_000 }).length, 10, 'the FTS index finds only the other app');
    assert.equal(all(store, { app: 'kept', limit: 10_000 }).length, 10);
    assert.equal(store.appSourceCount('gone'), 0);
    assert.equal(store.checkpoint('g1'), undefined);
    assert.equal(await store.purgeApp('gone'), 0, 'idempotent');
    store.close();
    const again = new LogStore(path);
    assert.equal(again.appSourceCount('gone'), 0);
    assert.equal(all(again, { limit: 10_000 }).length, 10);
    again.close();
  });

  test('out-of-range bounds are a clear InvalidInput or clamped, never an overflow in SQLite', () => {
    const store = new LogStore(tempDb());
    store.append({ source: src('c'), lines: lines(0, 5, (i) => `line ${i}`) });
    // 20 digits, and 19 digits beyond a signed 64-bit integer: not cursors.
    for (const before of ['99999999999999999999', '9999999999999999999']) {
      assert.throws(() => store.search({ before }), (e: Error) => e instanceof InvalidInput && /not a log cursor/.test(e.message));
    }
    assert.equal(store.search({ before: '9223372036854775807' }).lines.length, 5, 'the largest key is a cursor');
    // A since/until beyond int64 nanoseconds (year 2262+) or before 1970 is clamped.
    assert.equal(store.search({ until: 8.64e15 }).lines.length, 5);
    assert.equal(store.search({ since: 8.64e15 }).lines.length, 0);
    assert.equal(store.search({ since: -8.64e27 }).lines.length, 5);
    assert.throws(() => store.search({ since: Number.NaN }), InvalidInput);
    store.close();
  });

  test('time filters in milliseconds', () => {
    const store = new LogStore(tempDb());
    const ms = 1_700_000_000_000;
    store.append({ source: src('t'), lines: Array.from({ length: 100 }, (_, i) => ({ tsNs: BigInt(ms + i * 1000) * 1_000_000n, stream: 'stdout' as const, text: `tick ${i}` })) });
    const got = all(store, { since: ms + 10_000, until: ms + 20_000 });
    assert.deepEqual(got.map((l) => l.text), Array.from({ length: 10 }, (_, k) => `tick ${19 - k}`));
    assert.equal(all(store, { since: ms + 10_000, until: ms + 20_000, text: 'tick 15' }).length, 1);
    store.close();
  });

  test('search spans partitions and merges them newest first, even when they overlap in time', () => {
    const store = new LogStore(tempDb());
    store.append({ source: src('p1'), lines: lines(0, 100, (i) => `alpha ${i}`, 'stdout', 2000n) });
    store.sealPartition();
    // A late reader catching up: older timestamps land in the newer partition.
    store.append({ source: src('p2'), lines: lines(0, 100, (i) => `alpha late ${i}`, 'stdout', 2000n).map((l) => ({ ...l, tsNs: l.tsNs + 1000n })) });
    store.sealPartition();
    store.append({ source: src('p3'), lines: lines(200, 50, (i) => `beta ${i}`, 'stdout', 2000n) });
    assert.equal(store.stats().partitions, 3);
    const got = all(store, { text: 'alpha', limit: 7 });
    assert.equal(got.length, 200);
    for (let i = 1; i < got.length; i++) assert.ok(BigInt(got[i - 1]!.id) > BigInt(got[i]!.id));
    assert.equal(got[0]!.text, 'alpha late 99');
    assert.equal(got[1]!.text, 'alpha 99');
    assert.equal(all(store, { limit: 33 }).length, 250);
    assert.equal(store.search({ limit: 5 }).lines[0]!.text, 'beta 249');
    store.close();
  });

  test('equal timestamps get distinct keys; checkpoints commit with lines and survive reopening', () => {
    const path = tempDb();
    let store = new LogStore(path);
    const ts = T0 + 5n;
    const same: IngestLine[] = Array.from({ length: 5 }, (_, i) => ({ tsNs: ts, stream: 'stdout', text: `same ${i}` }));
    store.append({ source: src('k'), lines: same, checkpoint: { tsNs: ts, countAtTs: 5 } });
    store.append({ source: src('other'), lines: [{ tsNs: ts, stream: 'stdout', text: 'other same' }] });
    assert.deepEqual(store.checkpoint('k'), { tsNs: ts, countAtTs: 5 });
    assert.equal(store.checkpoint('other'), undefined);
    store.close();
    store = new LogStore(path);
    assert.deepEqual(store.checkpoint('k'), { tsNs: ts, countAtTs: 5 });
    const got = all(store, {});
    assert.equal(got.length, 6);
    assert.equal(new Set(got.map((l) => l.id)).size, 6);
    assert.deepEqual(all(store, { containerId: 'k' }).map((l) => l.text).sort(), ['same 0', 'same 1', 'same 2', 'same 3', 'same 4']);
    // Appends continue in the partition that was current.
    store.append({ source: src('k'), lines: lines(10, 1, () => 'after reopen'), checkpoint: { tsNs: T0 + 10_000n, countAtTs: 1 } });
    assert.equal(store.search({ limit: 1 }).lines[0]!.text, 'after reopen');
    assert.deepEqual(store.checkpoint('k'), { tsNs: T0 + 10_000n, countAtTs: 1 });
    store.forget('k');
    assert.equal(store.checkpoint('k'), undefined);
    store.close();
  });

  test('a failing append stores neither lines nor checkpoint', () => {
    const store = new LogStore(tempDb());
    const bad = [{ tsNs: T0, stream: 'stdout' as const, text: 'ok' }, { tsNs: 'not a bigint' as unknown as bigint, stream: 'stdout' as const, text: 'bad' }];
    assert.throws(() => store.append({ source: src('f'), lines: bad, checkpoint: { tsNs: T0 + 1n, countAtTs: 1 } }));
    assert.equal(store.search({}).lines.length, 0);
    assert.equal(store.checkpoint('f'), undefined);
    store.close();
  });

  test('retention by age drops old partitions', async () => {
    let now = 1_700_000_000_000;
    const store = new LogStore(tempDb(), { clock: { now: () => now } });
    const at = (ms: number, n: number, tag: string): IngestLine[] =>
      Array.from({ length: n }, (_, i) => ({ tsNs: BigInt(ms) * 1_000_000n + BigInt(i), stream: 'stdout', text: `${tag} ${i}` }));
    store.append({ source: src('r'), lines: at(now, 100, 'old') });
    now += 1800_000;
    // Seals the partition (older than a tenth of maxAge) but keeps its lines (younger than maxAge).
    assert.equal(await store.enforce({ maxAgeMs: 3600_000 }), 0);
    assert.equal(store.stats().partitions, 2);
    store.append({ source: src('r'), lines: at(now, 100, 'new') });
    now += 1860_000;
    const dropped = await store.enforce({ maxAgeMs: 3600_000 });
    assert.equal(dropped, 100);
    const got = all(store, {});
    assert.equal(got.length, 100);
    assert.ok(got.every((l) => l.text.startsWith('new')));
    assert.equal(all(store, { text: 'old' }).length, 0);
    store.close();
  });

  test('retention by size keeps the file under the bound and drops the oldest lines first', async () => {
    const store = new LogStore(tempDb());
    const maxBytes = 4 * 1024 * 1024;
    const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet'];
    let i = 0;
    let dropped = 0;
    for (let round = 0; round < 40; round++) {
      store.append({
        source: src('s'),
        lines: Array.from({ length: 2000 }, () => {
          const k = i++;
          return { tsNs: T0 + BigInt(k) * 1000n, stream: 'stdout' as const, text: `n=${k} ${words[k % 10]} ${words[(k * 7) % 10]} payload ${k.toString(36).repeat(4)}` };
        }),
      });
      dropped += await store.enforce({ maxBytes });
      assert.ok(store.sizeBytes() <= maxBytes, `round ${round}: ${store.sizeBytes()} > ${maxBytes}`);
    }
    const st = store.stats();
    assert.ok(dropped > 0, 'something was dropped');
    assert.equal(st.lines + dropped, i);
    assert.ok(st.lines > 5000, `kept a useful share (${st.lines})`);
    // The newest lines survive; the oldest are gone.
    assert.equal(store.search({ limit: 1 }).lines[0]!.text.split(' ')[0], `n=${i - 1}`);
    assert.equal(all(store, { text: 'n=0' }).length, 0);
    assert.equal(all(store, { text: `n=${i - 1}` }).length, 1);
    store.close();
  });

  /** Kept line numbers (`n=K ...`), asserting each appears once. */
  function keptNumbers(store: LogStore, q: Parameters<LogStore['search']>[0] = {}): number[] {
    const got = all(store, { limit: 5000, ...q });
    assert.equal(new Set(got.map((l) => l.id)).size, got.length, 'ids unique');
    const ns = got.map((l) => Number(/^n=(\d+) /.exec(l.text)![1]));
    assert.equal(new Set(ns).size, ns.length, 'no line twice');
    return ns.sort((a, b) => a - b);
  }
  const burstText = (k: number) => `n=${k} GET /api/v1/orders/${k % 997} status=200 took ${k % 300}ms user=${(k * 7919) % 10007}`;

  test('a burst bigger than the size bound, stored before any enforce, keeps its newest lines and drops its oldest', async () => {
    const maxBytes = 1024 * 1024;
    for (const oneCall of [true, false]) {
      const store = new LogStore(tempDb());
      store.setRetention({ maxBytes });
      const N = 20_000;
      const burst = lines(0, N, burstText);
      // One append of the whole burst, or the collector's way: batches of 5,000 with a checkpoint each.
      if (oneCall) store.append({ source: src('b'), lines: burst, checkpoint: { tsNs: burst.at(-1)!.tsNs, countAtTs: 1 } });
      else for (let i = 0; i < N; i += 5000) store.append({ source: src('b'), lines: burst.slice(i, i + 5000), checkpoint: { tsNs: burst[i + 4999]!.tsNs, countAtTs: 1 } });
      const before = store.stats();
      assert.equal(before.lines, N);
      assert.ok(before.bytes > 2 * maxBytes, `the burst outgrew the bound (${before.bytes})`);
      assert.ok(before.partitions >= 10, `sealed by size as it went in (${before.partitions} partitions)`);
      const perLine = before.bytes / N;
      const dropped = await store.enforce({ maxBytes });
      const st = store.stats();
      assert.ok(store.sizeBytes() <= maxBytes, `within the bound: ${store.sizeBytes()} <= ${maxBytes}`);
      assert.equal(st.lines + dropped, N, 'every line either kept or counted as dropped');
      assert.ok(st.lines >= (0.6 * maxBytes) / perLine, `kept most of what fits (${st.lines} lines of ~${Math.round(maxBytes / perLine)})`);
      // The newest line is there, and what is kept is the newest lines without a gap: the oldest went.
      const kept = keptNumbers(store);
      assert.equal(kept.length, st.lines);
      assert.equal(kept.at(-1), N - 1);
      assert.equal(kept[0], N - st.lines);
      assert.equal(store.search({ limit: 1 }).lines[0]!.text, burstText(N - 1));
      assert.equal(all(store, { text: 'n=0' }).length, 0);
      assert.equal(all(store, { text: `n=${N - 1}` }).length, 1, 'the FTS index finds the newest line');
      assert.deepEqual(store.checkpoint('b'), { tsNs: burst.at(-1)!.tsNs, countAtTs: 1 }, 'checkpoint untouched by sealing and retention');
      // A second round with nothing new drops nothing more.
      assert.equal(await store.enforce({ maxBytes }), 0);
      store.close();
    }
  });

  test('several containers bursting together: retention drops the oldest lines of all, keeps the newest of each', async () => {
    const maxBytes = 1024 * 1024;
    const store = new LogStore(tempDb());
    store.setRetention({ maxBytes });
    const ids = ['m1', 'm2', 'm3'];
    const N = 22_500;
    // Interleaved in time, flushed together in batches of 4,500 as the collector does (one transaction each).
    const byLine = (k: number) => ({ tsNs: T0 + BigInt(k) * 1000n, stream: 'stdout' as const, text: burstText(k) });
    for (let i = 0; i < N; i += 4500) {
      store.append(ids.map((id, c) => {
        const ls = Array.from({ length: 1500 }, (_, j) => byLine(i + j * 3 + c));
        return { source: src(id), lines: ls, checkpoint: { tsNs: ls.at(-1)!.tsNs, countAtTs: 1 } };
      }));
    }
    assert.equal(store.stats().lines, N);
    const dropped = await store.enforce({ maxBytes });
    const st = store.stats();
    assert.ok(dropped > N / 2, `most of the burst was beyond the bound (${dropped})`);
    assert.ok(store.sizeBytes() <= maxBytes, `within the bound: ${store.sizeBytes()}`);
    assert.equal(st.lines + dropped, N);
    // Across containers: exactly the newest st.lines lines, each once.
    const kept = keptNumbers(store);
    assert.deepEqual([kept.length, kept[0], kept.at(-1)], [st.lines, N - st.lines, N - 1]);
    for (const [c, id] of ids.entries()) {
      const mine = keptNumbers(store, { containerId: id });
      assert.equal(mine.at(-1), N - 3 + c, `${id}'s newest line is kept`);
      assert.ok(mine.every((k) => k % 3 === c), `${id}'s lines are its own`);
      assert.deepEqual(store.checkpoint(id), { tsNs: T0 + BigInt(N - 3 + c) * 1000n, countAtTs: 1 });
    }
    store.close();
  });

  test('sealing mid-append: never inside a run of equal timestamps, and a failed append leaves no partition behind', () => {
    const path = tempDb();
    const store = new LogStore(path);
    store.setRetention({ maxBytes: 1024 * 1024 }); // partitions of ~100 KiB (estimated), ~700 of the 'ok' lines
    const ts = T0 + 500n;
    // 300 lines (~250 KiB) in the same nanosecond: their keys are made unique within one partition, so it is not split.
    store.append({ source: src('e'), lines: Array.from({ length: 300 }, (_, i) => ({ tsNs: ts, stream: 'stdout' as const, text: `same instant ${i} ${'y'.repeat(400)}` })) });
    assert.equal(store.stats().partitions, 1);
    // The next append first seals that full partition (committed on its own), then fails half-way.
    const parts = store.stats().partitions + 1;
    const good = lines(10_000, 3000, (i) => `ok ${i} ${'z'.repeat(40)}`);
    const bad = [...good, { tsNs: 'not a bigint' as unknown as bigint, stream: 'stdout' as const, text: 'bad' }];
    assert.throws(() => store.append({ source: src('e'), lines: bad, checkpoint: { tsNs: T0 + 99n, countAtTs: 1 } }));
    assert.equal(store.stats().partitions, parts, 'partitions created by the failed append are gone');
    assert.equal(store.stats().lines, 300);
    assert.equal(store.checkpoint('e'), undefined);
    // The store goes on as before: the same lines now go in, split over several partitions.
    store.append({ source: src('e'), lines: good, checkpoint: { tsNs: good.at(-1)!.tsNs, countAtTs: 1 } });
    assert.ok(store.stats().partitions >= parts + 3, `sealed as it went (${store.stats().partitions})`);
    const got = all(store, { limit: 1000 });
    assert.equal(got.length, 3300);
    assert.equal(new Set(got.map((l) => l.id)).size, 3300);
    assert.equal(got[0]!.text, `ok 12999 ${'z'.repeat(40)}`);
    store.close();
    const again = new LogStore(path);
    assert.equal(all(again, { limit: 1000 }).length, 3300, 'the partitions and their counts survive reopening');
    assert.equal(again.stats().lines, 3300);
    again.close();
  });

  test('subscribe delivers appended lines that match the filter', () => {
    const store = new LogStore(tempDb());
    const got: StoredLine[] = [];
    const off = store.subscribe({ app: 'shop', service: 'web', text: 'hello' }, (l) => got.push(l));
    store.append([
      { source: src('x1'), lines: lines(0, 3, (i) => `hello ${i}`) },
      { source: src('x2'), lines: lines(3, 3, (i) => `bye ${i}`) },
      { source: src('y1', { service: 'worker' }), lines: lines(6, 3, (i) => `hello ${i}`) },
    ]);
    assert.deepEqual(got.map((l) => `${l.instance} ${l.text}`), ['x1-i hello 0', 'x1-i hello 1', 'x1-i hello 2']);
    off();
    store.append({ source: src('x1'), lines: lines(10, 1, () => 'hello again') });
    assert.equal(got.length, 3);
    store.close();
  });
});
