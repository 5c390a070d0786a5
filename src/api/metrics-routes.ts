import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { InvalidInput } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import type { DesiredStateStore } from '../core/store.ts';
import { parseDuration } from '../core/spec/units.ts';
import { METRIC_KINDS, PROMETHEUS_CONTENT_TYPE, type InstanceSample, type MetricKind, type MetricsQueryPort } from '../core/metrics.ts';
import type { KnownApps } from './known.ts';

export interface MetricsRouteDeps {
  /** Desired replicas per service (`berth top` shows services with no sample yet). */
  store: Pick<DesiredStateStore, 'listServices'>;
  metrics: MetricsQueryPort;
  clock: Clock;
  /** StatsSampler.latest */
  latestSamples: () => InstanceSample[];
  /**
   * `GET /metrics`: everything Berth measures now in the Prometheus text format (metrics/prometheus.ts
   * renderMetrics over the samples, the services' states, the access log's counters and more families).
   */
  prometheus: () => string;
  known: KnownApps;
}

/**
 * `from`/`to`: ms since the epoch, or a duration before now with a minus (`-1h`, `-15m`, `-1h30m`,
 * `-2d`); a relative time resolves to `{ ago }`.
 */
const when = z.string().transform((v, ctx): number | { ago: number } => {
  if (/^\d+$/.test(v)) return Number(v);
  const r = v.startsWith('-') ? parseDuration(v.slice(1), { days: true }) : undefined;
  if (r?.value !== undefined) return { ago: r.value };
  ctx.addIssue({ code: 'custom', message: `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}" is not a time: give ms since the epoch or a duration before now such as -1h, -15m or -2d${r?.error ? ` (${r.error})` : ''}` });
  return z.NEVER;
});

/** `GET /v1/metrics/query`: which series, over which time range, at which step. */
export const metricsQuery = z.object({
  kind: z.enum(METRIC_KINDS as [MetricKind, ...MetricKind[]]),
  app: z.string().optional(), env: z.string().optional(), service: z.string().optional(), target: z.string().optional(),
  from: when.optional(), to: when.optional(), step: z.coerce.number().int().min(1000).optional(),
  group: z.enum(['series', 'service']).optional(),
});

function resolveTime(v: number | { ago: number } | undefined, now: number, dflt: number): number {
  if (v === undefined) return dflt;
  return typeof v === 'number' ? v : now - v.ago;
}

/**
 * Metrics over HTTP: `GET /metrics` for Prometheus (bearer token like every route: use
 * `authorization: {credentials_file: ...}` in the scrape config), `GET /v1/metrics/query` for time
 * series and `GET /v1/top` for the live table of `berth top`.
 */
export function registerMetricsRoutes(app: FastifyInstance, d: MetricsRouteDeps): void {
  app.get('/metrics', async (_req, reply) => {
    return reply.type(PROMETHEUS_CONTENT_TYPE).send(d.prometheus());
  });

  app.get('/v1/metrics/query', async (req) => {
    const q = metricsQuery.parse(req.query);
    if (!q.app && req.seesAll === false) throw new InvalidInput('app: give the app whose metrics to read (installation-wide series are for owners)');
    if (q.app) {
      if (q.service) d.known.requireService(q.app, q.env, q.service);
      else if (q.env) d.known.requireEnv(q.app, q.env);
      else d.known.requireApp(q.app);
    }
    const now = d.clock.now();
    const from = resolveTime(q.from, now, now - 3_600_000);
    const to = resolveTime(q.to, now, now);
    const r = d.metrics.query({
      kind: q.kind, from, to,
      ...(q.app ? { app: q.app } : {}), ...(q.env ? { env: q.env } : {}), ...(q.service ? { service: q.service } : {}), ...(q.target ? { target: q.target } : {}),
      ...(q.step ? { step: q.step } : {}), ...(q.group ? { groupBy: q.group } : {}),
    });
    return { kind: q.kind, from, to, ...r };
  });

  app.get('/v1/top', async (req) => {
    const q = z.object({ app: z.string().optional(), env: z.string().optional() }).parse(req.query);
    if (q.app && q.env) d.known.requireEnv(q.app, q.env);
    else if (q.app) d.known.requireApp(q.app);
    const now = d.clock.now();
    const see = req.canSee ?? (() => true);
    const match = (x: { app: string; env: string }) => (!q.app || x.app === q.app) && (!q.env || x.env === q.env) && see(x.app);
    const instances = d.latestSamples().filter(match).sort((a, b) => `${a.app}/${a.env}/${a.service}/${a.id}`.localeCompare(`${b.app}/${b.env}/${b.service}/${b.id}`))
      .map((s) => ({ app: s.app, env: s.env, service: s.service, instance: s.id, containerId: s.containerId, sampledAt: s.ts, ...s.stats }));
    const services = new Map<string, { app: string; env: string; service: string; instances: number; cpuPercent: number; memoryBytes: number; desired?: number }>();
    for (const i of instances) {
      const k = `${i.app}/${i.env}/${i.service}`;
      const s = services.get(k) ?? { app: i.app, env: i.env, service: i.service, instances: 0, cpuPercent: 0, memoryBytes: 0 };
      s.instances++;
      s.cpuPercent += i.cpuPercent;
      s.memoryBytes += i.memoryBytes;
      services.set(k, s);
    }
    for (const sv of d.store.listServices()) {
      const st = { app: sv.app, env: sv.env, service: sv.name, desired: sv.replicas };
      const s = services.get(`${st.app}/${st.env}/${st.service}`);
      if (s) s.desired = st.desired;
      else if (match(st)) services.set(`${st.app}/${st.env}/${st.service}`, { app: st.app, env: st.env, service: st.service, instances: 0, cpuPercent: 0, memoryBytes: 0, desired: st.desired });
    }
    // Last minute from the 10 s series: complete buckets plus the current one.
    const http = d.metrics.query({ kind: 'http', from: now - 60_000, to: now, whole: true, ...(q.app ? { app: q.app } : {}), ...(q.env ? { env: q.env } : {}) });
    const routes = http.series.filter((s) => see(s.key.app)).map((s) => {
      const p = s.points[0]!;
      return { app: s.key.app, env: s.key.env, service: s.key.service, route: s.key.target, requests: p.n, ratePerSec: p.n / 60,
        s2xx: p.s2xx ?? 0, s3xx: p.s3xx ?? 0, s4xx: p.s4xx ?? 0, s5xx: p.s5xx ?? 0, p50: p.p50 ?? null, p95: p.p95 ?? null, p99: p.p99 ?? null };
    });
    return { at: now, windowMs: 60_000, instances, services: [...services.values()].sort((a, b) => `${a.app}/${a.env}/${a.service}`.localeCompare(`${b.app}/${b.env}/${b.service}`)), routes };
  });
}
