import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBool, parseCount, parseCpus, parseDuration, parseSize } from './units.ts';

test('parseDuration accepts Go-style durations and returns milliseconds', () => {
  const cases: Array<[unknown, number]> = [
    ['10s', 10_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['1h', 3_600_000],
    ['1.5s', 1_500],
    ['2h45m', 9_900_000],
    ['0', 0],
    [0, 0],
    ['1500us', 2],
    ['  5s ', 5_000],
  ];
  for (const [input, want] of cases) assert.deepEqual(parseDuration(input), { value: want }, `parseDuration(${JSON.stringify(input)})`);
});

test('parseDuration rejects what Go would reject, saying what a duration looks like', () => {
  for (const input of ['10', 10, '10 seconds', '1m30', 's', '-5s', '', '1d', true]) {
    const r = parseDuration(input);
    assert.ok(r.error, `parseDuration(${JSON.stringify(input)}) should fail`);
    assert.match(r.error, /write a duration such as 10s/);
  }
});

test('parseDuration: one table for every caller (Compose, API fields, time ranges with days)', () => {
  const days = { days: true };
  const cases: Array<[unknown, { days?: boolean }, number | RegExp]> = [
    ['1m30s', {}, 90_000],
    ['10s', {}, 10_000],
    ['1h2m3.5s', {}, 3_723_500],
    ['.5s', {}, 500],
    ['250us', {}, 0],
    ['1µs', {}, 0],
    ['1ns', {}, 0],
    ['90m', {}, 5_400_000],
    ['0', days, 0],
    ['2d', days, 172_800_000],
    ['1d12h', days, 129_600_000],
    ['1.5d', days, 129_600_000],
    ['2d', {}, /"2d" is not a duration: write a duration such as 10s, 1m30s, 500ms or 1h$/],
    ['1w', days, /"1w" is not a duration: .*\(or days: 2d\)$/],
    ['5 min', {}, /"5 min" is not a duration/],
    ['1h 30m', {}, /is not a duration/],
    ['1H', {}, /is not a duration/],
    ['-1h', days, /is not a duration/],
    ['+1h', {}, /is not a duration/],
    ['1e3s', {}, /is not a duration/],
    ['10', days, /is not a duration/],
    [10, {}, /10 has no unit/],
    [null, {}, /expected a duration/],
    ['', {}, /empty duration/],
    ['99999999999999999999d', days, /"99999999999999999999d" is too long a duration/],
    ['9007199254740992ms', {}, /too long/],
    ['9007199254740991ms', {}, 9_007_199_254_740_991],
    [`${'1'.repeat(60)}s`, {}, /^"1{40}…" is too long/],
  ];
  for (const [input, o, want] of cases) {
    const r = parseDuration(input, o);
    const what = `parseDuration(${JSON.stringify(input)}, ${JSON.stringify(o)})`;
    if (typeof want === 'number') assert.deepEqual(r, { value: want }, what);
    else assert.match(r.error ?? `value ${r.value}`, want, what);
  }
});

test('parseSize uses binary multiples and is case-insensitive', () => {
  const cases: Array<[unknown, number]> = [
    ['512m', 512 * 1024 ** 2],
    ['1g', 1024 ** 3],
    ['64M', 64 * 1024 ** 2],
    ['1.5gb', 1.5 * 1024 ** 3],
    ['2GiB', 2 * 1024 ** 3],
    ['100k', 102_400],
    ['100b', 100],
    ['4096', 4096],
    [1048576, 1048576],
  ];
  for (const [input, want] of cases) assert.deepEqual(parseSize(input), { value: want }, `parseSize(${JSON.stringify(input)})`);
  for (const input of ['lots', '1q', '-1g', '1 g b', -5, null]) assert.match(parseSize(input).error ?? '', /write a size such as 512m/);
});

test('parseCount distinguishes non-numbers from numbers that are not whole', () => {
  assert.deepEqual(parseCount(3), { value: 3 });
  assert.deepEqual(parseCount('12'), { value: 12 });
  assert.deepEqual(parseCount(0), { value: 0 });
  assert.equal(parseCount('two').error, '"two" is not a number: write a whole number such as 2');
  assert.equal(parseCount('1.5').error, '"1.5" is not a whole number ≥ 0: write a whole number such as 2');
  assert.equal(parseCount(-1).error, '-1 is not a whole number ≥ 0: write a whole number such as 2');
});

test('parseCpus gives nano-CPUs and rejects zero or negative', () => {
  assert.deepEqual(parseCpus('0.5'), { value: 500_000_000 });
  assert.deepEqual(parseCpus(2), { value: 2_000_000_000 });
  assert.match(parseCpus(0).error ?? '', /not positive/);
  assert.match(parseCpus('half').error ?? '', /not a number/);
});

test('parseBool accepts booleans and their interpolated string forms', () => {
  assert.deepEqual(parseBool(true), { value: true });
  assert.deepEqual(parseBool('false'), { value: false });
  assert.deepEqual(parseBool('TRUE'), { value: true });
  assert.match(parseBool('yes').error ?? '', /write true or false/);
});
