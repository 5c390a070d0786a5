import { randomBytes } from 'node:crypto';
import { access, mkdir, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Memory limits for BuildKit builds.
 *
 * dockerd's built-in BuildKit (20.10) ignores the build API's `memory`/`memswap` and its
 * `cgroupparent`: every RUN step runs in a cgroup `<daemon cgroup parent>/buildkit/<random id>`
 * (`docker/buildkit/...` with the cgroupfs driver). Berth cannot name a cgroup per build, but it can
 * limit that common parent: cgroup limits are hierarchical, so a limit on `docker/buildkit` bounds the
 * memory of all RUN steps below it together, and the kernel's OOM killer ends a step that would
 * exceed it. The limit is set before a build's request is sent and removed when no limited build is
 * left.
 *
 * Several builds (and several Berth processes sharing one daemon) may run at once: each in-flight
 * limited build registers its limit as a file in `registryDir`, and the parent's limit is the sum of
 * the registered limits, so N concurrent builds of L bytes together get N×L, the same bound the
 * legacy builder's per-step limits gave. Builds without a limit do not register: while limited builds
 * run, they share the pool. Entries of dead processes (pid + start time no longer match) are removed
 * when seen. Every writer re-reads the registry after writing and rewrites until what it wrote matches
 * what is registered, so concurrent writers converge on the right value without a lock.
 */
export class BuildMemoryPool {
  private seq = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly self: Promise<string>;

  constructor(
    /** The cgroup directory (in cgroupfs) that contains every BuildKit RUN step of the daemon. */
    readonly dir: string,
    readonly cgroupVersion: 1 | 2,
    /** Where in-flight limited builds register, shared by every Berth process on this host. */
    readonly registryDir: string,
  ) {
    this.self = processKey(process.pid);
  }

  /**
   * Registers a build that may use `bytes` and sets the pool's limit before resolving. Resolves with
   * the release function (idempotent). Rejects when the limit cannot be set (the caller then must not
   * run the build under BuildKit unlimited).
   */
  async acquire(bytes: number): Promise<() => Promise<void>> {
    await mkdir(this.registryDir, { recursive: true });
    const file = path.join(this.registryDir, `${await this.self}-${++this.seq}-${randomBytes(3).toString('hex')}`);
    await writeFile(file, String(Math.round(bytes)));
    try {
      await this.serialized(() => this.converge());
    } catch (e) {
      await unlink(file).catch(() => {});
      await this.serialized(() => this.converge()).catch(() => {});
      throw e;
    }
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      await unlink(file).catch(() => {});
      await this.serialized(() => this.converge());
    };
  }

  /** The limit in force now, bytes; undefined when unlimited. */
  async currentLimit(): Promise<number | undefined> {
    const raw = (await readFile(path.join(this.dir, this.cgroupVersion === 1 ? 'memory.limit_in_bytes' : 'memory.max'), 'utf8')).trim();
    if (raw === 'max') return undefined;
    const n = Number(raw);
    // v1 reports "unlimited" as PAGE_COUNTER_MAX in bytes (~9.2e18); -1 is how it is written.
    return n >= 2 ** 62 || n < 0 ? undefined : n;
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  private async converge(): Promise<void> {
    for (let i = 0; i < 10; i++) {
      const before = await this.registered();
      await this.setLimit(before.total);
      const after = await this.registered();
      if (after.key === before.key) return;
    }
  }

  /** The live entries (dead processes' entries are removed) and the sum of their limits (undefined: none). */
  private async registered(): Promise<{ key: string; total: number | undefined }> {
    let names: string[];
    try {
      names = (await readdir(this.registryDir)).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { key: '', total: undefined };
      throw e;
    }
    const live: string[] = [];
    let total = 0;
    for (const name of names) {
      const m = /^(\d+)-(\d+)-/.exec(name);
      const file = path.join(this.registryDir, name);
      if (!m || (await processKey(Number(m[1]))) !== `${m[1]}-${m[2]}`) {
        await unlink(file).catch(() => {});
        continue;
      }
      const bytes = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (!Number.isFinite(bytes) || bytes <= 0) continue;
      live.push(name);
      total += bytes;
    }
    return { key: live.join(','), total: live.length ? total : undefined };
  }

  private async setLimit(bytes: number | undefined): Promise<void> {
    if (this.cgroupVersion === 2) {
      await writeFile(path.join(this.dir, 'memory.max'), bytes === undefined ? 'max' : String(bytes));
      // No swapping past the limit either (memory.swap.max exists only with swap accounting).
      await writeFile(path.join(this.dir, 'memory.swap.max'), bytes === undefined ? 'max' : '0').catch(() => {});
      return;
    }
    const mem = path.join(this.dir, 'memory.limit_in_bytes');
    const memsw = path.join(this.dir, 'memory.memsw.limit_in_bytes');
    const target = bytes === undefined ? '-1' : String(bytes);
    const current = await this.currentLimit();
    if (current === bytes) return;
    // v1 requires memory ≤ memory+swap at every moment: raise memsw first, lower it last. memsw is
    // absent (or refuses) without swap accounting; the memory limit alone still holds.
    const raising = bytes === undefined || (current !== undefined && bytes > current);
    if (raising) await writeFile(memsw, target).catch(() => {});
    await writeFile(mem, target);
    if (!raising) await writeFile(memsw, target).catch(() => {});
  }
}

/**
 * Finds the cgroup that dockerd's BuildKit puts RUN steps under and makes sure the memory controller
 * can limit it. Resolves with the pool, or with the reason it is not possible here.
 */
export async function openBuildMemoryPool(opts: {
  cgroupRoot: string;
  /** dockerd's cgroup parent (`--cgroup-parent`; `docker` by default with the cgroupfs driver). */
  daemonCgroupParent: string;
  registryDir: string;
}): Promise<BuildMemoryPool | string> {
  const parent = opts.daemonCgroupParent.replace(/^\/+|\/+$/g, '');
  const isV2 = await exists(path.join(opts.cgroupRoot, 'cgroup.controllers'));
  if (isV2) {
    const dir = path.join(opts.cgroupRoot, parent, 'buildkit');
    try {
      await mkdir(dir, { recursive: true });
      // A limit on `buildkit` needs the memory controller enabled in every parent's subtree_control.
      // dockerd does this for its own parent; enable it for the levels we may have just created.
      let cur = opts.cgroupRoot;
      for (const part of path.relative(opts.cgroupRoot, dir).split(path.sep)) {
        await writeFile(path.join(cur, 'cgroup.subtree_control'), '+memory').catch(() => {});
        cur = path.join(cur, part);
      }
    } catch (e) {
      return `cannot create the cgroup ${dir}: ${(e as Error).message}`;
    }
    if (!(await exists(path.join(dir, 'memory.max')))) return `the memory controller is not enabled for the cgroup ${dir}`;
    return new BuildMemoryPool(dir, 2, opts.registryDir);
  }
  const memRoot = path.join(opts.cgroupRoot, 'memory');
  if (!(await exists(path.join(memRoot, 'memory.limit_in_bytes')))) return `no cgroup v1 memory controller at ${memRoot}`;
  const dir = path.join(memRoot, parent, 'buildkit');
  try {
    await mkdir(dir, { recursive: true });
    await access(path.join(dir, 'memory.limit_in_bytes'), 2 /* W_OK */);
  } catch (e) {
    return `cannot create or write the cgroup ${dir}: ${(e as Error).message}`;
  }
  return new BuildMemoryPool(dir, 1, opts.registryDir);
}

/** `pid-starttime` of a live process (so a reused pid does not keep a dead entry alive), or '' if it is gone. */
async function processKey(pid: number): Promise<string> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, starttime field 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return `${pid}-${fields[19] ?? ''}`;
  } catch {
    return '';
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
