/** Schema migrations, applied in order; PRAGMA user_version records how many ran. Never edit a shipped one. */
export const MIGRATIONS: string[] = [
  `
  CREATE TABLE deployments (
    id TEXT PRIMARY KEY, app TEXT NOT NULL, env TEXT NOT NULL, spec TEXT NOT NULL, warnings TEXT NOT NULL,
    status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, created_by TEXT NOT NULL,
    releases TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX deployments_status ON deployments(status);
  CREATE TABLE services (
    app TEXT NOT NULL, env TEXT NOT NULL, name TEXT NOT NULL, replicas INTEGER NOT NULL, release_id TEXT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0, next_start_at INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL,
    PRIMARY KEY (app, env, name)
  );
  CREATE TABLE releases (
    id TEXT PRIMARY KEY, app TEXT NOT NULL, env TEXT NOT NULL, service TEXT NOT NULL, seq INTEGER NOT NULL,
    spec TEXT NOT NULL, spec_hash TEXT NOT NULL, image TEXT NOT NULL, image_id TEXT NOT NULL, status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, created_by TEXT NOT NULL, finished_at INTEGER,
    UNIQUE (app, env, service, seq)
  );
  CREATE TABLE instances (
    id TEXT PRIMARY KEY, app TEXT NOT NULL, env TEXT NOT NULL, service TEXT NOT NULL, release_id TEXT NOT NULL,
    host TEXT NOT NULL, address TEXT NOT NULL, port INTEGER NOT NULL UNIQUE, container_id TEXT, state TEXT NOT NULL,
    health TEXT NOT NULL, created_at INTEGER NOT NULL, started_at INTEGER, reason TEXT
  );
  CREATE INDEX instances_service ON instances(app, env, service);
  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, app TEXT NOT NULL, env TEXT NOT NULL,
    service TEXT NOT NULL, instance TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL
  );
  CREATE INDEX events_app ON events(app, env, service);
  CREATE TABLE tokens (hash TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL);
  `,
  // A persisted cursor for the port allocator, so a port just freed is not handed out again at once.
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // Blue-green: which release the ingress routes to, and since when (the previous set idles until then + keep).
  `ALTER TABLE services ADD COLUMN routed_release_id TEXT;
   ALTER TABLE services ADD COLUMN switched_at INTEGER NOT NULL DEFAULT 0;`,
  // Reload by signal on demand: requested (API) vs done (reconciler), so a crash in between re-sends it.
  `ALTER TABLE services ADD COLUMN reload_requested_at INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE services ADD COLUMN reloaded_at INTEGER NOT NULL DEFAULT 0;`,
  // External services (a database outside containers, a legacy VM) registered through the API.
  `CREATE TABLE externals (
    id TEXT PRIMARY KEY, env TEXT NOT NULL, service TEXT NOT NULL, address TEXT NOT NULL, port INTEGER NOT NULL,
    check_json TEXT NOT NULL, ttl_ms INTEGER, last_heartbeat_at INTEGER NOT NULL, health TEXT NOT NULL, registered_at INTEGER NOT NULL,
    UNIQUE (env, service, address, port)
  );`,
  // confd-style templates rendered from the registry and configuration.
  `CREATE TABLE templates (
    name TEXT PRIMARY KEY, source TEXT NOT NULL, dest TEXT NOT NULL, check_cmd TEXT NOT NULL, reload_cmd TEXT NOT NULL,
    created_at INTEGER NOT NULL, rendered_at INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT ''
  );`,
  // Alert rules and their state (so a restart neither forgets a firing alert nor notifies it twice).
  `CREATE TABLE alert_rules (
    name TEXT PRIMARY KEY, rule TEXT NOT NULL, created_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'ok', since INTEGER NOT NULL DEFAULT 0, value REAL, pending_since INTEGER NOT NULL DEFAULT 0
  );`,
  // When the current release last changed (a deploy or a rollback made it the target): its deadline counts from
  // here, not from the release's creation (a rollback to an old release gets the whole deadline).
  `ALTER TABLE services ADD COLUMN rollout_started_at INTEGER NOT NULL DEFAULT 0;
   UPDATE services SET rollout_started_at = updated_at;`,
  // Why a deploy waits or fails: each instance's latest check result, each service's last crash (JSON).
  `ALTER TABLE instances ADD COLUMN last_check TEXT;
   ALTER TABLE services ADD COLUMN last_crash TEXT;`,
  // What deployments were made from (Compose text + the variables used), content-addressed, so that a
  // promotion interpolates the same file again for its target environment.
  `CREATE TABLE spec_sources (id TEXT PRIMARY KEY, app TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL);`,
  // Which build record provides the images of a deployment's services with a build section.
  `ALTER TABLE deployments ADD COLUMN build_id TEXT;`,
  // A person asked for one instance to be restarted (replaced start-first by the reconciler).
  `ALTER TABLE instances ADD COLUMN replace_requested_at INTEGER;`,
];
