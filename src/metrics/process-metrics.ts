import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { MetricFamily } from './prometheus.ts';

/** Two histograms of event-loop delays, staggered by this much: a scrape sees the last 30 to 60 s. */
export const LOOP_WINDOW_MS = 30_000;
const QUANTILES = [0.5, 0.9, 0.99, 1] as const;

/**
 * The control plane's own process, for `GET /metrics`: CPU, memory, open handles, and the delay of its
 * event loop. The loop answers the API, DNS, health checks and the balancer feed; a delay of 700 ms
 * there is a DNS answer 700 ms late, so it is measured (perf_hooks, 10 ms resolution) and reported as a
 * summary over the last 30 to 60 seconds, the same for every scraper (nothing resets on a read): two
 * histograms run side by side, each reset every minute, half a minute apart, and the older one is read.
 */
export class ProcessMetrics {
  private readonly loops: [IntervalHistogram, IntervalHistogram];
  /** The histogram reset last (the other one is read). */
  private fresh: 0 | 1 = 1;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly startedAtMs = Date.now() - process.uptime() * 1000) {
    this.loops = [monitorEventLoopDelay({ resolution: 10 }), monitorEventLoopDelay({ resolution: 10 })];
    for (const l of this.loops) l.enable();
    this.timer = setInterval(() => this.rotate(), LOOP_WINDOW_MS);
    this.timer.unref();
  }

  /** Resets the older histogram, which then starts a new window (the timer's job; public for tests). */
  rotate(): void {
    this.fresh = this.fresh === 1 ? 0 : 1;
    this.loops[this.fresh].reset();
  }

  families(): MetricFamily[] {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    const both = this.loops[this.fresh === 1 ? 0 : 1];
    const s = (ns: number) => ns / 1e9;
    const loopSamples = both.count === 0 ? [] : [
      ...QUANTILES.map((q) => ({ labels: { quantile: String(q) }, value: s(q === 1 ? both.max : both.percentile(q * 100)) })),
      { suffix: '_sum', value: s(both.mean * both.count) },
      { suffix: '_count', value: both.count },
    ];
    return [
      { name: 'process_cpu_seconds_total', help: 'CPU time the Berth server has used (user and system).', type: 'counter', samples: [{ value: (cpu.user + cpu.system) / 1e6 }] },
      { name: 'process_resident_memory_bytes', help: 'Resident memory of the Berth server.', type: 'gauge', samples: [{ value: mem.rss }] },
      { name: 'process_heap_bytes', help: 'V8 heap in use by the Berth server.', type: 'gauge', samples: [{ value: mem.heapUsed }] },
      { name: 'process_start_time_seconds', help: 'When the Berth server started (Unix time).', type: 'gauge', samples: [{ value: Math.round(this.startedAtMs / 1000) }] },
      {
        name: 'berth_event_loop_delay_seconds', type: 'summary', samples: loopSamples,
        help: 'How late the server\'s event loop ran timers over the last 1-2 minutes (API, DNS, health checks and the balancer feed wait this long); quantile 1 is the maximum.',
      },
    ];
  }

  close(): void {
    clearInterval(this.timer);
    for (const l of this.loops) l.disable();
  }
}
