/**
 * Records of desired and observed state and the Store interface over them. The SQLite store
 * implements it now; an etcd-backed store may later (HA control plane).
 */
import type { AppSpec, ServiceSpec, SpecWarning } from './spec/types.ts';
import type { SpecSource } from './spec/source.ts';

export type DeploymentStatus = 'pending' | 'building' | 'rolling' | 'succeeded' | 'failed';

/** One `berth deploy`: a whole app spec for one environment. */
export interface DeploymentRecord {
  id: string;
  app: string;
  env: string;
  spec: AppSpec;
  warnings: SpecWarning[];
  status: DeploymentStatus;
  message: string;
  createdAt: number;
  createdBy: string;
  /** service name → release id, filled once images are built and releases created. */
  releases: Record<string, string>;
  /**
   * The build record whose images the services with a `build:` section run: the push build that made
   * this deployment, or (for `berth deploy`) the host-context build the deployment controller submits,
   * whose id is the deployment's own. Absent: no service is built.
   */
  buildId?: string;
}

/** progressing → healthy | failed; superseded: a newer deploy replaced it before it got there. */
export type ReleaseStatus = 'progressing' | 'healthy' | 'failed' | 'superseded';

export interface ReleaseRecord {
  id: string;
  app: string;
  env: string;
  service: string;
  seq: number;
  spec: ServiceSpec;
  specHash: string;
  /** Image reference as written/built and the resolved image id. */
  image: string;
  imageId: string;
  status: ReleaseStatus;
  message: string;
  createdAt: number;
  createdBy: string;
  finishedAt?: number;
}

/** Desired state of one service in one environment. */
export interface ServiceRecord {
  app: string;
  env: string;
  name: string;
  replicas: number;
  releaseId: string;
  /** Crash-loop bookkeeping: consecutive failures and when the next start may happen. */
  failures: number;
  nextStartAt: number;
  updatedAt: number;
  /** Blue-green: the release whose instances the ingress routes to (undefined: every healthy instance). */
  routedReleaseId?: string;
  /** When the routed release last switched (the previous set idles until switchedAt + keep_previous). */
  switchedAt?: number;
  /** `berth reload`: when a signal was asked for, and when the last one was sent and answered healthy. */
  reloadRequestedAt?: number;
  reloadedAt?: number;
  /**
   * When `releaseId` last changed (a deploy or a rollback made it the target); the release's deadline
   * counts from here. Set by the store whenever the release changes; ignored in writes.
   */
  rolloutStartedAt?: number;
  /** The last time an instance of this service ended on its own: why, and its last lines of output. */
  lastCrash?: CrashRecord;
}

/** An instance that ended on its own, as `status` and a failed release explain it. */
export interface CrashRecord {
  at: number;
  instance: string;
  releaseId: string;
  exitCode?: number;
  oomKilled?: boolean;
  /** How long it ran. */
  ranMs: number;
  /** Its last lines of output (stdout and stderr, oldest first). */
  output: string[];
  /**
   * Its last line on stderr, where the reason usually is (a line on stdout written just before may
   * still come after it in the engine's log: the two streams are copied separately).
   */
  lastError?: string;
}

/** The latest result of an instance's health check, written only when it changes. */
export interface CheckResult {
  ok: boolean;
  /** As a person reads it: `GET /healthz → 404`, `connection refused on 127.0.0.1:20031`, `healthcheck exit 1: …`. */
  text: string;
  /** When this result was first seen. */
  since: number;
}

/**
 * pending: row and port exist, container not yet created/started.
 * running: container started (health says whether it is routable).
 * stopping: leaving the upstreams, then stopped and removed.
 * exited: ended and not to be restarted (restart policy none/on-failure with exit 0, or attempts used up).
 */
export type InstanceState = 'pending' | 'running' | 'stopping' | 'exited';
export type InstanceHealth = 'starting' | 'healthy' | 'unhealthy';

export interface InstanceRecord {
  id: string;
  app: string;
  env: string;
  service: string;
  releaseId: string;
  host: string;
  address: string;
  port: number;
  containerId?: string;
  state: InstanceState;
  health: InstanceHealth;
  createdAt: number;
  startedAt?: number;
  /** Why an instance is stopping (scale-down, replaced, crashed, ...). */
  reason?: string;
  /** The latest result of its health check (Berth's probe, the engine's healthcheck, the port check). */
  check?: CheckResult;
  /**
   * When a person asked for this one instance to be restarted: the reconciler replaces it like an
   * instance of an old release (start-first under rolling: a new one serves before it goes).
   */
  replaceRequestedAt?: number;
}

export interface EventRecord {
  id: number;
  ts: number;
  app: string;
  env: string;
  service: string;
  instance: string;
  kind: string;
  message: string;
}

export type NewEvent = Omit<EventRecord, 'id' | 'ts'> & { ts?: number };

/** A service instance outside Berth's containers, registered through the API (seed: active registration). */
export interface ExternalRecord {
  id: string;
  env: string;
  service: string;
  address: string;
  port: number;
  /** Berth checks it like its own instances; `none` relies on the TTL alone. */
  check: { type: 'http'; path: string; intervalMs: number } | { type: 'tcp'; intervalMs: number } | { type: 'none' };
  /** Without a heartbeat for this long it is unhealthy. */
  ttlMs?: number;
  lastHeartbeatAt: number;
  health: InstanceHealth;
  registeredAt: number;
}

/** A confd-style template: rendered to `dest`, checked, swapped in atomically, then `reload` runs. */
export interface TemplateRecord {
  name: string;
  source: string;
  dest: string;
  /** argv; `{{candidate}}` is replaced by the candidate file's path. Empty: no check. */
  check: string[];
  /** argv run after a swap. Empty: nothing. */
  reload: string[];
  createdAt: number;
  renderedAt: number;
  lastError: string;
}

/** What an alert watches. Thresholds compare with `>`; windows are milliseconds. */
export interface AlertRule {
  /** restarts: crashes in the window · p95_latency: seconds · error_ratio: 5xx / all requests · host_disk, host_memory: used fraction 0–1 */
  metric: 'restarts' | 'p95_latency' | 'error_ratio' | 'host_disk' | 'host_memory';
  threshold: number;
  windowMs: number;
  /** How long the condition must hold before the alert fires (0: at once). */
  forMs: number;
  app?: string;
  env?: string;
  service?: string;
  /** Where notifications go (POST JSON); none: the alert is only visible in Berth. */
  webhook?: string;
}

export interface AlertRecord {
  name: string;
  rule: AlertRule;
  createdAt: number;
  state: 'ok' | 'pending' | 'firing';
  /** When the current state began. */
  since: number;
  value?: number;
  pendingSince: number;
}

/**
 * `berth rm APP --purge`: requested (the app's services are deleted in the same transaction), then
 * carried out step by step by the purger once the app's containers are gone; `done` keeps only what
 * each step removed (counts and names, no data) so the CLI can report it.
 */
export interface PurgeRecord {
  app: string;
  state: 'purging' | 'done';
  requestedAt: number;
  requestedBy: string;
  finishedAt?: number;
  /** The app's volumes (from its releases), named at request: the releases are gone before the volumes can go. */
  volumes: string[];
  /** Step → what it removed, in the order the steps ran; a step listed here is not run again. */
  removed: Record<string, string>;
  /** What the purge is waiting for, or the last step's failure (it is retried with backoff). */
  waiting?: string;
}

export interface ServiceKey {
  app: string;
  env: string;
  service: string;
}

/** Store role: deployments (one `berth deploy` each) and their sources. */
export interface DeploymentStore {
  createDeployment(d: DeploymentRecord): void;
  getDeployment(id: string): DeploymentRecord | undefined;
  updateDeployment(id: string, patch: Partial<Pick<DeploymentRecord, 'status' | 'message' | 'releases'>>): void;
  listDeployments(filter: { status?: DeploymentStatus[] }): DeploymentRecord[];
  /** The newest deployment of each app and environment (without its spec). */
  latestDeployments(): Omit<DeploymentRecord, 'spec' | 'warnings' | 'releases'>[];
  // sources of deployments (content-addressed: writing the same id again changes nothing)
  putSource(id: string, app: string, source: SpecSource): void;
  getSource(id: string): SpecSource | undefined;
  /** When this server last pulled an image reference (ms), for pull_policy daily/weekly/every_<d>; survives a restart. */
  lastPulled(ref: string): number | undefined;
  setLastPulled(ref: string, at: number): void;
}

/** Store role: desired state — services, their releases, and which apps exist. */
export interface DesiredStateStore {
  listServices(filter?: { app?: string; env?: string }): ServiceRecord[];
  getService(k: ServiceKey): ServiceRecord | undefined;
  /** Writes the service and, when given, its new release, in one transaction. Marks the previous progressing release superseded. */
  putService(s: ServiceRecord, newRelease?: ReleaseRecord): void;
  updateService(k: ServiceKey, patch: ServicePatch): void;
  deleteService(k: ServiceKey): void;
  getRelease(id: string): ReleaseRecord | undefined;
  listReleases(filter: { app: string; env?: string; service?: string }): ReleaseRecord[];
  nextReleaseSeq(k: ServiceKey): number;
  updateRelease(id: string, patch: ReleasePatch): void;
  listApps(): { name: string; envs: string[] }[];
  /**
   * Every app and environment with any record: services, releases, deployments or app events (an
   * app that was removed keeps its history). What "unknown app" is checked against.
   */
  appEnvs(): { app: string; env: string }[];
  /** Whether `appEnvs()` would list the app (in `env`, when given): indexed lookups, cheap on every request. */
  hasApp(app: string, env?: string): boolean;
}

/** Store role: observed instances (Berth's containers) and the host ports they hold. */
export interface InstanceStore {
  listInstances(filter?: Partial<ServiceKey>): InstanceRecord[];
  /**
   * Every instance, shared and not copied (listInstances copies each): for readers of the whole
   * table that change nothing and keep nothing they read (the route table, the registry, the health
   * monitor read it after every change; at 5,000 instances the copies were most of their time).
   */
  allInstances(): readonly Readonly<InstanceRecord>[];
  /** A number that changes with every write to any instance (for readers that skip work when nothing changed). */
  instanceVersion(): number;
  /**
   * The ids of the instances written since `version` (an instanceVersion), once per write; undefined
   * when the store cannot tell (too far back, or after a purge or a rolled-back transaction): read
   * them all then.
   */
  instanceWritesSince(version: number): readonly string[] | undefined;
  /** The store's own record of an instance (shared: read it, never change nor keep it), as allInstances gives them. */
  instanceRecord(id: string): Readonly<InstanceRecord> | undefined;
  getInstance(id: string): InstanceRecord | undefined;
  /** Inserts the instance, allocating a free port from the range not held by another instance and accepted by `isFree`. */
  createInstance(i: Omit<InstanceRecord, 'port'>, ports: { min: number; max: number; isFree: (port: number) => boolean }): InstanceRecord;
  /** Inserts the instances in one transaction, each with a port allocated as createInstance does. */
  createInstances(is: Omit<InstanceRecord, 'port'>[], ports: { min: number; max: number; isFree: (port: number) => boolean }): InstanceRecord[];
  updateInstance(id: string, patch: InstancePatch): void;
  /** Deletes the instance and frees its port. */
  deleteInstance(id: string): void;
}

/** Store role: the event log. */
export interface EventStore {
  addEvent(e: NewEvent): EventRecord;
  /**
   * The newest `limit` events matching (oldest first); `since`: only events at or after this time (ms).
   * `take: 'oldest'`: the oldest `limit` after `afterId` instead (a follower reading on without gaps).
   */
  listEvents(filter: { app?: string; env?: string; service?: string; afterId?: number; since?: number; until?: number; limit?: number; take?: 'newest' | 'oldest' }): EventRecord[];
}

/**
 * Store role: what one reconcile round needs — the service's state read at once, and each step's
 * writes in one transaction (a remote store pays a round trip per call).
 */
export interface ReconcileStore {
  /** The service, its desired release, its instances and every release they run, read consistently. */
  serviceSnapshot(k: ServiceKey): ServiceSnapshot;
  /**
   * One step's writes, all or nothing. Applied in this order: instance patches, instance deletions,
   * the service patch, release patches, then events. Patches of rows that no longer exist change
   * nothing. Returns the events as recorded (with their ids), in order.
   */
  writeBatch(b: StoreBatch): EventRecord[];
}

export interface ServiceSnapshot {
  service?: ServiceRecord;
  /** The service's desired release. */
  release?: ReleaseRecord;
  instances: InstanceRecord[];
  /** The releases the instances run and the desired one, by id. */
  releases: Map<string, ReleaseRecord>;
}

export interface StoreBatch {
  instances?: { id: string; patch: InstancePatch }[];
  deleteInstances?: string[];
  service?: { key: ServiceKey; patch: ServicePatch };
  releases?: { id: string; patch: ReleasePatch }[];
  events?: NewEvent[];
  /**
   * Only observed state (health flips and their events): committed without waiting for the disk
   * (WAL, synchronous=NORMAL). A crash of Berth loses nothing (the kernel has the write); a power loss
   * may lose it, and Berth observes it again when it starts. An fsync on the path from a probe to the
   * ingress took 1-35 ms under I/O load.
   */
  observed?: boolean;
}

export type ServicePatch = Partial<Pick<ServiceRecord, 'replicas' | 'failures' | 'nextStartAt' | 'releaseId' | 'routedReleaseId' | 'switchedAt' | 'reloadRequestedAt' | 'reloadedAt' | 'lastCrash'>>;
export type ReleasePatch = Partial<Pick<ReleaseRecord, 'status' | 'message' | 'finishedAt'>>;
export type InstancePatch = Partial<Pick<InstanceRecord, 'host' | 'address' | 'containerId' | 'state' | 'health' | 'startedAt' | 'reason' | 'releaseId' | 'check' | 'replaceRequestedAt'>>;

/** Store role: service instances outside Berth's containers (registered through the API). */
export interface ExternalStore {
  /** Registers (or re-registers the same env/service/address/port, keeping its id). */
  putExternal(e: ExternalRecord): ExternalRecord;
  getExternal(id: string): ExternalRecord | undefined;
  listExternals(): ExternalRecord[];
  updateExternal(id: string, patch: Partial<Pick<ExternalRecord, 'lastHeartbeatAt' | 'health'>>): void;
  deleteExternal(id: string): void;
}

/** Store role: confd-style templates. */
export interface TemplateStore {
  putTemplate(t: TemplateRecord): void;
  listTemplates(): TemplateRecord[];
  updateTemplate(name: string, patch: Partial<Pick<TemplateRecord, 'renderedAt' | 'lastError'>>): void;
  deleteTemplate(name: string): boolean;
}

/** Store role: alert rules and their states. */
export interface AlertStore {
  putAlert(name: string, rule: AlertRule, now: number): void;
  listAlerts(): AlertRecord[];
  updateAlert(name: string, patch: Partial<Pick<AlertRecord, 'state' | 'since' | 'value' | 'pendingSince'>>): void;
  deleteAlert(name: string): boolean;
}

/** Store role: `berth rm APP --purge`. */
export interface PurgeStore {
  /**
   * In one transaction: deletes every service of the app (returned, to be reconciled away) and
   * records the purge. An app already being purged keeps its record (the call is idempotent).
   */
  startPurge(rec: PurgeRecord): ServiceRecord[];
  getPurge(app: string): PurgeRecord | undefined;
  listPurges(): PurgeRecord[];
  putPurge(rec: PurgeRecord): void;
  /** How many releases, deployments and events the app has (what a plain `rm` leaves). */
  appRecordCounts(app: string): { releases: number; deployments: number; events: number };
  /** Deletes the app's releases, deployments (and their sources), instances and services (release numbering starts again at 1). */
  purgeAppRecords(app: string): { releases: number; deployments: number; instances: number };
  /** Deletes the app's events; returns how many. */
  deleteAppEvents(app: string): number;
}

/**
 * A write the store committed, as followers see it: enough to decide whether to look again (they
 * re-read what they show), never the whole record. `instance` and `service` carry the service's key;
 * `service` covers the service record and its releases.
 */
export type StoreChange =
  | { kind: 'event'; event: EventRecord }
  | { kind: 'deployment'; id: string; app: string; env: string }
  | { kind: 'instance'; app: string; env: string; service: string }
  | { kind: 'service'; app: string; env: string; service: string }
  | { kind: 'purge'; app: string };

/**
 * Store role: in-process notifications of committed writes, so that followers (the SSE streams, a
 * deployment's followers) wake on a write instead of polling. Delivered after the write's transaction,
 * asynchronously (a microtask), in write order; a listener that throws does not stop the others.
 */
export interface StoreWatch {
  /** Calls `fn` for every change from now on; returns the function that stops it. */
  watch(fn: (c: StoreChange) => void): () => void;
}

/** Store role: API tokens (hashes only). */
export interface TokenStore {
  addToken(hash: string, name: string): void;
  hasToken(hash: string): boolean;
}

/**
 * Every role: what the SQLite store implements (and an etcd store would). Consumers depend on the
 * roles they use.
 */
export interface Store extends DeploymentStore, DesiredStateStore, InstanceStore, EventStore, ReconcileStore,
  ExternalStore, TemplateStore, AlertStore, PurgeStore, TokenStore, StoreWatch {
  close(): void;
}
