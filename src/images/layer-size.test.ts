import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { unpackedLayerSize } from './layer-size.ts';

interface Pack {
  entry(h: Record<string, unknown>, body?: string | Buffer): void;
  finalize(): void;
  on(ev: 'data', fn: (c: Buffer) => void): void;
  on(ev: 'end', fn: () => void): void;
}
const tarStream = createRequire(import.meta.url)('tar-stream') as { pack(): Pack };

/** A layer tar like the engine pushes: files, a directory, a symlink, a hard link, a whiteout. */
async function layerTar(): Promise<Buffer> {
  const p = tarStream.pack();
  const chunks: Buffer[] = [];
  p.on('data', (c) => chunks.push(c));
  const done = new Promise<void>((ok) => p.on('end', ok));
  p.entry({ name: 'app', type: 'directory' });
  p.entry({ name: 'app/main.js', type: 'file' }, 'x'.repeat(1000));
  p.entry({ name: 'app/empty', type: 'file' }, '');
  p.entry({ name: 'app/link', type: 'symlink', linkname: 'main.js' });
  p.entry({ name: 'app/hard', type: 'link', linkname: 'app/main.js' });
  p.entry({ name: 'app/.wh.old', type: 'file' }, '');
  p.entry({ name: 'big.bin', type: 'file' }, Buffer.alloc(70_000, 7));
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

test('unpacked size of a layer: regular files plus symlink targets, hard links once, gzip or plain tar', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-layer-'));
  try {
    const tar = await layerTar();
    const want = 1000 + 'main.js'.length + 70_000;
    await writeFile(join(dir, 'gz'), gzipSync(tar));
    await writeFile(join(dir, 'plain'), tar);
    await writeFile(join(dir, 'zstd'), Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]));
    await writeFile(join(dir, 'empty'), Buffer.alloc(0));
    assert.equal(await unpackedLayerSize(join(dir, 'gz')), want);
    assert.equal(await unpackedLayerSize(join(dir, 'plain')), want);
    assert.equal(await unpackedLayerSize(join(dir, 'zstd')), undefined, 'a format it cannot read: unknown, not wrong');
    assert.equal(await unpackedLayerSize(join(dir, 'empty')), 0);
    await writeFile(join(dir, 'torn'), gzipSync(tar).subarray(0, 200));
    await assert.rejects(unpackedLayerSize(join(dir, 'torn')));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
