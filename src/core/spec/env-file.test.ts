import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEnvFile } from './env-file.ts';

test('parseEnvFile reads KEY=VALUE lines with comments, export, quotes', () => {
  const text = [
    '# database',
    'DB_HOST=db',
    'export DB_PORT=5432',
    '',
    'GREETING="hello\\nworld"  # trailing comment',
    "LITERAL='no $expansion \\n here'",
    'URL=http://x/#anchor',
    'TRAILING=value # comment',
    'EMPTY=',
    'SPACED = padded ',
    'MULTI="line one',
    'line two"',
    'FROM_ENV',
  ].join('\n');
  const r = parseEnvFile(text);
  assert.deepEqual(r.vars, {
    DB_HOST: 'db',
    DB_PORT: '5432',
    GREETING: 'hello\nworld',
    LITERAL: 'no $expansion \\n here',
    URL: 'http://x/#anchor',
    TRAILING: 'value',
    EMPTY: '',
    SPACED: 'padded',
    MULTI: 'line one\nline two',
  });
  assert.deepEqual(r.bareKeys, ['FROM_ENV']);
  assert.deepEqual(r.problems, []);
});

test('parseEnvFile reports bad lines with their line numbers', () => {
  const r = parseEnvFile('OK=1\nthis is not valid\nQ="open\n');
  assert.deepEqual(r.vars, { OK: '1' });
  assert.equal(r.problems.length, 2);
  assert.deepEqual({ line: r.problems[0]!.line, col: r.problems[0]!.col }, { line: 2, col: 1 });
  assert.match(r.problems[0]!.message, /expected KEY=VALUE/);
  assert.equal(r.problems[1]!.line, 3);
  assert.match(r.problems[1]!.message, /unterminated " quote in the value of Q/);
});
