import type { HttpCounter, HttpCounters } from './access-log.ts';
import { LATENCY_BUCKETS } from './metrics-store.ts';
import { PROMETHEUS_CONTENT_TYPE, type InstanceSample } from '../core/metrics.ts';
import type { DesiredStateStore, InstanceRecord, InstanceStore } from '../core/store.ts';

/** One metric family in the Prometheus text exposition format (version 0.0.4). */
export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  samples: { labels?: Record<string, string>; value: number; /** Suffix such as `_bucket`, `_sum`, `_count`. */ suffix?: string }[];
}

export interface ServiceState {
  app: string;
  env: string;
  service: string;
  desired: number;
  /** Instances by state and health, e.g. { state: 'running', health: 'healthy', count: 2 }. */
  instances: { state: string; health: string; count: number }[];
}

/** Desired replicas and instance counts by state/health per service, from the store. */
export function serviceStates(store: Pick<DesiredStateStore, 'listServices'> & Pick<InstanceStore, 'listInstances'>, instances: InstanceRecord[] = store.listInstances()): ServiceState[] {
  return store.listServices().map((s) => {
    const counts = new Map<string, { state: string; health: string; count: number }>();
    for (const i of instances) {
      if (i.app !== s.app || i.env !== s.env || i.service !== s.name) continue;
      const k = `${i.state}\u0000${i.health}`;
      const c = counts.get(k) ?? { state: i.state, health: i.health, count: 0 };
      c.count++;
      counts.set(k, c);
    }
    return { app: s.app, env: s.env, service: s.name, desired: s.replicas, instances: [...counts.values()] };
  });
}

export interface RenderMetricsInput {
  samples: readonly InstanceSample[];
  services: readonly ServiceState[];
  http: HttpCounters;
  /** More families from the lead (nginx reloads, DNS queries, ...). */
  extra?: () => MetricFamily[];
}

export { PROMETHEUS_CONTENT_TYPE };

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Label values escape backslash, double quote and newline; HELP text escapes backslash and newline. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Renders families; invalid names are a programming error and throw. Families without samples are left out. */
export function renderFamilies(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const f of families) {
    if (!NAME_RE.test(f.name)) throw new Error(`invalid metric name ${JSON.stringify(f.name)}`);
    if (seen.has(f.name)) throw new Error(`metric ${f.name} rendered twice`);
    seen.add(f.name);
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`);
    out.push(`# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels ?? {});
      for (const [k] of labels) if (!LABEL_RE.test(k) || k.startsWith('__')) throw new Error(`invalid label name ${JSON.stringify(k)} on ${f.name}`);
      const l = labels.length ? `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}` : '';
      out.push(`${f.name}${s.suffix ?? ''}${l} ${formatValue(s.value)}`);
    }
  }
  return out.join('\n') + '\n';
}

/** All of Berth's metrics for `GET /metrics`. */
export function renderMetrics(input: RenderMetricsInput): string {
  const inst = (s: InstanceSample) => ({ app: s.app, env: s.env, service: s.service, instance: s.id });
  const perInstance = (name: string, help: string, type: MetricFamily['type'], pick: (s: InstanceSample) => number): MetricFamily => ({
    name, help, type, samples: input.samples.map((s) => ({ labels: inst(s), value: pick(s) })),
  });
  const fams: MetricFamily[] = [
    perInstance('berth_container_cpu_percent', 'CPU use of the container over the engine\'s last sampling window (100 = one core).', 'gauge', (s) => s.stats.cpuPercent),
    perInstance('berth_container_memory_bytes', 'Memory in use by the container, without page cache.', 'gauge', (s) => s.stats.memoryBytes),
    perInstance('berth_container_memory_limit_bytes', 'Memory limit of the container (host memory when unlimited).', 'gauge', (s) => s.stats.memoryLimitBytes),
    perInstance('berth_container_block_read_bytes_total', 'Bytes read from block devices by the container.', 'counter', (s) => s.stats.blockReadBytes),
    perInstance('berth_container_block_write_bytes_total', 'Bytes written to block devices by the container.', 'counter', (s) => s.stats.blockWriteBytes),
    perInstance('berth_container_network_receive_bytes_total', 'Bytes received by the container (0 with host networking: no per-container counters).', 'counter', (s) => s.stats.netRxBytes),
    perInstance('berth_container_network_transmit_bytes_total', 'Bytes sent by the container (0 with host networking: no per-container counters).', 'counter', (s) => s.stats.netTxBytes),
    {
      name: 'berth_service_replicas_desired', help: 'Replicas the service should run.', type: 'gauge',
      samples: input.services.map((s) => ({ labels: { app: s.app, env: s.env, service: s.service }, value: s.desired })),
    },
    {
      name: 'berth_service_instances', help: 'Instances of the service by state and health.', type: 'gauge',
      samples: input.services.flatMap((s) => s.instances.map((i) => ({ labels: { app: s.app, env: s.env, service: s.service, state: i.state, health: i.health }, value: i.count }))),
    },
  ];
  const byKey = ([a]: [string, HttpCounter], [b]: [string, HttpCounter]) => (a < b ? -1 : a > b ? 1 : 0);
  fams.push(...httpFamilies('berth_http', 'route', [...input.http.routes.entries()].sort(byKey),
    'Requests through the ingress by route and status class, since the server started.',
    'Request time through the ingress (nginx $request_time) by route.'));
  // Per instance that answered (bounded: only instances that exist, see HttpCounters.instances).
  fams.push(...httpFamilies('berth_http_instance', 'instance', [...(input.http.instances?.entries() ?? [])].sort(byKey),
    'Requests through the ingress by the instance that answered them and status class, since the server started.',
    'Request time through the ingress (nginx $request_time) by the instance that answered.'));
  fams.push(...(input.extra?.() ?? []));
  return renderFamilies(fams);
}

/**
 * `berth_host_engine_up{host,endpoint}`: whether the control plane reached each host's Docker engine
 * the last time it tried (cluster mode: logs, stats, signals and exec of that host's instances go
 * there; 0 means they are missing, not that the instances are idle).
 */
export function hostEngineFamilies(health: readonly { host: string; endpoint: string; up: boolean }[]): MetricFamily[] {
  return [{
    name: 'berth_host_engine_up', help: 'Whether the host\'s Docker engine answered the control plane at the last attempt (1) or not (0).', type: 'gauge',
    samples: health.map((h) => ({ labels: { host: h.host, endpoint: h.endpoint }, value: h.up ? 1 : 0 })),
  }];
}

/** `PREFIX_requests_total` by status class and `PREFIX_request_duration_seconds`, one series per `KEY` label value. */
function httpFamilies(prefix: string, key: 'route' | 'instance', entries: Array<[string, HttpCounter]>, requestsHelp: string, durationHelp: string): MetricFamily[] {
  return [{
    name: `${prefix}_requests_total`, help: requestsHelp, type: 'counter',
    samples: entries.flatMap(([k, c]) => Object.entries(c.byClass).filter(([, v]) => v > 0)
      .map(([cls, v]) => ({ labels: { ...c.owner, [key]: k, status_class: cls }, value: v }))),
  }, {
    name: `${prefix}_request_duration_seconds`, help: durationHelp, type: 'histogram',
    samples: entries.flatMap(([k, c]) => {
      const labels = { ...c.owner, [key]: k };
      let cum = 0;
      const buckets = LATENCY_BUCKETS.map((le, i) => {
        cum += c.hist[i] ?? 0;
        return { labels: { ...labels, le: String(le) }, value: cum, suffix: '_bucket' };
      });
      return [...buckets, { labels: { ...labels, le: '+Inf' }, value: c.count, suffix: '_bucket' },
        { labels, value: c.sumSeconds, suffix: '_sum' }, { labels, value: c.count, suffix: '_count' }];
    }),
  }];
}
