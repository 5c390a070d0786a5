/**
 * In-process contract tests of the host routes (src/api/host-routes.ts) over the fake engine's
 * simulated Swarm (h1 manager, h2, h3): 401, 403 for non-owners' changes (anyone may list), 400 naming
 * the field, 404 for an unknown host, 409 for refused changes, the happy paths.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { checkIssued } from '../tls/cluster-ca.ts';
import { expectError, NOW, withTestApi, type TestApi } from '../../test/helpers/api-inject.ts';

function viewer(t: TestApi) {
  t.auth.addUser({ id: 'u-vic', name: 'vic', passwordHash: '', createdAt: 0, createdBy: 'admin' });
  t.auth.addGrant({ id: 'g-vic', subject: 'user:u-vic', role: 'viewer', team: 'web', app: '*', env: '*', createdAt: 0, createdBy: 'admin' });
  const s = 'berths_vic-session';
  t.auth.addSession({ id: createHash('sha256').update(s).digest('hex'), userId: 'u-vic', kind: 'cli', csrfHash: '', createdAt: 0, expiresAt: NOW + 1, ip: '' });
  return (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object) =>
    t.api.inject({ method, url, headers: { authorization: `Bearer ${s}` }, ...(payload ? { payload } : {}) });
}

test('hosts: list for anyone signed in; labels, drain, removal for owners only; 400/404/409 change nothing', () => withTestApi(async (t) => {
  await expectError(t.anon('GET', '/v1/hosts'), 401);
  await expectError(t.anon('PUT', '/v1/hosts/h2/labels', { set: { zone: 'a' } }), 401);
  await expectError(t.anon('POST', '/v1/hosts/h2/drain', {}), 401);
  await expectError(t.anon('DELETE', '/v1/hosts/h2'), 401);
  const vic = viewer(t);
  const listed = await vic('GET', '/v1/hosts');
  assert.equal(listed.statusCode, 200, listed.body);
  assert.equal(listed.json().mode, 'swarm');
  assert.deepEqual(listed.json().hosts.map((h: { name: string; state: string; pool: string }) => [h.name, h.state, h.pool]), [['h1', 'ready', 'default'], ['h2', 'ready', 'default'], ['h3', 'ready', 'default']]);
  await expectError(vic('PUT', '/v1/hosts/h2/labels', { set: { 'io.berth.pool': 'a' } }), 403);
  await expectError(vic('POST', '/v1/hosts/h2/drain', {}), 403);
  await expectError(vic('DELETE', '/v1/hosts/h2'), 403);
  await expectError(vic('GET', '/v1/cluster/join'), 403);
  await expectError(vic('POST', '/v1/cluster/init', { advertiseAddr: '10.0.0.5' }), 403);

  await expectError(t.req('PUT', '/v1/hosts/h2/labels', { set: { 'io.berth.pool': 'Team A' } }), 400, /^set\.io\.berth\.pool: a pool name/);
  await expectError(t.req('PUT', '/v1/hosts/h2/labels', { set: { 'bad key': 'x' } }), 400, /label key/);
  await expectError(t.req('PUT', '/v1/hosts/h2/labels', {}), 400, /nothing to change/);
  await expectError(t.req('PUT', '/v1/hosts/h2/labels', { set: { zone: 'a' }, remove: ['zone'] }), 400, /zone is both set and removed/);
  await expectError(t.req('PUT', '/v1/hosts/h2/labels', { set: { zone: 'a' }, extra: 1 }), 400, /extra/);
  await expectError(t.req('PUT', '/v1/hosts/h9/labels', { set: { zone: 'a' } }), 404, /no host h9: berth hosts lists them/);
  await expectError(t.req('POST', '/v1/hosts/h2/drain', { drain: 'yes' }), 400, /^drain: /);
  await expectError(t.req('POST', '/v1/hosts/h9/drain', {}), 404);
  await expectError(t.req('DELETE', '/v1/hosts/h2?force=maybe'), 400, /^force: /);
  await expectError(t.req('DELETE', '/v1/hosts/h2'), 409, /drain it first/);
  assert.deepEqual(t.engine.calls, [], 'no refused request reached the engine');

  const labelled = await t.req('PUT', '/v1/hosts/h2/labels', { set: { 'io.berth.pool': 'a', zone: 'z1' } });
  assert.equal(labelled.statusCode, 200, labelled.body);
  assert.equal(labelled.json().host.pool, 'a');
  assert.deepEqual((await t.req('PUT', '/v1/hosts/h2/labels', { remove: ['zone'] })).json().host.labels, { 'io.berth.pool': 'a' });
  assert.equal((await t.req('POST', '/v1/hosts/h2/drain', {})).json().host.state, 'draining');
  assert.equal((await t.req('POST', '/v1/hosts/h2/drain', { drain: false })).json().host.state, 'ready');
  await t.req('POST', '/v1/hosts/h3/drain', {});
  assert.equal((await t.req('DELETE', '/v1/hosts/h3')).statusCode, 204);
  assert.deepEqual((await t.req('GET', '/v1/hosts')).json().hosts.map((h: { name: string; pool: string }) => [h.pool, h.name]), [['a', 'h2'], ['default', 'h1']]);
  await expectError(t.req('DELETE', '/v1/hosts/h1?force=true'), 409, /only manager/);
  const audited = t.audit.list({}).map((e) => `${e.action} ${e.status}`);
  assert.ok(audited.includes('PUT /v1/hosts/:host/labels 200'), audited.join('\n'));
}));

test('cluster: join steps carry the token and the pool; init from one-host mode; 400 for a bad address; 409 when in a Swarm', () => withTestApi(async (t) => {
  await expectError(t.anon('GET', '/v1/cluster/join'), 401);
  await expectError(t.req('GET', '/v1/cluster/join?pool=Bad_Pool'), 400, /^pool: /);
  const join = (await t.req('GET', '/v1/cluster/join?pool=a')).json();
  assert.equal(join.command, 'docker swarm join --token SWMTKN-1-fake 10.99.0.2:2377');
  assert.ok(join.steps.some((s: string) => s.includes('berth host label HOSTNAME io.berth.pool=a')));
  await expectError(t.req('POST', '/v1/cluster/init', { advertiseAddr: '127.0.0.1' }), 400, /^advertiseAddr: not a loopback/);
  await expectError(t.req('POST', '/v1/cluster/init', { advertiseAddr: '10.0.0.300' }), 400, /^advertiseAddr: an IPv4 address/);
  await expectError(t.req('POST', '/v1/cluster/init', { advertiseAddr: '10.0.0.5' }), 409, /in a Swarm already/);

}));

test('cluster init: a server on a plain engine is one host until init makes it a Swarm manager', () => withTestApi(async (t) => {
  const before = (await t.req('GET', '/v1/hosts')).json();
  assert.equal(before.mode, 'single');
  assert.deepEqual(before.hosts.map((h: { name: string; address: string; state: string }) => [h.name, h.address, h.state]), [['solo', '127.0.0.1', 'ready']]);
  await expectError(t.req('GET', '/v1/cluster/join'), 409, /berth cluster init/);
  await expectError(t.req('POST', '/v1/hosts/solo/drain', {}), 409, /one-host mode: run berth cluster init first/);
  const init = await t.req('POST', '/v1/cluster/init', { advertiseAddr: '10.0.0.5' });
  assert.equal(init.statusCode, 200, init.body);
  assert.equal(init.json().mode, 'swarm');
  assert.equal(init.json().hosts[0].address, '10.0.0.5');
  assert.match((await t.req('GET', '/v1/cluster/join')).json().command, /^docker swarm join --token \S+ 10\.0\.0\.5:2377$/);
}, { singleHost: true }));

test('host add --address: one command installs the engine\'s TLS material (a server certificate of the cluster CA naming the address) and joins with that address; bad addresses are 400', () => withTestApi(async (t) => {
  await expectError(t.req('GET', '/v1/cluster/join?address=127.0.0.1'), 400, /^address: not a loopback/);
  await expectError(t.req('GET', '/v1/cluster/join?address=10.0.0.6;reboot'), 400, /^address: the new host's IPv4 address/);
  const r = (await t.req('GET', '/v1/cluster/join?address=10.0.0.6&pool=a')).json();
  const cmd: string = r.command;
  assert.match(cmd, / && docker swarm join --token SWMTKN-1-fake --advertise-addr 10\.0\.0\.6 10\.99\.0\.2:2377$/);
  assert.ok(r.steps.some((s: string) => s.includes('10.0.0.6:2376/tcp')), r.steps.join('\n'));
  // The shell command parses, and the inner script too.
  const inner = /^sh -euc '([^']*)'/.exec(cmd)?.[1];
  assert.ok(inner, cmd.slice(0, 200));
  execFileSync('sh', ['-n', '-c', cmd]);
  execFileSync('sh', ['-n', '-c', inner]);
  const blobs = [...inner.matchAll(/echo (\S+) \| base64 -d > \/etc\/docker\/berth-tls\/(\w+)\.pem/g)].map((m) => [m[2], Buffer.from(m[1]!, 'base64').toString()] as const);
  const files = Object.fromEntries(blobs);
  assert.deepEqual(Object.keys(files).sort(), ['ca', 'cert', 'key']);
  assert.deepEqual(checkIssued(files.ca!, files.cert!, { usage: 'server', address: '10.0.0.6' }), []);
  assert.match(files.key!, /BEGIN PRIVATE KEY/);
  assert.match(inner, /ExecStart=\/usr\/sbin\/dockerd -H fd:\/\/ .*--tlsverify --tlscacert \/etc\/docker\/berth-tls\/ca\.pem .* -H tcp:\/\/10\.0\.0\.6:2376\\n/);
  // Without --address: the plain join, and a step saying what is missing.
  const plain = (await t.req('GET', '/v1/cluster/join')).json();
  assert.equal(plain.command, 'docker swarm join --token SWMTKN-1-fake 10.99.0.2:2377');
  assert.ok(plain.steps.some((s: string) => /berth host add --address ADDR/.test(s)));
}));
