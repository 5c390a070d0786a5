import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimited } from '../core/errors.ts';
import { RateLimiter } from './rate-limit.ts';

test('RateLimiter: a burst of capacity, then 429 with the seconds until the next attempt; refills with time; keys are separate', () => {
  let now = 0;
  const l = new RateLimiter({ capacity: 3, perMinute: 6, clock: { now: () => now }, what: 'logins' });
  for (let i = 0; i < 3; i++) l.take('a');
  assert.throws(() => l.take('a'), (e: unknown) => e instanceof RateLimited && e.retryAfterS === 10 && /too many logins: try again in 10 s/.test(e.message));
  l.take('b');
  now += 10_000;
  l.take('a');
  assert.throws(() => l.take('a'), RateLimited);
  now += 60_000;
  for (let i = 0; i < 3; i++) l.take('a');
  assert.throws(() => l.take('a'), RateLimited);
});

test('RateLimiter: the key map is bounded', () => {
  const l = new RateLimiter({ capacity: 1, perMinute: 1, clock: { now: () => 0 }, what: 'x', maxKeys: 2 });
  l.take('a');
  l.take('b');
  l.take('c');
  l.take('a'); // 'a' was dropped as the idlest key: a fresh bucket
  assert.throws(() => l.take('c'), RateLimited);
});
