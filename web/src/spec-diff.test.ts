import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flatten, specDiff } from './spec-diff.ts';

test('specDiff names each changed, added and removed field by its path', () => {
  const a = { image: 'x:1', spec: { replicas: 1, environment: { A: '1', GONE: 'y' }, routes: [{ path: '/' }], ports: [80, 443] } };
  const b = { image: 'x:2', spec: { replicas: 1, environment: { A: '2', NEW: 'z' }, routes: [{ path: '/', host: 'h' }], ports: [80, 443] } };
  assert.deepEqual(specDiff(a, b), [
    { key: 'image', before: '"x:1"', after: '"x:2"' },
    { key: 'spec.environment.A', before: '"1"', after: '"2"' },
    { key: 'spec.environment.GONE', before: '"y"' },
    { key: 'spec.environment.NEW', after: '"z"' },
    { key: 'spec.routes[0].host', after: '"h"' },
  ]);
  assert.deepEqual(specDiff(a, structuredClone(a)), []);
});

test('flatten keeps arrays of scalars whole and walks arrays of objects', () => {
  assert.deepEqual([...flatten({ cmd: ['a', 'b'], v: [{ s: 1 }], n: null })], [['cmd', '["a","b"]'], ['v[0].s', '1'], ['n', 'null']]);
});
