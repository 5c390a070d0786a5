import { RateLimited } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';

/**
 * Token buckets by key (an address, a user name): `capacity` attempts at once, refilled at
 * `perMinute`. In memory: a restart forgets them, which costs an attacker a restart of Berth per
 * burst. Keys not touched for long are dropped so the map cannot grow without bound.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly o: { capacity: number; perMinute: number; clock: Clock; what: string; maxKeys?: number }) {}

  /** Throws RateLimited if `key` has no attempt left, without taking one. */
  check(key: string): void {
    const b = this.buckets.get(key);
    if (!b) return;
    const rate = this.o.perMinute / 60_000;
    const tokens = Math.min(this.o.capacity, b.tokens + (this.o.clock.now() - b.at) * rate);
    if (tokens < 1) {
      const retryAfterS = Math.max(1, Math.ceil((1 - tokens) / rate / 1000));
      throw new RateLimited(`too many ${this.o.what}: try again in ${retryAfterS} s`, retryAfterS);
    }
  }

  /** Takes one attempt for `key`, or throws RateLimited saying when to try again. */
  take(key: string): void {
    const now = this.o.clock.now();
    const rate = this.o.perMinute / 60_000;
    const b = this.buckets.get(key) ?? { tokens: this.o.capacity, at: now };
    b.tokens = Math.min(this.o.capacity, b.tokens + (now - b.at) * rate);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(key, b);
      const retryAfterS = Math.max(1, Math.ceil((1 - b.tokens) / rate / 1000));
      throw new RateLimited(`too many ${this.o.what}: try again in ${retryAfterS} s`, retryAfterS);
    }
    b.tokens -= 1;
    this.buckets.delete(key);
    this.buckets.set(key, b);
    // Oldest-touched first: a full map drops the keys idle the longest.
    if (this.buckets.size > (this.o.maxKeys ?? 10_000)) this.buckets.delete(this.buckets.keys().next().value!);
  }
}
