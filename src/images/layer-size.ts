import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

interface TarHeader { name: string; type?: string; size?: number; linkname?: string | null }
type TarExtract = Writable & {
  on(ev: 'entry', fn: (header: TarHeader, stream: Readable, next: (err?: Error) => void) => void): TarExtract;
};
const tarStream = createRequire(import.meta.url)('tar-stream') as { extract(): TarExtract };

/**
 * The unpacked size of one image layer (a tar, gzip-compressed or not): what the Docker Engine counts
 * for it in `docker image inspect .Size` and `docker images` — the bytes of its regular files and the
 * length of its symlinks' targets, each hard link once, directories and empty files as nothing (the
 * engine's `directory.Size` over the unpacked layer). Summed over an image's layers it equals the
 * engine's size of that image, so the registry can report the same measure as the image checks,
 * whether or not the image is still on the engine.
 *
 * `path` is the layer blob. Undefined when it is neither a tar nor a gzipped tar (e.g. zstd, which Node 20 cannot read).
 */
export async function unpackedLayerSize(path: string): Promise<number | undefined> {
  const head = Buffer.alloc(512);
  const fh = await open(path, 'r');
  let n: number;
  try {
    ({ bytesRead: n } = await fh.read(head, 0, head.length, 0));
  } finally {
    await fh.close();
  }
  if (n === 0) return 0;
  const gzip = head[0] === 0x1f && head[1] === 0x8b;
  // A plain tar has "ustar" at offset 257 of its first header.
  if (!gzip && head.subarray(257, 262).toString('latin1') !== 'ustar') return undefined;
  let total = 0;
  const extract = tarStream.extract();
  extract.on('entry', (h, stream, next) => {
    if (h.type === 'file' || h.type === 'contiguous-file') total += h.size ?? 0;
    else if (h.type === 'symlink') total += Buffer.byteLength(h.linkname ?? '');
    stream.on('end', () => next());
    stream.resume();
  });
  await (gzip ? pipeline(createReadStream(path), createGunzip(), extract) : pipeline(createReadStream(path), extract));
  return total;
}
