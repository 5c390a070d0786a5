import type Database from 'better-sqlite3';

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
