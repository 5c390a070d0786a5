import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAppSpec } from './index.ts';
import { InvalidSpec } from '../errors.ts';

const parse = (text: string) => parseAppSpec(text, { file: 'compose.yaml', env: {}, baseDir: '/x', appName: 'a', readFile: () => undefined });

test('pull_policy: Compose\'s values (if_not_present is missing); anything else refused at its line', () => {
  for (const [written, kept] of [['always', 'always'], ['never', 'never'], ['missing', 'missing'], ['if_not_present', 'missing'], ['daily', 'daily'], ['every_1h30m', 'every_1h30m'], ['refresh', 'refresh']]) {
    assert.equal(parse(`services:\n  db:\n    image: postgres:16\n    pull_policy: ${written}\n`).spec.services.db!.pullPolicy, kept, written);
  }
  assert.equal(parse('services:\n  db:\n    image: postgres:16\n').spec.services.db!.pullPolicy, undefined);
  assert.throws(() => parse('services:\n  db:\n    image: postgres:16\n    pull_policy: sometimes\n'),
    (e: Error) => e instanceof InvalidSpec && /compose\.yaml:4:18: services\.db\.pull_policy: "sometimes" is (invalid|not a pull policy)/.test(e.message));
});

test('pull_policy every_<duration>: weeks and days allowed (the one duration parser reads it), another unit refused at its line', () => {
  assert.equal(parse('services:\n  db:\n    image: postgres:16\n    pull_policy: every_1w2d\n').spec.services.db!.pullPolicy, 'every_1w2d');
  assert.throws(() => parse('services:\n  db:\n    image: postgres:16\n    pull_policy: every_3x\n'),
    (e: Error) => e instanceof InvalidSpec && /compose\.yaml:4:18: services\.db\.pull_policy: "every_3x" is (invalid|not a pull policy)/.test(e.message));
});
