import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyCheckPolicy, checkImage, formatImageSize, fromImages, type ImageFacts } from './image-checks.ts';

const base: ImageFacts = {
  dockerfile: 'FROM berth/node:20\nCOPY server.js /app/\nUSER nobody\nCMD ["node","/app/server.js"]\n',
  env: ['PATH=/usr/bin'], user: 'nobody', hasHealthcheck: false, serviceHasHealth: true, sizeBytes: 100 * 1024 * 1024, maxDepth: 3,
};
const level = (f: ImageFacts, id: string) => checkImage(f).find((r) => r.id === id)!.level;

test('a good image passes everything', () => {
  assert.deepEqual(checkImage(base).map((r) => r.level), ['pass', 'pass', 'pass', 'pass', 'pass', 'pass']);
});

test('chain depth: a Berth-built parent of depth 3 makes 4 levels, over the limit', () => {
  assert.equal(level({ ...base, parentDepth: 2 }, 'base-chain'), 'pass');
  assert.equal(level({ ...base, parentDepth: 3 }, 'base-chain'), 'fail');
});

test('secrets in ENV/ARG names or key-like values fail; harmless ones pass', () => {
  assert.equal(level({ ...base, dockerfile: base.dockerfile + 'ENV DB_PASSWORD=hunter2\n' }, 'no-secrets'), 'fail');
  assert.equal(level({ ...base, dockerfile: base.dockerfile + 'ARG AWS=AKIAABCDEFGHIJKLMNOP\n' }, 'no-secrets'), 'fail');
  assert.equal(level({ ...base, dockerfile: base.dockerfile + 'ARG API_TOKEN\nENV NODE_ENV=production\n' }, 'no-secrets'), 'pass');
  assert.equal(level({ ...base, env: ['X=ghp_abcdefghijklmnopqrstuvwxyz0123456789'] }, 'no-secrets'), 'fail');
});

test('FROM must be pinned; stage names and scratch are not images', () => {
  assert.deepEqual(fromImages('FROM node:20 AS build\nFROM build\nFROM scratch\nFROM --platform=x alpine'), ['node:20', 'alpine']);
  assert.equal(level({ ...base, dockerfile: 'FROM alpine\n' }, 'pinned-from'), 'fail');
  assert.equal(level({ ...base, dockerfile: 'FROM alpine:latest\n' }, 'pinned-from'), 'fail');
  assert.equal(level({ ...base, dockerfile: 'FROM localhost:5000/base@sha256:abc\n' }, 'pinned-from'), 'pass');
});

test('health check and non-root are recommendations (warn); size is reported against the previous build', () => {
  assert.equal(level({ ...base, serviceHasHealth: false }, 'healthcheck'), 'warn');
  assert.equal(level({ ...base, user: '' }, 'non-root'), 'warn');
  assert.equal(level({ ...base, user: '0:0' }, 'non-root'), 'warn');
  assert.match(checkImage({ ...base, previousSizeBytes: 90 * 1024 * 1024 }).find((r) => r.id === 'size')!.message, /100 MB \(previous build 90 MB, \+10 MB\)/);
});

test('the app\'s policy: strict turns a warning into a failure, warn_only a failure into a visible warning', () => {
  const report = [
    { id: 'non-root' as const, level: 'warn' as const, message: 'runs as root' },
    { id: 'pinned-from' as const, level: 'fail' as const, message: 'FROM x:latest is not pinned' },
    { id: 'size' as const, level: 'pass' as const, message: 'image size 1 MB' },
  ];
  assert.deepEqual(applyCheckPolicy(report, { strict: ['non-root', 'size'], warnOnly: ['pinned-from'] }).map((r) => [r.id, r.level]),
    [['non-root', 'fail'], ['pinned-from', 'warn'], ['size', 'pass']]);
  assert.match(applyCheckPolicy(report, { strict: [], warnOnly: ['pinned-from'] })[1]!.message, /only a warning: warn_only in x-berth\.pipeline\.checks/);
  assert.deepEqual(applyCheckPolicy(report, { strict: [], warnOnly: [] }), report);
});

test('formatImageSize: the one format of image sizes (checks report and berth images)', () => {
  assert.equal(formatImageSize(4449), '4.3 kB');
  assert.equal(formatImageSize(106539423), '101.6 MB');
  assert.equal(formatImageSize(100 * 1024 * 1024), '100 MB');
  assert.equal(formatImageSize(3 * 1024 ** 3 + 1024 ** 3 / 3), '3.33 GB');
});
