import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basenamePosix, dirnamePosix, isWithin, normalizePosix, resolvePosix } from './posix-path.ts';

test('normalizePosix and resolvePosix', () => {
  const cases: Array<[string, string, string]> = [
    ['/srv/app', './data', '/srv/app/data'],
    ['/srv/app', 'data/../logs', '/srv/app/logs'],
    ['/srv/app', '../other', '/srv/other'],
    ['/srv/app', '/abs//path/', '/abs/path'],
    ['/srv/app', '../../../..', '/'],
    ['/srv/app', '.', '/srv/app'],
  ];
  for (const [base, rel, want] of cases) assert.equal(resolvePosix(base, rel), want, `${base} + ${rel}`);
  assert.equal(normalizePosix('a/./b/../../..'), '..');
  assert.equal(normalizePosix(''), '.');
});

test('dirname, basename, isWithin', () => {
  assert.equal(dirnamePosix('deploy/compose.yaml'), 'deploy');
  assert.equal(dirnamePosix('compose.yaml'), '.');
  assert.equal(dirnamePosix('/compose.yaml'), '/');
  assert.equal(basenamePosix('/home/me/My App/'), 'My App');
  assert.equal(isWithin('/srv/apps', '/srv/apps'), true);
  assert.equal(isWithin('/srv/apps', '/srv/apps/x/y'), true);
  assert.equal(isWithin('/srv/apps', '/srv/appsx'), false);
  assert.equal(isWithin('/srv/apps/', '/srv/apps/x'), true);
  assert.equal(isWithin('/', '/anything'), true);
});
