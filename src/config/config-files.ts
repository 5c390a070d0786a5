import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Owner read/write, the config group read; nobody else (the files hold decrypted secrets). */
export const CONFIG_FILE_MODE = 0o640;
export const CONFIG_DIR_MODE = 0o750;

export interface ConfigFilesOptions {
  /**
   * The group owning the directory and files. Containers that mount them get this group as a
   * supplementary group (Docker's GroupAdd), so a process of any user (`user: 1000`, an image's
   * `USER node`) reads them while other users of the host do not. Undefined: the server's own group.
   */
  gid?: number;
}

/**
 * Configuration as files, for processes that reload in place: one file per key plus `env`
 * (`KEY='value'` lines), in a directory Berth mounts read-only at /run/berth/config. A change rewrites
 * the files (each atomically) and removes keys that are gone. The directory lives under a run
 * directory (tmpfs on a normal system), not in the data directory, because it holds decrypted secrets:
 * directory 0750 and files 0640, owned by root and the config group (see ConfigFilesOptions.gid).
 */
export function writeConfigFiles(dir: string, values: Record<string, string>, opts: ConfigFilesOptions = {}): void {
  mkdirSync(dir, { recursive: true, mode: CONFIG_DIR_MODE });
  // mkdir's mode goes through the umask, and an existing directory keeps whatever it had: set both.
  restrict(dir, CONFIG_DIR_MODE, opts.gid);
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
    if (cur === text) {
      restrict(path, CONFIG_FILE_MODE, opts.gid);
      continue;
    }
    const tmp = join(dir, `.${name}.tmp`);
    // Created private, then opened to the group: never readable by others, not even for a moment.
    writeFileSync(tmp, text, { mode: 0o600 });
    restrict(tmp, CONFIG_FILE_MODE, opts.gid);
    renameSync(tmp, path);
  }
  for (const name of readdirSync(dir)) {
    if (!want.has(name) && !name.startsWith('.')) rmSync(join(dir, name), { force: true });
  }
}

function restrict(path: string, mode: number, gid: number | undefined): void {
  if (gid !== undefined) chownSync(path, process.getuid?.() ?? 0, gid);
  chmodSync(path, mode);
}

/**
 * Removes the configuration files of every app/env under `root` (`root/APP/ENV`) that is not in
 * `live` (`APP/ENV` keys: environments with services or instances left). Called when instances come
 * and go: the files of a removed app do not outlive its last container. Returns what was removed.
 */
export function sweepConfigFiles(root: string, live: ReadonlySet<string>): string[] {
  if (!existsSync(root)) return [];
  const removed: string[] = [];
  for (const app of readdirSync(root)) {
    const appDir = join(root, app);
    let envs: string[];
    try {
      envs = readdirSync(appDir);
    } catch {
      continue;
    }
    for (const env of envs) {
      if (live.has(`${app}/${env}`)) continue;
      rmSync(join(appDir, env), { recursive: true, force: true });
      removed.push(`${app}/${env}`);
    }
    if (readdirSync(appDir).length === 0) rmSync(appDir, { recursive: true, force: true });
  }
  return removed;
}
