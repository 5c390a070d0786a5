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
