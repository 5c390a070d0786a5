import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summaryLine } from './text.ts';

test('summaryLine: one short line from a multi-line message', () => {
  const buildError = 'build of web failed: building berth/a/web:0123 from . failed: failed to compute cache key: "/nope" not found\n--- last build output ---\n' +
    Array.from({ length: 15 }, (_, i) => `#${i} step ${i}`).join('\n');
  assert.equal(summaryLine(buildError), 'build of web failed: building berth/a/web:0123 from . failed: failed to compute cache key: "/nope" not found');
  // A first line that only introduces the next one takes it along.
  assert.equal(summaryLine('`git fetch` failed (exit code 128):\nfatal: repository not found\nmore'), '`git fetch` failed (exit code 128): fatal: repository not found');
  assert.equal(summaryLine('\n\n  deployed   to\tprod \n'), 'deployed to prod');
  const long = summaryLine('x'.repeat(500));
  assert.equal(long.length, 200);
  assert.ok(long.endsWith('…'));
  assert.equal(summaryLine('a'.repeat(50), 20), 'a'.repeat(19) + '…');
  assert.equal(summaryLine(''), '');
});
