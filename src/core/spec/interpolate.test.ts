import { test } from 'node:test';
import assert from 'node:assert/strict';
import { interpolate } from './interpolate.ts';

const env = { NAME: 'berth', EMPTY: '', PORT: '8080' };

test('interpolate follows docker compose semantics', () => {
  const cases: Array<[string, string, string[]]> = [
    // [input, output, unset variables]
    ['plain', 'plain', []],
    ['$NAME', 'berth', []],
    ['${NAME}-app', 'berth-app', []],
    ['$NAME.example.com', 'berth.example.com', []],
    ['${MISSING}', '', ['MISSING']],
    ['$MISSING/x', '/x', ['MISSING']],
    ['${MISSING:-dflt}', 'dflt', []],
    ['${EMPTY:-dflt}', 'dflt', []],
    ['${EMPTY-dflt}', '', []],
    ['${MISSING-dflt}', 'dflt', []],
    ['${NAME:+alt}', 'alt', []],
    ['${EMPTY:+alt}', '', []],
    ['${EMPTY+alt}', 'alt', []],
    ['${MISSING+alt}', '', []],
    ['${NAME:?required}', 'berth', []],
    ['${EMPTY?required}', '', []],
    ['$$NAME costs $$5', '$NAME costs $5', []],
    ['${MISSING:-${PORT}}', '8080', []],
    ['${MISSING:-${ALSO_MISSING:-x}-y}', 'x-y', []],
    // A default that is not used does not warn about the variables inside it.
    ['${NAME:-${ALSO_MISSING}}', 'berth', []],
    ['${MISSING:-${ALSO_MISSING}}', '', ['ALSO_MISSING']],
    ['${MISSING:-a:b/c}', 'a:b/c', []],
  ];
  for (const [input, value, unset] of cases) {
    assert.deepEqual(interpolate(input, env), { ok: true, value, unset }, `interpolate(${JSON.stringify(input)})`);
  }
});

test('interpolate reports malformed references and unset required variables', () => {
  const cases: Array<[string, string]> = [
    ['${FOO', 'unterminated variable reference "${FOO": close it with "}" or write "$$" for a literal "$"'],
    ['x ${FOO:-bar', 'unterminated variable reference "${FOO:-bar": close it with "}" or write "$$" for a literal "$"'],
    ['${MISSING:-${PORT}', 'unterminated variable reference "${MISSING:-${PORT}": close it with "}" or write "$$" for a literal "$"'],
    ['${VAR:?must be set}', 'required variable "VAR" is not set: must be set'],
    ['${EMPTY:?must not be empty}', 'required variable "EMPTY" is empty: must not be empty'],
    ['${VAR?}', 'required variable "VAR" is not set: set it in the environment or in the .env file'],
    ['${}', 'invalid variable reference "${}": a name starts with a letter or "_" and has only letters, digits and "_"'],
    ['${1X}', 'invalid variable reference "${1X}": a name starts with a letter or "_" and has only letters, digits and "_"'],
    ['${A B}', 'invalid variable reference "${A B}": a name has only letters, digits and "_"; use ${NAME:-default}, ${NAME:?error} or ${NAME:+alternative} for defaults'],
    ['echo $1', 'invalid "$1": "$" must start a variable reference like $NAME or ${NAME}; write "$$" for a literal "$"'],
    ['costs 5$', 'invalid "$": "$" must start a variable reference like $NAME or ${NAME}; write "$$" for a literal "$"'],
  ];
  for (const [input, message] of cases) {
    assert.deepEqual(interpolate(input, env), { ok: false, message }, `interpolate(${JSON.stringify(input)})`);
  }
});
