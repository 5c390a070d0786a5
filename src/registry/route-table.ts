import type { IngressRoute } from '../core/ports.ts';
import type { DesiredStateStore, InstanceRecord, InstanceStore, ServiceRecord, StoreChange, StoreWatch } from '../core/store.ts';
import { canonicalRouteKey, upstreamName } from '../core/spec/routes.ts';
import type { RouteSpec } from '../core/spec/types.ts';

type Direct = ReadonlyMap<string, { address: string; port: number }>;

/**
 * The ingress table from the store: every route of every service, backed by its routable instances.
 * Each route carries its owner and an upstream name that cannot collide (`app.env.service.index`).
 * When two services claim one host and path (deployed concurrently, or stored before hosts were
 * normalised), each such route also carries when its service first claimed it, so the ingress keeps
 * the first owner and refuses the other. `direct`: where the ingress reaches an app-network instance
 * without its published port (its container's address and native port), by instance id.
 * Rebuilds the whole table; a running server keeps a `RouteTable`, which follows the store's changes.
 */
export function buildRouteTable(store: DesiredStateStore & InstanceStore, direct?: Direct): IngressRoute[] {
  const routes: IngressRoute[] = [];
  // Routable instances by service, read once: one pass over the instances, not one per service.
  const byService = new Map<string, Readonly<InstanceRecord>[]>();
  for (const i of store.allInstances()) {
    const k = serviceId(i.app, i.env, i.service);
    const list = byService.get(k);
    if (list) list.push(i);
    else byService.set(k, [i]);
  }
  for (const svc of store.listServices()) routes.push(...serviceRoutes(store, svc, byService.get(serviceId(svc.app, svc.env, svc.name)) ?? [], direct));
  markClaims(store, routes);
  return routes;
}

function serviceId(app: string, env: string, service: string): string {
  return `${app}\0${env}\0${service}`;
}

/** One service's routes, backed by its running, healthy instances among `instances` (of that service). */
function serviceRoutes(store: DesiredStateStore, svc: ServiceRecord, instances: readonly Readonly<InstanceRecord>[], direct: Direct | undefined): IngressRoute[] {
  const rel = releaseRoutes(store, svc.releaseId);
  if (!rel) return [];
  // Blue-green services route only to their routed release; the others to every healthy instance.
  const routed = rel.blueGreen ? svc.routedReleaseId : undefined;
  const backends: IngressRoute['backends'] = [];
  for (const i of instances) {
    if (i.state !== 'running' || i.health !== 'healthy' || (routed !== undefined && i.releaseId !== routed)) continue;
    // App-network instances: straight to the container on its bridge when known (docker-proxy's
    // userspace copy of the published port costs a third of the throughput), else the published port.
    const d = direct?.get(i.id);
    backends.push({ address: d ? d.address : i.address, port: d ? d.port : i.port, instance: i.id });
  }
  const owner = { app: svc.app, env: svc.env, service: svc.name };
  return rel.routes.map((r, idx) => {
    const route: IngressRoute = { upstream: upstreamName(owner, idx), path: r.path, backends, owner };
    if (r.host !== undefined) route.host = r.host;
    if (r.tls === false || r.redirect === false || r.hstsSeconds !== undefined) {
      route.https = { wantsCert: r.tls !== false, redirect: r.tls !== false && r.redirect !== false, ...(r.hstsSeconds !== undefined ? { hstsSeconds: r.hstsSeconds } : {}) };
    }
    return route;
  });
}

/**
 * The route table of a running server, kept current from the store's change feed: a change of an
 * instance or a service recomputes that service's routes only (bench scale: rebuilding 500 services'
 * routes from 5,000 instances after every health flip was a share of every flip's time and most of
 * its garbage). `routes()` gives the same table `buildRouteTable` would, in the same order.
 * Each call gives new route objects; the backends arrays of services that did not change are the
 * same as before, and frozen (with their elements): the ingress checks and renders only new ones.
 * The direct addresses (app-network instances) are a map the reconcilers change in place: each call
 * compares the entries it used with the map (few: app-network instances only).
 */
export class RouteTable {
  /** Routes by service id, for the services known (a service without a release has none). */
  private readonly byService = new Map<string, { key: { app: string; env: string; service: string }; routes: IngressRoute[] }>();
  /** Services whose routes are to be recomputed; `all`: every service (at first, and when the feed cannot be trusted). */
  private readonly dirty = new Set<string>();
  private all = true;
  /** Service ids in the store's order (app, env, name); undefined after a service came or went. */
  private order: string[] | undefined;
  /** The direct address each app-network instance's backend was built with, and its service. */
  private readonly directUsed = new Map<string, { at: string; service: string }>();
  private readonly unwatch: () => void;
  /** Recomputations of one service so far (tests: a flip costs one service's, not the table's). */
  recomputed = 0;

  constructor(private readonly store: DesiredStateStore & InstanceStore & StoreWatch, private readonly direct?: Direct) {
    this.unwatch = store.watch((c) => this.note(c));
  }

  close(): void {
    this.unwatch();
  }

  /** Marks a service to be recomputed (a caller that changed something the feed does not carry). */
  invalidate(k?: { app: string; env: string; service: string }): void {
    if (k === undefined) this.all = true;
    else this.dirty.add(serviceId(k.app, k.env, k.service));
  }

  private note(c: StoreChange): void {
    if (c.kind === 'instance' || c.kind === 'service') this.dirty.add(serviceId(c.app, c.env, c.service));
    else if (c.kind === 'purge') this.all = true;
  }

  routes(): IngressRoute[] {
    const { store } = this;
    if (this.direct) this.noteDirect(this.direct);
    if (this.all) {
      this.all = false;
      this.dirty.clear();
      this.byService.clear();
      this.directUsed.clear();
      this.order = undefined;
      for (const svc of store.listServices()) this.dirty.add(serviceId(svc.app, svc.env, svc.name));
    }
    for (const id of this.dirty) this.recompute(id);
    this.dirty.clear();
    this.order ??= [...this.byService.entries()].sort(([, a], [, b]) => cmp(a.key.app, b.key.app) || cmp(a.key.env, b.key.env) || cmp(a.key.service, b.key.service)).map(([id]) => id);
    const out: IngressRoute[] = [];
    for (const id of this.order) {
      // Fresh route objects (markClaims sets claimedAt on them), the backends arrays shared.
      for (const r of this.byService.get(id)!.routes) out.push({ ...r });
    }
    markClaims(store, out);
    return out;
  }

  private recompute(id: string): void {
    const [app, env, service] = id.split('\0') as [string, string, string];
    const key = { app, env, service };
    const svc = this.store.getService(key);
    const had = this.byService.get(id);
    for (const [inst, used] of this.directUsed) if (used.service === id) this.directUsed.delete(inst);
    this.recomputed++;
    if (!svc) {
      if (had) {
        this.byService.delete(id);
        this.order = undefined;
      }
      return;
    }
    const instances = this.store.listInstances(key);
    const routes = serviceRoutes(this.store, svc, instances, this.direct);
    // Frozen (the array and each backend): the ingress keeps what it learnt about a backends array
    // that cannot change, and checks and renders again only the services that changed.
    for (const r of routes) {
      for (const b of r.backends) Object.freeze(b);
      Object.freeze(r.backends);
    }
    if (this.direct) {
      for (const i of instances) {
        const d = this.direct.get(i.id);
        if (d) this.directUsed.set(i.id, { at: `${d.address}:${d.port}`, service: id });
      }
    }
    if (!had) this.order = undefined;
    this.byService.set(id, { key, routes });
  }

  /** Services whose app-network instances' direct addresses changed since their routes were built. */
  private noteDirect(direct: Direct): void {
    for (const [inst, used] of this.directUsed) {
      const d = direct.get(inst);
      if (!d || `${d.address}:${d.port}` !== used.at) this.dirty.add(used.service);
    }
    // An address the routes do not use yet: its instance's service.
    for (const inst of direct.keys()) {
      if (this.directUsed.has(inst)) continue;
      const i = this.store.getInstance(inst);
      if (i) this.dirty.add(serviceId(i.app, i.env, i.service));
    }
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * What the route table needs of a release, by release id: a release's spec never changes, and the
 * table is rebuilt after every change (bench scale: reading and parsing 500 releases' specs per
 * rebuild was a third of it). Per store; bounded: cleared when it passes 20,000 releases.
 */
const byStore = new WeakMap<object, Map<string, { routes: RouteSpec[]; blueGreen: boolean }>>();
function releaseRoutes(store: DesiredStateStore, id: string): { routes: RouteSpec[]; blueGreen: boolean } | undefined {
  let byRelease = byStore.get(store);
  if (!byRelease) byStore.set(store, (byRelease = new Map()));
  let got = byRelease.get(id);
  if (got) return got;
  const rel = store.getRelease(id);
  if (!rel) return undefined;
  if (byRelease.size >= 20_000) byRelease.clear();
  got = { routes: rel.spec.routes, blueGreen: rel.spec.update?.strategy === 'blue-green' };
  byRelease.set(id, got);
  return got;
}

/** Sets `claimedAt` on routes whose host and path another service claims too (rare: costs a release list per such service). */
function markClaims(store: DesiredStateStore & InstanceStore, routes: IngressRoute[]): void {
  const byKey = new Map<string, IngressRoute[]>();
  for (const r of routes) {
    const k = canonicalRouteKey(r);
    byKey.set(k, [...(byKey.get(k) ?? []), r]);
  }
  for (const [key, claimants] of byKey) {
    if (claimants.length < 2) continue;
    for (const r of claimants) {
      const o = r.owner!;
      // The oldest release of this service that had the route: when the service took it.
      const first = store.listReleases({ app: o.app, env: o.env, service: o.service })
        .filter((rel) => rel.spec.routes.some((x) => canonicalRouteKey(x) === key))
        .reduce((min, rel) => Math.min(min, rel.createdAt), Number.POSITIVE_INFINITY);
      if (Number.isFinite(first)) r.claimedAt = first;
    }
  }
}
