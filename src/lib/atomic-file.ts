import { open, rename, readFile, mkdir } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';

/** Writes a file atomically (temp + fsync + rename). Returns false when the bytes were already there. */
export async function writeFileAtomic(path: string, data: string | Buffer, opts: { mode?: number; onlyIfChanged?: boolean } = {}): Promise<boolean> {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  if (opts.onlyIfChanged) {
    const cur = await readFile(path).catch(() => undefined);
    if (cur && cur.equals(buf)) return false;
  }
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fh = await open(tmp, 'w', opts.mode ?? 0o644);
  try {
    await fh.writeFile(buf);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  return true;
}
