import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameDemuxer, LineSplitter, LogDemuxer, splitTimestamp } from './log-demux.ts';

function frame(type: number, text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

test('demuxes frames cut at every byte, lines spanning frames, multibyte UTF-8', () => {
  const all = Buffer.concat([
    frame(1, '2024-01-01T00:00:00.000000001Z hel'),
    frame(2, '2024-01-01T00:00:00.000000002Z oops\n'),
    frame(1, 'lo wörld\n2024-01-01T00:00:00.000000003Z second\r\n'),
    frame(1, '2024-01-01T00:00:00.000000004Z no newline at end'),
  ]);
  for (const step of [1, 3, 7, all.length]) {
    const got: string[] = [];
    const d = new LogDemuxer((s, l) => got.push(`${s}|${l}`));
    for (let i = 0; i < all.length; i += step) d.push(all.subarray(i, i + step));
    d.end();
    assert.deepEqual(got, [
      'stderr|2024-01-01T00:00:00.000000002Z oops',
      'stdout|2024-01-01T00:00:00.000000001Z hello wörld',
      'stdout|2024-01-01T00:00:00.000000003Z second',
      'stdout|2024-01-01T00:00:00.000000004Z no newline at end',
    ], `step ${step}`);
  }
});

test('splitTimestamp', () => {
  assert.deepEqual(splitTimestamp('2024-05-01T10:00:00.123456789Z a b'), { time: '2024-05-01T10:00:00.123456789Z', text: 'a b' });
  assert.deepEqual(splitTimestamp('2024-05-01T10:00:00.1Z'), { time: '2024-05-01T10:00:00.1Z', text: '' });
  assert.deepEqual(splitTimestamp('no time here'), { time: '', text: 'no time here' });
});

test('LineSplitter joins JSON lines cut anywhere', () => {
  const s = new LineSplitter();
  const input = '{"a":1}\n{"b":"ü"}\n\n{"c":3}';
  const bytes = Buffer.from(input);
  const out: string[] = [];
  for (let i = 0; i < bytes.length; i += 2) out.push(...s.push(bytes.subarray(i, i + 2)));
  out.push(...s.end());
  assert.deepEqual(out.map((l) => JSON.parse(l) as unknown), [{ a: 1 }, { b: 'ü' }, { c: 3 }]);
});

test('FrameDemuxer passes raw payloads through per stream, whatever the chunking (exec output)', () => {
  const binary = Buffer.from([0, 255, 10, 13, 0xe2, 0x82]);
  const h = Buffer.alloc(8);
  h[0] = 1;
  h.writeUInt32BE(binary.length, 4);
  const all = Buffer.concat([frame(1, 'out'), frame(2, 'err\n'), Buffer.concat([h, binary]), frame(1, ''), frame(3, 'engine says')]);
  for (const step of [1, 5, all.length]) {
    const got: Record<string, Buffer[]> = { stdout: [], stderr: [] };
    const d = new FrameDemuxer((s, p) => got[s]!.push(Buffer.from(p)));
    for (let i = 0; i < all.length; i += step) d.push(all.subarray(i, i + step));
    assert.deepEqual(Buffer.concat(got.stdout!), Buffer.concat([Buffer.from('out'), binary]), `step ${step}`);
    assert.equal(Buffer.concat(got.stderr!).toString(), 'err\nengine says');
  }
});
