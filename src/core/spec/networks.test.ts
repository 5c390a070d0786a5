import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidSpec } from '../errors.ts';
import { parseAppSpec, type ParseResult } from './index.ts';
import { shortPort } from './networks.ts';

const parse = (text: string): ParseResult => parseAppSpec(text, { file: 'compose.yaml', env: {}, baseDir: '/srv/shop', readFile: () => undefined });
const problems = (text: string): string[] => {
  try {
    parse(text);
  } catch (e) {
    if (e instanceof InvalidSpec) return e.issues.map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`);
    throw e;
  }
  assert.fail('expected the file to be refused');
};

test('mode: x-berth.port alone is host mode (as before, nothing added to the spec); anything else runs on the app network', () => {
  const { spec } = parse([
    'services:',
    '  api: {image: a, x-berth: {port: 3000}}',
    '  db: {image: postgres}',
    '  worker: {image: w, network_mode: host}',
    '  web: {image: n, networks: [default], x-berth: {port: 80}}',
  ].join('\n'));
  assert.equal(spec.services.api!.networkMode, undefined, 'host mode: the spec (and its release hash) is unchanged');
  assert.equal(spec.services.api!.networks, undefined);
  assert.equal(spec.services.worker!.networkMode, undefined);
  assert.equal(spec.services.db!.networkMode, 'app');
  assert.deepEqual(spec.services.db!.networks, [{ name: 'default', aliases: [] }]);
  assert.equal(spec.services.db!.port, undefined, 'no ports: nothing routed or published');
  assert.equal(spec.services.db!.health.type, 'none');
  assert.equal(spec.services.web!.networkMode, 'app', '`networks` wins over x-berth.port: the port is then the container port');
  assert.equal(spec.services.web!.port, 80);
  assert.deepEqual(spec.services.web!.health, { ...spec.services.web!.health, type: 'tcp', published: true });
});

test('networks: declared names, aliases, several networks; the first tcp `ports` entry is the routed port', () => {
  const { spec, warnings } = parse([
    'services:',
    '  web:',
    '    image: n',
    '    ports: ["8000", "127.0.0.1:9229:9229/tcp", {target: 53, protocol: udp}]',
    '    expose: ["8001", 8002/udp]',
    '    networks:',
    '      front: {aliases: [www, site.local]}',
    '      back:',
    '    x-berth: {routes: [/]}',
    '  cache:',
    '    image: r',
    '    networks: {back: {aliases: [redis]}}',
    'networks:',
    '  front: {driver: bridge}',
    '  back: {internal: true}',
  ].join('\n'));
  const web = spec.services.web!;
  assert.equal(web.port, 8000);
  assert.deepEqual(web.networks, [{ name: 'front', aliases: ['www', 'site.local'] }, { name: 'back', aliases: [] }]);
  assert.deepEqual(web.publish, [
    { target: 8000, protocol: 'tcp' }, { target: 9229, published: 9229, hostIp: '127.0.0.1', protocol: 'tcp' }, { target: 53, protocol: 'udp' },
  ]);
  assert.deepEqual(web.expose, ['8001', '8002/udp']);
  assert.equal(web.update?.strategy, 'recreate', 'a fixed host port: stop-first releases');
  assert.deepEqual(spec.services.cache!.networks, [{ name: 'back', aliases: ['redis'] }]);
  const w = warnings.map((x) => `${x.line}:${x.col} ${x.path}`);
  assert.ok(w.includes('4:12 services.web.ports'), 'the fixed host port warns that releases stop first');
  assert.ok(w.includes('15:10 networks.back.internal'), 'an option Berth does not apply is a located warning');
});

test('port syntax: short forms, IPv6 host addresses, ranges, refusals', () => {
  assert.deepEqual(shortPort('80'), { target: 80, protocol: 'tcp' });
  assert.deepEqual(shortPort('8080:80/udp'), { target: 80, published: 8080, protocol: 'udp' });
  assert.deepEqual(shortPort('0.0.0.0:8080:80'), { target: 80, published: 8080, hostIp: '0.0.0.0', protocol: 'tcp' });
  assert.deepEqual(shortPort('[::1]:8080:80'), { target: 80, published: 8080, hostIp: '::1', protocol: 'tcp' });
  assert.deepEqual(shortPort('127.0.0.1::80'), { target: 80, hostIp: '127.0.0.1', protocol: 'tcp' });
  assert.deepEqual(shortPort('3000-3002'), { many: [3000, 3001, 3002].map((target) => ({ target, protocol: 'tcp' })) });
  assert.deepEqual(shortPort('127.0.0.1:9000-9001:3000-3001/udp'), {
    many: [{ target: 3000, published: 9000, hostIp: '127.0.0.1', protocol: 'udp' }, { target: 3001, published: 9001, hostIp: '127.0.0.1', protocol: 'udp' }],
  });
  assert.deepEqual(shortPort('8000-8010:80'), { range: true }, 'a host range for one container port: Docker would pick one; not published');
  assert.match((shortPort('9000-9002:3000-3001') as { error: string }).error, /the host range has 3 ports and the container range 2: give both the same length/);
  assert.match((shortPort('3005-3000') as { error: string }).error, /is not a port range: write "3000-3005"/);
  assert.match((shortPort('1-2000') as { error: string }).error, /publishes 2000 ports: at most 1000 per entry/);
  assert.match((shortPort('80/sctp') as { error: string }).error, /protocol "sctp" is not supported: use tcp or udp/);
  assert.match((shortPort('http') as { error: string }).error, /is not a port mapping: write "80"/);
  assert.match((shortPort('70000:80') as { error: string }).error, /is not a port mapping/);
});

test('refusals name the line and what would be right', () => {
  assert.deepEqual(problems('services:\n  web:\n    image: n\n    networks: [frnt]\nnetworks:\n  front: {}\n'),
    ['4:16 services.web.networks[0]: unknown network "frnt": did you mean "front"?']);
  assert.deepEqual(problems('services:\n  web:\n    image: n\n    network_mode: host\n    networks: [default]\n'),
    ['4:19 services.web.network_mode: `network_mode` and `networks` cannot be combined: keep `networks` for the app\'s networks, or `network_mode: host` alone']);
  assert.match(problems('services:\n  web:\n    image: n\n    network_mode: "service:db"\n')[0]!, /^4:19 services.web.network_mode: "service:db" is not supported: use host/);
  assert.match(problems('services:\n  web:\n    image: n\n    ports: ["8080:80"]\n    deploy: {replicas: 3}\n')[0]!,
    /^4:13 services.web.ports\[0\]: host port 8080 can be held by one container only, and the service has 3 replicas: drop the host port \(write "80"\)/);
  assert.match(problems('services:\n  web:\n    image: n\n    ports: ["8080:80"]\n    x-berth: {update: {strategy: rolling}}\n')[0]!,
    /services.web.x-berth.update.strategy: the rolling strategy runs two containers at once, but host port 8080 can be held by one only/);
  const { spec } = parse('services:\n  web:\n    image: n\n    ports: ["8080:80"]\n    x-berth: {update: {deadline: 1m}}\n');
  assert.deepEqual([spec.services.web!.update?.strategy, spec.services.web!.update?.deadlineMs], ['recreate', 60_000], 'x-berth.update without a strategy keeps its fields, stop-first');
  assert.match(problems('services:\n  web:\n    image: n\n    networks: {default: {aliases: ["bad name"]}}\n')[0]!, /alias "bad name" is not a DNS name/);
  assert.match(problems('services:\n  web: {image: n}\nnetworks:\n  ext: {external: true}\n')[0]!, /^4:9 networks.ext.external: external networks are not supported yet/);
  assert.match(problems('services:\n  web:\n    image: n\n    x-berth: {routes: [/]}\n')[0]!, /routes need a port: set `x-berth.port`.* or list it under `ports`/);
});
