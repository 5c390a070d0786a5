/**
 * What the API returns about services and instances: shared by api/ (which computes them) and
 * client/ (which reads them), so the two cannot drift apart.
 */
export interface InstanceStatus {
  id: string;
  release: number;
  state: string;
  health: string;
  host: string;
  address: string;
  port: number;
  containerId?: string;
  startedAt?: number;
  reason?: string;
}

export interface ServiceStatus {
  app: string;
  env: string;
  name: string;
  desired: number;
  healthy: number;
  running: number;
  /** running | deploying | degraded | crash-looping | stopped | failed */
  status: string;
  detail: string;
  release: { id: string; seq: number; status: string; message: string; image: string; imageId: string; createdAt: number };
  routes: { host?: string; path: string }[];
  failures: number;
  nextStartAt?: number;
  strategy: string;
  /** Blue-green: the release the ingress routes to. */
  routedRelease?: number;
  reload: { requestedAt: number; doneAt: number };
  instances: InstanceStatus[];
}
