import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { setProcessNice } from './priority.ts';

/** Each thread's nice value, from /proc (field 19 of stat, after the command name in parentheses). */
function threadNices(): number[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

test('setProcessNice sets every thread of the process, not only the calling one; 0 changes nothing', () => {
  const start = threadNices();
  assert.ok(start.length > 1, `node runs several threads: ${start.length}`);
  assert.deepEqual(setProcessNice(0), { before: start[0], after: start[0], threads: 0 });
  try {
    // Lower, which needs no privilege (the server raises its own, as root).
    const r = setProcessNice(3);
    assert.equal(r.after, 3);
    assert.equal(r.threads, start.length);
    assert.deepEqual([...new Set(threadNices())], [3], 'every thread');
  } finally {
    // Back where it was (as root; otherwise this file's process simply ends at 3).
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        setPriority(Number(tid), start[0]!);
      } catch {
        // not root
      }
    }
  }
});
