import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layout } from './graph-layout.ts';

const at = (r: { name: string; layer: number; row: number }[]) => Object.fromEntries(r.map((x) => [x.name, [x.layer, x.row]]));

test('a service sits one layer right of the deepest service it depends on', () => {
  const r = at(layout([
    { name: 'web', deps: ['api'] }, { name: 'api', deps: ['db', 'cache'] }, { name: 'db', deps: [] }, { name: 'cache', deps: [] }, { name: 'worker', deps: ['db'] },
  ]));
  assert.deepEqual(r.db?.[0], 0);
  assert.deepEqual(r.cache?.[0], 0);
  assert.deepEqual(r.api?.[0], 1);
  assert.deepEqual(r.worker?.[0], 1);
  assert.deepEqual(r.web?.[0], 2);
  // Rows within a layer are distinct.
  assert.notEqual(r.api?.[1], r.worker?.[1]);
});

test('cycles and unknown dependencies do not hang or crash the layout', () => {
  const r = layout([{ name: 'a', deps: ['b'] }, { name: 'b', deps: ['a'] }, { name: 'c', deps: ['missing'] }]);
  assert.equal(r.length, 3);
  assert.ok(r.every((x) => Number.isInteger(x.layer) && x.layer >= 0));
});
