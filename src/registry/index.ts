/**
 * registry: which instances exist and which are healthy (Berth's own HTTP/TCP checks), and the
 * routing table derived from that for the ingress. DNS answers will come from the same snapshot.
 */
export { HealthMonitor, checkInstance, probeInstance } from './health-monitor.ts';
export { RouteTable, buildRouteTable } from './route-table.ts';
export { Registry, registryKey, type RegistryEntry } from './registry.ts';
