import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitShellWords } from './shell-words.ts';

test('splitShellWords splits like a POSIX shell without expansion', () => {
  const cases: Array<[string, string[]]> = [
    ['node server.js', ['node', 'server.js']],
    ['  npm   run  start ', ['npm', 'run', 'start']],
    [`sh -c 'echo "hi there" && exit 1'`, ['sh', '-c', 'echo "hi there" && exit 1']],
    ['echo "a \\"quoted\\" word" \'$HOME\'', ['echo', 'a "quoted" word', '$HOME']],
    ['a\\ b c', ['a b', 'c']],
    ['--flag="x y"z', ['--flag=x yz']],
    ['empty "" arg', ['empty', '', 'arg']],
    ['', []],
  ];
  for (const [input, argv] of cases) assert.deepEqual(splitShellWords(input), { ok: true, argv }, input);
});

test('splitShellWords reports an unterminated quote', () => {
  const r = splitShellWords(`sh -c 'echo hi`);
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.message : '', /unterminated single quote .*write the command as a list/);
  assert.match(JSON.stringify(splitShellWords('echo "x')), /unterminated double quote/);
});
