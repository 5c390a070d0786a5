import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, existsSync, chmodSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { sweepConfigFiles, writeConfigFiles } from './config-files.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'berth-config-files-'));
  dirs.push(d);
  return d;
}
const mode = (p: string) => statSync(p).mode & 0o777;

describe('configuration files', () => {
  test('directory 0750 and files 0640 of the config group: nothing is readable by others', () => {
    const dir = join(temp(), 'shop', 'prod');
    const gid = process.getuid?.() === 0 ? 65533 : process.getgid!();
    writeConfigFiles(dir, { DB_URL: 'postgres://x', TOKEN: "it's secret" }, { gid });
    assert.equal(mode(dir), 0o750);
    assert.equal(statSync(dir).gid, gid);
    assert.deepEqual(readdirSync(dir).sort(), ['DB_URL', 'TOKEN', 'env']);
    for (const f of readdirSync(dir)) {
      assert.equal(mode(join(dir, f)), 0o640, f);
      assert.equal(statSync(join(dir, f)).gid, gid, f);
    }
    assert.equal(readFileSync(join(dir, 'env'), 'utf8'), "DB_URL='postgres://x'\nTOKEN='it'\\''s secret'\n");
  });

  test('files written by an older version (0755/0644) are tightened, unchanged ones included; gone keys removed', () => {
    const dir = join(temp(), 'shop', 'prod');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'A'), '1', { mode: 0o644 });
    chmodSync(join(dir, 'A'), 0o644);
    writeFileSync(join(dir, 'OLD'), 'x');
    writeConfigFiles(dir, { A: '1' });
    assert.equal(mode(dir), 0o750);
    assert.equal(mode(join(dir, 'A')), 0o640);
    assert.equal(existsSync(join(dir, 'OLD')), false);
  });

  test('sweep removes the environments with nothing left, and an app directory once empty', () => {
    const root = temp();
    writeConfigFiles(join(root, 'shop', 'prod'), { A: '1' });
    writeConfigFiles(join(root, 'shop', 'pre'), { A: '2' });
    writeConfigFiles(join(root, 'blog', 'prod'), { B: '1' });
    assert.deepEqual(sweepConfigFiles(root, new Set(['shop/prod', 'blog/prod'])), ['shop/pre']);
    assert.deepEqual(readdirSync(join(root, 'shop')), ['prod']);
    assert.deepEqual(sweepConfigFiles(root, new Set(['shop/prod'])), ['blog/prod']);
    assert.deepEqual(readdirSync(root), ['shop']);
    assert.deepEqual(sweepConfigFiles(join(root, 'missing'), new Set()), []);
  });
});
