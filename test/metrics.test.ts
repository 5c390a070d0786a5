/**
 * Metrics end to end: load through nginx shows up in Berth's request-rate and latency series, the
 * sampler reports CPU and memory of the real containers, and a real Prometheus (Debian's package)
 * scrapes `/metrics` with the bearer token and answers Berth's series from its query API.
 * Needs BERTH_METRICS_INTERVAL_MS (sampler and access-log reader period) passed through config.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Harness, ROOT, freePort, hey } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const WEB = join(ROOT, 'test/fixtures/apps/web/compose.yaml');

describe('metrics', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.create({ portRange: '16000-16999' });
    process.env.BERTH_METRICS_INTERVAL_MS = '1000';
    await h.startServer();
    delete process.env.BERTH_METRICS_INTERVAL_MS;
    const d = await h.cli(['deploy', '-f', WEB], { timeoutMs: 180_000 });
    assert.equal(d.code, 0, d.stderr);
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-5000));
    await h.cleanup();
  });

  test('load through nginx shows up in /v1/top and the query API; instances have CPU and memory', async () => {
    const r = await hey(h.ingressPort, '/', { seconds: 3, concurrency: 4, qps: 50 });
    assert.ok(r.ok > 100, `hey: ${r.raw}`);
    type Top = { routes: { app: string; route: string; requests: number; ratePerSec: number; s2xx: number; p95: number | null }[];
      instances: { app: string; instance: string; memoryBytes: number; cpuPercent: number }[]; services: { app: string; service: string; instances: number }[] };
    let top: Top | undefined;
    await waitFor(async () => {
      top = (await h.api('GET', '/v1/top?app=e2e')).json as Top;
      const route = top.routes.find((x) => x.app === 'e2e');
      return route !== undefined && route.requests >= r.ok * 0.9 && top.instances.length === 3;
    }, { timeoutMs: 20_000, intervalMs: 250, what: `requests and samples in /v1/top (last: ${JSON.stringify(top)})` });
    const route = top!.routes.find((x) => x.app === 'e2e')!;
    assert.match(route.route, /^e2e\.prod\.web\.\d+$/);
    assert.ok(route.ratePerSec > 0);
    assert.ok(route.s2xx >= r.ok * 0.9);
    assert.ok(route.p95 !== null && route.p95 > 0 && route.p95 < 5, `p95 ${route.p95}`);
    for (const i of top!.instances) assert.ok(i.memoryBytes > 0, `memory of ${i.instance}`);
    assert.equal(top!.services.find((s) => s.app === 'e2e')?.instances, 3);

    const q = await h.api('GET', '/v1/metrics/query?kind=http&app=e2e&from=-5m');
    assert.equal(q.status, 200, JSON.stringify(q.json));
    const points = (q.json.series as { points: { n: number; rate: number; p95?: number }[] }[]).flatMap((s) => s.points);
    assert.ok(points.reduce((a, p) => a + p.n, 0) >= r.ok * 0.9);
    assert.ok(points.some((p) => p.rate > 0 && (p.p95 ?? 0) > 0));
    const mem = await h.api('GET', '/v1/metrics/query?kind=memory&app=e2e&from=-5m&group=service');
    assert.ok(mem.json.series[0].points.some((p: { avg: number }) => p.avg > 0));
    const bad = await h.api('GET', '/v1/metrics/query?kind=nope');
    assert.equal(bad.status, 400);
  });

  test('/metrics needs the token and is Prometheus text', async () => {
    const noAuth = await fetch(`http://127.0.0.1:${h.apiPort}/metrics`);
    assert.equal(noAuth.status, 401);
    const res = await fetch(`http://127.0.0.1:${h.apiPort}/metrics`, { headers: { authorization: `Bearer ${await h.token()}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^# TYPE berth_http_requests_total counter$/m);
    assert.match(text, /^berth_http_requests_total\{app="e2e",env="prod",service="web",route="e2e\.prod\.web\.\d+",status_class="2xx"\} \d+$/m);
    assert.match(text, /^berth_container_memory_bytes\{app="e2e",env="prod",service="web",instance="[^"]+"\} \d+/m);
    assert.match(text, /^berth_service_replicas_desired\{app="e2e",env="prod",service="web"\} 3$/m);
    // The server's own process: CPU, memory, and how late its event loop runs (API, DNS and health checks wait that long).
    assert.match(text, /^process_resident_memory_bytes \d+$/m);
    assert.match(text, /^process_cpu_seconds_total [\d.]+$/m);
    assert.match(text, /^# TYPE berth_event_loop_delay_seconds summary$/m);
    assert.match(text, /^berth_event_loop_delay_seconds\{quantile="0\.99"\} [\d.e-]+$/m);
    assert.match(text, /^berth_event_loop_delay_seconds_count \d+$/m);
  });

  test('a real Prometheus scrapes /metrics with the bearer token and returns Berth\'s series', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-prom-'));
    const promPort = await freePort();
    let prom: ChildProcess | undefined;
    let promLog = '';
    try {
      await writeFile(join(dir, 'token'), await h.token(), { mode: 0o600 });
      await writeFile(join(dir, 'prom.yml'), [
        'global:',
        '  scrape_interval: 1s',
        'scrape_configs:',
        '  - job_name: berth',
        '    scrape_interval: 1s',
        '    scrape_timeout: 1s',
        '    metrics_path: /metrics',
        '    authorization:',
        '      type: Bearer',
        `      credentials_file: ${join(dir, 'token')}`,
        '    static_configs:',
        `      - targets: ['127.0.0.1:${h.apiPort}']`,
        '',
      ].join('\n'));
      prom = spawn('prometheus', [`--config.file=${join(dir, 'prom.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
      prom.stderr!.setEncoding('utf8');
      prom.stderr!.on('data', (c: string) => (promLog = (promLog + c).slice(-20_000)));
      // More traffic while Prometheus is scraping (bounded).
      await hey(h.ingressPort, '/', { seconds: 2, concurrency: 2, qps: 20 });
      let last = '';
      await waitFor(async () => {
        if (prom!.exitCode !== null) throw new Error(`prometheus exited with ${prom!.exitCode}:\n${promLog}`);
        try {
          const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent('berth_http_requests_total{app="e2e"}')}`);
          last = await res.text();
          const body = JSON.parse(last) as { status: string; data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] } };
          return body.status === 'success' && body.data.result.some((r) => r.metric.app === 'e2e' && Number(r.value[1]) > 0);
        } catch {
          return false;
        }
      }, { timeoutMs: 60_000, intervalMs: 500, what: `Prometheus to have berth_http_requests_total (last: ${last.slice(0, 500)})` });
      const up = await (await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent('up{job="berth"}')}`)).json() as { data: { result: { value: [number, string] }[] } };
      assert.equal(up.data.result[0]?.value[1], '1', 'the scrape target is up (token accepted)');
      const mem = await (await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent('berth_container_memory_bytes{app="e2e"}')}`)).json() as { data: { result: unknown[] } };
      assert.equal(mem.data.result.length, 3);
      // The summary parses as one (Prometheus keeps its quantiles as labels).
      const loop = await (await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent('berth_event_loop_delay_seconds{job="berth"}')}`)).json() as { data: { result: { metric: Record<string, string> }[] } };
      assert.deepEqual(loop.data.result.map((r) => r.metric.quantile).sort(), ['0.5', '0.9', '0.99', '1']);
    } finally {
      if (prom && prom.exitCode === null) {
        const exited = new Promise((r) => prom!.once('exit', r));
        prom.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    }
  });
});
