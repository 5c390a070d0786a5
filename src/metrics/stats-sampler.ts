import type { Clock, ContainerStats, EngineTelemetry, Logger } from '../core/ports.ts';
import type { InstanceSample, SampledInstance } from '../core/metrics.ts';
import type { MetricsStore, PointInput } from './metrics-store.ts';

export type { InstanceSample, SampledInstance };

export interface StatsSamplerOptions {
  engine: Pick<EngineTelemetry, 'stats'>;
  store: MetricsStore;
  listInstances: () => SampledInstance[];
  clock: Clock;
  logger: Logger;
  intervalMs?: number;
  /** Docker's one-shot stats take ~1 s each (two CPU readings): sample a few containers at a time. */
  concurrency?: number;
  /** Called after each round (the server rolls up and prunes the store here). */
  afterRound?: () => void;
}

/**
 * Samples CPU, memory and block/network I/O of every running instance from the engine every
 * interval, writes points to the store and keeps the latest sample per instance in memory for
 * `/metrics` and `berth top`. Counters are stored as increases between samples (a restarted
 * container's counter reset is taken as a fresh start).
 */
export class StatsSampler {
  private readonly latestByInstance = new Map<string, InstanceSample>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly o: StatsSamplerOptions) {}

  start(): void {
    if (this.timer) return;
    this.stopped = false;
    const tick = (): void => {
      if (this.running) return; // a slow round (many containers) is not stacked on
      this.running = this.sampleOnce()
        .catch((err: Error) => this.o.logger.warn({ err: err.message }, 'stats sampling failed'))
        .finally(() => (this.running = undefined));
    };
    tick();
    this.timer = setInterval(tick, this.o.intervalMs ?? 10_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Latest sample of each instance still listed at the last round. */
  latest(): InstanceSample[] {
    return [...this.latestByInstance.values()];
  }

  /** One round: samples every listed instance and records the points. */
  async sampleOnce(): Promise<void> {
    const instances = this.o.listInstances();
    const points: PointInput[] = [];
    const seen = new Set<string>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < instances.length && !this.stopped) {
        const inst = instances[next++]!;
        seen.add(inst.id);
        let stats: ContainerStats | undefined;
        try {
          stats = await this.o.engine.stats(inst.containerId);
        } catch (err) {
          this.o.logger.debug({ err: (err as Error).message, instance: inst.id }, 'stats unavailable');
          continue;
        }
        if (!stats) {
          this.latestByInstance.delete(inst.id);
          continue;
        }
        const ts = this.o.clock.now();
        const prev = this.latestByInstance.get(inst.id);
        const sameContainer = prev?.containerId === inst.containerId;
        const key = { app: inst.app, env: inst.env, service: inst.service, target: inst.id };
        const gauge = (kind: 'cpu' | 'memory' | 'memory_limit', v: number): PointInput => ({ ...key, kind, ts, n: 1, sum: v, max: v });
        const counter = (kind: 'block_read' | 'block_write' | 'net_rx' | 'net_tx', now: number, before: number | undefined): PointInput => {
          const inc = before === undefined || now < before ? 0 : now - before;
          return { ...key, kind, ts, n: 1, sum: inc, max: inc };
        };
        const p = sameContainer ? prev.stats : undefined;
        points.push(
          gauge('cpu', stats.cpuPercent), gauge('memory', stats.memoryBytes), gauge('memory_limit', stats.memoryLimitBytes),
          counter('block_read', stats.blockReadBytes, p?.blockReadBytes), counter('block_write', stats.blockWriteBytes, p?.blockWriteBytes),
          counter('net_rx', stats.netRxBytes, p?.netRxBytes), counter('net_tx', stats.netTxBytes, p?.netTxBytes),
        );
        this.latestByInstance.set(inst.id, { ...inst, ts, stats });
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency ?? 4, instances.length) }, worker));
    for (const id of this.latestByInstance.keys()) if (!seen.has(id)) this.latestByInstance.delete(id);
    this.o.store.record(points);
    this.o.afterRound?.();
  }
}
