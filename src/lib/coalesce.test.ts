import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Coalesced } from './coalesce.ts';

test('Coalesced: requests made before a run starts share one run; a request after it gets another', async () => {
  let runs = 0;
  const c = new Coalesced(() => void runs++);
  const a = c.request();
  const b = c.request();
  c.schedule(() => assert.fail('no error expected'));
  assert.equal(runs, 0, 'nothing runs inside the caller');
  assert.equal(a, b);
  await a;
  assert.equal(runs, 1);
  await c.request();
  assert.equal(runs, 2);
});

test('Coalesced: a request made while the run is running gets a later run that sees its change', async () => {
  const seen: number[] = [];
  let value = 0;
  let c: Coalesced;
  // eslint-disable-next-line prefer-const
  c = new Coalesced(() => {
    seen.push(value);
    if (value === 0) {
      value = 1;
      void c.request();
    }
  });
  await c.request();
  await c.request();
  assert.deepEqual(seen, [0, 1]);
});

test('Coalesced: a failing run rejects its requests and goes to schedule\'s handler; the next run is clean', async () => {
  let fail = true;
  const c = new Coalesced(() => {
    if (fail) throw new Error('boom');
  });
  const errors: unknown[] = [];
  c.schedule((e) => errors.push(e));
  await assert.rejects(c.request(), /boom/);
  assert.equal(errors.length, 1);
  fail = false;
  await c.request();
});

test('Coalesced leading: after a quiet spell the run comes in a microtask (before I/O and immediates), still after the caller; requests soon after a run share the next turn', async () => {
  let runs = 0;
  const c = new Coalesced(() => void runs++, { quietMs: 1000 });
  const order: string[] = [];
  setImmediate(() => order.push(`immediate (runs ${runs})`));
  const a = c.request();
  const b = c.request();
  assert.equal(a, b, 'requests of one synchronous block share the run');
  assert.equal(runs, 0, 'nothing runs inside the caller');
  await a;
  order.push(`awaited (runs ${runs})`);
  assert.equal(runs, 1);
  // Within quietMs of the run: the next turn (setImmediate), and again one run for all of them.
  const p1 = c.request();
  const p2 = c.request();
  await Promise.resolve();
  assert.equal(runs, 1, 'not in a microtask within quietMs of the last run');
  await Promise.all([p1, p2]);
  assert.equal(runs, 2);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order.slice(0, 2), ['awaited (runs 1)', 'immediate (runs 1)'], 'the first run came before an immediate queued before the request');
});
