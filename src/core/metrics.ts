/**
 * Metrics as the rest of Berth sees them: what a series measures, how it is queried, what a sample of
 * an instance is, and the role the API reads time series through (metrics/MetricsStore implements it;
 * server/ passes it to api/, which never imports metrics/).
 */
import type { ContainerStats } from './ports.ts';
import type { MetricPointView } from './views.ts';

/**
 * What a series measures.
 * - gauges (`cpu` percent, `memory`/`memory_limit` bytes): one sample per point, rollups keep avg and max;
 * - counters (`block_read`, `block_write`, `net_rx`, `net_tx` bytes): `sum` is the increase within the bucket;
 * - `http`: requests of one route: `n` requests, status classes, latency sum/max and a histogram;
 * - `http_instance`: the same figures per instance that answered (the ingress's `$upstream_addr`
 *   mapped to the route's backend), all routes of the service together. Requests nginx answered
 *   itself (no backend) or whose backend is no instance Berth knows are only in `http`.
 */
export type MetricKind = 'cpu' | 'memory' | 'memory_limit' | 'block_read' | 'block_write' | 'net_rx' | 'net_tx' | 'http' | 'http_instance';

export const METRIC_KINDS: readonly MetricKind[] = ['cpu', 'memory', 'memory_limit', 'block_read', 'block_write', 'net_rx', 'net_tx', 'http', 'http_instance'];

/** Kinds whose points are requests (status classes, latency percentiles). */
export const HTTP_KINDS: readonly MetricKind[] = ['http', 'http_instance'];

/**
 * Identifies a series. `target` is the instance id (container kinds and `http_instance`) or the
 * route's upstream name (`http`).
 */
export interface SeriesKey {
  kind: MetricKind;
  app: string;
  env: string;
  service: string;
  target: string;
}

export interface MetricsQuery {
  kind: MetricKind;
  app?: string;
  env?: string;
  service?: string;
  target?: string;
  from: number;
  to: number;
  /** Bucket width of the answer (ms); rounded up to a multiple of the resolution used. Default: the resolution. */
  step?: number;
  /** `service`: one series per app/env/service (gauges: sum of the instances' means; counters and http: sums). */
  groupBy?: 'series' | 'service';
  /** One point per series for the whole range (rates over to − from), from the finest covering resolution. */
  whole?: boolean;
}

export interface MetricsResult {
  resolutionMs: number;
  stepMs: number;
  series: { key: SeriesKey; points: MetricPointView[] }[];
}

/** A running instance to sample. */
export interface SampledInstance {
  app: string;
  env: string;
  service: string;
  /** Berth's instance id. */
  id: string;
  containerId: string;
}

export interface InstanceSample extends SampledInstance {
  /** When the sample was taken (ms). */
  ts: number;
  stats: ContainerStats;
}

/** The Prometheus text exposition format served at `GET /metrics`. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Time series as the API reads them (`GET /v1/metrics/query`, the routes of `berth top`). */
export interface MetricsQueryPort {
  query(q: MetricsQuery): MetricsResult;
}
