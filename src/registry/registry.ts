import type { Clock, Logger } from '../core/ports.ts';
import type { RegistryEntryView } from '../core/views.ts';
import type { ExternalRecord, InstanceHealth, InstanceRecord, DesiredStateStore, EventStore, ExternalStore, InstanceStore } from '../core/store.ts';
import { probeInstance } from './health-monitor.ts';

/** One registered instance: the API's wire type, produced here. */
export type RegistryEntry = RegistryEntryView;

export function registryKey(service: string, env: string, address: string, port: number): string {
  return `/${service}_${env}/${address}-${port}`;
}

/**
 * The service registry: every instance with its health, Berth's and external ones. It keeps an index
 * that grows whenever the set of healthy instances changes, so watchers (blocking queries, SSE, DNS,
 * templates) wake on change rather than polling. External services are checked like Berth's (HTTP/TCP)
 * and expire when their TTL passes without a heartbeat.
 */
export class Registry {
  private index: number;
  /** Berth's running instances' entries by instance id, with the refresh that last saw each. */
  private readonly berth = new Map<string, { entry: RegistryEntry; gen: number }>();
  private generation = 0;
  private externals: RegistryEntry[] = [];
  /** The externals' healthy set and names, as of the last refresh. */
  private externalsSignature = '';
  private cache: RegistryEntry[] = [];
  private sorted = true;
  private seenVersion = -1;
  private seenExternals = '';
  private waiters = new Set<() => void>();
  private timer?: NodeJS.Timeout;
  private lastCheck = new Map<string, number>();
  private readonly listeners: ((index: number) => void)[] = [];

  constructor(private readonly store: DesiredStateStore & InstanceStore & ExternalStore & EventStore, private readonly clock: Clock, private readonly logger: Logger) {
    // Monotonic across restarts without persisting it: a watcher's old index is always below it.
    this.index = clock.now();
    this.refresh();
  }

  get currentIndex(): number {
    return this.index;
  }

  /** Called with the new index after every change of the healthy set. */
  onChange(fn: (index: number) => void): void {
    this.listeners.push(fn);
  }

  entries(): RegistryEntry[] {
    // Sorted when first read after a refresh, not on every refresh (at 5,000 instances a refresh runs
    // after each change; readers — DNS snapshots, the API — come far less often).
    if (!this.sorted) {
      this.cache.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      this.sorted = true;
    }
    return this.cache;
  }

  /**
   * Healthy instances of `service` in `env`: of app `app`'s service when given, else of the external
   * service of that name (externals belong to no app). Two apps' services of the same name never mix.
   */
  healthy(env: string, service: string, app?: string): RegistryEntry[] {
    return this.entries().filter((e) => e.env === env && e.service === service && e.health === 'healthy' &&
      (app === undefined ? e.source === 'external' : e.source === 'berth' && e.app === app));
  }

  /**
   * For a name without an app (`SERVICE.ENV`): the apps with a service of that name in `env` when no
   * external service of that name is registered there — the caller most likely meant one of them.
   * Empty when the name is an external service's, or nobody's.
   */
  appsOnly(env: string, service: string): string[] {
    if (this.store.listExternals().some((x) => x.env === env && x.service === service)) return [];
    const apps = new Set<string>();
    for (const s of this.store.listServices({ env })) if (s.name === service) apps.add(s.app);
    for (const e of this.cache) if (e.source === 'berth' && e.env === env && e.service === service && e.app) apps.add(e.app);
    return [...apps].sort();
  }

  /**
   * Re-reads the store; bumps the index (and wakes watchers) when the healthy set changed. Cheap: one
   * pass over the store's shared instance records that compares each with the entry made from it
   * last time and makes entries only for the instances that changed (bench scale: building 5,000
   * entries and a 5,000-part signature after every write was the top item of a churn's profile).
   */
  refresh(): void {
    // Nothing to do when no instance was written and the externals read the same (a turn of the event
    // loop often asks twice: for the ingress and for the instance set).
    const version = this.store.instanceVersion();
    const externals = this.store.listExternals();
    const externalsJson = JSON.stringify(externals);
    const externalsChanged = externalsJson !== this.seenExternals;
    if (version === this.seenVersion && !externalsChanged) return;
    this.seenExternals = externalsJson;
    // The healthy set changed, or how many entries an env/service has: watchers are woken.
    let moved = false;
    let entriesChanged = false;
    /** Makes i's entry anew when it changed; false: i is not running (it has none). */
    const note = (i: Readonly<InstanceRecord>, gen: number): boolean => {
      if (i.state !== 'running') return false;
      const had = this.berth.get(i.id);
      const e = had?.entry;
      if (e && e.health === i.health && e.address === i.address && e.port === i.port && e.service === i.service && e.env === i.env && e.app === i.app) {
        had.gen = gen;
        return true;
      }
      const key = registryKey(i.service, i.env, i.address, i.port);
      const entry: RegistryEntry = { key, env: i.env, service: i.service, app: i.app, address: i.address, port: i.port, health: i.health, source: 'berth', id: i.id };
      const healthy = i.health === 'healthy';
      if (!e || e.env !== i.env || e.service !== i.service || (e.health === 'healthy') !== healthy || (healthy && e.key !== key)) moved = true;
      this.berth.set(i.id, { entry, gen });
      entriesChanged = true;
      return true;
    };
    const gen = ++this.generation;
    // The instances written since the last refresh when the store can tell (a flip: one), else all.
    const written = this.seenVersion >= 0 ? this.store.instanceWritesSince(this.seenVersion) : undefined;
    if (written) {
      for (const id of new Set(written)) {
        const i = this.store.instanceRecord(id);
        if ((!i || !note(i, gen)) && this.berth.delete(id)) {
          moved = true;
          entriesChanged = true;
        }
      }
    } else {
      let running = 0;
      for (const i of this.store.allInstances()) if (note(i, gen)) running++;
      // Instances that stopped running or went (the pass did not see them).
      if (this.berth.size > running) {
        for (const [id, b] of this.berth) {
          if (b.gen === gen) continue;
          this.berth.delete(id);
          moved = true;
          entriesChanged = true;
        }
      }
    }
    this.seenVersion = version;
    if (externalsChanged) {
      const ext: RegistryEntry[] = [];
      for (const x of externals) {
        ext.push({ key: registryKey(x.service, x.env, x.address, x.port), env: x.env, service: x.service, address: x.address, port: x.port,
          health: x.health, source: 'external', id: x.id, ...(x.ttlMs ? { ttlMs: x.ttlMs } : {}), lastHeartbeatAt: x.lastHeartbeatAt });
      }
      const sig = `${ext.filter((e) => e.health === 'healthy').map((e) => `${e.key}#${e.id}`).join('|')}//${ext.map((e) => `${e.env}/${e.service}`).sort().join('|')}`;
      if (sig !== this.externalsSignature) moved = true;
      this.externalsSignature = sig;
      this.externals = ext;
      entriesChanged = true;
    }
    if (entriesChanged) {
      const entries: RegistryEntry[] = [];
      for (const b of this.berth.values()) entries.push(b.entry);
      for (const x of this.externals) entries.push(x);
      this.cache = entries;
      this.sorted = false;
    }
    if (!moved) return;
    this.index = Math.max(this.index + 1, this.clock.now());
    const w = this.waiters;
    this.waiters = new Set();
    for (const fn of w) fn();
    for (const l of this.listeners) l(this.index);
  }

  /** Resolves with the current index once it is above `index`, or after `timeoutMs` (Consul-style blocking query). */
  waitFor(index: number, timeoutMs: number): Promise<number> {
    if (this.index > index) return Promise.resolve(this.index);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve(this.index);
      };
      const t = setTimeout(done, timeoutMs);
      t.unref();
      this.waiters.add(done);
    });
  }

  /** Starts TTL expiry and checks of external services. */
  start(): void {
    this.timer = setInterval(() => void this.tick(), 200);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    for (const fn of this.waiters) fn();
  }

  private async tick(): Promise<void> {
    const now = this.clock.now();
    let changed = false;
    for (const x of this.store.listExternals()) {
      let next: InstanceHealth = x.health;
      if (x.ttlMs && now - x.lastHeartbeatAt > x.ttlMs) next = 'unhealthy';
      else if (x.check.type !== 'none') {
        if (now - (this.lastCheck.get(x.id) ?? 0) < x.check.intervalMs) continue;
        this.lastCheck.set(x.id, now);
        next = (await this.check(x)) ? 'healthy' : 'unhealthy';
      } else if (!x.ttlMs || now - x.lastHeartbeatAt <= x.ttlMs) next = 'healthy';
      if (next !== x.health && this.store.getExternal(x.id)) {
        this.store.updateExternal(x.id, { health: next });
        const why = x.ttlMs && now - x.lastHeartbeatAt > x.ttlMs ? `no heartbeat for ${Math.round((now - x.lastHeartbeatAt) / 100) / 10}s (ttl ${x.ttlMs / 1000}s)` : `${x.check.type} check`;
        this.store.addEvent({ app: '', env: x.env, service: x.service, instance: x.id, kind: `external.${next}`,
          message: `external ${registryKey(x.service, x.env, x.address, x.port)} is ${next} (${why})` });
        this.logger.info({ external: x.id, health: next }, 'external service health changed');
        changed = true;
      }
    }
    if (changed) this.refresh();
  }

  private check(x: ExternalRecord): Promise<boolean> {
    const inst = { address: x.address, port: x.port } as Parameters<typeof probeInstance>[0];
    if (x.check.type === 'http') return probeInstance(inst, { type: 'http', path: x.check.path, intervalMs: x.check.intervalMs, timeoutMs: 1000, retries: 1, startPeriodMs: 0 });
    return probeInstance(inst, { type: 'tcp', intervalMs: 1000, timeoutMs: 1000, retries: 1, startPeriodMs: 0 });
  }
}
