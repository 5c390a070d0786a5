import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LATENCY_BUCKETS, MetricsStore, histQuantile, latencyBucket, type PointInput } from './metrics-store.ts';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

function clockAt(t: number) {
  const c = { t, now: () => c.t };
  return c;
}

function cpu(ts: number, v: number, target = 'i-1'): PointInput {
  return { kind: 'cpu', app: 'shop', env: 'prod', service: 'web', target, ts, n: 1, sum: v, max: v };
}

function http(ts: number, latencies: number[], statuses: number[]): PointInput {
  const hist = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  for (const l of latencies) hist[latencyBucket(l)]!++;
  const cls = (c: number) => statuses.filter((s) => Math.floor(s / 100) === c).length;
  return {
    kind: 'http', app: 'shop', env: 'prod', service: 'web', target: 'shop-prod-web-0', ts, n: latencies.length,
    sum: latencies.reduce((a, b) => a + b, 0), max: Math.max(...latencies), hist,
    status: { s2xx: cls(2), s3xx: cls(3), s4xx: cls(4), s5xx: cls(5) },
  };
}

test('contributions to one 10 s bucket add up; gauges answer avg and max', () => {
  const clock = clockAt(T0 + 60_000);
  const s = new MetricsStore(':memory:', { clock });
  s.record([cpu(T0 + 1000, 10), cpu(T0 + 9000, 30), cpu(T0 + 10_000, 50)]);
  const r = s.query({ kind: 'cpu', app: 'shop', from: T0, to: T0 + 60_000 });
  assert.equal(r.resolutionMs, 10_000);
  assert.equal(r.series.length, 1);
  assert.deepEqual(r.series[0]!.points.map((p) => [p.ts - T0, p.avg, p.max]), [[0, 20, 30], [10_000, 50, 50]]);
  s.close();
});

test('rollups: 1 min and 1 h buckets keep avg/max for gauges and sums, classes and percentiles for http', () => {
  const clock = clockAt(T0);
  const s = new MetricsStore(':memory:', { clock });
  const pts: PointInput[] = [];
  for (let i = 0; i < 12; i++) pts.push(cpu(T0 + i * 10_000, i < 6 ? 10 : 20));
  // 100 requests over two minutes: 90 fast (2 ms), 10 slow (400 ms), 5 of them 5xx.
  pts.push(http(T0 + 5_000, new Array(45).fill(0.002), [...new Array(40).fill(200), ...new Array(5).fill(404)]));
  pts.push(http(T0 + 65_000, [...new Array(45).fill(0.002), ...new Array(10).fill(0.4)], [...new Array(50).fill(200), ...new Array(5).fill(503)]));
  s.record(pts);
  clock.t = T0 + 2 * 3_600_000;
  s.rollup();
  const m = s.query({ kind: 'cpu', from: T0, to: T0 + 120_000, step: 60_000 });
  assert.equal(m.resolutionMs, 60_000);
  assert.deepEqual(m.series[0]!.points.map((p) => [p.avg, p.max]), [[10, 10], [20, 20]]);
  const h = s.query({ kind: 'http', from: T0, to: T0 + 3_600_000, step: 3_600_000 });
  assert.equal(h.resolutionMs, 3_600_000);
  const p = h.series[0]!.points[0]!;
  assert.equal(p.n, 100);
  assert.deepEqual([p.s2xx, p.s3xx, p.s4xx, p.s5xx], [90, 0, 5, 5]);
  assert.ok(p.p50! > 0.001 && p.p50! <= 0.0025, `p50 ${p.p50}`);
  assert.ok(p.p95! > 0.25 && p.p95! <= 0.4, `p95 ${p.p95}`);
  assert.equal(h.series[0]!.key.target, 'shop-prod-web-0');
  // Late writes into an already rolled-up minute are picked up by the next rollup.
  clock.t = T0 + 130_000;
  s.record([http(T0 + 70_000, [0.002], [200])]);
  s.rollup();
  const again = s.query({ kind: 'http', from: T0, to: T0 + 120_000, step: 60_000 });
  assert.deepEqual(again.series[0]!.points.map((x) => x.n), [45, 56]);
  assert.equal(again.series[0]!.points[1]!.rate, 56 / 60);
  s.close();
});

test('groupBy service sums instances; filters select series', () => {
  const clock = clockAt(T0 + 10_000);
  const s = new MetricsStore(':memory:', { clock });
  s.record([cpu(T0, 10, 'i-1'), cpu(T0, 30, 'i-2'), { ...cpu(T0, 99, 'i-9'), service: 'worker' }]);
  const g = s.query({ kind: 'cpu', app: 'shop', service: 'web', from: T0, to: T0 + 10_000, groupBy: 'service' });
  assert.equal(g.series.length, 1);
  assert.equal(g.series[0]!.points[0]!.avg, 40);
  assert.equal(s.query({ kind: 'cpu', target: 'i-2', from: T0, to: T0 + 10_000 }).series[0]!.points[0]!.avg, 30);
  assert.equal(s.query({ kind: 'cpu', app: 'other', from: T0, to: T0 + 10_000 }).series.length, 0);
  s.close();
});

test('retention: prune deletes old rows per resolution in bounded chunks and forgets empty series', () => {
  const clock = clockAt(T0);
  const s = new MetricsStore(':memory:', { clock, pruneChunk: 10, maxChunks: 2 });
  const pts: PointInput[] = [];
  for (let i = 0; i < 50; i++) pts.push(cpu(T0 + i * 10_000, 1));
  s.record(pts);
  clock.t = T0 + 3_600_000;
  s.rollup();
  assert.deepEqual(s.counts(), { series: 1, points_10s: 50, points_1m: 9, points_1h: 1 });
  // A day later the 10 s points expire, but a call deletes at most 2 chunks of 10.
  clock.t = T0 + 25 * 3_600_000;
  assert.equal(s.prune(), 20);
  assert.equal(s.prune(), 20);
  assert.equal(s.prune(), 10);
  assert.deepEqual(s.counts(), { series: 1, points_10s: 0, points_1m: 9, points_1h: 1 });
  // Queries far back fall through to the coarser resolution that still has the data.
  assert.equal(s.query({ kind: 'cpu', from: T0, to: T0 + 600_000 }).resolutionMs, 60_000);
  clock.t = T0 + 91 * 24 * 3_600_000;
  s.prune();
  assert.deepEqual(s.counts(), { series: 0, points_10s: 0, points_1m: 0, points_1h: 0 });
  s.close();
});

test('histogram quantiles interpolate inside buckets and cap +Inf at the max', () => {
  const h = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  assert.equal(histQuantile(0.5, h, 0), undefined);
  h[latencyBucket(0.02)] = 10; // (0.01, 0.025]
  assert.ok(Math.abs(histQuantile(0.5, h, 0.025)! - 0.0175) < 1e-9);
  assert.ok(Math.abs(histQuantile(0.5, h, 0.02)! - 0.015) < 1e-9, 'bounded by the max seen');
  const inf = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  inf[LATENCY_BUCKETS.length] = 1;
  assert.equal(histQuantile(0.99, inf, 42), 10 + (42 - 10) * 0.99);
});

test('purgeApp deletes the app\'s series and points at every resolution, nothing of other apps', () => {
  const clock = clockAt(T0 + 3_600_000);
  const s = new MetricsStore(':memory:', { clock });
  s.record([cpu(T0, 10, 'i-1'), cpu(T0, 20, 'i-2'), { ...cpu(T0, 5, 'b-1'), app: 'blog' }]);
  s.rollup();
  assert.equal(s.appSeriesCount('shop'), 2);
  assert.equal(s.purgeApp('shop'), 2);
  assert.equal(s.appSeriesCount('shop'), 0);
  assert.equal(s.appSeriesCount('blog'), 1);
  assert.deepEqual(s.query({ kind: 'cpu', app: 'shop', from: T0 - 1, to: T0 + 60_000 }).series, []);
  assert.equal(s.query({ kind: 'cpu', app: 'blog', from: T0 - 1, to: T0 + 60_000 }).series.length, 1);
  s.record([cpu(T0 + 20_000, 10, 'i-1')]);
  assert.equal(s.appSeriesCount('shop'), 1, 'a new series after the purge gets a new id');
  s.close();
});

test('httpTotals: requests and 5xx of a scope summed over its services, the highest p95 of any', () => {
  const clock = clockAt(T0 + 60_000);
  const s = new MetricsStore(':memory:', { clock });
  s.record([http(T0 + 1000, [0.01, 0.02, 0.03], [200, 500, 503]), { ...http(T0 + 2000, [2, 2], [200, 200]), service: 'api', target: 'shop-prod-api-0' }]);
  const all = s.httpTotals({ app: 'shop', from: T0, to: T0 + 60_000 });
  assert.equal(all.requests, 5);
  assert.equal(all.errors5xx, 2);
  assert.ok(all.p95 !== undefined && all.p95 >= 1, `p95 ${all.p95} is api's`);
  const web = s.httpTotals({ app: 'shop', service: 'web', from: T0, to: T0 + 60_000 });
  assert.equal(web.requests, 3);
  assert.ok(web.p95 !== undefined && web.p95 < 1);
  assert.deepEqual(s.httpTotals({ app: 'other', from: T0, to: T0 + 60_000 }), { requests: 0, errors5xx: 0 });
});
