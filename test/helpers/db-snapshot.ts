import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/**
 * Every row of every table of the SQLite databases in `dir` (but the audit log, which records every
 * request, refused ones too), as one comparable object: a test asserts a refused request left it equal.
 */
export function databaseSnapshot(dir: string): Record<string, Record<string, unknown[]>> {
  const out: Record<string, Record<string, unknown[]>> = {};
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.db') && x !== 'audit.db').sort()) {
    const db = new Database(join(dir, f), { readonly: true, fileMustExist: true });
    try {
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
      out[f] = Object.fromEntries(tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}"`).all()]));
    } finally {
      db.close();
    }
  }
  return out;
}
