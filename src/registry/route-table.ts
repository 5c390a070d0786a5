import type { IngressRoute } from '../core/ports.ts';
import type { DesiredStateStore, InstanceRecord, InstanceStore } from '../core/store.ts';
import { canonicalRouteKey, upstreamName } from '../core/spec/routes.ts';
import type { RouteSpec } from '../core/spec/types.ts';

/**
 * The ingress table from the store: every route of every service, backed by its routable instances.
 * Each route carries its owner and an upstream name that cannot collide (`app.env.service.index`).
 * When two services claim one host and path (deployed concurrently, or stored before hosts were
 * normalised), each such route also carries when its service first claimed it, so the ingress keeps
 * the first owner and refuses the other. `direct`: where the ingress reaches an app-network instance
 * without its published port (its container's address and native port), by instance id.
 */
export function buildRouteTable(store: DesiredStateStore & InstanceStore, direct?: ReadonlyMap<string, { address: string; port: number }>): IngressRoute[] {
  const routes: IngressRoute[] = [];
  // Routable instances by service, read once: one pass over the instances, not one per service.
  const byService = new Map<string, Readonly<InstanceRecord>[]>();
  for (const i of store.allInstances()) {
    if (i.state !== 'running' || i.health !== 'healthy') continue;
    const k = `${i.app}\0${i.env}\0${i.service}`;
    const list = byService.get(k);
    if (list) list.push(i);
    else byService.set(k, [i]);
  }
  for (const svc of store.listServices()) {
    const rel = releaseRoutes(store, svc.releaseId);
    if (!rel) continue;
    // Blue-green services route only to their routed release; the others to every healthy instance.
    const routed = rel.blueGreen ? svc.routedReleaseId : undefined;
    const backends = (byService.get(`${svc.app}\0${svc.env}\0${svc.name}`) ?? [])
      .filter((i) => routed === undefined || i.releaseId === routed)
      // App-network instances: straight to the container on its bridge when known (docker-proxy's
      // userspace copy of the published port costs a third of the throughput), else the published port.
      .map((i) => ({ ...(direct?.get(i.id) ?? { address: i.address, port: i.port }), instance: i.id }));
    const owner = { app: svc.app, env: svc.env, service: svc.name };
    rel.routes.forEach((r, idx) => {
      const route: IngressRoute = { upstream: upstreamName(owner, idx), path: r.path, backends, owner };
      if (r.host !== undefined) route.host = r.host;
      if (r.tls === false || r.redirect === false || r.hstsSeconds !== undefined) {
        route.https = { wantsCert: r.tls !== false, redirect: r.tls !== false && r.redirect !== false, ...(r.hstsSeconds !== undefined ? { hstsSeconds: r.hstsSeconds } : {}) };
      }
      routes.push(route);
    });
  }
  markClaims(store, routes);
  return routes;
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
