import { LABEL, type ContainerHealth, type EngineEvent, type Logger } from '../../core/ports.ts';

/** What a host's engine last said about one container (its events, or a listing at (re)connect). */
export interface ObservedContainer {
  /** The container id (a Swarm task's container). */
  id: string;
  /** The node's hostname. */
  host: string;
  labels: Record<string, string>;
  running: boolean;
  exitCode?: number;
  health: ContainerHealth;
  /** ms since epoch when this was learnt. */
  at: number;
}

/** One host's engine as the feed follows it (a DockerEngine over TLS, or the local one; a fake in unit tests). */
export interface HostEventSource {
  watch(onEvent: (e: EngineEvent) => void): () => void;
  /** Berth's containers there (running or not): what a (re)connect resyncs from. */
  observe(): Promise<Array<Omit<ObservedContainer, 'host' | 'at'>>>;
}

/** A host to follow: `key` changes when its endpoint does (the follower is then replaced). */
export interface FollowedHost {
  key: string;
  name: string;
  source: () => HostEventSource;
  /** Whether its container events go to the listeners (false: followed for the observations only). */
  emit: boolean;
}

/** How the feed follows one host (the `berth_host_events_*` figures). */
export interface HostEventsHealth {
  host: string;
  connected: boolean;
  /** Container events received since the feed started following it. */
  events: number;
  /** (Re)connects, each followed by a resync of its containers. */
  resyncs: number;
  error?: string;
}

interface Follower {
  key: string;
  name: string;
  emit: boolean;
  unwatch: () => void;
  /** Bumped at every (re)connect and stop: a resync's answer for an older one is dropped. */
  epoch: number;
  health: HostEventsHealth;
  /** Container ids observed on this host (their observations live in the feed's one map). */
  ids: Set<string>;
}

/** Containers observed per host at most; beyond it the oldest are forgotten (the Swarm's view stands for them). */
const MAX_PER_HOST = 10_000;

const HEALTH = /^health_status: ?(starting|healthy|unhealthy)$/;

/**
 * Every host's Docker engine events in one place (cluster mode, issue 13 item 4). A container event
 * is local to its node: the Swarm manager's event stream never carries the death or health flip of a
 * task on another host. The feed follows each host's engine (its own watch: reconnects with backoff
 * and says `connected`/`disconnected`; one host going away stalls no other), keeps what each engine
 * last said about Berth's task containers there (`observed`: the containers role overlays it on the
 * manager's task states, which lag the host), and hands their container events to the listeners —
 * the same path as the local engine's events (they only wake their service's reconciler).
 * Level-driven: at every (re)connect the host's containers are listed again and replace what was
 * observed there, and each service with a container there is woken once; a lost host's
 * observations are dropped (the manager's view stands until it is back). Bounded: what is kept is
 * the containers present on the followed hosts (destroyed ones are forgotten), at most MAX_PER_HOST each.
 */
export class HostEvents {
  private readonly followers = new Map<string, Follower>();
  private readonly byId = new Map<string, ObservedContainer>();
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly o: {
    logger: Logger;
    /** A container event of a followed host (with `emit`), or a resync's wake (action `resync`). */
    onEvent: (host: string, e: Extract<EngineEvent, { kind: 'container' }>) => void;
    now?: () => number;
    maxPerHost?: number;
  }) {
    this.log = o.logger.child({ component: 'host-events' });
    this.now = o.now ?? Date.now;
  }

  /** Follows exactly these hosts: new ones are subscribed, gone ones (or a changed endpoint) stopped and forgotten. */
  sync(hosts: FollowedHost[]): void {
    const want = new Map(hosts.map((h) => [h.name, h]));
    for (const [name, f] of this.followers) {
      const h = want.get(name);
      if (!h || h.key !== f.key) this.unfollow(name);
      else f.emit = h.emit;
    }
    for (const h of hosts) if (!this.followers.has(h.name)) this.follow(h);
  }

  /** What the container's host engine last said about it; undefined when not followed (or not seen). */
  observed(containerId: string): ObservedContainer | undefined {
    return this.byId.get(containerId);
  }

  health(): HostEventsHealth[] {
    return [...this.followers.values()].map((f) => ({ ...f.health })).sort((a, b) => a.host.localeCompare(b.host));
  }

  /** How many containers are observed (bounded; for tests). */
  get size(): number {
    return this.byId.size;
  }

  stop(): void {
    for (const name of [...this.followers.keys()]) this.unfollow(name);
  }

  private follow(h: FollowedHost): void {
    const f: Follower = { key: h.key, name: h.name, emit: h.emit, unwatch: () => undefined, epoch: 0, health: { host: h.name, connected: false, events: 0, resyncs: 0 }, ids: new Set() };
    this.followers.set(h.name, f);
    let source: HostEventSource;
    try {
      source = h.source();
    } catch (err) {
      f.health.error = String((err as Error)?.message ?? err);
      this.log.warn({ host: h.name, err: f.health.error }, 'host engine events not followed');
      return;
    }
    f.unwatch = source.watch((e) => {
      if (this.followers.get(h.name) !== f) return;
      if (e.kind === 'connected') {
        f.health.connected = true;
        delete f.health.error;
        f.health.resyncs++;
        void this.resync(f, source, ++f.epoch);
      } else if (e.kind === 'disconnected') {
        f.epoch++;
        f.health.connected = false;
        f.health.error = e.error;
        this.forget(f);
      } else if (e.kind === 'container') {
        f.health.events++;
        this.apply(f, e);
        if (f.emit) this.o.onEvent(h.name, e);
      }
    });
  }

  private unfollow(name: string): void {
    const f = this.followers.get(name);
    if (!f) return;
    this.followers.delete(name);
    f.epoch++;
    try {
      f.unwatch();
    } catch (err) {
      this.log.warn({ host: name, err: String(err) }, 'host engine events: unwatch failed');
    }
    this.forget(f);
  }

  private forget(f: Follower): void {
    for (const id of f.ids) if (this.byId.get(id)?.host === f.name) this.byId.delete(id);
    f.ids.clear();
  }

  private put(f: Follower, c: ObservedContainer): void {
    const other = this.byId.get(c.id);
    if (other && other.host !== f.name) this.followers.get(other.host)?.ids.delete(c.id);
    this.byId.set(c.id, c);
    f.ids.delete(c.id);
    f.ids.add(c.id);
    const max = this.o.maxPerHost ?? MAX_PER_HOST;
    while (f.ids.size > max) {
      const oldest = f.ids.values().next().value as string;
      f.ids.delete(oldest);
      if (this.byId.get(oldest)?.host === f.name) this.byId.delete(oldest);
    }
  }

  private apply(f: Follower, e: Extract<EngineEvent, { kind: 'container' }>): void {
    const at = this.now();
    if (e.action === 'destroy') {
      f.ids.delete(e.id);
      if (this.byId.get(e.id)?.host === f.name) this.byId.delete(e.id);
      return;
    }
    const prev = this.byId.get(e.id);
    const base: ObservedContainer = prev?.host === f.name ? { ...prev, labels: { ...prev.labels, ...labelsOnly(e.labels) }, at }
      : { id: e.id, host: f.name, labels: labelsOnly(e.labels), running: true, health: 'none', at };
    const health = HEALTH.exec(e.action)?.[1] as ContainerHealth | undefined;
    if (health) return this.put(f, { ...base, health });
    if (e.action === 'start') {
      const { exitCode: _gone, ...rest } = base;
      return this.put(f, { ...rest, running: true, health: base.health === 'none' ? 'none' : 'starting' });
    }
    if (e.action === 'die') {
      const code = Number(e.labels.exitCode);
      return this.put(f, { ...base, running: false, ...(Number.isInteger(code) ? { exitCode: code } : {}), ...(base.health !== 'none' ? { health: 'unhealthy' } : {}) });
    }
    // Other actions (create, stop, oom, ...) say nothing the die/start/health events do not.
    if (!prev) return;
    this.put(f, base);
  }

  private async resync(f: Follower, source: HostEventSource, epoch: number): Promise<void> {
    let list: Awaited<ReturnType<HostEventSource['observe']>>;
    try {
      list = await source.observe();
    } catch (err) {
      if (f.epoch === epoch) {
        f.health.error = `resync: ${String((err as Error)?.message ?? err)}`;
        this.log.warn({ host: f.name, err: f.health.error }, 'host engine containers not listed; its events are followed, the Swarm\'s view stands for the others');
      }
      return;
    }
    if (f.epoch !== epoch || this.followers.get(f.name) !== f) return;
    this.forget(f);
    const at = this.now();
    for (const c of list) this.put(f, { ...c, host: f.name, at });
    this.log.info({ host: f.name, containers: list.length }, 'host engine followed: containers resynced');
    // Events may have been missed while it was away: each service with a container there gets a look.
    if (!f.emit) return;
    const woken = new Set<string>();
    for (const c of list) {
      const k = [LABEL.cluster, LABEL.app, LABEL.env, LABEL.service].map((l) => c.labels[l] ?? '').join('\0');
      if (woken.has(k)) continue;
      woken.add(k);
      this.o.onEvent(f.name, { kind: 'container', action: 'resync', id: c.id, labels: { ...c.labels } });
    }
  }
}

/** Docker's event attributes are the container's labels plus name, image and (on die) exitCode. */
function labelsOnly(attrs: Record<string, string>): Record<string, string> {
  const { name: _n, image: _i, exitCode: _e, ...labels } = attrs;
  return labels;
}
