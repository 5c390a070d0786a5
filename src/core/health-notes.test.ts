import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crashOutput, crashSummary, nextCheck } from './health-notes.ts';
import { waitingOn } from './views.ts';

test('nextCheck: a result is kept only when its text or outcome changes, with the time it was first seen', () => {
  const first = nextCheck(undefined, { ok: false, text: 'GET /healthz → 404' }, 1000);
  assert.deepEqual(first, { ok: false, text: 'GET /healthz → 404', since: 1000 });
  assert.equal(nextCheck(first, { ok: false, text: 'GET /healthz → 404' }, 2000), undefined);
  assert.deepEqual(nextCheck(first, { ok: true, text: 'GET /healthz → 200' }, 3000), { ok: true, text: 'GET /healthz → 200', since: 3000 });
});

test('crash output keeps the last non-empty lines, cut short; the summary quotes the last on stderr, else the last', () => {
  const line = (text: string, stream: 'stdout' | 'stderr' = 'stdout') => ({ stream, text });
  const { output, lastError } = crashOutput([line('a'), line(''), line('b', 'stderr'), line('c'), line('  '), line('d'), line('e'), line('f'), line('x'.repeat(400))]);
  assert.deepEqual(output.slice(0, 4), ['c', 'd', 'e', 'f']);
  assert.equal(output[4], `${'x'.repeat(300)}…`);
  assert.equal(lastError, 'b', 'the last line on stderr, even when stdout came after it');
  assert.deepEqual(crashOutput([line('only stdout')]), { output: ['only stdout'] });
  const c = { at: 0, instance: 'i1', releaseId: 'r1', exitCode: 137, oomKilled: true, ranMs: 4200, output: ['Killed'] };
  assert.equal(crashSummary(c), 'exited with code 137 (out of memory) after 4s: "Killed"');
  assert.equal(crashSummary({ ...c, oomKilled: false, output: [] }), 'exited with code 137 after 4s, printing nothing');
  assert.equal(crashSummary({ ...c, output: ['starting', 'Error: boom'], lastError: 'Error: boom' }), 'exited with code 137 (out of memory) after 4s: "Error: boom"');
});

test('waitingOn: healthy count, the newest failing check of a starting instance, the last crash', () => {
  const inst = (id: string, health: string, check?: { ok: boolean; text: string; since: number }, release = 2) => ({
    id, release, state: 'running', health, host: 'h', address: '127.0.0.1', port: 20000 + Number(id.slice(1)), ...(check ? { check } : {}),
  });
  const now = 60_000;
  assert.equal(waitingOn({ healthy: 0, desired: 2, releaseSeq: 2, instances: [inst('i1', 'starting'), inst('i2', 'starting')] }, now),
    '0/2 healthy; 2 starting');
  assert.equal(waitingOn({ healthy: 1, desired: 3, releaseSeq: 2, instances: [
    inst('i1', 'healthy', { ok: true, text: 'GET /healthz → 200', since: 1000 }),
    inst('i2', 'starting', { ok: false, text: 'GET /healthz → 503', since: 40_000 }),
    inst('i3', 'starting', { ok: false, text: 'GET /healthz → 404', since: 50_000 }),
    inst('i4', 'unhealthy', { ok: false, text: 'GET /healthz → 500', since: 55_000 }, 1),
  ] }, now), '1/3 healthy; last check GET /healthz → 404 (i3 on 127.0.0.1:20003, for 10s)');
  assert.equal(waitingOn({ healthy: 0, desired: 1, releaseSeq: 2, instances: [],
    lastCrash: { at: 57_000, instance: 'i9', releaseId: 'r2', exitCode: 1, ranMs: 200, output: ['boom'] } }, now),
  '0/1 healthy; last crash 3s ago: exited with code 1 after 0s: "boom"');
});
