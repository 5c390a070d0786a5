import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LATENCY_BUCKETS } from './metrics-store.ts';
import { escapeLabelValue, renderFamilies, renderMetrics } from './prometheus.ts';

/** A small parser of the text format: every line is HELP, TYPE, or `name{labels} value`. */
function parse(text: string) {
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  assert.ok(text.endsWith('\n'));
  for (const line of text.slice(0, -1).split('\n')) {
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      (m[1] === 'HELP' ? helps : types).set(m[2]!, m[3]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let lm: RegExpExecArray | null;
    const body = m[2] ?? '';
    let consumed = 0;
    while ((lm = re.exec(body))) {
      labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
      consumed = re.lastIndex;
    }
    assert.equal(consumed, body.length, `labels of ${line}`);
    const family = [...types.keys()].find((f) => m![1] === f || (types.get(f) === 'histogram' && [`${f}_bucket`, `${f}_sum`, `${f}_count`].includes(m![1]!)));
    assert.ok(family, `sample ${m[1]} before its TYPE line`);
    samples.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return { types, helps, samples };
}

test('label values escape backslash, quote and newline', () => {
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  const text = renderFamilies([{ name: 'x_total', help: 'help with \\ and\nnewline', type: 'counter', samples: [{ labels: { v: 'a\\b"c\nd' }, value: 3 }] }]);
  assert.equal(text, '# HELP x_total help with \\\\ and\\nnewline\n# TYPE x_total counter\nx_total{v="a\\\\b\\"c\\nd"} 3\n');
  assert.deepEqual(parse(text).samples[0]!.labels, { v: 'a\\b"c\nd' });
  assert.throws(() => renderFamilies([{ name: 'bad-name', help: '', type: 'gauge', samples: [] }]));
  assert.throws(() => renderFamilies([{ name: 'ok', help: '', type: 'gauge', samples: [{ labels: { 'bad-label': 'x' }, value: 1 }] }]));
});

test('renderMetrics: container, service and http families with HELP and TYPE, histogram buckets cumulative', () => {
  const hist = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  hist[0] = 3;
  hist[5] = 1;
  const text = renderMetrics({
    samples: [{ app: 'shop', env: 'prod', service: 'web', id: 'i-1', containerId: 'c1', ts: 0,
      stats: { cpuPercent: 12.5, memoryBytes: 1024, memoryLimitBytes: 4096, netRxBytes: 0, netTxBytes: 0, blockReadBytes: 7, blockWriteBytes: 8 } }],
    services: [{ app: 'shop', env: 'prod', service: 'web', desired: 2, instances: [{ state: 'running', health: 'healthy', count: 1 }] }],
    http: { routes: new Map([['shop-prod-web-0', { owner: { app: 'shop', env: 'prod', service: 'web' }, byClass: { '1xx': 0, '2xx': 3, '3xx': 0, '4xx': 0, '5xx': 1 }, hist, count: 4, sumSeconds: 0.053 }]]) },
    extra: () => [{ name: 'berth_nginx_reloads_total', help: 'nginx reloads.', type: 'counter', samples: [{ value: 5 }] }],
  });
  const { types, helps, samples } = parse(text);
  for (const [n, t] of [['berth_container_cpu_percent', 'gauge'], ['berth_container_memory_bytes', 'gauge'], ['berth_container_memory_limit_bytes', 'gauge'],
    ['berth_container_block_read_bytes_total', 'counter'], ['berth_container_block_write_bytes_total', 'counter'], ['berth_service_replicas_desired', 'gauge'],
    ['berth_service_instances', 'gauge'], ['berth_http_requests_total', 'counter'], ['berth_http_request_duration_seconds', 'histogram'], ['berth_nginx_reloads_total', 'counter']]) {
    assert.equal(types.get(n!), t, n);
    assert.ok(helps.get(n!), `HELP of ${n}`);
  }
  const get = (name: string, l: Record<string, string> = {}) => samples.find((s) => s.name === name && Object.entries(l).every(([k, v]) => s.labels[k] === v))?.value;
  assert.equal(get('berth_container_cpu_percent', { app: 'shop', env: 'prod', service: 'web', instance: 'i-1' }), 12.5);
  assert.equal(get('berth_service_instances', { state: 'running', health: 'healthy' }), 1);
  assert.equal(get('berth_http_requests_total', { route: 'shop-prod-web-0', status_class: '2xx' }), 3);
  assert.equal(get('berth_http_requests_total', { status_class: '4xx' }), undefined, 'empty classes are left out');
  assert.equal(get('berth_http_request_duration_seconds_bucket', { le: '0.001' }), 3);
  assert.equal(get('berth_http_request_duration_seconds_bucket', { le: '0.1' }), 4);
  assert.equal(get('berth_http_request_duration_seconds_bucket', { le: '+Inf' }), 4);
  assert.equal(get('berth_http_request_duration_seconds_count'), 4);
  assert.equal(get('berth_nginx_reloads_total'), 5);
  const buckets = samples.filter((s) => s.name === 'berth_http_request_duration_seconds_bucket').map((s) => s.value);
  assert.deepEqual(buckets, [...buckets].sort((a, b) => a - b), 'cumulative');
});

test('renderMetrics: requests and latency per instance that answered, labelled with the instance', () => {
  const hist = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  hist[2] = 2;
  const owner = { app: 'shop', env: 'prod', service: 'web' };
  const text = renderMetrics({
    samples: [], services: [],
    http: {
      routes: new Map(),
      instances: new Map([['i-2', { owner, byClass: { '1xx': 0, '2xx': 1, '3xx': 0, '4xx': 0, '5xx': 1 }, hist, count: 2, sumSeconds: 0.008 }]]),
    },
  });
  const { types, samples } = parse(text);
  assert.equal(types.get('berth_http_instance_requests_total'), 'counter');
  assert.equal(types.get('berth_http_instance_request_duration_seconds'), 'histogram');
  const get = (name: string, l: Record<string, string>) => samples.find((s) => s.name === name && Object.entries(l).every(([k, v]) => s.labels[k] === v))?.value;
  assert.equal(get('berth_http_instance_requests_total', { ...owner, instance: 'i-2', status_class: '5xx' }), 1);
  assert.equal(get('berth_http_instance_request_duration_seconds_bucket', { instance: 'i-2', le: '0.005' }), 2);
  assert.equal(get('berth_http_instance_request_duration_seconds_count', { instance: 'i-2' }), 2);
});
