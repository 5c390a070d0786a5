import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Configuration as files, for processes that reload in place: one file per key plus `env`
 * (`KEY='value'` lines), in a directory Berth mounts read-only at /run/berth/config. A change rewrites
 * the files (each atomically) and removes keys that are gone. The directory lives under a run
 * directory (tmpfs on a normal system), not in the data directory, because it holds decrypted secrets.
 */
export function writeConfigFiles(dir: string, values: Record<string, string>): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const want = new Map(Object.entries(values));
  want.set('env', Object.entries(values).map(([k, v]) => `${k}='${v.replaceAll("'", "'\\''")}'`).join('\n') + (values && Object.keys(values).length ? '\n' : ''));
  for (const [name, text] of want) {
    const path = join(dir, name);
    let cur: string | undefined;
    try {
      cur = readFileSync(path, 'utf8');
    } catch {
      cur = undefined;
    }
    if (cur === text) continue;
    const tmp = join(dir, `.${name}.tmp`);
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, path);
  }
  for (const name of readdirSync(dir)) {
    if (!want.has(name) && !name.startsWith('.')) rmSync(join(dir, name), { force: true });
  }
}
