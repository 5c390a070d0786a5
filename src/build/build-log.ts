import { existsSync, mkdirSync, readdirSync, readFileSync, appendFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.ts';

import { isFinished, type BuildRecord } from '../core/builds.ts';

export { BUILD_STAGES, isFinished, type BuildRecord, type BuildSource, type BuildStage, type BuildStatus } from '../core/builds.ts';

/**
 * Build records and their output, kept as files under DATA/builds (ID.json + ID.log) so that a build's
 * log survives restarts; live followers get each line as it is appended.
 */
export class BuildLog {
  private readonly followers = new Map<string, Set<(line: string | null) => void>>();

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  async create(r: BuildRecord): Promise<void> {
    appendFileSync(join(this.dir, `${r.id}.log`), '', { mode: 0o600 });
    await this.save(r);
  }

  async save(r: BuildRecord): Promise<void> {
    await writeFileAtomic(join(this.dir, `${r.id}.json`), JSON.stringify(r) + '\n', { mode: 0o600 });
    if (isFinished(r.status)) {
      for (const f of this.followers.get(r.id) ?? []) f(null);
      this.followers.delete(r.id);
    }
  }

  append(id: string, line: string): void {
    appendFileSync(join(this.dir, `${id}.log`), line + '\n', { mode: 0o600 });
    for (const f of this.followers.get(id) ?? []) f(line);
  }

  get(id: string): BuildRecord | undefined {
    if (!/^[a-z0-9]+$/.test(id)) return undefined;
    const p = join(this.dir, `${id}.json`);
    if (!existsSync(p)) return undefined;
    return JSON.parse(readFileSync(p, 'utf8')) as BuildRecord;
  }

  /** Newest first. */
  list(app?: string): BuildRecord[] {
    const out: BuildRecord[] = [];
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith('.json')) continue;
      try {
        const r = JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as BuildRecord;
        if (!app || r.app === app) out.push(r);
      } catch {
        // a file being replaced: skip it
      }
    }
    return out.sort((a, b) => b.createdAt - a.createdAt);
  }

  /** Deletes the records and logs of every build of the app (`berth rm --purge`); returns how many builds. */
  purgeApp(app: string): number {
    let n = 0;
    for (const r of this.list(app)) {
      rmSync(join(this.dir, `${r.id}.json`), { force: true });
      rmSync(join(this.dir, `${r.id}.log`), { force: true });
      this.followers.delete(r.id);
      n++;
    }
    return n;
  }

  text(id: string): string {
    return readFileSync(join(this.dir, `${id}.log`), 'utf8');
  }

  /** Calls onLine for each new line, then with null when the build finishes. Returns unsubscribe. */
  follow(id: string, onLine: (line: string | null) => void): () => void {
    let set = this.followers.get(id);
    if (!set) this.followers.set(id, (set = new Set()));
    set.add(onLine);
    return () => set.delete(onLine);
  }
}
