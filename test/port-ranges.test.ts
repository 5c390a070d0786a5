/**
 * The instance port range of every e2e test file and benchmark: outside the kernel's ephemeral range
 * (a range inside it makes probes connect to themselves and clients steal allocated ports) and
 * disjoint from every other file's, so two files running at once never hand out the same port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, ephemeralPortRange, assertOutsideEphemeral } from './helpers/harness.ts';

async function ranges(): Promise<{ file: string; lo: number; hi: number }[]> {
  const out: { file: string; lo: number; hi: number }[] = [];
  for (const dir of ['test', 'bench']) {
    for (const name of await readdir(join(ROOT, dir))) {
      if (!name.endsWith('.ts')) continue;
      const text = await readFile(join(ROOT, dir, name), 'utf8');
      for (const m of text.matchAll(/portRange: '(\d+)-(\d+)'/g)) out.push({ file: `${dir}/${name}`, lo: Number(m[1]), hi: Number(m[2]) });
    }
  }
  return out;
}

test('every test and benchmark port range lies outside the ephemeral range and overlaps no other', async () => {
  const all = await ranges();
  assert.ok(all.length >= 30, `found only ${all.length} port ranges: did the pattern change?`);
  const [elo, ehi] = await ephemeralPortRange();
  for (const r of all) {
    assert.ok(r.lo <= r.hi, `${r.file}: ${r.lo}-${r.hi} is empty`);
    assert.ok(r.hi < elo || r.lo > ehi, `${r.file}: ${r.lo}-${r.hi} overlaps the ephemeral range ${elo}-${ehi}`);
  }
  for (const [i, a] of all.entries()) {
    for (const b of all.slice(i + 1)) assert.ok(a.hi < b.lo || b.hi < a.lo, `${a.file} (${a.lo}-${a.hi}) overlaps ${b.file} (${b.lo}-${b.hi})`);
  }
});

test('the harness refuses a port range inside the ephemeral range', async () => {
  const [elo] = await ephemeralPortRange();
  await assert.rejects(assertOutsideEphemeral(`${elo + 10}-${elo + 20}`), /overlaps the kernel's ephemeral range/);
  await assert.rejects(assertOutsideEphemeral('oops'), /is not MIN-MAX/);
  await assertOutsideEphemeral(`${elo - 200}-${elo - 100}`);
});
