/**
 * What the API returns about services and instances: shared by api/ (which computes them) and
 * client/ (which reads them), so the two cannot drift apart.
 */
import { crashSummary } from './health-notes.ts';
import type { CheckResult, CrashRecord, InstanceHealth } from './store.ts';

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
  /** The latest result of its health check (`GET /healthz → 404`), and since when. */
  check?: CheckResult;
  /** Many hosts: a stateful instance stays with its volumes' host (`pinned to h2 (volume data)`). */
  pinned?: string;
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
  /** Why releases stop first when Berth chose it (a service keeping data in a named volume). */
  strategyReason?: string;
  /**
   * Many hosts: a stateful service (named volumes) is pinned to the host its volumes live on; Berth
   * never moves it by itself (`berth failover` does, with empty volumes there).
   */
  pinned?: { host: string; volumes: string[]; text: string };
  /** Blue-green: the release the ingress routes to. */
  routedRelease?: number;
  reload: { requestedAt: number; doneAt: number };
  /** Guardrail exemptions this release relies on that have expired or been revoked (it keeps running). */
  warnings?: string[];
  /** The last crash of an instance of the current release since it became the target. */
  lastCrash?: CrashRecord;
  instances: InstanceStatus[];
}

/** A release as listed (`GET /v1/apps/APP/releases`): the record without its spec, with what the list shows of it. */
export interface ReleaseView {
  id: string;
  app: string;
  env: string;
  service: string;
  seq: number;
  specHash: string;
  image: string;
  imageId: string;
  status: string;
  message: string;
  createdAt: number;
  createdBy: string;
  finishedAt?: number;
  strategy: string;
  replicas: number;
  /** The configuration version the release runs with (0: none set when it was made). */
  configVersion: number;
  current: boolean;
}

/** Plain configuration values or secrets. */
export type ConfigKind = 'value' | 'secret';

/** A config key as listed (config store and API): plain values carry `value`; a secret never does unless revealed through `get`. */
export interface ConfigEntryView {
  key: string;
  kind: ConfigKind;
  /** The config version that last set this key. */
  version: number;
  updatedAt: number;
  updatedBy: string;
  value?: string;
}

/** One key's change in a configuration version. `old`/`new` are recorded only for plain values, never for secrets. */
export interface ConfigChangeView {
  key: string;
  kind: ConfigKind;
  op: 'set' | 'unset';
  old?: string;
  new?: string;
}

/** A configuration version of an app/env (`GET …/config/history`). */
export interface ConfigVersionView {
  version: number;
  who: string;
  at: number;
  changes: ConfigChangeView[];
}

/** The outcome of a configuration write (`PUT`/`DELETE …/config`). */
export interface ConfigWriteView {
  app: string;
  env: string;
  /** The version after the call (unchanged when nothing changed). */
  version: number;
  changed: boolean;
  changes: ConfigChangeView[];
  /** The deployment that rolls the change out, when the app runs in this environment. */
  deployment?: string;
}

/** A build from a git push or webhook (`GET /v1/builds`). */
export interface BuildView {
  id: string;
  app: string;
  branch: string;
  env: string;
  commit: string;
  status: string;
  message: string;
  images: Record<string, string>;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  source?: string;
  stage?: string;
  timings?: Record<string, number>;
}

/** A config template and its last render (`GET /v1/templates`). */
export interface TemplateView {
  name: string;
  dest: string;
  renderedAt: number;
  lastError: string;
}

/** An alert rule and its state (`GET /v1/alerts`). */
export interface AlertView {
  name: string;
  state: string;
  since: number;
  value?: number;
  rule: { metric: string; threshold: number; windowMs?: number; forMs?: number; app?: string; env?: string; service?: string; webhook?: string };
}

/** The answer of `GET /v1/top`. */
export interface TopView {
  at: number;
  windowMs: number;
  /** The latest sample of each instance (`sampledAt`), its container and its figures. */
  instances: { app: string; env: string; service: string; instance: string; containerId: string; sampledAt: number; cpuPercent: number; memoryBytes: number;
    memoryLimitBytes: number; netRxBytes: number; netTxBytes: number; blockReadBytes: number; blockWriteBytes: number }[];
  services: { app: string; env: string; service: string; instances: number; desired?: number; cpuPercent: number; memoryBytes: number }[];
  routes: { app: string; env: string; service: string; route: string; requests: number; ratePerSec: number; s2xx: number; s3xx: number; s4xx: number; s5xx: number;
    p50: number | null; p95: number | null; p99: number | null }[];
}

/** What `waitingOn` reads: a ServiceStatus has it all (with `releaseSeq: s.release.seq`). */
export interface WaitView {
  healthy: number;
  desired: number;
  releaseSeq: number;
  instances: InstanceStatus[];
  lastCrash?: CrashRecord;
}

/**
 * Why a service is not (yet) all healthy, in one line: `0/2 healthy; last check GET /healthz → 404
 * (on 127.0.0.1:20031, for 12s)`, or the last crash with what the process printed last.
 */
export function waitingOn(s: WaitView, now: number): string {
  const parts = [`${s.healthy}/${s.desired} healthy`];
  const current = s.instances.filter((i) => i.release === s.releaseSeq && i.state === 'running' && i.health !== 'healthy');
  // The newest failing check of an instance that is not healthy says most about what is wrong.
  const failing = current.filter((i) => i.check && !i.check.ok).sort((a, b) => b.check!.since - a.check!.since)[0];
  if (failing?.check) {
    parts.push(`last check ${failing.check.text} (${failing.id} on ${failing.address}:${failing.port}, for ${secs(now - failing.check.since)})`);
  } else if (current.length > 0) {
    parts.push(`${current.length} starting`);
  }
  if (s.lastCrash) parts.push(`last crash ${secs(now - s.lastCrash.at)} ago: ${crashSummary(s.lastCrash)}`);
  return parts.join('; ');
}

function secs(ms: number): string {
  return `${Math.max(0, Math.round(ms / 1000))}s`;
}

/** One registered instance, Berth's own or external, under the seed convention `/{service}_{env}/{ip}-{port}`. */
export interface RegistryEntryView {
  key: string;
  env: string;
  service: string;
  /** Berth instances belong to an app; external ones do not. */
  app?: string;
  address: string;
  port: number;
  health: InstanceHealth;
  source: 'berth' | 'external';
  /** Berth instance id or external registration id. */
  id: string;
  ttlMs?: number;
  lastHeartbeatAt?: number;
}

/**
 * One host's certificate as `GET /v1/certs` and `berth certs` show it: what is stored (never the
 * key) and what Berth is doing about it.
 * - `valid`: served; `renewing`: served, renewal due or asked for; `failed`: the last ACME attempt
 *   failed (see `lastError`, retried at `retryAt`); `expired`; `pending`: wanted, ACME will get it;
 * - `no-acme`: a route wants it, no ACME CA is configured and none was uploaded; `wildcard`: a wildcard
 *   host wants one, which HTTP-01 cannot get (upload one); `unused`: stored, no route of the host asks.
 */
export interface CertView {
  host: string;
  status: 'valid' | 'renewing' | 'failed' | 'expired' | 'pending' | 'no-acme' | 'wildcard' | 'unused';
  /** Where the stored certificate came from; absent when there is none. */
  source?: 'acme' | 'upload';
  issuer?: string;
  notBefore?: number;
  notAfter?: number;
  /** When Berth renews it (ACME certificates only). */
  renewAt?: number;
  fingerprint?: string;
  /** Routes (app/env/service) that ask for this host's certificate. */
  routes: string[];
  lastError?: string;
  retryAt?: number;
}

/** A named volume of an app (`GET /v1/volumes`): its size as the engine measured it and who mounts it. */
export interface VolumeView {
  app: string;
  env: string;
  /** The name in the Compose file. */
  name: string;
  /** The engine's name (app- and environment-scoped). */
  volume: string;
  /** False until a container of the app first needed it. */
  exists: boolean;
  /** Bytes used (`docker system df -v`); null when unknown. */
  sizeBytes: number | null;
  /** Services whose current release mounts it. */
  services: Array<{ service: string; target: string; readOnly: boolean }>;
  /** Containers mounting it now (instances of any release of the app). */
  containers: Array<{ service: string; instance: string; release: number; state: string; containerId?: string }>;
}

/**
 * One bucket of a metric series (`GET /v1/metrics/query`): the metrics store's row as it is served
 * (metrics/metrics-store.ts computes it; declared once, here).
 */
export interface MetricPointView {
  /** Start of the bucket (ms). */
  ts: number;
  n: number;
  sum: number;
  /** Gauges: mean of the samples; counters: bytes per second; http: mean latency (s). */
  avg: number;
  max: number;
  /** Counters: bytes per second; http: requests per second. */
  rate?: number;
  s2xx?: number;
  s3xx?: number;
  s4xx?: number;
  s5xx?: number;
  /** http: latency percentiles (seconds) estimated from the histogram. */
  p50?: number;
  p95?: number;
  p99?: number;
}

/** A metric series: what it measures (`target`: the instance, or the route's upstream for `http`) and its buckets. */
export interface MetricSeriesView {
  key: { kind: string; app: string; env: string; service: string; target: string };
  points: MetricPointView[];
}
