import { join } from 'node:path';
import type { Clock, Engine, Logger } from '../core/ports.ts';
import type { Store } from '../core/store.ts';
import { LogCollector, LogStore } from '../logs/index.ts';
import { AccessLogReader, MetricsStore, ProcessMetrics, StatsSampler, type InstanceIndex } from '../metrics/index.ts';
import { ACCESS_LOG_FILE } from '../ingress/render.ts';
import { AlertEvaluator, WebhookNotifier } from '../alerts/index.ts';
import type { ServerConfig } from './config.ts';

// Logs (collected from every container into logs.db), metrics (container stats and the ingress's
// access log into metrics.db) and alerts (evaluated over both, sent to webhooks). Started here.

export interface Observability {
  logStore: LogStore;
  logs: LogCollector;
  metrics: MetricsStore;
  sampler: StatsSampler;
  accessLog: AccessLogReader;
  alerts: AlertEvaluator;
  /** The server's own CPU, memory and event-loop delay. */
  process: ProcessMetrics;
  /** Starts collecting the logs of new containers (and stops for gone ones), in the background. */
  syncLogs(): void;
  stop(): Promise<void>;
}

/**
 * Instances by the address the ingress reaches them at (what nginx writes as `$upstream_addr`): the
 * instance's `address:port`, and for app-network instances also their container's address and
 * native port (`direct`, route-table.ts). Per service, so an address reused by another service's
 * newer instance is never counted for the old one's service.
 */
export function instanceIndex(instances: readonly { id: string; app: string; env: string; service: string; address: string; port: number }[],
  direct?: ReadonlyMap<string, { address: string; port: number }>): InstanceIndex {
  const hostPort = (a: string, p: number) => (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
  const by = new Map<string, string>();
  const ids = new Set<string>();
  for (const i of instances) {
    ids.add(i.id);
    const svc = `${i.app}\0${i.env}\0${i.service}\0`;
    if (i.address && i.port) by.set(svc + hostPort(i.address, i.port), i.id);
    const d = direct?.get(i.id);
    if (d) by.set(svc + hostPort(d.address, d.port), i.id);
  }
  return {
    of: (o, addr) => by.get(`${o.app}\0${o.env}\0${o.service}\0${addr}`),
    has: (id) => ids.has(id),
  };
}

export function startObservability(cfg: ServerConfig, d: { store: Store; engine: Engine; clock: Clock; logger: Logger; directAddresses?: ReadonlyMap<string, { address: string; port: number }> }): Observability {
  const { store, engine, clock, logger } = d;
  const logStore = new LogStore(join(cfg.dataDir, 'logs.db'), { clock });
  const logs = new LogCollector({
    engine, store: logStore, clock, logger,
    listContainers: async () => store.listInstances().filter((i) => i.containerId).map((i) => ({
      containerId: i.containerId!, app: i.app, env: i.env, service: i.service, instance: i.id, running: i.state === 'running',
    })),
    retention: { maxAgeMs: cfg.logMaxAgeMs, maxBytes: cfg.logMaxBytes },
  });
  const metrics = new MetricsStore(join(cfg.dataDir, 'metrics.db'), { clock });
  let lastPrune = 0;
  const sampler = new StatsSampler({
    engine, store: metrics, clock, logger: logger.child({ component: 'metrics' }), intervalMs: cfg.metricsIntervalMs,
    listInstances: () => store.listInstances().filter((i) => i.state === 'running' && i.containerId)
      .map((i) => ({ app: i.app, env: i.env, service: i.service, id: i.id, containerId: i.containerId! })),
    afterRound: () => {
      metrics.rollup();
      if (clock.now() - lastPrune > 60_000) {
        lastPrune = clock.now();
        metrics.prune();
      }
    },
  });
  // The access log names routes by upstream (`app.env.service.index`, core/spec/routes.ts), which the reader splits itself,
// and the backend that answered, which instanceIndex maps to the instance.
  const accessLog = new AccessLogReader({
    path: join(cfg.dataDir, 'nginx', 'logs', ACCESS_LOG_FILE), store: metrics, clock, logger: logger.child({ component: 'access-log' }),
    intervalMs: Math.min(cfg.metricsIntervalMs, 2000),
    instances: () => instanceIndex(store.listInstances(), d.directAddresses),
  });
  sampler.start();
  accessLog.start();
  const notifier = new WebhookNotifier(logger.child({ component: 'alerts' }));
  const alerts = new AlertEvaluator({
    store, clock, logger: logger.child({ component: 'alerts' }), dataDir: cfg.dataDir, intervalMs: cfg.alertIntervalMs,
    notify: (url, n) => notifier.notify(url, n),
    http: (q) => metrics.httpTotals(q),
  });
  alerts.start();
  const proc = new ProcessMetrics();
  return {
    logStore, logs, metrics, sampler, accessLog, alerts, process: proc,
    syncLogs: () => void logs.sync().catch((err) => logger.warn({ err: String(err) }, 'log collection sync failed')),
    async stop() {
      proc.close();
      await logs.close();
      alerts.stop();
      notifier.close();
      await sampler.stop();
      await accessLog.stop();
      metrics.close();
      logStore.close();
    },
  };
}
