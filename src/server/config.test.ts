import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './config.ts';

test('BERTH_NICE: -5 unless set; 0 keeps the priority; anything outside -20..19 or not whole is refused naming the variable and what would do', () => {
  assert.equal(loadConfig({}, {}).nice, -5);
  assert.equal(loadConfig({}, { BERTH_NICE: '0' }).nice, 0);
  assert.equal(loadConfig({}, { BERTH_NICE: '-20' }).nice, -20);
  assert.equal(loadConfig({}, { BERTH_NICE: '19' }).nice, 19);
  for (const bad of ['-21', '20', '1.5', 'high', '', ' ']) {
    assert.throws(() => loadConfig({}, { BERTH_NICE: bad }), (e: Error) => {
      assert.match(e.message, new RegExp(`^BERTH_NICE "${bad.replace('.', '\\.')}" is not a nice value: write a whole number from -20 \\(first\\) to 19 \\(last\\)`));
      return true;
    });
  }
});
