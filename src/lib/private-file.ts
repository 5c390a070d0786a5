import { chmodSync, statSync } from 'node:fs';

/**
 * A SQLite database readable by its owner only: the file and its -wal/-shm (SQLite creates those with
 * the database's mode, so a private database stays private). Files made by an older version with
 * 0644 are tightened too. `:memory:` and missing files are left alone.
 */
export function makeSqlitePrivate(path: string): void {
  if (path === ':memory:' || path === '') return;
  for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    let mode: number;
    try {
      mode = statSync(p).mode;
    } catch {
      continue;
    }
    if ((mode & 0o077) !== 0) chmodSync(p, mode & 0o700);
  }
}
