#!/usr/bin/env node
// tap-failures.mjs FILE... — the failures of node --test TAP outputs, short: each failing test's
// name, location, error and the first lines of its details (stack, server log), skipping the
// "cancelled by parent" and "N subtests failed" entries that only echo a failure listed already.
// Printed last by scripts/test.sh when a stage fails, so the reason is in the tail of a CI log.
import { readFileSync } from 'node:fs';

const MAX_LINES = 150;
const PER_TEST = 30;
const out = [];
for (const file of process.argv.slice(2)) {
  let lines;
  try { lines = readFileSync(file, 'utf8').split('\n'); } catch { continue; }
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)not ok \d+ - (.*)$/.exec(lines[i]);
    if (!m) continue;
    const block = [];
    let j = i + 1;
    if (/^\s*---\s*$/.test(lines[j] ?? '')) {
      for (j++; j < lines.length && !/^\s*\.\.\.\s*$/.test(lines[j]); j++) block.push(lines[j].trim());
    }
    const kind = block.find((l) => l.startsWith('failureType:')) ?? '';
    if (/cancelledByParent|subtestsFailed/.test(kind)) continue;
    out.push(`✖ ${m[2]}`, ...block.filter((l) => !/^duration_ms:|^code:|^failureType:|^type: 'suite'|\(node:|^node:/.test(l)).slice(0, PER_TEST).map((l) => `    ${l}`));
  }
}
if (out.length > 0) {
  process.stderr.write(`\n==================== failures ====================\n${out.slice(0, MAX_LINES).join('\n')}\n`);
  if (out.length > MAX_LINES) process.stderr.write(`… ${out.length - MAX_LINES} more lines in the log above\n`);
}
