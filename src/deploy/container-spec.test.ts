import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAppSpec } from '../core/spec/index.ts';
import type { InstanceRecord, ReleaseRecord } from '../core/store.ts';
import { containerSpecFor, networkingFor } from './container-spec.ts';

const spec = (yaml: string, name: string) => parseAppSpec(yaml, { file: 'c.yaml', env: {}, baseDir: '/srv/shop', readFile: () => undefined }).spec.services[name]!;
const rel = (s: ReturnType<typeof spec>): ReleaseRecord => ({
  id: 'r1', app: 'shop', env: 'pre', service: s.name, seq: 1, spec: s, specHash: 'h', image: s.image, imageId: 'sha256:x', status: 'progressing',
  message: '', createdAt: 0, createdBy: 'test',
} as ReleaseRecord);
const inst: InstanceRecord = { id: 'i1', app: 'shop', env: 'pre', service: 'web', releaseId: 'r1', host: 'h', address: '127.0.0.1', port: 20001, state: 'pending', health: 'starting', createdAt: 0 };

test('app network: networks per app/env/Compose network with the service name first, the routed port on the instance\'s loopback port, fixed ports as written', () => {
  const s = spec([
    'services:',
    '  web:',
    '    image: n',
    '    ports: ["8000", "127.0.0.1:9090:9090", "5353/udp", "9229"]',
    '    networks: {front: {aliases: [www]}, back: {}}',
    'networks: {front: {}, back: {}}',
  ].join('\n'), 'web');
  assert.deepEqual(networkingFor(rel(s), inst, 'c1'), {
    networks: [{ name: 'berth_c1_shop_pre_front', aliases: ['web', 'www'] }, { name: 'berth_c1_shop_pre_back', aliases: ['web'] }],
    publish: [
      { target: 8000, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 20001 },
      { target: 9090, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 9090 },
      { target: 5353, protocol: 'udp', hostIp: '127.0.0.1', hostPort: 0 },
      { target: 9229, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 0 },
    ],
  });
  const c = containerSpecFor(rel(s), inst, { scope: 'c1', resolvConf: '/d/resolv.conf' });
  assert.equal(c.env.PORT, '8000', 'PORT is the native port');
  assert.ok(!c.mounts.some((m) => m.target === '/etc/resolv.conf'), 'Docker\'s DNS answers service names: no resolv.conf over it');
  assert.equal(c.dns, undefined, 'no DNS servers unless Berth\'s DNS listens on the gateway');
  const d = containerSpecFor(rel(s), inst, { scope: 'c1', resolvConf: '/d/resolv.conf', dns: { servers: ['10.210.3.1'], search: ['pre.berth', 'berth'] } });
  assert.deepEqual(d.dns, { servers: ['10.210.3.1'], search: ['pre.berth', 'berth'] }, 'behind Docker\'s DNS: berth names forwarded to the gateway');
});

test('host mode: no networking in the container spec, PORT is the allocated port, resolv.conf mounted', () => {
  const s = spec('services:\n  web:\n    image: n\n    x-berth: {port: 3000}\n', 'web');
  assert.equal(networkingFor(rel(s), inst, 'c1'), undefined);
  const c = containerSpecFor(rel(s), inst, { scope: 'c1', resolvConf: '/d/resolv.conf' });
  assert.equal(c.network, undefined);
  assert.equal(c.env.PORT, '20001');
  assert.ok(c.mounts.some((m) => m.target === '/etc/resolv.conf'));
  const d = containerSpecFor(rel(s), inst, { scope: 'c1', resolvConf: '/d/resolv.conf', dns: { servers: ['10.210.3.1'], search: ['pre.berth'] } });
  assert.equal(d.dns, undefined, 'host mode: its resolv.conf names Berth\'s DNS already');
});

test('app network without a routed port: no PORT, nothing published, still on the default network', () => {
  const s = spec('services:\n  db:\n    image: postgres\n', 'db');
  const c = containerSpecFor(rel(s), { ...inst, service: 'db' }, { scope: 'c1' });
  assert.deepEqual(c.network, { networks: [{ name: 'berth_c1_shop_pre_default', aliases: ['db'] }], publish: [] });
  assert.equal(c.env.PORT, undefined);
});
