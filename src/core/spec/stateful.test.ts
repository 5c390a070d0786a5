import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAppSpec, type ParseResult } from './index.ts';

const parse = (text: string): ParseResult => parseAppSpec(text, { file: 'compose.yaml', env: {}, baseDir: '/srv/shop', readFile: () => undefined });
const db = (extra = '', volume = 'pgdata:/var/lib/data') => `
services:
  db:
    image: x
    volumes: ["${volume}"]
${extra}
volumes:
  pgdata: {}
`;

test('a service writing to a named volume releases stop-first by default, and says so', () => {
  const r = parse(db());
  assert.equal(r.spec.services.db!.update!.strategy, 'recreate');
  assert.match(r.warnings.find((w) => w.path === 'services.db.volumes')!.message, /stateful: releases stop the old container before starting the new one/);
  // Other update settings are kept.
  const d = parse(db('    x-berth: {update: {deadline: 30s}}'));
  assert.deepEqual([d.spec.services.db!.update!.strategy, d.spec.services.db!.update!.deadlineMs], ['recreate', 30_000]);
});

test('an explicit strategy wins; rolling over a shared data volume is warned', () => {
  const r = parse(db('    x-berth: {update: {strategy: rolling}}'));
  assert.equal(r.spec.services.db!.update!.strategy, 'rolling');
  assert.match(r.warnings.find((w) => w.path === 'services.db.x-berth.update.strategy')!.message,
    /the rolling strategy runs the old and the new container at once, both writing to volume "pgdata"/);
  const bg = parse(db('    x-berth: {update: {strategy: blue-green}}'));
  assert.equal(bg.spec.services.db!.update!.strategy, 'blue-green');
  const rc = parse(db('    x-berth: {update: {strategy: recreate}}'));
  assert.deepEqual(rc.warnings, []);
});

test('read-only volumes and binds do not make a service stateful; several replicas share the volume (warned, rolling)', () => {
  assert.equal(parse(db('', 'pgdata:/var/lib/data:ro')).spec.services.db!.update!.strategy, 'rolling');
  assert.equal(parse(db('', './data:/var/lib/data')).spec.services.db!.update!.strategy, 'rolling');
  const r = parse(db('    deploy: {replicas: 2}'));
  assert.equal(r.spec.services.db!.update!.strategy, 'rolling');
  assert.match(r.warnings.find((w) => w.path === 'services.db.volumes')!.message, /the 2 replicas all write to volume "pgdata" at once/);
});
