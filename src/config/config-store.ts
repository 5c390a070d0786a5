import type Database from 'better-sqlite3';
import { openDatabase } from '../lib/sqlite-migrate.ts';
import { InvalidInput, NotFound } from '../core/errors.ts';
import type { Clock, ConfigEntriesPort } from '../core/ports.ts';
import { NAME_PATTERN } from '../core/spec/names.ts';
import { describeSource, SecretKeyError, type SecretBox } from './secret-box.ts';

import type { ConfigChangeView, ConfigEntryView, ConfigKind, ConfigVersionView, ConfigWriteView } from '../core/views.ts';

export type { ConfigEntryView, ConfigKind };

export interface ConfigEntryInput {
  key: string;
  value: string;
  kind: ConfigKind;
}

/** One key's change in a version (core/views.ts declares it: the API serves it as it is). */
export type ConfigChange = ConfigChangeView;
export type ConfigVersion = ConfigVersionView;
/** What a write did: the API adds the app, env and rollout deployment (ConfigWriteView). */
export type ConfigWriteResult = Pick<ConfigWriteView, 'version' | 'changed' | 'changes'>;

/** Environment-variable style, and not one Berth sets itself (PORT, BERTH_*). */
export const CONFIG_KEY_PATTERN = /^[A-Z_][A-Z0-9_]*$/;
const MAX_KEY = 128;
/** Large enough for a certificate or a JSON credential; env vars much beyond this are trouble anyway. */
export const MAX_VALUE_BYTES = 64 * 1024;
const MAX_ENTRIES = 500;

const MIGRATIONS: string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  -- One row per value a key had: live from version "since" until the version that replaced or unset
  -- it ("until", NULL while current). A release pins a config version, so its containers get exactly
  -- the values of that version even after later changes (restarts, rollbacks).
  CREATE TABLE entries (
    app TEXT NOT NULL, env TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('value', 'secret')),
    value TEXT, ciphertext BLOB, iv BLOB, tag BLOB,
    since INTEGER NOT NULL, until INTEGER,
    PRIMARY KEY (app, env, key, since),
    CHECK ((kind = 'value' AND value IS NOT NULL AND ciphertext IS NULL) OR
           (kind = 'secret' AND value IS NULL AND ciphertext IS NOT NULL AND iv IS NOT NULL AND tag IS NOT NULL))
  );
  CREATE INDEX entries_live ON entries(app, env, until);
  CREATE TABLE versions (
    app TEXT NOT NULL, env TEXT NOT NULL, version INTEGER NOT NULL, who TEXT NOT NULL, at INTEGER NOT NULL,
    changes TEXT NOT NULL,
    PRIMARY KEY (app, env, version)
  );
  `,
  `
  -- Values of Compose secrets and configs a client sent with a deployment (file, environment,
  -- content), sealed; releases name them by digest (an HMAC of app, env and value).
  CREATE TABLE files (
    app TEXT NOT NULL, env TEXT NOT NULL, digest TEXT NOT NULL,
    ciphertext BLOB NOT NULL, iv BLOB NOT NULL, tag BLOB NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (app, env, digest)
  );
  `,
];

type EntryRow = {
  key: string; kind: ConfigKind; value: string | null; ciphertext: Buffer | null; iv: Buffer | null; tag: Buffer | null;
  since: number; at: number; who: string;
};

/**
 * The configuration center: per app and environment, plain values and secrets, versioned. Every
 * write is one transaction that makes one new version with its history entry (who, when, which keys;
 * values only for plain config). Secrets are sealed with a SecretBox bound to `app/env/key`.
 *
 * It keeps its own database file (not the main store's) so its migrations are its own.
 */
export class ConfigStore implements ConfigEntriesPort {
  private readonly db: Database.Database;

  constructor(path: string, private readonly box: SecretBox, private readonly clock: Clock) {
    // Ciphertext only, but no reason for anyone else to read it. Deleted values (a purged app's)
    // are overwritten, not left in free pages.
    this.db = openDatabase(path, MIGRATIONS, { secureDelete: true });
  }

  /**
   * Why secrets cannot be used with the configured key, or undefined when they can. The server may
   * log it at start; every secret operation throws it as a SecretKeyError.
   */
  keyProblem(): string | undefined {
    const stored = this.meta('key_fingerprint');
    if (stored === undefined || stored === this.box.fingerprint) return undefined;
    return `the secrets in config.db were sealed with a different key than the one in ${describeSource(this.box.source)}: ` +
      'restore the original key (the DATA_DIR/secret.key file or BERTH_SECRET_KEY value it was created with); ' +
      'plain configuration keeps working meanwhile';
  }

  private assertKey(): void {
    const p = this.keyProblem();
    if (p) throw new SecretKeyError(p);
  }

  /** Sets keys (one new version for the whole call, atomically). Unchanged values make no version. */
  set(app: string, env: string, entries: ConfigEntryInput[], who: string): ConfigWriteResult {
    checkScope(app, env);
    if (entries.length === 0) throw new InvalidInput('nothing to set: give at least one KEY=VALUE');
    if (entries.length > MAX_ENTRIES) throw new InvalidInput(`too many keys in one change (${entries.length}); at most ${MAX_ENTRIES}`);
    const seen = new Set<string>();
    for (const e of entries) {
      checkKey(e.key);
      if (seen.has(e.key)) throw new InvalidInput(`${e.key} is given twice: set each key once per change`);
      seen.add(e.key);
      checkValue(e.key, e.value);
    }
    if (entries.some((e) => e.kind === 'secret')) this.assertKey();
    return this.db.transaction((): ConfigWriteResult => {
      const current = this.version(app, env);
      const next = current + 1;
      const changes: ConfigChange[] = [];
      const live = this.db.prepare('SELECT * FROM entries WHERE app = ? AND env = ? AND key = ? AND until IS NULL');
      const close = this.db.prepare('UPDATE entries SET until = ? WHERE app = ? AND env = ? AND key = ? AND until IS NULL');
      const insert = this.db.prepare(`INSERT INTO entries (app, env, key, kind, value, ciphertext, iv, tag, since, until)
        VALUES (@app, @env, @key, @kind, @value, @ciphertext, @iv, @tag, @since, NULL)`);
      for (const e of entries) {
        const cur = live.get(app, env, e.key) as EntryRow | undefined;
        if (cur && cur.kind === e.kind && this.plain(app, env, cur) === e.value) continue;
        const change: ConfigChange = { key: e.key, kind: e.kind, op: 'set' };
        if (cur?.kind === 'value') change.old = cur.value!;
        if (e.kind === 'value') change.new = e.value;
        changes.push(change);
        if (cur) close.run(next, app, env, e.key);
        if (e.kind === 'secret') {
          const s = this.box.seal(e.value, aad(app, env, e.key));
          insert.run({ app, env, key: e.key, kind: 'secret', value: null, ciphertext: s.ciphertext, iv: s.iv, tag: s.tag, since: next });
          if (this.meta('key_fingerprint') === undefined) this.setMeta('key_fingerprint', this.box.fingerprint);
        } else {
          insert.run({ app, env, key: e.key, kind: 'value', value: e.value, ciphertext: null, iv: null, tag: null, since: next });
        }
      }
      if (changes.length === 0) return { version: current, changed: false, changes };
      this.addVersion(app, env, next, who, changes);
      return { version: next, changed: true, changes };
    })();
  }

  /** Removes keys (one new version). Every key must exist: nothing changes otherwise. */
  unset(app: string, env: string, keys: string[], who: string): ConfigWriteResult {
    checkScope(app, env);
    if (keys.length === 0) throw new InvalidInput('nothing to unset: give at least one KEY');
    for (const k of keys) checkKey(k);
    return this.db.transaction((): ConfigWriteResult => {
      const current = this.version(app, env);
      const next = current + 1;
      const live = this.db.prepare('SELECT key, kind FROM entries WHERE app = ? AND env = ? AND key = ? AND until IS NULL');
      const changes: ConfigChange[] = [];
      const missing: string[] = [];
      for (const key of new Set(keys)) {
        const cur = live.get(app, env, key) as { key: string; kind: ConfigKind } | undefined;
        if (!cur) missing.push(key);
        else changes.push({ key, kind: cur.kind, op: 'unset' });
      }
      if (missing.length > 0) {
        throw new NotFound(`${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set in ${app}/${env}; nothing was changed ` +
          `(see \`berth config ls ${app} --env ${env}\`)`);
      }
      const close = this.db.prepare('UPDATE entries SET until = ? WHERE app = ? AND env = ? AND key = ? AND until IS NULL');
      for (const c of changes) close.run(next, app, env, c.key);
      this.addVersion(app, env, next, who, changes);
      return { version: next, changed: true, changes };
    })();
  }

  /** The current keys: plain values with their value, secrets without. */
  list(app: string, env: string): ConfigEntryView[] {
    return this.liveRows(app, env).map((r) => this.view(r));
  }

  /** One key. A secret's value is decrypted only with `reveal` (the caller decides who may). */
  get(app: string, env: string, key: string, opts: { reveal?: boolean } = {}): ConfigEntryView {
    checkKey(key);
    const r = this.db.prepare(`SELECT e.*, v.at, v.who FROM entries e JOIN versions v ON v.app = e.app AND v.env = e.env AND v.version = e.since
      WHERE e.app = ? AND e.env = ? AND e.key = ? AND e.until IS NULL`).get(app, env, key) as EntryRow | undefined;
    if (!r) throw new NotFound(`${key} is not set in ${app}/${env}: see \`berth config ls ${app} --env ${env}\``);
    const v = this.view(r);
    if (r.kind === 'secret' && opts.reveal) {
      this.assertKey();
      v.value = this.plain(app, env, r);
    }
    return v;
  }

  /** Versions, newest first. Never contains a secret's value (none is ever recorded). */
  history(app: string, env: string): ConfigVersion[] {
    const rows = this.db.prepare('SELECT version, who, at, changes FROM versions WHERE app = ? AND env = ? ORDER BY version DESC')
      .all(app, env) as { version: number; who: string; at: number; changes: string }[];
    return rows.map((r) => ({ version: r.version, who: r.who, at: r.at, changes: JSON.parse(r.changes) as ConfigChange[] }));
  }

  /** The current version number; 0 when the app/env never had configuration. */
  version(app: string, env: string): number {
    const r = this.db.prepare('SELECT MAX(version) AS v FROM versions WHERE app = ? AND env = ?').get(app, env) as { v: number | null };
    return r.v ?? 0;
  }

  /**
   * Everything to inject into containers, secrets decrypted: for the deployer only, never for an API
   * response. `version` pins a past version (what a release was made with); default the current one.
   */
  resolved(app: string, env: string, version?: number): { version: number; env: Record<string, string> } {
    const v = version ?? this.version(app, env);
    const rows = this.db.prepare('SELECT * FROM entries WHERE app = ? AND env = ? AND since <= ? AND (until IS NULL OR until > ?) ORDER BY key')
      .all(app, env, v, v) as EntryRow[];
    if (rows.some((r) => r.kind === 'secret')) this.assertKey();
    const out: Record<string, string> = {};
    for (const r of rows) out[r.key] = this.plain(app, env, r);
    return { version: v, env: out };
  }

  /** The digest a secret or config value of app/env is known by (keyed: guesses cannot be tested without the key). */
  fileDigest(app: string, env: string, value: string): string {
    return this.box.mac(`${app}\0${env}\0${value}`);
  }

  /** Seals a secret or config file's value (idempotent); returns its digest. */
  keepFile(app: string, env: string, value: string): string {
    checkScope(app, env);
    this.assertKey();
    const digest = this.fileDigest(app, env, value);
    if (this.hasFile(app, env, digest)) return digest;
    const s = this.box.seal(value, fileAad(app, env, digest));
    this.db.prepare('INSERT OR IGNORE INTO files (app, env, digest, ciphertext, iv, tag, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(app, env, digest, s.ciphertext, s.iv, s.tag, this.clock.now());
    if (this.meta('key_fingerprint') === undefined) this.setMeta('key_fingerprint', this.box.fingerprint);
    return digest;
  }

  hasFile(app: string, env: string, digest: string): boolean {
    return this.db.prepare('SELECT 1 FROM files WHERE app = ? AND env = ? AND digest = ?').get(app, env, digest) !== undefined;
  }

  /** A kept value, decrypted (for writing a container's file); NotFound when it was never kept here. */
  openFile(app: string, env: string, digest: string): string {
    const r = this.db.prepare('SELECT ciphertext, iv, tag FROM files WHERE app = ? AND env = ? AND digest = ?').get(app, env, digest) as
      { ciphertext: Buffer; iv: Buffer; tag: Buffer } | undefined;
    if (!r) throw new NotFound(`no secret or config value ${digest.slice(0, 12)} is kept for ${app}/${env}: deploy the Compose file again`);
    this.assertKey();
    return this.box.open(r, fileAad(app, env, digest));
  }

  /** Whether the app (in `env`, when given) has (or had) configuration. */
  hasApp(app: string, env?: string): boolean {
    return this.db.prepare('SELECT 1 FROM versions WHERE app = @app AND (@env IS NULL OR env = @env) LIMIT 1').get({ app, env: env ?? null }) !== undefined;
  }

  /** Every app and environment that has (or had) configuration. */
  appEnvs(): { app: string; env: string }[] {
    return this.db.prepare('SELECT DISTINCT app, env FROM versions').all() as { app: string; env: string }[];
  }

  /** What an app has, per environment: live plain values and secrets, and how many versions of history. */
  appInventory(app: string): { env: string; values: number; secrets: number; versions: number }[] {
    return this.db.prepare(`SELECT v.env, COUNT(*) AS versions,
        (SELECT COUNT(*) FROM entries e WHERE e.app = v.app AND e.env = v.env AND e.until IS NULL AND e.kind = 'value') AS "values",
        (SELECT COUNT(*) FROM entries e WHERE e.app = v.app AND e.env = v.env AND e.until IS NULL AND e.kind = 'secret') AS secrets
      FROM versions v WHERE v.app = ? GROUP BY v.env ORDER BY v.env`).all(app) as { env: string; values: number; secrets: number; versions: number }[];
  }

  /**
   * Deletes every value, secret and history entry of the app in every environment, in one
   * transaction. SQLite's secure_delete overwrites the freed bytes, and the WAL is truncated, so
   * nothing of the values stays readable in the file. Idempotent.
   */
  purgeApp(app: string): { values: number; secrets: number; versions: number } {
    const live = (kind: ConfigKind) => (this.db.prepare('SELECT COUNT(*) AS n FROM entries WHERE app = ? AND kind = ? AND until IS NULL').get(app, kind) as { n: number }).n;
    const counts = this.db.transaction(() => {
      const values = live('value');
      const secrets = live('secret');
      this.db.prepare('DELETE FROM entries WHERE app = ?').run(app);
      const versions = this.db.prepare('DELETE FROM versions WHERE app = ?').run(app).changes;
      this.db.prepare('DELETE FROM files WHERE app = ?').run(app);
      return { values, secrets, versions };
    })();
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    return counts;
  }

  close(): void {
    this.db.close();
  }

  private liveRows(app: string, env: string): EntryRow[] {
    return this.db.prepare(`SELECT e.*, v.at, v.who FROM entries e JOIN versions v ON v.app = e.app AND v.env = e.env AND v.version = e.since
      WHERE e.app = ? AND e.env = ? AND e.until IS NULL ORDER BY e.key`).all(app, env) as EntryRow[];
  }

  private view(r: EntryRow): ConfigEntryView {
    const v: ConfigEntryView = { key: r.key, kind: r.kind, version: r.since, updatedAt: r.at, updatedBy: r.who };
    if (r.kind === 'value') v.value = r.value!;
    return v;
  }

  private plain(app: string, env: string, r: Pick<EntryRow, 'key' | 'kind' | 'value' | 'ciphertext' | 'iv' | 'tag'>): string {
    if (r.kind === 'value') return r.value!;
    return this.box.open({ ciphertext: r.ciphertext!, iv: r.iv!, tag: r.tag! }, aad(app, env, r.key));
  }

  private addVersion(app: string, env: string, version: number, who: string, changes: ConfigChange[]): void {
    this.db.prepare('INSERT INTO versions (app, env, version, who, at, changes) VALUES (?, ?, ?, ?, ?, ?)')
      .run(app, env, version, who.slice(0, 200), this.clock.now(), JSON.stringify(changes));
  }

  private meta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  private setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }
}

/** What a sealed value is bound to: moved to another app, environment or key, it no longer opens. */
function aad(app: string, env: string, key: string): string {
  return `${app}/${env}/${key}`;
}

function fileAad(app: string, env: string, digest: string): string {
  return `${app}/${env}/file:${digest}`;
}

/** Undefined when `key` is a usable config key; otherwise what is wrong and what would be right. */
export function configKeyProblem(key: string): string | undefined {
  if (key.length === 0) return 'a config key cannot be empty';
  // Likely KEY=VALUE given where a key belongs; the text after '=' may be a secret, so it is not echoed.
  if (key.includes('=')) return 'a config key cannot contain "=": give the key alone and its value separately';
  if (key.length > MAX_KEY) return `config key ${key.slice(0, 40)}… is too long: at most ${MAX_KEY} characters`;
  if (!CONFIG_KEY_PATTERN.test(key)) {
    const fixed = key.toUpperCase().replace(/[^A-Z0-9_]+/g, '_').replace(/^([0-9])/, '_$1');
    return `config key "${key}" is invalid: use upper-case letters, digits and underscores, not starting with a digit` +
      (CONFIG_KEY_PATTERN.test(fixed) ? `, e.g. "${fixed}"` : '');
  }
  if (key === 'PORT' || key.startsWith('BERTH_')) return `config key "${key}" is reserved: Berth sets PORT and BERTH_* in every container itself`;
  return undefined;
}

function checkKey(key: string): void {
  const p = configKeyProblem(key);
  if (p) throw new InvalidInput(p);
}

// Messages about a value name its key and what is wrong, never the value: it may be a secret.
function checkValue(key: string, value: string): void {
  if (typeof value !== 'string') throw new InvalidInput(`the value of ${key} must be a string`);
  if (Buffer.byteLength(value, 'utf8') > MAX_VALUE_BYTES) throw new InvalidInput(`the value of ${key} is longer than ${MAX_VALUE_BYTES} bytes`);
  if (value.includes('\0')) throw new InvalidInput(`the value of ${key} contains a NUL byte, which an environment variable cannot hold`);
}

function checkScope(app: string, env: string): void {
  if (!NAME_PATTERN.test(app) || app.length > 63) throw new InvalidInput(`app name "${app}" is invalid: lower-case letters, digits and dashes`);
  if (!NAME_PATTERN.test(env) || env.length > 63) throw new InvalidInput(`environment "${env}" is invalid: lower-case letters, digits and dashes`);
}
