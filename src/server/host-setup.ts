import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Engine } from '../core/ports.ts';
import { shortId } from '../lib/ids.ts';

// The host side of starting a server: its data directory, its cluster id, and the engine scoped to it.

/**
 * The data directory 0700, and the files directly in it (databases and their -wal/-shm, tokens, keys)
 * not readable by others: new ones are (umask), but a directory made by an older Berth or by hand
 * may have been 0755 with 0644 databases.
 */
export async function makePrivate(dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);
  for (const e of await readdir(dataDir, { withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(dataDir, e.name);
    const st = await stat(p).catch(() => undefined);
    if (st && (st.mode & 0o077) !== 0) await chmod(p, st.mode & 0o700).catch(() => undefined);
  }
}

export async function clusterId(dataDir: string): Promise<string> {
  const p = join(dataDir, 'cluster-id');
  const cur = (await readFile(p, 'utf8').catch(() => '')).trim();
  if (cur) return cur;
  const id = shortId(12);
  await writeFile(p, id + '\n', { mode: 0o600 });
  return id;
}

/** Every container this server creates or lists carries its cluster label: two installations never touch each other's. */
export function scopedEngine(engine: Engine, scope: Record<string, string>): Engine {
  return new Proxy(engine, {
    get(target, prop, recv) {
      if (prop === 'list') return (labels: Record<string, string>) => target.list({ ...labels, ...scope });
      if (prop === 'create') return (spec: Parameters<Engine['create']>[0]) => target.create({ ...spec, labels: { ...spec.labels, ...scope } });
      if (prop === 'ensureNetwork') return (name: string, labels: Record<string, string>) => target.ensureNetwork(name, { ...labels, ...scope });
      if (prop === 'listNetworks') return (labels: Record<string, string>) => target.listNetworks({ ...labels, ...scope });
      const v = Reflect.get(target, prop, recv);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}
