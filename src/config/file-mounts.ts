import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FileMountSpec } from '../core/spec/types.ts';
import { runCommand } from '../lib/exec.ts';

/**
 * Where a release's secret and config files live while containers use them: a tmpfs Berth mounts
 * itself (`RUN/CLUSTER/secrets`), so a decrypted value never reaches a disk. Each file is
 * bind-mounted read-only into the container at its target; the directory tree is root's alone (0700),
 * the file carries the mount's uid, gid and mode for the process inside.
 */
export class FileMountRoot {
  private mounted = false;
  private problem: string | undefined = 'not prepared yet';

  constructor(readonly dir: string) {}

  /**
   * Mounts the tmpfs unless one is there already (a server restart keeps the running containers'
   * files). Without it (not root, no mount permission) secrets cannot be served: containers that
   * need one are refused with this reason; the rest of Berth works.
   */
  async prepare(): Promise<string | undefined> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    if (isMountPoint(this.dir)) {
      this.mounted = true;
      this.problem = undefined;
      return undefined;
    }
    try {
      await runCommand('mount', ['-t', 'tmpfs', '-o', 'mode=0700,size=64m,nosuid,nodev,noexec', 'berth-secrets', this.dir], { timeoutMs: 10_000 });
      this.mounted = isMountPoint(this.dir);
      this.problem = this.mounted ? undefined : `${this.dir} is not a mount point after mounting a tmpfs there`;
    } catch (err) {
      this.problem = `cannot mount a tmpfs at ${this.dir} for secret and config files (${(err as Error).message}): run berth server as root`;
    }
    return this.problem;
  }

  /**
   * Writes the files of one release (each only when changed, atomically) and returns the bind mounts
   * for its containers. Throws (no container is created) when there is no tmpfs.
   */
  write(app: string, env: string, releaseId: string, files: Array<{ kind: 'secrets' | 'configs'; index: number; mount: FileMountSpec; value: string }>):
    Array<{ source: string; target: string }> {
    if (files.length === 0) return [];
    if (!this.mounted) throw new Error(`secrets and configs need a tmpfs: ${this.problem ?? 'not prepared'}`);
    const dir = join(this.dir, app, env, releaseId);
    for (const d of [join(this.dir, app), join(this.dir, app, env), dir]) {
      mkdirSync(d, { recursive: true, mode: 0o700 });
      chmodSync(d, 0o700);
    }
    return files.map(({ kind, index, mount, value }) => {
      const path = join(dir, `${kind}-${index}`);
      let cur: string | undefined;
      try {
        cur = readFileSync(path, 'utf8');
      } catch {
        cur = undefined;
      }
      if (cur !== value) {
        const tmp = join(dir, `.${kind}-${index}.tmp`);
        writeFileSync(tmp, value, { mode: 0o600 });
        chownSync(tmp, mount.uid, mount.gid);
        chmodSync(tmp, mount.mode);
        renameSync(tmp, path);
      } else {
        chownSync(path, mount.uid, mount.gid);
        chmodSync(path, mount.mode);
      }
      return { source: path, target: mount.target };
    });
  }

  /** Removes the files of releases no instance runs any more (`APP/ENV/RELEASE` keys in `live`). Returns what went. */
  sweep(live: ReadonlySet<string>): string[] {
    if (!existsSync(this.dir)) return [];
    const removed: string[] = [];
    for (const app of safeList(this.dir)) {
      for (const env of safeList(join(this.dir, app))) {
        for (const rel of safeList(join(this.dir, app, env))) {
          if (live.has(`${app}/${env}/${rel}`)) continue;
          rmSync(join(this.dir, app, env, rel), { recursive: true, force: true });
          removed.push(`${app}/${env}/${rel}`);
        }
        if (safeList(join(this.dir, app, env)).length === 0) rmSync(join(this.dir, app, env), { recursive: true, force: true });
      }
      if (safeList(join(this.dir, app)).length === 0) rmSync(join(this.dir, app), { recursive: true, force: true });
    }
    return removed;
  }

  /** Every file of an app (rm --purge). */
  removeApp(app: string): void {
    rmSync(join(this.dir, app), { recursive: true, force: true });
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Whether `dir` is a mount point, from /proc/self/mountinfo (field 5; spaces escaped as \040). */
export function isMountPoint(dir: string): boolean {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return false;
  }
  return text.split('\n').some((line) => line.split(' ')[4]?.replace(/\\040/g, ' ') === dir);
}

/** The files a release's containers mount, in a stable order (their host names are `KIND-INDEX`). */
export function mountsOf(spec: { secrets?: FileMountSpec[]; configs?: FileMountSpec[] }): Array<{ kind: 'secrets' | 'configs'; index: number; mount: FileMountSpec }> {
  return [
    ...(spec.secrets ?? []).map((mount, index) => ({ kind: 'secrets' as const, index, mount })),
    ...(spec.configs ?? []).map((mount, index) => ({ kind: 'configs' as const, index, mount })),
  ];
}
