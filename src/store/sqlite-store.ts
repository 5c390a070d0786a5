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
import { MIGRATIONS } from './migrations.ts';

type Row = Record<string, unknown>;

/** The SQLite store: the only writer of desired state. WAL mode, synchronous=FULL: a crash never loses a committed write. */
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
   * Every instance row as last read (callers get copies): the route table, the registry and the
   * health monitor each read the whole table after every change, and at thousands of instances
   * parsing the rows was most of the control plane's time. Any write to the table drops it.
   */
  private instanceRows: InstanceRecord[] | undefined;

  constructor(path: string, clock: Clock) {
    this.clock = clock;
    // Specs hold Compose `environment` values (often credentials), and every update of a deployment
    // or release frees its old copy: freed bytes are zeroed, so a purged app leaves none behind.
    this.db = openDatabase(path, MIGRATIONS, { secureDelete: true });
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
  private changed(c: StoreChange): void {
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
    const rows = this.q('SELECT * FROM deployments ORDER BY created_at').all() as Row[];
    return rows.map(toDeployment).filter((d) => !filter.status || filter.status.includes(d.status));
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
    this.db.transaction(() => {
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
    })();
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
    const r = this.q('SELECT * FROM releases WHERE id = ?').get(id) as Row | undefined;
    return r && toRelease(r);
  }
  listReleases(filter: { app: string; env?: string; service?: string }): ReleaseRecord[] {
    const rows = this.q(`SELECT * FROM releases WHERE app = @app AND (@env IS NULL OR env = @env)
      AND (@service IS NULL OR service = @service) ORDER BY created_at DESC, seq DESC`)
      .all({ app: filter.app, env: filter.env ?? null, service: filter.service ?? null }) as Row[];
    return rows.map(toRelease);
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
    let all = this.instanceRows;
    if (!all) {
      all = (this.q('SELECT * FROM instances ORDER BY created_at, id').all() as Row[]).map(toInstance);
      // Only committed rows are kept: what a transaction read after its own writes may yet roll back.
      if (!this.db.inTransaction) this.instanceRows = all;
    }
    const out: InstanceRecord[] = [];
    for (const i of all) {
      if ((filter.app === undefined || i.app === filter.app) && (filter.env === undefined || i.env === filter.env)
        && (filter.service === undefined || i.service === filter.service)) out.push(i.check ? { ...i, check: { ...i.check } } : { ...i });
    }
    return out;
  }
  getInstance(id: string): InstanceRecord | undefined {
    const r = this.q('SELECT * FROM instances WHERE id = ?').get(id) as Row | undefined;
    return r && toInstance(r);
  }
  createInstance(i: Omit<InstanceRecord, 'port'>, ports: { min: number; max: number; isFree: (port: number) => boolean }): InstanceRecord {
    return this.db.transaction(() => this.insertInstance(i, ports, this.takenPorts()))();
  }
  createInstances(is: Omit<InstanceRecord, 'port'>[], ports: { min: number; max: number; isFree: (port: number) => boolean }): InstanceRecord[] {
    // The ports in use are read once per batch, not once per instance (a batch of n among N instances: N reads, not n × N).
    return this.db.transaction(() => {
      const taken = this.takenPorts();
      return is.map((i) => this.insertInstance(i, ports, taken));
    })();
  }
  private takenPorts(): Set<number> {
    return new Set((this.q('SELECT port FROM instances').all() as { port: number }[]).map((r) => r.port));
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
      const rec: InstanceRecord = { ...i, port };
      this.instanceRows = undefined;
      this.q(`INSERT INTO instances (id, app, env, service, release_id, host, address, port, container_id, state, health, created_at, started_at, reason)
        VALUES (@id, @app, @env, @service, @releaseId, @host, @address, @port, @containerId, @state, @health, @createdAt, @startedAt, @reason)`)
        .run({ ...rec, containerId: rec.containerId ?? null, startedAt: rec.startedAt ?? null, reason: rec.reason ?? null });
      this.q("INSERT INTO meta (key, value) VALUES ('port_cursor', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(String(port));
      taken.add(port);
      this.changed({ kind: 'instance', app: rec.app, env: rec.env, service: rec.service });
      return rec;
    }
    throw new Conflict(`no free port in ${ports.min}-${ports.max}: widen the range with --port-range or remove instances`);
  }
  updateInstance(id: string, patch: InstancePatch): void {
    const cur = this.getInstance(id);
    if (!cur) return;
    const n = { ...cur, ...patch };
    this.instanceRows = undefined;
    this.q('UPDATE instances SET container_id = ?, state = ?, health = ?, started_at = ?, reason = ?, release_id = ?, last_check = ?, replace_requested_at = ? WHERE id = ?')
      .run(n.containerId ?? null, n.state, n.health, n.startedAt ?? null, n.reason ?? null, n.releaseId, n.check ? JSON.stringify(n.check) : null, n.replaceRequestedAt ?? null, id);
    this.changed({ kind: 'instance', app: cur.app, env: cur.env, service: cur.service });
  }
  deleteInstance(id: string): void {
    this.instanceRows = undefined;
    const gone = this.q('DELETE FROM instances WHERE id = ? RETURNING app, env, service').get(id) as { app: string; env: string; service: string } | undefined;
    if (gone) this.changed({ kind: 'instance', app: gone.app, env: gone.env, service: gone.service });
  }

  // ---- a reconcile round
  serviceSnapshot(k: ServiceKey): ServiceSnapshot {
    return this.db.transaction(() => {
      const service = this.getService(k);
      const instances = this.listInstances(k);
      const releases = new Map<string, ReleaseRecord>();
      for (const id of new Set([...(service ? [service.releaseId] : []), ...instances.map((i) => i.releaseId)])) {
        const r = this.getRelease(id);
        if (r) releases.set(id, r);
      }
      const release = service && releases.get(service.releaseId);
      return { ...(service ? { service } : {}), ...(release ? { release } : {}), instances, releases };
    })();
  }
  writeBatch(b: StoreBatch): EventRecord[] {
    return this.db.transaction(() => {
      for (const { id, patch } of b.instances ?? []) this.updateInstance(id, patch);
      for (const id of b.deleteInstances ?? []) this.deleteInstance(id);
      if (b.service) this.updateService(b.service.key, b.service.patch);
      for (const { id, patch } of b.releases ?? []) this.updateRelease(id, patch);
      return (b.events ?? []).map((e) => this.addEvent(e));
    })();
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
    return this.db.transaction(() => {
      const services = this.listServices({ app: rec.app });
      this.q('DELETE FROM services WHERE app = ?').run(rec.app);
      const cur = this.getPurge(rec.app);
      if (!cur || cur.state !== 'purging') this.putPurge(rec);
      for (const sv of services) this.changed({ kind: 'service', app: sv.app, env: sv.env, service: sv.name });
      return services;
    })();
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
    return this.checkpointed(() => this.db.transaction(() => {
      this.q('DELETE FROM services WHERE app = ?').run(app);
      this.instanceRows = undefined;
      const instances = this.q('DELETE FROM instances WHERE app = ?').run(app).changes;
      const releases = this.q('DELETE FROM releases WHERE app = ?').run(app).changes;
      const deployments = this.q('DELETE FROM deployments WHERE app = ?').run(app).changes;
      // What the deployments were made from: Compose text and variable values.
      this.q('DELETE FROM spec_sources WHERE app = ?').run(app);
      return { releases, deployments, instances };
    })());
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
  listEvents(filter: { app?: string; env?: string; service?: string; afterId?: number; since?: number; limit?: number; take?: 'newest' | 'oldest' }): EventRecord[] {
    const oldest = filter.take === 'oldest';
    const rows = this.q(`SELECT * FROM events WHERE (@app IS NULL OR app = @app) AND (@env IS NULL OR env = @env)
      AND (@service IS NULL OR service = @service) AND id > @after AND ts >= @since ORDER BY id ${oldest ? 'ASC' : 'DESC'} LIMIT @limit`)
      .all({ app: filter.app ?? null, env: filter.env ?? null, service: filter.service ?? null, after: filter.afterId ?? 0, since: filter.since ?? 0,
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
function toRelease(r: Row): ReleaseRecord {
  return {
    id: String(r.id), app: String(r.app), env: String(r.env), service: String(r.service), seq: Number(r.seq),
    spec: JSON.parse(String(r.spec)), specHash: String(r.spec_hash), image: String(r.image), imageId: String(r.image_id),
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
