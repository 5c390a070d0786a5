import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue, type Result } from './work-queue.ts';
import { waitFor } from '../lib/backoff.ts';
import type { Logger } from '../core/ports.ts';

// No timing assertions here (the project forbids timed unit tests): real delays are small, waits
// are on conditions with a deadline, and assertions are on order and counts only.

interface Gate {
  promise: Promise<void>;
  open: () => void;
}
function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

const until = (what: string, check: () => boolean) => waitFor(check, { timeoutMs: 5000, intervalMs: 2, what });

/** A logger that keeps warn() objects: the queue reports each retry and its delay there. */
function recordingLogger(onWarn?: (o: Record<string, unknown>) => void): Logger & { warns: Record<string, unknown>[] } {
  const warns: Record<string, unknown>[] = [];
  const l = {
    warns,
    debug() {}, info() {}, error() {},
    warn(o: object | string) {
      if (typeof o === 'object') {
        warns.push(o as Record<string, unknown>);
        onWarn?.(o as Record<string, unknown>);
      }
    },
    child: () => l,
  };
  return l;
}

/** Counts runs per key, the highest number of concurrent runs overall and per key. */
function tracker() {
  const runs: string[] = [];
  const active = new Map<string, number>();
  let activeAll = 0;
  let maxAll = 0;
  let maxPerKey = 0;
  return {
    runs,
    get activeAll() { return activeAll; },
    get maxAll() { return maxAll; },
    get maxPerKey() { return maxPerKey; },
    count: (k: string) => runs.filter((r) => r === k).length,
    async around<T>(key: string, body: () => Promise<T>): Promise<T> {
      runs.push(key);
      activeAll++;
      active.set(key, (active.get(key) ?? 0) + 1);
      maxAll = Math.max(maxAll, activeAll);
      maxPerKey = Math.max(maxPerKey, active.get(key)!);
      try {
        return await body();
      } finally {
        activeAll--;
        active.set(key, active.get(key)! - 1);
      }
    },
  };
}

/**
 * Tracks timers made through the global setTimeout while installed: `live` holds those neither fired
 * nor cleared. The queue's timers are unref()'d, so Node's own active-resource list does not show them.
 */
function timerSpy() {
  const live = new Set<unknown>();
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const h = realSet(() => {
      live.delete(h);
      fn(...args);
    }, ms);
    live.add(h);
    return h;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((h: NodeJS.Timeout | string | number | undefined) => {
    live.delete(h);
    realClear(h);
  }) as typeof clearTimeout;
  return {
    live,
    restore() {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    },
  };
}

test('a queued key is queued once: re-adds while it waits are dropped', async () => {
  const t = tracker();
  const a = gate();
  const q = new WorkQueue((key) => t.around(key, async () => { if (key === 'a') await a.promise; }), recordingLogger(), 1);
  q.add('a');
  q.add('b');
  q.add('b');
  q.add('b');
  assert.deepEqual(t.runs, ['a'], 'concurrency 1: b waits');
  a.open();
  await q.idle();
  assert.deepEqual(t.runs, ['a', 'b']);
  q.stop();
});

test('a key never runs twice at once; re-adds while it runs give exactly one more run, after it', async () => {
  const t = tracker();
  const first = gate();
  let n = 0;
  const q = new WorkQueue((key) => t.around(key, async () => { if (++n === 1) await first.promise; }), recordingLogger(), 4);
  q.add('a');
  await until('a running', () => t.activeAll === 1);
  q.add('a');
  q.add('a');
  q.add('a');
  assert.equal(t.count('a'), 1, 'not started again while running');
  first.open();
  await until('the second run', () => t.count('a') === 2);
  await q.idle();
  assert.equal(t.count('a'), 2, 'three re-adds while running collapse into one run');
  assert.equal(t.maxPerKey, 1, 'never two runs of a key at once');
  q.stop();
});

test('different keys run concurrently up to the limit, the rest in order', async () => {
  const t = tracker();
  const gates = new Map(['a', 'b', 'c', 'd'].map((k) => [k, gate()]));
  const q = new WorkQueue((key) => t.around(key, () => gates.get(key)!.promise), recordingLogger(), 2);
  for (const k of ['a', 'b', 'c', 'd']) q.add(k);
  await until('two running', () => t.activeAll === 2);
  assert.deepEqual(t.runs, ['a', 'b'], 'two at once, in the order added');
  gates.get('b')!.open();
  await until('c started', () => t.runs.includes('c'));
  assert.deepEqual(t.runs, ['a', 'b', 'c']);
  gates.get('a')!.open();
  gates.get('c')!.open();
  gates.get('d')!.open();
  await until('all ran', () => t.runs.length === 4);
  await q.idle();
  assert.deepEqual(t.runs, ['a', 'b', 'c', 'd']);
  assert.equal(t.maxAll, 2, 'never more than the concurrency limit');
  q.stop();
});

test('failures are retried with a growing delay; a success resets the delay', async () => {
  const log = recordingLogger();
  let calls = 0;
  const outcomes = ['fail', 'fail', 'ok', 'fail', 'ok'];
  const q = new WorkQueue(async () => {
    const o = outcomes[calls++];
    if (o === 'fail') throw new Error(`boom ${calls}`);
  }, log, 2);
  q.add('k');
  await until('the third run succeeds', () => calls === 3);
  await q.idle();
  assert.deepEqual(log.warns.map((w) => [w.attempt, w.retryInMs]), [[1, 200], [2, 400]], 'the retry delay doubles');
  assert.match(String(log.warns[0]!.err), /boom 1/, 'the error is logged with the retry');
  q.add('k');
  await until('fails once more, then succeeds', () => calls === 5);
  await q.idle();
  assert.deepEqual(log.warns.map((w) => [w.attempt, w.retryInMs]), [[1, 200], [2, 400], [1, 200]], 'after a success the delay starts over');
  q.stop();
});

test('requeueAfterMs runs the key again; an undefined result does not', async () => {
  const spy = timerSpy();
  let calls = 0;
  const q = new WorkQueue(async (): Promise<Result> => (++calls < 3 ? { requeueAfterMs: 5 } : undefined), recordingLogger(), 1);
  try {
    q.add('k');
    await until('three runs', () => calls === 3);
    await q.idle();
    assert.equal(spy.live.size, 0, 'no requeue pending after a run that asked for none');
  } finally {
    spy.restore();
  }
  assert.equal(calls, 3);
  q.stop();
});

test('addAfter: an earlier pending delay for the key wins over a later one', async () => {
  const spy = timerSpy();
  let calls = 0;
  const q = new WorkQueue(async () => { calls++; }, recordingLogger(), 1);
  try {
    q.addAfter('k', 5);
    q.addAfter('k', 60_000);
    assert.equal(spy.live.size, 1, 'the later one did not add a timer');
    q.addAfter('j', 60_000);
    q.addAfter('j', 5);
    assert.equal(spy.live.size, 2, 'the earlier one replaced the pending later one for j');
  } finally {
    spy.restore();
  }
  await until('k and j ran', () => calls === 2);
  await q.idle();
  q.stop();
});

test('stop(): pending retry and requeue timers are cleared and nothing new starts', async () => {
  const spy = timerSpy();
  let warned!: () => void;
  const failed = new Promise<void>((r) => (warned = r));
  const log = recordingLogger(() => warned());
  const t = tracker();
  const q = new WorkQueue((key) => t.around(key, async () => { if (key === 'bad') throw new Error('boom'); }), log, 2);
  try {
    q.add('bad');
    q.addAfter('later', 60_000);
    await failed;
    await q.idle();
    assert.equal(spy.live.size, 2, 'a retry timer for bad and the requeue of later are pending');
    q.stop();
    assert.equal(spy.live.size, 0, 'stop() clears every timer it made (the process can exit)');
    q.add('new');
    q.addAfter('new', 0);
    assert.equal(spy.live.size, 0, 'no timers after stop');
  } finally {
    spy.restore();
  }
  await q.idle();
  assert.deepEqual(t.runs, ['bad']);
});

test('stop() while keys wait for a worker: they are dropped and idle() resolves once running work ends', async () => {
  const t = tracker();
  const a = gate();
  const q = new WorkQueue((key) => t.around(key, async () => { if (key === 'a') await a.promise; }), recordingLogger(), 1);
  q.add('a');
  q.add('b');
  q.add('a'); // dirty: would run again after
  q.stop();
  let idle = false;
  const idlePromise = q.idle().then(() => { idle = true; });
  await new Promise((r) => setImmediate(r));
  assert.equal(idle, false, 'a is still running');
  a.open();
  // The server's close() awaits exactly this: it must not hang on work that will never start.
  await until('idle after stop', () => idle);
  await idlePromise;
  assert.deepEqual(t.runs, ['a'], 'nothing started after stop');
});

test('idle() resolves at once when empty, and only after the last run otherwise', async () => {
  const q = new WorkQueue(async () => undefined, recordingLogger(), 1);
  await q.idle();
  const g = gate();
  const t = tracker();
  const q2 = new WorkQueue((key) => t.around(key, () => g.promise), recordingLogger(), 1);
  q2.add('x');
  q2.add('y');
  let idle = false;
  void q2.idle().then(() => { idle = true; });
  await new Promise((r) => setImmediate(r));
  assert.equal(idle, false);
  g.open();
  await until('idle', () => idle);
  assert.deepEqual(t.runs, ['x', 'y'], 'idle came after both ran');
  q.stop();
  q2.stop();
});
