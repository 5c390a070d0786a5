import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Logger } from '../core/ports.ts';
import { AccessLogReader, parseUpstreamName } from './access-log.ts';
import { MetricsStore } from './metrics-store.ts';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const logger = pino({ level: 'silent' }) as unknown as Logger;

function line(tMs: number, status: number, rt: number, route = 'shop.prod.web.0'): string {
  return JSON.stringify({ time: tMs / 1000, host: 'x', route, upstream: route, method: 'GET', path: '/', status, request_time: rt, upstream_response_time: String(rt), bytes_sent: 10 }) + '\n';
}

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'berth-accesslog-'));
  const path = join(dir, 'access.json.log');
  const clock = { now: () => T0 + 60_000 };
  const store = new MetricsStore(':memory:', { clock });
  return { dir, path, store, clock };
}

test('reads incrementally, keeps a partial last line, aggregates per route and 10 s bucket', async () => {
  const { dir, path, store, clock } = setup();
  writeFileSync(path, line(T0 + 1000, 200, 0.002) + line(T0 + 2000, 404, 0.003));
  const r = new AccessLogReader({ path, store, clock, logger, fromStart: true });
  assert.equal(await r.readOnce(), 2);
  const half = line(T0 + 3000, 503, 0.3);
  appendFileSync(path, half.slice(0, 20));
  assert.equal(await r.readOnce(), 0, 'a partial line waits for its end');
  appendFileSync(path, half.slice(20) + line(T0 + 12_000, 200, 0.001, 'shop.prod.api.1'));
  assert.equal(await r.readOnce(), 2);
  assert.equal(await r.readOnce(), 0, 'nothing new');

  const res = store.query({ kind: 'http', from: T0, to: T0 + 60_000 });
  const web = res.series.find((s) => s.key.target === 'shop.prod.web.0')!;
  assert.deepEqual(web.key, { kind: 'http', app: 'shop', env: 'prod', service: 'web', target: 'shop.prod.web.0' });
  assert.equal(web.points.length, 1);
  assert.deepEqual([web.points[0]!.n, web.points[0]!.s2xx, web.points[0]!.s4xx, web.points[0]!.s5xx], [3, 1, 1, 1]);
  assert.ok(Math.abs(web.points[0]!.max - 0.3) < 1e-9);
  const api = res.series.find((s) => s.key.target === 'shop.prod.api.1')!;
  assert.equal(api.points[0]!.ts, T0 + 10_000);
  const c = r.counters.routes.get('shop.prod.web.0')!;
  assert.deepEqual(c.byClass, { '1xx': 0, '2xx': 1, '3xx': 0, '4xx': 1, '5xx': 1 });
  assert.equal(c.count, 3);
  store.close();
  rmSync(dir, { recursive: true });
});

test('truncation and rotation start over from the new file; bad lines are skipped', async () => {
  const { dir, path, store, clock } = setup();
  writeFileSync(path, line(T0, 200, 0.001).repeat(5));
  const r = new AccessLogReader({ path, store, clock, logger, fromStart: true });
  assert.equal(await r.readOnce(), 5);
  truncateSync(path, 0);
  appendFileSync(path, line(T0, 500, 0.001) + 'not json\n');
  assert.equal(await r.readOnce(), 2);
  assert.equal(r.badLines, 1);
  // Rotation: the old file moves away, a new (larger) one takes its name.
  renameSync(path, `${path}.1`);
  writeFileSync(path, line(T0, 200, 0.001).repeat(30));
  assert.equal(await r.readOnce(), 30);
  const p = store.query({ kind: 'http', from: T0, to: T0 + 10_000 }).series[0]!.points[0]!;
  assert.deepEqual([p.n, p.s2xx, p.s5xx], [36, 35, 1]);
  store.close();
  rmSync(dir, { recursive: true });
});

test('without fromStart, what the file held before the first read is not counted again', async () => {
  const { dir, path, store, clock } = setup();
  writeFileSync(path, line(T0, 200, 0.001).repeat(3));
  const r = new AccessLogReader({ path, store, clock, logger });
  assert.equal(await r.readOnce(), 0);
  appendFileSync(path, line(T0, 200, 0.001));
  assert.equal(await r.readOnce(), 1);
  store.close();
  rmSync(dir, { recursive: true });
});

test('upstream names split into app, env and service', () => {
  assert.deepEqual(parseUpstreamName('e2e.prod.web.0'), { app: 'e2e', env: 'prod', service: 'web' });
  assert.deepEqual(parseUpstreamName('shop.prod.api-gw.2'), { app: 'shop', env: 'prod', service: 'api-gw' });
  // Dashes in names split unambiguously: app a env b-c and app a-b env c are different routes.
  assert.deepEqual(parseUpstreamName('a.b-c.web.0'), { app: 'a', env: 'b-c', service: 'web' });
  assert.deepEqual(parseUpstreamName('a-b.c.web.0'), { app: 'a-b', env: 'c', service: 'web' });
  for (const bad of ['nope', 'e2e-prod-web-0', 'a.b.c', 'a.b.c.d', 'A.b.c.0', 'a..c.0', 'a.b.c.0.1']) assert.equal(parseUpstreamName(bad), undefined, bad);
});

test('requests are counted per instance that answered: the last address nginx tried, only instances of the route\'s service that exist', async () => {
  const { dir, path, store, clock } = setup();
  const at = (addr: string, status = 200, route = 'shop.prod.web.0') => JSON.stringify({ time: (T0 + 1000) / 1000, host: 'x', route, upstream: route, method: 'GET', path: '/', status, request_time: 0.004, upstream_response_time: '0.004', upstream_addr: addr, bytes_sent: 10 }) + '\n';
  writeFileSync(path, at('127.0.0.1:30001') + at('127.0.0.1:30002', 500) + at('127.0.0.1:30001, 127.0.0.1:30002', 502)
    + at('127.0.0.1:30001 : 127.0.0.1:30002') + at('') + at('-', 502) + at('127.0.0.1:39999')
    // Another service's instance at an address of web's: not web's instance.
    + at('127.0.0.1:30001', 200, 'shop.prod.api.0'));
  let live = new Set(['i-a', 'i-b']);
  const index = () => ({
    of: (o: { service: string }, addr: string) => (o.service === 'web' ? ({ '127.0.0.1:30001': 'i-a', '127.0.0.1:30002': 'i-b' } as Record<string, string>)[addr] : undefined),
    has: (id: string) => live.has(id),
  });
  const r = new AccessLogReader({ path, store, clock, logger, fromStart: true, instances: index });
  assert.equal(await r.readOnce(), 8);
  const res = store.query({ kind: 'http_instance', from: T0, to: T0 + 60_000 });
  const by = Object.fromEntries(res.series.map((s) => [s.key.target, s]));
  assert.deepEqual(Object.keys(by).sort(), ['i-a', 'i-b']);
  assert.deepEqual(by['i-a']!.key, { kind: 'http_instance', app: 'shop', env: 'prod', service: 'web', target: 'i-a' });
  assert.deepEqual([by['i-a']!.points[0]!.n, by['i-a']!.points[0]!.s2xx], [1, 1]);
  assert.deepEqual([by['i-b']!.points[0]!.n, by['i-b']!.points[0]!.s2xx, by['i-b']!.points[0]!.s5xx], [3, 1, 2]);
  assert.ok(by['i-b']!.points[0]!.p95! > 0, 'latency percentiles per instance');
  // The route series still counts every request, with or without an instance.
  const route = store.query({ kind: 'http', from: T0, to: T0 + 60_000, target: 'shop.prod.web.0' }).series[0]!.points[0]!;
  assert.equal(route.n, 7);
  assert.equal(r.counters.instances.get('i-b')!.count, 3);
  // An instance that is gone leaves the counters (bounded label values) at the next read with lines.
  live = new Set(['i-b']);
  appendFileSync(path, at('127.0.0.1:30002'));
  assert.equal(await r.readOnce(), 1);
  assert.deepEqual([...r.counters.instances.keys()], ['i-b']);
  store.close();
  rmSync(dir, { recursive: true });
});
