import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidSpec, type SpecIssue } from '../errors.ts';
import { parseAppSpec } from './parse.ts';
import type { ParseOptions } from './types.ts';
import { placementOfService as placementFor } from '../pool-admission.ts';

const OPTS: ParseOptions = { file: 'compose.yaml', baseDir: '/app', env: {}, readFile: () => { throw new Error('no files'); } };

function issues(text: string): SpecIssue[] {
  try {
    parseAppSpec(text, OPTS);
  } catch (e) {
    assert.ok(e instanceof InvalidSpec, String(e));
    return e.issues;
  }
  assert.fail('expected InvalidSpec');
}

test('x-berth.pool (service, then the file\'s top-level default), deploy.placement and reservations', () => {
  const { spec } = parseAppSpec(`x-berth: {pool: team-a}
services:
  web:
    image: x
    deploy:
      placement:
        constraints: ["node.labels.zone == z1", node.role!=manager]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 2
      resources:
        limits: {cpus: "1", memory: 512M}
        reservations: {cpus: "0.25", memory: 128M}
  db:
    image: y
    x-berth: {pool: data}
    deploy:
      resources:
        limits: {cpus: "0.5", memory: 1G}
  job:
    image: z
`, OPTS);
  const web = spec.services.web!;
  assert.equal(web.pool, 'team-a');
  assert.deepEqual(web.placement, { constraints: ['node.labels.zone==z1', 'node.role!=manager'], spread: ['node.labels.zone'], maxReplicasPerNode: 2 });
  assert.deepEqual(web.reservations, { nanoCpus: 0.25e9, memoryBytes: 128 * 1024 ** 2 });
  assert.deepEqual(placementFor(web), { pool: 'team-a', constraints: ['node.labels.zone==z1', 'node.role!=manager'], spread: ['node.labels.zone'], maxReplicasPerNode: 2,
    reservation: { nanoCpus: 0.25e9, memoryBytes: 128 * 1024 ** 2 } });
  // Its own pool wins; limits are the reservation when it has none.
  assert.equal(spec.services.db!.pool, 'data');
  assert.deepEqual(placementFor(spec.services.db!).reservation, { nanoCpus: 0.5e9, memoryBytes: 1024 ** 3 });
  // Nothing said: no fields (release hashes of files without them do not change); the default pool, nothing reserved.
  const plain = parseAppSpec('services: {job: {image: z}}\n', OPTS).spec.services.job!;
  assert.equal('pool' in plain || 'placement' in plain || 'reservations' in plain, false);
  assert.deepEqual(placementFor(plain), { pool: 'default', constraints: [], spread: [], reservation: { nanoCpus: 0, memoryBytes: 0 } });
});

test('bad pools, constraints, preferences and reservations name file, line and column', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['x-berth: {pool: "team a"}', '4:21', /"team a" is not a pool name: write letters, digits/],
    ['deploy: {placement: {constraints: [zone=a]}}', '4:40', /placement constraint "zone=a" is not understood: write node\.labels\.NAME==VALUE/],
    ['deploy: {placement: {constraints: ["node.labels.zone=="]}}', '4:40', /is not understood/],
    ['deploy: {placement: {preferences: [{spread: node.hostname}]}}', '4:49', /"node.hostname" cannot be spread over: Swarm spreads over node labels/],
    ['deploy: {placement: {preferences: [{pack: node.labels.zone}]}}', '4:41', /unknown key `pack`/],
    ['deploy: {placement: {max_replicas_per_node: 0}}', '4:49', /must be at least 1/],
    ['deploy: {placement: {constrains: []}}', '4:26', /unknown key `constrains`: did you mean `constraints`\?/],
    ['deploy: {resources: {reservations: {memory: lots}}}', '4:49', /lots/],
    ['deploy: {resources: {limits: {memory: 64M}, reservations: {memory: 128M}}}', '4:72', /reserves more memory than its limit/],
  ];
  for (const [line, where, re] of cases) {
    const found = issues(`services:\n  web:\n    image: x\n    ${line}\n`);
    assert.equal(found.length, 1, `${line}: ${JSON.stringify(found)}`);
    assert.equal(`${found[0]!.line}:${found[0]!.col}`, where, `${line}: ${found[0]!.message}`);
    assert.match(found[0]!.message, re, line);
  }
  const top = issues('x-berth: {pool: [a]}\nservices: {web: {image: x}}\n');
  assert.equal(`${top[0]!.line}:${top[0]!.col} ${top[0]!.path}`, '1:17 x-berth.pool');
});
