/**
 * metrics: what the platform and its apps are doing, as numbers. `StatsSampler` samples CPU, memory
 * and I/O of every running instance from the engine; `AccessLogReader` follows nginx's JSON access
 * log (ingress/render.ts `berth_json`) for request rates, status classes and latencies per route.
 * Both write into `MetricsStore`, time series in their own SQLite file at 10 s / 1 min / 1 h
 * resolution with bounded retention, and keep their latest figures in memory for `renderMetrics`
 * (`GET /metrics`, Prometheus text format) and `berth top`.
 */
export {
  MetricsStore, METRIC_KINDS, GAUGE_KINDS, LATENCY_BUCKETS, RESOLUTIONS, latencyBucket, histQuantile,
  type MetricKind, type SeriesKey, type PointInput, type Point, type MetricsQuery, type MetricsResult, type MetricsStoreOptions,
} from './metrics-store.ts';
export { ProcessMetrics, LOOP_WINDOW_MS } from './process-metrics.ts';
export { StatsSampler, type SampledInstance, type InstanceSample, type StatsSamplerOptions } from './stats-sampler.ts';
export { AccessLogReader, instanceOf, parseUpstreamName, type AccessLogReaderOptions, type HttpCounters, type InstanceIndex, type RouteOwner, type StatusClass } from './access-log.ts';
export {
  renderMetrics, renderFamilies, escapeLabelValue, PROMETHEUS_CONTENT_TYPE, hostEngineFamilies, serviceStates,
  type MetricFamily, type ServiceState, type RenderMetricsInput,
} from './prometheus.ts';
