import type Database from 'better-sqlite3';
import { openDatabase } from '../lib/sqlite-migrate.ts';
import { Conflict } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import type {
  ServiceSnapshot,
  StoreBatch,
  AlertRecord,
  AlertRule,
  TemplateRecord,
  ExternalRecord,
  PurgeRecord,
  DeploymentRecord, DeploymentStatus, EventRecord, InstancePatch, InstanceRecord, NewEvent, ReleaseRecord, ServiceKey, ServiceRecord, Store, StoreChange,
} from '../core/store.ts';
import type { SpecSource } from '../core/spec/source.ts';
import type { ServiceSpec } from '../core/spec/types.ts';
import { MIGRATIONS } from './migrations.ts';

type Row = Record<string, unknown>;

/**
 * The SQLite store: the only writer of desired state. WAL mode, synchronous=FULL: a crash never loses a
 * committed write. Observed state written with `writeBatch({ observed: true })` (health flips) is not
 * waited for on disk: a crash of Berth keeps it, a power loss may lose it (Berth observes it again).
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly watchers = new Set<(c: StoreChange) => void>();
  /** Changes not yet delivered: delivered in a microtask, so after the transaction that made them. */
  private pending: StoreChange[] = [];
  /**
   * Prepared statements by SQL text: preparing costs more than running the small queries the
   * reconcilers make thousands of times a second at scale (bench scale: half its CPU went to prepare).
   */
  private readonly statements = new Map<string, Database.Statement>();
  /**
   * Every instance row (callers get copies), kept current by this store's own writes: the route
   * table, the registry, the health monitor and every reconcile round read instances after every
   * change, and at thousands of instances re-reading and parsing the table after each write was most
   * of the control plane's time (bench scale). A transaction that throws drops it (it may hold the
   * rolled-back writes); the next read loads it again.
   */
  private instances: InstanceCache | undefined;
  /** Writes to the instance table so far (instanceVersion). */
  private instanceWrites = 0;
  /**
   * The ids of the instances written since version `logBase`, one per write, in order
   * (instanceWritesSince); bounded: a reader further behind reads the whole table.
   */
  private writeLog: string[] = [];
  private logBase = 0;
  /**
   * Each release's parsed spec, by release id: a release's spec never changes once written, and status,
   * `GET /v1/apps`, the reconcilers and the health monitor read releases on every request and round
   * (bench scale: parsing 500 specs per `GET /v1/apps` was most of its time). The row's other columns
   * (status, message) are read every time. The specs are frozen: every reader shares them. Dropped on
   * purge; bounded (cleared past 20,000 releases).
   */
  private readonly specs = new Map<string, ServiceSpec>();

  constructor(path: string, clock: Clock) {
    this.clock = clock;
    // Specs hold Compose `environment` values (often credentials), and every update of a deployment
    // or release frees its old copy: freed bytes are zeroed, so a purged app leaves none behind.
    this.db = openDatabase(path, MIGRATIONS, { secureDelete: true });
  }

  /** Runs fn in a transaction (nested: a savepoint); one that throws drops the instance cache, which may hold its writes. */
  private tx<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (err) {
      this.instances = undefined;
      this.instanceWrites++;
      this.forgetWrites();
      this.specs.clear();
      throw err;
    }
  }

  /** The statement for this SQL, prepared once. */
  private q(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) this.statements.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  // ---- changes, for followers
  watch(fn: (c: StoreChange) => void): () => void {
    this.watchers.add(fn);
    return () => void this.watchers.delete(fn);
  }
  /** The write log starts again here: readers behind this point read the whole table. */
  private forgetWrites(): void {
    this.writeLog = [];
    this.logBase = this.instanceWrites;
  }
  /** `instance`: the id of the instance written (a change of kind instance). */
  private changed(c: StoreChange, instance?: string): void {
    if (c.kind === 'instance') {
      this.instanceWrites++;
      if (instance === undefined) this.forgetWrites();
      else if (this.writeLog.push(instance) > 10_000) this.forgetWrites();
    }
    if (this.watchers.size === 0) return;
    if (this.pending.push(c) > 1) return;
    queueMicrotask(() => {
      const batch = this.pending;
      this.pending = [];
      for (const change of batch) {
        for (const fn of [...this.watchers]) {
          try {
            fn(change);
          } catch {
            // A follower's failure is its own; the writer and the other followers go on.
          }
        }
      }
    });
  }

  // ---- deployments
  createDeployment(d: DeploymentRecord): void {
    this.q(`INSERT INTO deployments (id, app, env, spec, warnings, status, message, created_at, created_by, releases, build_id)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(d.id, d.app, d.env, JSON.stringify(d.spec), JSON.stringify(d.warnings), d.status,
      d.message, d.createdAt, d.createdBy, JSON.stringify(d.releases), d.buildId ?? null);
    this.changed({ kind: 'deployment', id: d.id, app: d.app, env: d.env });
  }
  getDeployment(id: string): DeploymentRecord | undefined {
    const r = this.q('SELECT * FROM deployments WHERE id = ?').get(id) as Row | undefined;
    return r && toDeployment(r);
  }
  updateDeployment(id: string, patch: Partial<Pick<DeploymentRecord, 'status' | 'message' | 'releases'>>): void {
    const cur = this.getDeployment(id);
    if (!cur) return;
    const next = { ...cur, ...patch };
    this.q('UPDATE deployments SET status = ?, message = ?, releases = ? WHERE id = ?')
      .run(next.status, next.message, JSON.stringify(next.releases), id);
    this.changed({ kind: 'deployment', id, app: cur.app, env: cur.env });
  }
  listDeployments(filter: { status?: DeploymentStatus[] }): DeploymentRecord[] {
    // Filtered in SQL: every deployment ever made is a row with its whole spec, and the control plane
    // asks for the few rolling ones after every release that finishes.
    const rows = filter.status === undefined
      ? this.q('SELECT * FROM deployments ORDER BY created_at').all() as Row[]
      : this.q('SELECT * FROM deployments WHERE status IN (SELECT value FROM json_each(?)) ORDER BY created_at').all(JSON.stringify(filter.status)) as Row[];
    return rows.map(toDeployment);
  }

  // ---- services and releases
  listServices(filter: { app?: string; env?: string } = {}): ServiceRecord[] {
    const rows = this.q(`SELECT * FROM services WHERE (@app IS NULL OR app = @app) AND (@env IS NULL OR env = @env)
      ORDER BY app, env, name`).all({ app: filter.app ?? null, env: filter.env ?? null }) as Row[];
    return rows.map(toService);
  }
  getService(k: ServiceKey): ServiceRecord | undefined {
    const r = this.q('SELECT * FROM services WHERE app = ? AND env = ? AND name = ?').get(k.app, k.env, k.service) as Row | undefined;
    return r && toService(r);
  }
  putService(s: ServiceRecord, newRelease?: ReleaseRecord): void {
    this.tx(() => {
      if (newRelease) {
        this.q(`UPDATE releases SET status = 'superseded', finished_at = ? WHERE app = ? AND env = ? AND service = ? AND status = 'progressing'`)
          .run(this.clock.now(), s.app, s.env, s.name);
        this.q(`INSERT INTO releases (id, app, env, service, seq, spec, spec_hash, image, image_id, status, message, created_at, created_by, finished_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(newRelease.id, newRelease.app, newRelease.env, newRelease.service,
          newRelease.seq, JSON.stringify(newRelease.spec), newRelease.specHash, newRelease.image, newRelease.imageId, newRelease.status,
          newRelease.message, newRelease.createdAt, newRelease.createdBy, newRelease.finishedAt ?? null);
      }
      // A rollout starts when the release changes, not when it was created (a rollback may pick an old one).
      this.q(`INSERT INTO services (app, env, name, replicas, release_id, failures, next_start_at, updated_at, routed_release_id, switched_at, rollout_started_at)
        VALUES (@app, @env, @name, @replicas, @releaseId, @failures, @nextStartAt, @updatedAt, @routedReleaseId, @switchedAt, @now)
        ON CONFLICT (app, env, name) DO UPDATE SET replicas = excluded.replicas, release_id = excluded.release_id,
          failures = excluded.failures, next_start_at = excluded.next_start_at, updated_at = excluded.updated_at,
          rollout_started_at = CASE WHEN services.release_id = excluded.release_id THEN services.rollout_started_at ELSE excluded.rollout_started_at END`)
        .run({ app: s.app, env: s.env, name: s.name, replicas: s.replicas, releaseId: s.releaseId, failures: s.failures, nextStartAt: s.nextStartAt,
          updatedAt: s.updatedAt, routedReleaseId: s.routedReleaseId ?? null, switchedAt: s.switchedAt ?? 0, now: this.clock.now() });
    });
    this.changed({ kind: 'service', app: s.app, env: s.env, service: s.name });
  }
  updateService(k: ServiceKey, patch: Partial<Pick<ServiceRecord, 'replicas' | 'failures' | 'nextStartAt' | 'releaseId' | 'routedReleaseId' | 'switchedAt' | 'reloadRequestedAt' | 'reloadedAt' | 'lastCrash'>>): void {
    const cur = this.getService(k);
    if (!cur) return;
    const n = { ...cur, ...patch };
    const now = this.clock.now();
    const rolloutStartedAt = n.releaseId === cur.releaseId ? cur.rolloutStartedAt ?? 0 : now;
    this.q(`UPDATE services SET replicas = ?, failures = ?, next_start_at = ?, updated_at = ?, release_id = ?, routed_release_id = ?,
      switched_at = ?, reload_requested_at = ?, reloaded_at = ?, rollout_started_at = ?, last_crash = ? WHERE app = ? AND env = ? AND name = ?`)
      .run(n.replicas, n.failures, n.nextStartAt, now, n.releaseId, n.routedReleaseId ?? null, n.switchedAt ?? 0,
        n.reloadRequestedAt ?? 0, n.reloadedAt ?? 0, rolloutStartedAt, n.lastCrash ? JSON.stringify(n.lastCrash) : null, k.app, k.env, k.service);
    this.changed({ kind: 'service', ...k });
  }
  deleteService(k: ServiceKey): void {
    this.q('DELETE FROM services WHERE app = ? AND env = ? AND name = ?').run(k.app, k.env, k.service);
    this.changed({ kind: 'service', ...k });
  }
  getRelease(id: string): ReleaseRecord | undefined {
    const r = this.q(`SELECT ${RELEASE_COLUMNS} FROM releases WHERE id = ?`).get(id) as Row | undefined;
    return r && toRelease(r, this.specOf(String(r.id)));
  }
  listReleases(filter: { app: string; env?: string; service?: string }): ReleaseRecord[] {
    const rows = this.q(`SELECT ${RELEASE_COLUMNS} FROM releases WHERE app = @app AND (@env IS NULL OR env = @env)
      AND (@service IS NULL OR service = @service) ORDER BY created_at DESC, seq DESC`)
      .all({ app: filter.app, env: filter.env ?? null, service: filter.service ?? null }) as Row[];
    return rows.map((r) => toRelease(r, this.specOf(String(r.id))));
  }
  /** A release's spec, parsed once (see `specs`). */
  private specOf(id: string): ServiceSpec {
    const known = this.specs.get(id);
    if (known) return known;
    const r = this.q('SELECT spec FROM releases WHERE id = ?').get(id) as { spec: string };
    const spec = deepFreeze(JSON.parse(r.spec) as ServiceSpec);
    if (this.specs.size >= 20_000) this.specs.clear();
    this.specs.set(id, spec);
    return spec;
  }
  nextReleaseSeq(k: ServiceKey): number {
    const r = this.q('SELECT MAX(seq) AS m FROM releases WHERE app = ? AND env = ? AND service = ?').get(k.app, k.env, k.service) as Row;
    return Number(r.m ?? 0) + 1;
  }
  updateRelease(id: string, patch: Partial<Pick<ReleaseRecord, 'status' | 'message' | 'finishedAt'>>): void {
    const cur = this.getRelease(id);
    if (!cur) return;
    const n = { ...cur, ...patch };
    this.q('UPDATE releases SET status = ?, message = ?, finished_at = ? WHERE id = ?').run(n.status, n.message, n.finishedAt ?? null, id);
    this.changed({ kind: 'service', app: cur.app, env: cur.env, service: cur.service });
  }
  listApps(): { name: string; envs: string[] }[] {
    const rows = this.q('SELECT DISTINCT app, env FROM services ORDER BY app, env').all() as { app: string; env: string }[];
    const byApp = new Map<string, string[]>();
    for (const r of rows) byApp.set(r.app, [...(byApp.get(r.app) ?? []), r.env]);
    return [...byApp].map(([name, envs]) => ({ name, envs }));
  }
  appEnvs(): { app: string; env: string }[] {
    return this.q(`SELECT app, env FROM services UNION SELECT app, env FROM releases UNION SELECT app, env FROM deployments
      UNION SELECT DISTINCT app, env FROM events WHERE app <> ''`).all() as { app: string; env: string }[];
  }
  hasApp(app: string, env?: string): boolean {
    // Cheapest first; each uses an index led by (app, env) except deployments, which every deployment's event covers anyway.
    for (const table of ['services', 'releases', 'events', 'deployments']) {
      const hit = env === undefined
        ? this.q(`SELECT 1 FROM ${table} WHERE app = ? LIMIT 1`).get(app)
        : this.q(`SELECT 1 FROM ${table} WHERE app = ? AND env = ? LIMIT 1`).get(app, env);
      if (hit) return true;
    }
    return false;
  }
  latestDeployments(): Omit<DeploymentRecord, 'spec' | 'warnings' | 'releases'>[] {
    const rows = this.q(`SELECT id, app, env, status, message, created_at, created_by FROM deployments d
      WHERE rowid = (SELECT rowid FROM deployments WHERE app = d.app AND env = d.env ORDER BY created_at DESC, rowid DESC LIMIT 1)
      ORDER BY app, env`).all() as Row[];
    return rows.map((r) => ({ id: String(r.id), app: String(r.app), env: String(r.env), status: r.status as DeploymentStatus,
      message: String(r.message), createdAt: Number(r.created_at), createdBy: String(r.created_by) }));
  }

  // ---- instances
  listInstances(filter: Partial<ServiceKey> = {}): InstanceRecord[] {
    const cache = this.instanceCache();
    const rows = filter.app === undefined ? cache.all()
      : filter.env !== undefined && filter.service !== undefined ? cache.ofService(filter.app, filter.env, filter.service)
        : cache.ofApp(filter.app);
    const out: InstanceRecord[] = [];
    for (const i of rows) {
      if ((filter.app === undefined || i.app === filter.app) && (filter.env === undefined || i.env === filter.env)
        && (filter.service === undefined || i.service === filter.service)) out.push(copyInstance(i));
    }
    return out;
  }
  instanceVersion(): number {
    return this.instanceWrites;
  }
  instanceWritesSince(version: number): readonly string[] | undefined {
    if (version < this.logBase || version > this.instanceWrites) return undefined;
    return this.writeLog.slice(version - this.logBase);
  }
  instanceRecord(id: string): Readonly<InstanceRecord> | undefined {
    return this.instanceCache().get(id);
  }
  allInstances(): readonly Readonly<InstanceRecord>[] {
    return this.instanceCache().all();
  }
  getInstance(id: string): InstanceRecord | undefined {
    const i = this.instanceCache().get(id);
    return i && copyInstance(i);
  }
  private instanceCache(): InstanceCache {
    return (this.instances ??= new InstanceCache((this.q('SELECT * FROM instances ORDER BY created_at, id').all() as Row[]).map(toInstance)));
  }
  createInstance(i: Omit<InstanceRecord, 'port'>, ports: { min: number; max: number; isFree: (port: number) => boolean }): InstanceRecord {
    return this.tx(() => this.insertInstance(i, ports, this.takenPorts()));
  }
  createInstances(is: Omit<InstanceRecord, 'port'>[], ports: { min: number; max: number; isFree: (port: number) => boolean }): InstanceRecord[] {
    // The ports in use are read once per batch, not once per instance (a batch of n among N instances: N reads, not n × N).
    return this.tx(() => {
      const taken = this.takenPorts();
      return is.map((i) => this.insertInstance(i, ports, taken));
    });
  }
  private takenPorts(): Set<number> {
    return new Set(this.instanceCache().all().map((i) => i.port));
  }
  /** Inside a transaction: the instance on the next free port (added to `taken`). */
  private insertInstance(i: Omit<InstanceRecord, 'port'>, ports: { min: number; max: number; isFree: (port: number) => boolean }, taken: Set<number>): InstanceRecord {
    // Round-robin from the last port handed out (persisted), so a just-freed port is not reused at
    // once: a lingering client connection or an nginx still holding it would reach a new instance.
    const span = ports.max - ports.min + 1;
    const cursor = this.q("SELECT value FROM meta WHERE key = 'port_cursor'").get() as { value: string } | undefined;
    const start = cursor ? (((Number(cursor.value) + 1 - ports.min) % span) + span) % span : 0;
    for (let k = 0; k < span; k++) {
      const port = ports.min + ((start + k) % span);
      if (taken.has(port) || !ports.isFree(port)) continue;
      const rec = normalInstance({ ...i, port });
      this.q(`INSERT INTO instances (id, app, env, service, release_id, host, address, port, container_id, state, health, created_at, started_at, reason)
        VALUES (@id, @app, @env, @service, @releaseId, @host, @address, @port, @containerId, @state, @health, @createdAt, @startedAt, @reason)`)
        .run({ ...rec, containerId: rec.containerId ?? null, startedAt: rec.startedAt ?? null, reason: rec.reason ?? null });
      this.q("INSERT INTO meta (key, value) VALUES ('port_cursor', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(String(port));
      taken.add(port);
      this.instances?.put(rec);
      this.changed({ kind: 'instance', app: rec.app, env: rec.env, service: rec.service }, rec.id);
      return copyInstance(rec);
    }
    throw new Conflict(`no free port in ${ports.min}-${ports.max}: widen the range with --port-range or remove instances`);
  }
  updateInstance(id: string, patch: InstancePatch): void {
    const cur = this.getInstance(id);
    if (!cur) return;
    const n = normalInstance({ ...cur, ...patch });
    this.q('UPDATE instances SET host = ?, address = ?, container_id = ?, state = ?, health = ?, started_at = ?, reason = ?, release_id = ?, last_check = ?, replace_requested_at = ? WHERE id = ?')
      .run(n.host, n.address, n.containerId ?? null, n.state, n.health, n.startedAt ?? null, n.reason ?? null, n.releaseId, n.check ? JSON.stringify(n.check) : null, n.replaceRequestedAt ?? null, id);
    this.instances?.put(n);
    this.changed({ kind: 'instance', app: cur.app, env: cur.env, service: cur.service }, id);
  }
  deleteInstance(id: string): void {
    const gone = this.q('DELETE FROM instances WHERE id = ? RETURNING app, env, service').get(id) as { app: string; env: string; service: string } | undefined;
    this.instances?.delete(id);
    if (gone) this.changed({ kind: 'instance', app: gone.app, env: gone.env, service: gone.service }, id);
  }

  // ---- a reconcile round
  serviceSnapshot(k: ServiceKey): ServiceSnapshot {
    return this.tx(() => {
      const service = this.getService(k);
      const instances = this.listInstances(k);
      const releases = new Map<string, ReleaseRecord>();
      for (const id of new Set([...(service ? [service.releaseId] : []), ...instances.map((i) => i.releaseId)])) {
        const r = this.getRelease(id);
        if (r) releases.set(id, r);
      }
      const release = service && releases.get(service.releaseId);
      return { ...(service ? { service } : {}), ...(release ? { release } : {}), instances, releases };
    });
  }
  writeBatch(b: StoreBatch): EventRecord[] {
    const write = () => this.tx(() => {
      for (const { id, patch } of b.instances ?? []) this.updateInstance(id, patch);
      for (const id of b.deleteInstances ?? []) this.deleteInstance(id);
      if (b.service) this.updateService(b.service.key, b.service.patch);
      for (const { id, patch } of b.releases ?? []) this.updateRelease(id, patch);
      return (b.events ?? []).map((e) => this.addEvent(e));
    });
    if (!b.observed) return write();
    // The next FULL commit's fsync of the WAL takes this one's frames with it.
    this.db.pragma('synchronous = NORMAL');
    try {
      return write();
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  // ---- sources of deployments
  putSource(id: string, app: string, source: SpecSource): void {
    this.q('INSERT OR IGNORE INTO spec_sources (id, app, body, created_at) VALUES (?, ?, ?, ?)').run(id, app, JSON.stringify(source), this.clock.now());
  }
  getSource(id: string): SpecSource | undefined {
    const r = this.q('SELECT body FROM spec_sources WHERE id = ?').get(id) as { body: string } | undefined;
    return r && (JSON.parse(r.body) as SpecSource);
  }

  // ---- external services
  putExternal(e: ExternalRecord): ExternalRecord {
    const existing = this.q('SELECT id FROM externals WHERE env = ? AND service = ? AND address = ? AND port = ?')
      .get(e.env, e.service, e.address, e.port) as { id: string } | undefined;
    const rec = { ...e, id: existing?.id ?? e.id };
    this.q(`INSERT INTO externals (id, env, service, address, port, check_json, ttl_ms, last_heartbeat_at, health, registered_at)
      VALUES (@id, @env, @service, @address, @port, @check, @ttlMs, @lastHeartbeatAt, @health, @registeredAt)
      ON CONFLICT (id) DO UPDATE SET check_json = excluded.check_json, ttl_ms = excluded.ttl_ms,
        last_heartbeat_at = excluded.last_heartbeat_at, health = excluded.health`)
      .run({ ...rec, check: JSON.stringify(rec.check), ttlMs: rec.ttlMs ?? null });
    return rec;
  }
  getExternal(id: string): ExternalRecord | undefined {
    const r = this.q('SELECT * FROM externals WHERE id = ?').get(id) as Row | undefined;
    return r && toExternal(r);
  }
  listExternals(): ExternalRecord[] {
    return (this.q('SELECT * FROM externals ORDER BY env, service, address, port').all() as Row[]).map(toExternal);
  }
  updateExternal(id: string, patch: Partial<Pick<ExternalRecord, 'lastHeartbeatAt' | 'health'>>): void {
    const cur = this.getExternal(id);
    if (!cur) return;
    const n = { ...cur, ...patch };
    this.q('UPDATE externals SET last_heartbeat_at = ?, health = ? WHERE id = ?').run(n.lastHeartbeatAt, n.health, id);
  }
  deleteExternal(id: string): void {
    this.q('DELETE FROM externals WHERE id = ?').run(id);
  }

  // ---- templates
  putTemplate(t: TemplateRecord): void {
    this.q(`INSERT INTO templates (name, source, dest, check_cmd, reload_cmd, created_at, rendered_at, last_error)
      VALUES (@name, @source, @dest, @check, @reload, @createdAt, 0, '')
      ON CONFLICT (name) DO UPDATE SET source = excluded.source, dest = excluded.dest, check_cmd = excluded.check_cmd,
        reload_cmd = excluded.reload_cmd, rendered_at = 0, last_error = ''`)
      .run({ ...t, check: JSON.stringify(t.check), reload: JSON.stringify(t.reload) });
  }
  listTemplates(): TemplateRecord[] {
    return (this.q('SELECT * FROM templates ORDER BY name').all() as Row[]).map((r) => ({
      name: String(r.name), source: String(r.source), dest: String(r.dest), check: JSON.parse(String(r.check_cmd)),
      reload: JSON.parse(String(r.reload_cmd)), createdAt: Number(r.created_at), renderedAt: Number(r.rendered_at), lastError: String(r.last_error),
    }));
  }
  updateTemplate(name: string, patch: Partial<Pick<TemplateRecord, 'renderedAt' | 'lastError'>>): void {
    const cur = this.listTemplates().find((t) => t.name === name);
    if (!cur) return;
    const n = { ...cur, ...patch };
    this.q('UPDATE templates SET rendered_at = ?, last_error = ? WHERE name = ?').run(n.renderedAt, n.lastError, name);
  }
  deleteTemplate(name: string): boolean {
    return this.q('DELETE FROM templates WHERE name = ?').run(name).changes > 0;
  }

  // ---- alerts
  putAlert(name: string, rule: AlertRule, now: number): void {
    this.q(`INSERT INTO alert_rules (name, rule, created_at, state, since) VALUES (?, ?, ?, 'ok', ?)
      ON CONFLICT (name) DO UPDATE SET rule = excluded.rule`).run(name, JSON.stringify(rule), now, now);
  }
  listAlerts(): AlertRecord[] {
    return (this.q('SELECT * FROM alert_rules ORDER BY name').all() as Row[]).map((r) => ({
      name: String(r.name), rule: JSON.parse(String(r.rule)), createdAt: Number(r.created_at), state: r.state as AlertRecord['state'],
      since: Number(r.since), ...(r.value == null ? {} : { value: Number(r.value) }), pendingSince: Number(r.pending_since),
    }));
  }
  updateAlert(name: string, patch: Partial<Pick<AlertRecord, 'state' | 'since' | 'value' | 'pendingSince'>>): void {
    const cur = this.listAlerts().find((a) => a.name === name);
    if (!cur) return;
    const n = { ...cur, ...patch };
    this.q('UPDATE alert_rules SET state = ?, since = ?, value = ?, pending_since = ? WHERE name = ?')
      .run(n.state, n.since, n.value ?? null, n.pendingSince, name);
  }
  deleteAlert(name: string): boolean {
    return this.q('DELETE FROM alert_rules WHERE name = ?').run(name).changes > 0;
  }

  // ---- image pulls: when each reference was last pulled, in `meta` under `pulled/REF` (ms)
  lastPulled(ref: string): number | undefined {
    const r = this.q('SELECT value FROM meta WHERE key = ?').get(`pulled/${ref}`) as { value: string } | undefined;
    return r ? Number(r.value) : undefined;
  }
  setLastPulled(ref: string, at: number): void {
    this.q('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(`pulled/${ref}`, String(at));
  }

  // ---- purge: records in `meta` under `purge/APP` (no migration: a handful of small JSON values)
  startPurge(rec: PurgeRecord): ServiceRecord[] {
    return this.tx(() => {
      const services = this.listServices({ app: rec.app });
      this.q('DELETE FROM services WHERE app = ?').run(rec.app);
      const cur = this.getPurge(rec.app);
      if (!cur || cur.state !== 'purging') this.putPurge(rec);
      for (const sv of services) this.changed({ kind: 'service', app: sv.app, env: sv.env, service: sv.name });
      return services;
    });
  }
  getPurge(app: string): PurgeRecord | undefined {
    const r = this.q('SELECT value FROM meta WHERE key = ?').get(`purge/${app}`) as { value: string } | undefined;
    return r ? (JSON.parse(r.value) as PurgeRecord) : undefined;
  }
  listPurges(): PurgeRecord[] {
    return (this.q("SELECT value FROM meta WHERE key LIKE 'purge/%' ORDER BY key").all() as { value: string }[])
      .map((r) => JSON.parse(r.value) as PurgeRecord);
  }
  putPurge(rec: PurgeRecord): void {
    this.q('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
      .run(`purge/${rec.app}`, JSON.stringify(rec));
    this.changed({ kind: 'purge', app: rec.app });
  }
  appRecordCounts(app: string): { releases: number; deployments: number; events: number } {
    const n = (table: string) => Number((this.q(`SELECT COUNT(*) AS n FROM ${table} WHERE app = ?`).get(app) as Row).n);
    return { releases: n('releases'), deployments: n('deployments'), events: n('events') };
  }
  purgeAppRecords(app: string): { releases: number; deployments: number; instances: number } {
    return this.checkpointed(() => this.tx(() => {
      this.q('DELETE FROM services WHERE app = ?').run(app);
      this.instances = undefined;
      this.instanceWrites++;
      this.forgetWrites();
      const instances = this.q('DELETE FROM instances WHERE app = ?').run(app).changes;
      const releases = this.q('DELETE FROM releases WHERE app = ?').run(app).changes;
      this.specs.clear();
      const deployments = this.q('DELETE FROM deployments WHERE app = ?').run(app).changes;
      // What the deployments were made from: Compose text and variable values.
      this.q('DELETE FROM spec_sources WHERE app = ?').run(app);
      // Followers of the change feed (the route table) learn that the app's rows went at once.
      this.changed({ kind: 'purge', app });
      return { releases, deployments, instances };
    }));
  }
  deleteAppEvents(app: string): number {
    return this.checkpointed(() => this.q('DELETE FROM events WHERE app = ?').run(app).changes);
  }
  /** Runs deletes, then truncates the WAL: older copies of the pages (with what was deleted) live there until then. */
  private checkpointed<T>(fn: () => T): T {
    try {
      return fn();
    } finally {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    }
  }

  addEvent(e: NewEvent): EventRecord {
    const ts = e.ts ?? this.clock.now();
    const info = this.q('INSERT INTO events (ts, app, env, service, instance, kind, message) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(ts, e.app, e.env, e.service, e.instance, e.kind, e.message);
    const rec = { ...e, ts, id: Number(info.lastInsertRowid) };
    this.changed({ kind: 'event', event: rec });
    return rec;
  }
  listEvents(filter: { app?: string; env?: string; service?: string; afterId?: number; since?: number; until?: number; limit?: number; take?: 'newest' | 'oldest' }): EventRecord[] {
    const oldest = filter.take === 'oldest';
    const rows = this.q(`SELECT * FROM events WHERE (@app IS NULL OR app = @app) AND (@env IS NULL OR env = @env)
      AND (@service IS NULL OR service = @service) AND id > @after AND ts >= @since AND (@until IS NULL OR ts < @until) ORDER BY id ${oldest ? 'ASC' : 'DESC'} LIMIT @limit`)
      .all({ app: filter.app ?? null, env: filter.env ?? null, service: filter.service ?? null, after: filter.afterId ?? 0, since: filter.since ?? 0, until: filter.until ?? null,
        limit: filter.limit ?? 200 }) as Row[];
    if (!oldest) rows.reverse();
    return rows.map((r) => ({
      id: Number(r.id), ts: Number(r.ts), app: String(r.app), env: String(r.env), service: String(r.service),
      instance: String(r.instance), kind: String(r.kind), message: String(r.message),
    }));
  }

  // ---- auth
  addToken(hash: string, name: string): void {
    this.q('INSERT OR IGNORE INTO tokens (hash, name, created_at) VALUES (?, ?, ?)').run(hash, name, this.clock.now());
  }
  hasToken(hash: string): boolean {
    return this.q('SELECT 1 FROM tokens WHERE hash = ?').get(hash) !== undefined;
  }

  close(): void {
    this.db.close();
  }
}

function toDeployment(r: Row): DeploymentRecord {
  return {
    id: String(r.id), app: String(r.app), env: String(r.env), spec: JSON.parse(String(r.spec)), warnings: JSON.parse(String(r.warnings)),
    status: r.status as DeploymentStatus, message: String(r.message), createdAt: Number(r.created_at), createdBy: String(r.created_by),
    releases: JSON.parse(String(r.releases)),
    ...(r.build_id == null ? {} : { buildId: String(r.build_id) }),
  };
}
function toService(r: Row): ServiceRecord {
  return {
    app: String(r.app), env: String(r.env), name: String(r.name), replicas: Number(r.replicas), releaseId: String(r.release_id),
    failures: Number(r.failures), nextStartAt: Number(r.next_start_at), updatedAt: Number(r.updated_at),
    ...(r.routed_release_id == null ? {} : { routedReleaseId: String(r.routed_release_id) }), switchedAt: Number(r.switched_at ?? 0),
    reloadRequestedAt: Number(r.reload_requested_at ?? 0), reloadedAt: Number(r.reloaded_at ?? 0),
    rolloutStartedAt: Number(r.rollout_started_at ?? 0),
    ...(r.last_crash == null ? {} : { lastCrash: JSON.parse(String(r.last_crash)) }),
  };
}
/** A release row's columns but its spec (parsed once per release: SqliteStore.specs). */
const RELEASE_COLUMNS = 'id, app, env, service, seq, spec_hash, image, image_id, status, message, created_at, created_by, finished_at';
function toRelease(r: Row, spec: ServiceSpec): ReleaseRecord {
  return {
    id: String(r.id), app: String(r.app), env: String(r.env), service: String(r.service), seq: Number(r.seq),
    spec, specHash: String(r.spec_hash), image: String(r.image), imageId: String(r.image_id),
    status: r.status as ReleaseRecord['status'], message: String(r.message), createdAt: Number(r.created_at),
    createdBy: String(r.created_by), ...(r.finished_at == null ? {} : { finishedAt: Number(r.finished_at) }),
  };
}
function toExternal(r: Row): ExternalRecord {
  return {
    id: String(r.id), env: String(r.env), service: String(r.service), address: String(r.address), port: Number(r.port),
    check: JSON.parse(String(r.check_json)), ...(r.ttl_ms == null ? {} : { ttlMs: Number(r.ttl_ms) }),
    lastHeartbeatAt: Number(r.last_heartbeat_at), health: r.health as ExternalRecord['health'], registeredAt: Number(r.registered_at),
  };
}

/** Freezes a parsed JSON value and everything in it (a shared value nobody may change). */
function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** A caller's copy of a cached instance (the cache's own objects change in place). */
function copyInstance(i: InstanceRecord): InstanceRecord {
  return i.check ? { ...i, check: { ...i.check } } : { ...i };
}

/** The record as `toInstance` reads it back from its row: unset optional fields absent, `check` a copy. */
function normalInstance(i: InstanceRecord): InstanceRecord {
  return {
    id: i.id, app: i.app, env: i.env, service: i.service, releaseId: i.releaseId, host: i.host, address: i.address, port: i.port,
    ...(i.containerId == null ? {} : { containerId: i.containerId }),
    state: i.state, health: i.health, createdAt: i.createdAt,
    ...(i.startedAt == null ? {} : { startedAt: i.startedAt }),
    ...(i.reason == null ? {} : { reason: i.reason }),
    ...(i.check == null ? {} : { check: { ...i.check } }),
    ...(i.replaceRequestedAt == null ? {} : { replaceRequestedAt: i.replaceRequestedAt }),
  };
}

/**
 * The instance table in memory, in the order SQL gives it (`created_at, id`), with indexes by app and
 * by service built when first asked for. An update changes the cached object in place (its place in
 * the order and the indexes stays), so a health flip costs no rebuild; an insert or delete drops the
 * order and the indexes, rebuilt from the map on the next read.
 */
class InstanceCache {
  private readonly byId = new Map<string, InstanceRecord>();
  private ordered: InstanceRecord[] | undefined;
  private services: Map<string, InstanceRecord[]> | undefined;
  private apps: Map<string, InstanceRecord[]> | undefined;

  constructor(rows: InstanceRecord[]) {
    for (const r of rows) this.byId.set(r.id, r);
    this.ordered = rows;
  }

  get(id: string): InstanceRecord | undefined {
    return this.byId.get(id);
  }

  all(): InstanceRecord[] {
    return (this.ordered ??= [...this.byId.values()].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
  }

  ofService(app: string, env: string, service: string): InstanceRecord[] {
    if (!this.services) {
      this.services = new Map();
      for (const i of this.all()) push(this.services, `${i.app}\0${i.env}\0${i.service}`, i);
    }
    return this.services.get(`${app}\0${env}\0${service}`) ?? [];
  }

  ofApp(app: string): InstanceRecord[] {
    if (!this.apps) {
      this.apps = new Map();
      for (const i of this.all()) push(this.apps, i.app, i);
    }
    return this.apps.get(app) ?? [];
  }

  /** `rec` as stored now (a normalInstance the cache may keep). */
  put(rec: InstanceRecord): void {
    const cur = this.byId.get(rec.id);
    if (cur && cur.app === rec.app && cur.env === rec.env && cur.service === rec.service && cur.createdAt === rec.createdAt) {
      for (const k of Object.keys(cur)) delete (cur as unknown as Record<string, unknown>)[k];
      Object.assign(cur, rec);
      return;
    }
    this.byId.set(rec.id, rec);
    this.dropIndexes();
  }

  delete(id: string): void {
    if (this.byId.delete(id)) this.dropIndexes();
  }

  private dropIndexes(): void {
    this.ordered = undefined;
    this.services = undefined;
    this.apps = undefined;
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

function toInstance(r: Row): InstanceRecord {
  return {
    id: String(r.id), app: String(r.app), env: String(r.env), service: String(r.service), releaseId: String(r.release_id),
    host: String(r.host), address: String(r.address), port: Number(r.port),
    ...(r.container_id == null ? {} : { containerId: String(r.container_id) }),
    state: r.state as InstanceRecord['state'], health: r.health as InstanceRecord['health'], createdAt: Number(r.created_at),
    ...(r.started_at == null ? {} : { startedAt: Number(r.started_at) }),
    ...(r.reason == null ? {} : { reason: String(r.reason) }),
    ...(r.last_check == null ? {} : { check: JSON.parse(String(r.last_check)) }),
    ...(r.replace_requested_at == null ? {} : { replaceRequestedAt: Number(r.replace_requested_at) }),
  };
}
