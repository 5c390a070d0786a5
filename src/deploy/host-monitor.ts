import type { EngineHosts, HostInfo, HostState, Logger } from '../core/ports.ts';
import type { EventStore } from '../core/store.ts';

export interface HostMonitorDeps {
  engine: Pick<EngineHosts, 'hosts'>;
  events: Pick<EventStore, 'addEvent'>;
  logger: Logger;
  /** How often hosts are read (engine `host` events also trigger a read); default 5000 ms. */
  intervalMs?: number;
  /** A host changed state (for the reconcilers: instances there may need moving). */
  changed?(host: HostInfo, from: HostState | undefined): void;
}

/**
 * Hosts on the timeline (issue 13): reads the engine's hosts (every interval, and when `check()` is
 * called, e.g. on an engine `host` event) and records each change as an event — `host.ready`,
 * `host.down` (with the engine's reason), `host.draining`, `host.removed` — with the host's address
 * and pool. The first read only learns the hosts (a restart does not repeat old news).
 */
export class HostMonitor {
  private known: Map<string, HostInfo> | undefined;
  private byName = new Map<string, HostState>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly d: HostMonitorDeps) {}

  start(): void {
    void this.check();
    this.timer = setInterval(() => void this.check(), this.d.intervalMs ?? 5000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A host's state as last read (by name); undefined before the first read or for an unknown host. */
  stateOf(name: string): HostState | undefined {
    return this.byName.get(name);
  }

  /** One read and its events; concurrent calls share the read in progress. */
  check(): Promise<void> {
    this.running ??= this.read().finally(() => (this.running = undefined));
    return this.running;
  }

  private async read(): Promise<void> {
    let hosts: HostInfo[];
    try {
      hosts = await this.d.engine.hosts();
    } catch (err) {
      // The engine's own outage is on the timeline already (engine.disconnected).
      this.d.logger.debug({ err: (err as Error).message }, 'hosts not read');
      return;
    }
    const now = new Map(hosts.map((h) => [h.id, h]));
    const before = this.known;
    this.known = now;
    this.byName = new Map(hosts.map((h) => [h.name, h.state]));
    if (!before) {
      // No news on the timeline after a restart, but the reconcilers hear of hosts that are not ready.
      for (const h of hosts) if (h.state !== 'ready') this.d.changed?.(h, undefined);
      return;
    }
    for (const h of hosts) {
      const was = before.get(h.id);
      if (was?.state === h.state) continue;
      const why = h.state === 'down' && h.message ? `: ${h.message}` : '';
      this.record(`host.${h.state}`, `host ${h.name} (${h.address}, pool ${h.pool}) is ${was ? h.state : `${h.state}, new`}${why}`);
      this.d.changed?.(h, was?.state);
    }
    for (const [id, h] of before) if (!now.has(id)) this.record('host.removed', `host ${h.name} (${h.address}, pool ${h.pool}) left the cluster`);
  }

  private record(kind: string, message: string): void {
    this.d.events.addEvent({ app: '', env: '', service: '', instance: '', kind, message });
    this.d.logger.info({ kind }, message);
  }
}
