/**
 * In-process contract tests of the metrics routes (src/api/metrics-routes.ts): no token → 401, bad input → 400 naming the field, unknown →
 * 404, conflict → 409, the happy path; a refused request changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, NOW, withTestApi } from '../../test/helpers/api-inject.ts';

test('metrics routes: 401, 400 naming the parameter, 404 for an unknown app', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  await expectError(t.anon('GET', '/metrics'), 401);
  await expectError(t.anon('GET', '/v1/metrics/query?kind=cpu'), 401);
  await expectError(t.anon('GET', '/v1/top'), 401);
  await expectError(t.req('GET', '/v1/metrics/query?kind=nope'), 400, /^kind: /);
  await expectError(t.req('GET', '/v1/metrics/query?kind=cpu&app=shpo'), 404, /did you mean "shop"/);
  await expectError(t.req('GET', '/v1/top?app=shpo'), 404, /did you mean "shop"/);
}));

test('metrics routes: the happy path reads the metrics store, the latest samples and the services (Prometheus, series, top)', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web', { replicas: 2 });
  t.addService('blog', 'prod', 'web');
  const stats = { cpuPercent: 12.5, memoryBytes: 64 << 20, memoryLimitBytes: 256 << 20, netRxBytes: 0, netTxBytes: 0, blockReadBytes: 1, blockWriteBytes: 2 };
  t.samples.push({ app: 'shop', env: 'prod', service: 'web', id: 'i1', containerId: 'c1', ts: NOW - 5_000, stats });
  const key = { app: 'shop', env: 'prod', service: 'web' };
  t.metrics.record([
    { ...key, kind: 'cpu', target: 'i1', ts: NOW - 120_000, n: 1, sum: 10, max: 10 },
    { ...key, kind: 'cpu', target: 'i1', ts: NOW - 60_000, n: 1, sum: 30, max: 30 },
    { ...key, kind: 'http', target: 'shop-prod-web-80', ts: NOW - 20_000, n: 4, sum: 0.04, max: 0.02, status: { s2xx: 3, s3xx: 0, s4xx: 0, s5xx: 1 } },
  ]);

  const prom = await t.req('GET', '/metrics');
  assert.equal(prom.statusCode, 200, prom.body);
  assert.match(prom.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
  assert.match(prom.body, /^berth_container_cpu_percent\{app="shop",env="prod",service="web",instance="i1"\} 12\.5$/m);
  assert.match(prom.body, /^berth_service_replicas_desired\{app="shop",env="prod",service="web"\} 2$/m, 'the services come from the store');
  assert.match(prom.body, /^berth_service_replicas_desired\{app="blog",env="prod",service="web"\} 1$/m);

  const q = await t.req('GET', '/v1/metrics/query?kind=cpu&app=shop&from=-1h');
  assert.equal(q.statusCode, 200, q.body);
  const body = q.json() as { from: number; to: number; series: { key: { target: string }; points: { avg?: number }[] }[] };
  assert.equal(body.to, NOW);
  assert.equal(body.from, NOW - 3_600_000, '-1h resolves against the server clock');
  assert.deepEqual(body.series.map((s) => s.key.target), ['i1']);
  assert.equal(body.series[0]!.points.length, 2);

  const top = await t.req('GET', '/v1/top?app=shop');
  assert.equal(top.statusCode, 200, top.body);
  const view = top.json() as { instances: { instance: string; cpuPercent: number }[]; services: { service: string; instances: number; desired?: number }[];
    routes: { route: string; requests: number; s5xx: number }[] };
  assert.deepEqual(view.instances.map((i) => [i.instance, i.cpuPercent]), [['i1', 12.5]]);
  assert.deepEqual(view.services.map((s) => [s.service, s.instances, s.desired]), [['web', 1, 2]]);
  assert.deepEqual(view.routes.map((r) => [r.route, r.requests, r.s5xx]), [['shop-prod-web-80', 4, 1]]);
  // Another app's figures are not in this app's table.
  assert.deepEqual(((await t.req('GET', '/v1/top?app=blog')).json() as { instances: unknown[] }).instances, []);
}));

test('metrics routes: requests per instance — series of kind http_instance (status classes, percentiles) and the instance label in /metrics', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web', { replicas: 2 });
  t.addService('blog', 'prod', 'web');
  const key = { app: 'shop', env: 'prod', service: 'web', kind: 'http_instance' as const };
  const hist = (i: number) => Object.assign(new Array<number>(14).fill(0), { [i]: 2 });
  t.metrics.record([
    { ...key, target: 'i1', ts: NOW - 20_000, n: 2, sum: 0.004, max: 0.003, status: { s2xx: 2, s3xx: 0, s4xx: 0, s5xx: 0 }, hist: hist(1) },
    { ...key, target: 'i2', ts: NOW - 20_000, n: 2, sum: 0.4, max: 0.3, status: { s2xx: 1, s3xx: 0, s4xx: 0, s5xx: 1 }, hist: hist(7) },
    { ...key, app: 'blog', target: 'b1', ts: NOW - 20_000, n: 5, sum: 0.1, max: 0.1, status: { s2xx: 5, s3xx: 0, s4xx: 0, s5xx: 0 } },
  ]);
  const q = await t.req('GET', '/v1/metrics/query?kind=http_instance&app=shop&env=prod&service=web&from=-15m');
  assert.equal(q.statusCode, 200, q.body);
  const body = q.json() as { series: { key: { kind: string; target: string }; points: { n: number; s5xx?: number; p95?: number; rate?: number }[] }[] };
  assert.deepEqual(body.series.map((s) => [s.key.kind, s.key.target]), [['http_instance', 'i1'], ['http_instance', 'i2']], 'one series per instance, only this app\'s');
  const [i1, i2] = body.series.map((s) => s.points[0]!);
  assert.equal(i2!.s5xx, 1);
  assert.ok(i1!.p95! <= 0.0025 && i2!.p95! > 0.1, `percentiles per instance: ${i1!.p95} ${i2!.p95}`);
  // Grouped per service, the instances add up.
  const g = (await t.req('GET', '/v1/metrics/query?kind=http_instance&app=shop&group=service&from=-15m')).json() as typeof body;
  assert.equal(g.series[0]!.points[0]!.n, 4);

  t.http.instances.set('i2', { owner: { app: 'shop', env: 'prod', service: 'web' }, byClass: { '1xx': 0, '2xx': 1, '3xx': 0, '4xx': 0, '5xx': 1 }, hist: hist(7), count: 2, sumSeconds: 0.4 });
  const prom = await t.req('GET', '/metrics');
  assert.match(prom.body, /^berth_http_instance_requests_total\{app="shop",env="prod",service="web",instance="i2",status_class="5xx"\} 1$/m);
  assert.match(prom.body, /^berth_http_instance_request_duration_seconds_count\{app="shop",env="prod",service="web",instance="i2"\} 2$/m);
  await expectError(t.anon('GET', '/v1/metrics/query?kind=http_instance&app=shop'), 401);
  await expectError(t.req('GET', '/v1/metrics/query?kind=http_instance&app=shop&service=wbe'), 404);
}));
