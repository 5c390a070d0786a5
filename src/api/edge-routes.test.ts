/**
 * In-process tests of the edge routes (src/api/edge-routes.ts): an edge agent's long poll with its
 * host's token (401 without it, with another host's secret, with a user's token; the edge token is no
 * credential for any other route), answers at once when behind and waits for a change otherwise,
 * records the agent's report; edge hosts and tokens for owners only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EDGE_SECRET, TOKEN, actAs, expectError, withTestApi, type TestApi } from '../../test/helpers/api-inject.ts';
import { edgeToken } from '../core/edge.ts';

const route = (upstream: string, port: number) => ({ upstream, path: '/', backends: [{ address: '10.0.0.7', port, instance: `i${port}` }] });

function asEdge(t: TestApi, token: string, query = '', overTls = false) {
  return t.api.inject({ method: 'GET', url: `/v1/edge/config${query}`, headers: { authorization: `Bearer ${token}`, ...(overTls ? { 'x-test-over-tls': 'yes' } : {}) } });
}

test('edge config: only an edge host\'s own token reads it, and that token reads nothing else', () => withTestApi(async (t) => {
  t.edge.publish([route('shop.prod.web.0', 20001)]);
  const good = edgeToken('edge-1', EDGE_SECRET('edge-1'));
  await expectError(t.anon('GET', '/v1/edge/config?wait=0'), 401, /edge host's token is needed/);
  await expectError(asEdge(t, TOKEN, '?wait=0'), 401, /edge host's token/);
  await expectError(asEdge(t, edgeToken('edge-1', EDGE_SECRET('edge-2')), '?wait=0'), 401);
  await expectError(asEdge(t, good.slice(0, -1) + (good.endsWith('0') ? '1' : '0'), '?wait=0'), 401);
  await expectError(asEdge(t, 'berth-edge.edge-1', '?wait=0'), 401);
  assert.deepEqual(t.edge.hosts(), [], 'a refused poll is not a contact');
  for (const [method, url] of [['GET', '/v1/hosts'], ['GET', '/v1/edge/hosts'], ['GET', '/v1/apps'], ['GET', '/v1/registry'], ['POST', '/v1/edge/tokens'], ['GET', '/metrics']] as const) {
    const r = await t.api.inject({ method, url, headers: { authorization: `Bearer ${good}` }, ...(method === 'POST' ? { payload: { host: 'edge-9' } } : {}) });
    assert.equal(r.statusCode, 401, `${method} ${url} with an edge token: ${r.body}`);
  }
  const ok = await asEdge(t, good, '?wait=0');
  assert.equal(ok.statusCode, 200, ok.body);
  assert.deepEqual(ok.json(), { epoch: 'e0', generation: 1, routes: [route('shop.prod.web.0', 20001)] });
}));

test('edge config: a poll that is behind answers at once, one that is current waits for the next change; bad queries are 400', () => withTestApi(async (t) => {
  const token = edgeToken('edge-1', EDGE_SECRET('edge-1'));
  t.edge.publish([route('a.prod.web.0', 20001)]);
  await expectError(asEdge(t, token, '?wait=999'), 400, /^wait: /);
  await expectError(asEdge(t, token, '?generation=-1'), 400, /^generation: /);
  await expectError(asEdge(t, token, '?epoch=E%20X'), 400, /^epoch: the epoch/);
  await expectError(asEdge(t, token, '?other=1'), 400, /other/);
  // Another epoch (the control plane restarted) or an older generation: at once.
  assert.equal((await asEdge(t, token, '?epoch=ff&generation=1&wait=30')).json().generation, 1);
  // Current: held until the table changes.
  const held = asEdge(t, token, '?epoch=e0&generation=1&wait=30');
  let answered = false;
  void held.then(() => (answered = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(answered, false, 'a current agent waits');
  t.edge.publish([route('a.prod.web.0', 20001)]);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(answered, false, 'the same table again is no change');
  t.edge.publish([route('a.prod.web.0', 20002)]);
  const r = await held;
  assert.equal(r.statusCode, 200);
  assert.equal(r.json().generation, 2);
  assert.equal(r.json().routes[0].backends[0].port, 20002);
  // Current and nothing changes: the unchanged config after `wait` seconds.
  const t0 = Date.now();
  assert.equal((await asEdge(t, token, '?epoch=e0&generation=2&wait=1')).json().generation, 2);
  assert.ok(Date.now() - t0 >= 900, 'held for the wait');
}));

test('edge hosts: what each agent reported, for owners; tokens and units for owners only', () => withTestApi(async (t) => {
  t.edge.publish([route('a.prod.web.0', 20001)]);
  await asEdge(t, edgeToken('edge-2', EDGE_SECRET('edge-2')), '?epoch=e0&generation=1&wait=0');
  await asEdge(t, edgeToken('edge-1', EDGE_SECRET('edge-1')), `?epoch=e0&generation=0&wait=0&error=${encodeURIComponent('nginx -t failed')}`);
  const hosts = await t.req('GET', '/v1/edge/hosts');
  assert.equal(hosts.statusCode, 200, hosts.body);
  assert.deepEqual(hosts.json().hosts.map((h: { host: string; inSync: boolean; applied?: number; error?: string }) => [h.host, h.inSync, h.applied, h.error]),
    [['edge-1', false, 0, 'nginx -t failed'], ['edge-2', true, 1, undefined]]);

  const vic = actAs(t, 'vic', [{ role: 'viewer', team: 'web' }]);
  await expectError(vic('GET', '/v1/edge/hosts'), 403, /owner/);
  await expectError(vic('POST', '/v1/edge/tokens', { host: 'edge-3' }), 403, /owner/);
  await expectError(t.anon('POST', '/v1/edge/tokens', { host: 'edge-3' }), 401);
  await expectError(t.req('POST', '/v1/edge/tokens', { host: 'bad host!' }), 400, /^host: a host name/);
  await expectError(t.req('POST', '/v1/edge/tokens', { host: 'edge-3', port: 0 }), 400, /^port: /);
  await expectError(t.req('POST', '/v1/edge/tokens', {}), 400, /^host: /);
  const made = await t.req('POST', '/v1/edge/tokens', { host: 'edge-3', port: 8080 });
  assert.equal(made.statusCode, 201, made.body);
  const m = made.json();
  assert.equal(m.token, edgeToken('edge-3', EDGE_SECRET('edge-3')));
  assert.match(m.command, /^berth edge --control https:\/\/berth\.example:7070 --token-file \/etc\/berth\/edge\.token --port 8080/);
  assert.match(m.unit, /ExecStart=.* edge --control https:\/\/berth\.example:7070 .*--port 8080/);
  assert.match(m.unit, /KillMode=process/);
  assert.match(m.command, / --https-port 443 /, 'HTTPS on 443 unless asked otherwise');
  assert.match((await t.req('POST', '/v1/edge/tokens', { host: 'edge-4', httpsPort: 8443 })).json().unit, / --port 80 --https-port 8443 /);
  await expectError(t.req('POST', '/v1/edge/tokens', { host: 'edge-4', port: 8443, httpsPort: 8443 }), 400, /^httpsPort: must differ from port/);
  assert.doesNotMatch(JSON.stringify(t.audit.list({})), new RegExp(EDGE_SECRET('edge-3')), 'the token is not in the audit log');
  // The token just made reads the edge config as edge-3.
  assert.equal((await asEdge(t, m.token, '?wait=0')).statusCode, 200);
}));

test('edge certificates: keys only in answers over TLS; over plain HTTP they are withheld, said so, and recorded for berth hosts; ACME challenges go to every poll', () => withTestApi(async (t) => {
  const token = edgeToken('edge-1', EDGE_SECRET('edge-1'));
  const cert = { host: 'shop.example', fingerprint: 'ab'.repeat(32), certPem: '-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n', keyPem: '-----BEGIN PRIVATE KEY-----\nSECRETKEY\n-----END PRIVATE KEY-----\n' };
  t.edgeCerts.set('shop.example', cert);
  t.edge.publish([{ ...route('shop.prod.web.0', 20001), host: 'shop.example', https: { wantsCert: true, redirect: true, hstsSeconds: 3600 } }], [{ host: 'shop.example', fingerprint: cert.fingerprint }]);

  const plain = await asEdge(t, token, '?wait=0');
  assert.equal(plain.statusCode, 200, plain.body);
  assert.equal(plain.json().certs, undefined);
  assert.doesNotMatch(plain.body, /SECRETKEY|PRIVATE KEY/, 'no key over plain HTTP');
  assert.match(plain.json().certsWithheld, /never sent over plain HTTP.*--control https:/);
  assert.deepEqual(plain.json().routes[0].https, { wantsCert: true, redirect: true, hstsSeconds: 3600 }, 'redirect and HSTS options travel with the route');
  assert.equal(t.edge.hosts()[0]?.certsWithheld, true, 'berth hosts shows the host gets no keys');

  const tls = await asEdge(t, token, '?wait=0', true);
  assert.deepEqual(tls.json().certs, [cert]);
  assert.equal(tls.json().certsWithheld, undefined);
  assert.equal(t.edge.hosts()[0]?.certsWithheld, undefined);
  // Another host's token, or none, gets nothing: not even over TLS.
  assert.equal((await asEdge(t, edgeToken('edge-1', EDGE_SECRET('edge-2')), '?wait=0', true)).statusCode, 401);
  const anonTls = await t.api.inject({ method: 'GET', url: '/v1/edge/config?wait=0', headers: { 'x-test-over-tls': 'yes' } });
  assert.equal(anonTls.statusCode, 401);
  assert.doesNotMatch(anonTls.body, /SECRETKEY/);

  // A renewal is a new generation (new fingerprint): a current agent's held poll answers at once.
  const held = asEdge(t, token, `?epoch=e0&generation=${tls.json().generation}&wait=30`, true);
  const renewed = { ...cert, fingerprint: 'cd'.repeat(32), keyPem: cert.keyPem.replace('SECRETKEY', 'NEWKEY') };
  t.edgeCerts.set('shop.example', renewed);
  t.edge.publish(t.edge.current().routes, [{ host: 'shop.example', fingerprint: renewed.fingerprint }]);
  const r = await held;
  assert.equal(r.json().generation, tls.json().generation + 1);
  assert.deepEqual(r.json().certs, [renewed]);

  // Challenges: in every answer (public: over plain HTTP too) while open; a change wakes held polls.
  const g = r.json().generation;
  const held2 = asEdge(t, token, `?epoch=e0&generation=${g}&wait=30`);
  t.edge.setChallenges([{ token: 'tok_1', keyAuthorization: 'tok_1.thumb' }]);
  const c = await held2;
  assert.equal(c.json().generation, g + 1);
  assert.deepEqual(c.json().challenges, [{ token: 'tok_1', keyAuthorization: 'tok_1.thumb' }]);
  t.edge.setChallenges([]);
  assert.equal((await asEdge(t, token, '?wait=0')).json().challenges, undefined);
}));

test('edge config: an agent\'s report of its cuts is recorded for the backends the feed names unreachable only; a malformed report is 400', () => withTestApi(async (t) => {
  const token = edgeToken('edge-1', EDGE_SECRET('edge-1'));
  t.edge.publish([route('a.prod.web.0', 20001)]);
  const seen: string[] = [];
  t.edge.onCut((host, c, owner) => void seen.push(`${host} ${c.address}:${c.port}=${c.connections} ${(owner as { id: string } | undefined)?.id}`));
  t.edge.unreachable('10.0.0.8', 20002, { id: 'i2' });
  // 10.0.0.9:1 was never named unreachable: an edge host cannot make the server record anything else.
  const r = await asEdge(t, token, '?wait=0&cut=10.0.0.8:20002=3,10.0.0.9:1=1');
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json().unreachable.map((u: { address: string; port: number }) => `${u.address}:${u.port}`), ['10.0.0.8:20002']);
  assert.deepEqual(seen, ['edge-1 10.0.0.8:20002=3 i2']);
  for (const bad of ['rm%20-rf', '10.0.0.8:20002', '10.0.0.8:20002=1;x', Array.from({ length: 17 }, () => '10.0.0.8:20002=1').join(',')]) {
    await expectError(asEdge(t, token, `?wait=0&cut=${bad}`), 400, /^cut: ADDRESS:PORT=CONNECTIONS/);
  }
  assert.equal(seen.length, 1, 'a refused report records nothing');
  // Without the token: 401, nothing recorded.
  await expectError(t.anon('GET', '/v1/edge/config?wait=0&cut=10.0.0.8:20002=3'), 401);
  assert.equal(seen.length, 1);
}));
