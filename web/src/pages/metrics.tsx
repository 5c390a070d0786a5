/** Metrics per service and instance: CPU, memory, requests, status classes and latency percentiles over a time range. */
import { api } from '../api.ts';
import type { MetricSeriesView } from '../api.ts';
import { navigate, useLocation, withQuery } from '../router.tsx';
import { Empty, Loaded, Page, useData } from '../ui.tsx';
import { Chart, type ChartSeries } from '../chart.tsx';
import { AppTabs, EnvPicker, useEnv } from './app.tsx';

const RANGES: [string, string][] = [['-15m', '15 min'], ['-1h', '1 hour'], ['-6h', '6 hours'], ['-24h', '24 hours'], ['-7d', '7 days']];

const pct = (v: number) => `${v.toFixed(v < 10 ? 1 : 0)}%`;
const bytes = (v: number) => {
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${u[i]}`;
};
const rate = (v: number) => `${v.toFixed(v < 10 ? 2 : 0)}/s`;
const ms = (v: number) => `${(v * 1000).toFixed(v < 0.01 ? 1 : 0)} ms`;

/** Series on one time axis: the union of their bucket starts (seconds, as uPlot wants). */
function align(series: MetricSeriesView[], pick: (p: MetricSeriesView['points'][number]) => number | undefined, label: (s: MetricSeriesView) => string): { x: number[]; series: ChartSeries[] } {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.ts)))].sort((a, b) => a - b);
  return {
    x: xs.map((t) => t / 1000),
    series: series.map((s) => {
      const by = new Map(s.points.map((p) => [p.ts, pick(p)]));
      return { label: label(s), values: xs.map((t) => by.get(t) ?? null) };
    }),
  };
}

/** Several lines of each series (one per part: a status class, a percentile) on the series' time axis. */
function split<K extends string>(series: MetricSeriesView[], parts: readonly K[], pick: (p: MetricSeriesView['points'][number], part: K) => number | undefined,
  label: (s: MetricSeriesView, part: K) => string): { x: number[]; series: ChartSeries[] } {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.ts)))].sort((a, b) => a - b);
  return {
    x: xs.map((t) => t / 1000),
    series: series.flatMap((s) => parts.map((part) => {
      const by = new Map(s.points.map((p) => [p.ts, pick(p, part)]));
      return { label: label(s, part), values: xs.map((t) => by.get(t) ?? null) };
    })),
  };
}

export function Metrics({ app }: { app: string }) {
  const { path, query } = useLocation();
  const appData = useData(() => api().app(app), `metrics-app:${app}`);
  const envs = [...new Set(appData.data?.services.map((s) => s.env) ?? [])].sort();
  const env = useEnv(envs);
  const services = [...new Set(appData.data?.services.filter((s) => s.env === env).map((s) => s.name) ?? [])];
  const service = query.get('service') ?? '';
  const from = query.get('range') ?? '-1h';
  // A range of one's own: from and to as durations before now (-2h), ISO times or epoch ms.
  const to = query.get('to') ?? undefined;
  const perInstance = query.get('by') === 'instance';
  const d = useData(async () => {
    if (!env) return undefined;
    const base = { app, env, from, ...(to ? { to } : {}), ...(service ? { service } : {}) };
    // Per instance: CPU and memory are sampled per container; requests are counted per instance that
    // answered them (the ingress's access log names the backend: kind http_instance). Per service,
    // requests are the routes' (kind http), which also counts what nginx answered itself.
    const group = perInstance ? 'series' as const : 'service' as const;
    const [cpu, memory, http] = await Promise.all([
      api().metrics({ kind: 'cpu', ...base, group }), api().metrics({ kind: 'memory', ...base, group }),
      api().metrics({ kind: perInstance ? 'http_instance' : 'http', ...base, group: perInstance ? 'series' : 'service' }),
    ]);
    return { cpu: cpu.series, memory: memory.series, http: http.series };
  }, `metrics:${app}:${env}:${service}:${from}:${to}:${perInstance}`);
  const preset = !to && RANGES.some(([v]) => v === from);
  const name = (s: MetricSeriesView) => (perInstance ? `${s.key.service}/${s.key.target}` : s.key.service);
  return (
    <Page title={`${app}: metrics`} sub={<EnvPicker envs={envs} env={env} />}>
      <AppTabs app={app} current="metrics" />
      <div class="filters" role="group" aria-label="Metrics scope">
        <label>Service <select value={service} onChange={(e) => navigate(withQuery(path, query, { service: (e.target as HTMLSelectElement).value }))}>
          <option value="">all</option>{services.map((s) => <option key={s} value={s}>{s}</option>)}
        </select></label>
        <label>Lines <select value={perInstance ? 'instance' : 'service'} onChange={(e) => navigate(withQuery(path, query, { by: (e.target as HTMLSelectElement).value === 'instance' ? 'instance' : undefined }))}>
          <option value="service">per service</option><option value="instance">per instance</option>
        </select></label>
        <div class="envs" role="group" aria-label="Time range">
          {RANGES.map(([v, label]) => <button key={v} type="button" class={`btn small ${preset && v === from ? 'on' : ''}`} aria-pressed={preset && v === from} onClick={() => navigate(withQuery(path, query, { range: v, to: undefined }))}>{label}</button>)}
        </div>
        <form class="inline" aria-label="Custom time range" onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget as HTMLFormElement);
          const v = (k: string) => String(f.get(k) ?? '').trim() || undefined;
          navigate(withQuery(path, query, { range: v('from'), to: v('to') }));
        }}>
          <label>From <input name="from" size={12} placeholder="-2h, ISO time" defaultValue={preset ? '' : from} key={`f${from}`} required /></label>
          <label>To <input name="to" size={12} placeholder="now" defaultValue={to ?? ''} key={`t${to}`} /></label>
          <button class="btn small" type="submit">Show</button>
        </form>
      </div>
      <Loaded d={d} what="metrics">
        {(m) => {
          if (!m) return <Empty>No environment to show.</Empty>;
          if (m.cpu.length + m.memory.length + m.http.length === 0) return <Empty>No samples in this range yet (instances are sampled every 10 s).</Empty>;
          const cpu = align(m.cpu, (p) => p.avg, name);
          const mem = align(m.memory, (p) => p.avg, name);
          const req = align(m.http, (p) => p.rate, name);
          // Status classes (requests per second of each) and latency percentiles: a line per series and part.
          const classes = ['s2xx', 's3xx', 's4xx', 's5xx'] as const;
          const status = split(m.http, classes, (p, c) => (p[c] !== undefined && p.n > 0 && p.rate !== undefined ? (p[c]! / p.n) * p.rate : undefined), (s, c) => `${name(s)} ${c.slice(1)}`);
          const lat = split(m.http, ['p50', 'p95', 'p99'] as const, (p, q) => p[q], (s, q) => `${name(s)} ${q}`);
          return (
            <div class="charts">
              <Chart title="CPU" {...cpu} unit={pct} />
              <Chart title="Memory" {...mem} unit={bytes} />
              {m.http.length > 0 ? <>
                <Chart title="Requests" {...req} unit={rate} />
                <Chart title="Status classes" {...status} unit={rate} />
                <Chart title="Latency percentiles" {...lat} unit={ms} />
              </> : <Empty>No routed requests in this range.</Empty>}
            </div>
          );
        }}
      </Loaded>
    </Page>
  );
}
