import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkScaleMemory, formatBytes } from './capacity.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const svc = (name: string, replicas: number, memoryBytes?: number) => ({ name, replicas, ...(memoryBytes !== undefined ? { memoryBytes } : {}) });

test('a scale within the host memory fits', () => {
  const r = checkScaleMemory([svc('shop/prod/web', 2, 512 * MiB), svc('shop/prod/db', 1, GiB)], new Map([['shop/prod/web', 4]]), 4 * GiB);
  assert.equal(r.fits, true);
  assert.equal(r.totalBytes, 3 * GiB);
  assert.equal(r.scaledBytes, 2 * GiB);
  assert.equal(r.message, '');
});

test('a scale past the host memory is refused with the numbers', () => {
  const r = checkScaleMemory([svc('shop/prod/web', 2, 512 * MiB), svc('api/prod/api', 2, GiB)], new Map([['shop/prod/web', 10]]), 4 * GiB);
  assert.equal(r.fits, false);
  assert.equal(r.totalBytes, 7 * GiB);
  assert.match(r.message, /shop\/prod\/web to 10 × 512 MiB/);
  assert.match(r.message, /add up to 7 GiB \(5 GiB for the scaled service, 2 GiB for everything else\)/);
  assert.match(r.message, /host's 4 GiB/);
  assert.match(r.message, /--force/);
});

test('exactly the host memory fits; one byte more does not', () => {
  assert.equal(checkScaleMemory([svc('a/p/w', 1, GiB)], new Map([['a/p/w', 4]]), 4 * GiB).fits, true);
  assert.equal(checkScaleMemory([svc('a/p/w', 1, GiB)], new Map([['a/p/w', 4]]), 4 * GiB - 1).fits, false);
});

test('services without a limit reserve nothing; scaling them always fits', () => {
  assert.equal(checkScaleMemory([svc('a/p/w', 1), svc('a/p/x', 3, GiB)], new Map([['a/p/w', 500]]), 4 * GiB).fits, true);
});

test('a host already over its memory can still scale down (or stay)', () => {
  const services = [svc('a/p/w', 8, GiB)];
  assert.equal(checkScaleMemory(services, new Map([['a/p/w', 6]]), 4 * GiB).fits, true);
  assert.equal(checkScaleMemory(services, new Map([['a/p/w', 8]]), 4 * GiB).fits, true);
  assert.equal(checkScaleMemory(services, new Map([['a/p/w', 9]]), 4 * GiB).fits, false);
});

test('several services scaled at once count together', () => {
  const r = checkScaleMemory([svc('a/p/w', 1, GiB), svc('a/p/x', 1, GiB)], new Map([['a/p/w', 2], ['a/p/x', 3]]), 4 * GiB);
  assert.equal(r.fits, false);
  assert.match(r.message, /a\/p\/w to 2 × 1 GiB, a\/p\/x to 3 × 1 GiB/);
  assert.match(r.message, /scaled services/);
});

test('formatBytes', () => {
  assert.equal(formatBytes(512 * MiB), '512 MiB');
  assert.equal(formatBytes(1.5 * GiB), '1.5 GiB');
  assert.equal(formatBytes(100), '100 B');
});
