import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { makeSqlitePrivate } from './private-file.ts';

/**
 * Applies schema migrations in order, each in its own transaction; PRAGMA user_version records how
 * many ran. Shared by every SQLite file Berth keeps (state, config, logs, metrics).
 */
export function migrate(db: Database.Database, migrations: readonly string[]): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/**
 * Opens one of Berth's own databases (state, config, auth, audit, certificates) the one way: its
 * directory made (0700) if missing, the file and its -wal/-shm owner-only, WAL with durable commits
 * (synchronous FULL), a writer waits up to 5 s for a lock, and the migrations applied.
 * `secureDelete`: freed pages are zeroed, so deleted values (secrets, keys, specs) leave nothing behind.
 */
export function openDatabase(path: string, migrations: readonly string[], o: { secureDelete: boolean }): Database.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new Database(path);
  makeSqlitePrivate(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  if (o.secureDelete) db.pragma('secure_delete = ON');
  migrate(db, migrations);
  // The -wal/-shm the migrations made, too.
  makeSqlitePrivate(path);
  return db;
}
