import type { IngressRoute } from '../core/ports.ts';
import type { Store } from '../core/store.ts';

/** The ingress table from the store: every route of every service, backed by its routable instances. */
export function buildRouteTable(store: Store): IngressRoute[] {
  const routes: IngressRoute[] = [];
  const instances = store.listInstances();
  for (const svc of store.listServices()) {
    const rel = store.getRelease(svc.releaseId);
    if (!rel) continue;
    // Blue-green services route only to their routed release; the others to every healthy instance.
    const routed = rel.spec.update?.strategy === 'blue-green' ? svc.routedReleaseId : undefined;
    const backends = instances
      .filter((i) => i.app === svc.app && i.env === svc.env && i.service === svc.name && i.state === 'running' && i.health === 'healthy')
      .filter((i) => routed === undefined || i.releaseId === routed)
      .map((i) => ({ address: i.address, port: i.port, instance: i.id }));
    rel.spec.routes.forEach((r, idx) => {
      const route: IngressRoute = { upstream: `${svc.app}-${svc.env}-${svc.name}-${idx}`, path: r.path, backends };
      if (r.host) route.host = r.host;
      routes.push(route);
    });
  }
  return routes;
}
