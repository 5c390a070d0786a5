/**
 * In-process contract tests of the routes buildApi registers itself (deployments, apps, releases,
 * scale, rollback, reload, restart, exec, events, logs): no token → 401, bad input → 400 naming the
 * field, unknown → 404, conflict → 409, and the happy path — and a refused request changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, serviceSpec, withTestApi } from '../../test/helpers/api-inject.ts';

const spec = (name = 'shop', svc = 'web') => ({ name, services: { [svc]: serviceSpec(svc) } });

test('every route of buildApi refuses a request without a token (401) and changes nothing', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  const routes: ['GET' | 'POST' | 'PUT' | 'DELETE', string, unknown?][] = [
    ['GET', '/v1/ping'], ['GET', '/v1/openapi.json'], ['POST', '/v1/apps/shop/deployments', { spec: spec() }], ['GET', '/v1/deployments/x'],
    ['GET', '/v1/apps'], ['GET', '/v1/apps/shop'], ['GET', '/v1/apps/shop/releases'], ['GET', '/v1/apps/shop/releases/r1'],
    ['POST', '/v1/apps/shop/scale', { service: 'web', replicas: 3 }], ['POST', '/v1/apps/shop/rollback', {}],
    ['POST', '/v1/apps/shop/reload', { service: 'web' }], ['POST', '/v1/apps/shop/restart', {}], ['POST', '/v1/apps/shop/exec', { service: 'web', cmd: ['ls'] }],
    ['GET', '/v1/events'], ['GET', '/v1/events/stream'], ['GET', '/v1/apps/shop/logs'],
  ];
  for (const [method, url, payload] of routes) await expectError(t.anon(method, url, payload), 401, /bearer token/);
  const bad = await t.api.inject({ method: 'GET', url: '/v1/apps', headers: { authorization: 'Bearer wrong' } });
  assert.equal(bad.statusCode, 401);
  assert.equal(t.store.getService({ app: 'shop', env: 'prod', service: 'web' })!.replicas, 1);
  assert.deepEqual(t.calls, []);
}));

test('deploy: 400 naming the field (nothing stored), 409 for a route another app serves, 202 and a queued deployment', () => withTestApi(async (t) => {
  await expectError(t.req('POST', '/v1/apps/shop/deployments', { spec: { name: 'shop', services: {} } }), 400, /spec\.services: an app needs at least one service/);
  await expectError(t.req('POST', '/v1/apps/shop/deployments', { spec: spec('other') }), 400, /spec\.name "other" does not match the app in the URL "shop"/);
  await expectError(t.req('POST', '/v1/apps/shop/deployments', { env: 'Prod!', spec: spec() }), 400, /^env: /);
  assert.deepEqual(t.store.listApps(), []);
  const r = await t.req('POST', '/v1/apps/shop/deployments', { spec: spec() });
  assert.equal(r.statusCode, 202, r.body);
  const dep = r.json().deployment;
  assert.equal(dep.app, 'shop');
  assert.deepEqual(dep.services, ['web']);
  assert.deepEqual(t.calls, [`deployment ${dep.id}`]);
  const got = await t.req('GET', `/v1/deployments/${dep.id}`);
  assert.equal(got.statusCode, 200);
  assert.deepEqual(got.json().services, [{ name: 'web', status: 'pending' }]);
  await expectError(t.req('GET', '/v1/deployments/nope'), 404, /no deployment nope/);

  // A route another app already serves is a conflict, and nothing is queued.
  t.store.putService({ app: 'blog', env: 'prod', name: 'web', replicas: 1, releaseId: 'rb', failures: 0, nextStartAt: 0, updatedAt: 0 },
    { id: 'rb', app: 'blog', env: 'prod', service: 'web', seq: 1, spec: serviceSpec('web', { routes: [{ host: 'a.test', path: '/' }] }), specHash: 'h',
      image: 'i', imageId: 'x', status: 'healthy', message: '', createdAt: 1, createdBy: 'admin' });
  const mine = { name: 'shop', services: { web: serviceSpec('web', { routes: [{ host: 'A.TEST', path: '/' }] }) } };
  await expectError(t.req('POST', '/v1/apps/shop/deployments', { spec: mine }), 409, /route a\.test\/ of web is already served by blog\/prod\/web/);
  assert.equal(t.calls.length, 1);
  // ?dry_run=true validates only.
  const dry = await t.req('POST', '/v1/apps/shop/deployments?dry_run=true', { spec: spec() });
  assert.deepEqual([dry.statusCode, dry.json()], [200, { valid: true }]);
  assert.equal(t.calls.length, 1);
}));

test('apps, app, releases: 404 with a did-you-mean for unknown names; the happy paths', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  const ping = await t.req('GET', '/v1/ping');
  assert.deepEqual(ping.json(), { ok: true, version: 'test', ingressPort: 0 });
  const apps = (await t.req('GET', '/v1/apps')).json().apps;
  assert.deepEqual(apps.map((a: { name: string }) => a.name), ['shop']);
  assert.equal((await t.req('GET', '/v1/apps/shop')).json().services[0].name, 'web');
  await expectError(t.req('GET', '/v1/apps/shpo'), 404, /did you mean "shop"/);
  await expectError(t.req('GET', '/v1/apps/shop?env=staging'), 404, /staging/);
  const rels = (await t.req('GET', '/v1/apps/shop/releases')).json().releases;
  assert.deepEqual(rels.map((r: { seq: number; current: boolean }) => [r.seq, r.current]), [[1, true]]);
  await expectError(t.req('GET', '/v1/apps/shop/releases?env=prod&service=wbe'), 404, /did you mean "web"/);
  assert.equal((await t.req('GET', '/v1/apps/shop/releases/r1')).json().release.seq, 1);
  await expectError(t.req('GET', '/v1/apps/shop/releases/nope'), 404, /no release nope of shop/);
}));

test('scale: 400 for a body that is neither form, 404 for an unknown service, 409 past host memory, 202 and enqueued', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web', { memoryBytes: 256 * 2 ** 20 });
  await expectError(t.req('POST', '/v1/apps/shop/scale', { service: 'web', replicas: 5 }), 409, /refusing to scale/);
  await expectError(t.req('POST', '/v1/apps/shop/scale', { service: 'web' }), 400, /give either service and replicas/);
  await expectError(t.req('POST', '/v1/apps/shop/scale', { service: 'web', replicas: -1 }), 400, /^replicas: /);
  await expectError(t.req('POST', '/v1/apps/shop/scale', { service: 'wbe', replicas: 2 }), 404, /did you mean "web"/);
  await expectError(t.req('POST', '/v1/apps/shop/scale', { services: { web: 2, nope: 1 } }), 404, /nope/);
  assert.equal(t.store.getService({ app: 'shop', env: 'prod', service: 'web' })!.replicas, 1, 'all or nothing');
  const r = await t.req('POST', '/v1/apps/shop/scale', { service: 'web', replicas: 3 });
  assert.deepEqual([r.statusCode, r.json()], [202, { service: 'web', from: 1, to: 3 }]);
  assert.deepEqual(t.calls, ['svc shop/prod/web']);
}, { hostMemoryBytes: 1024 * 2 ** 20 }));

test('rollback, reload, restart: 404 unknown, 409 when there is nothing to go back to or it is rolling out, 202 when done', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  await expectError(t.req('POST', '/v1/apps/shop/rollback', { env: 'staging' }), 404, /staging/);
  await expectError(t.req('POST', '/v1/apps/shop/rollback', { service: 'web' }), 404, /web has no earlier healthy release to roll back to/);
  await expectError(t.req('POST', '/v1/apps/shop/rollback', { service: 'web', to: '1' }), 409, /web already runs release 1/);
  await expectError(t.req('POST', '/v1/apps/shop/reload', {}), 400, /^service: /);
  await expectError(t.req('POST', '/v1/apps/shop/reload', { service: 'wbe' }), 404, /did you mean "web"/);
  const reload = await t.req('POST', '/v1/apps/shop/reload', { service: 'web' });
  assert.equal(reload.statusCode, 202, reload.body);
  assert.equal(reload.json().service, 'web');
  await expectError(t.req('POST', '/v1/apps/nope/restart', {}), 404, /nope/);
  const restart = await t.req('POST', '/v1/apps/shop/restart', {});
  assert.equal(restart.statusCode, 202, restart.body);
  assert.deepEqual(restart.json().restarts.map((x: { service: string; from: number; release: number }) => [x.service, x.from, x.release]), [['web', 1, 2]]);
  // Release 2 is rolling out now: a second restart waits for it.
  await expectError(t.req('POST', '/v1/apps/shop/restart', {}), 409, /rolling out release 2/);
  assert.deepEqual(t.calls, ['svc shop/prod/web', 'svc shop/prod/web']);
}));

test('exec: 400 without a command, 404 for an unknown service, 409 when the server cannot exec', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  await expectError(t.req('POST', '/v1/apps/shop/exec', { service: 'web', cmd: [] }), 400, /^cmd: give the command to run/);
  // This harness has no exec port (as a server without an engine): the route says so before anything runs.
  await expectError(t.req('POST', '/v1/apps/shop/exec', { service: 'web', cmd: ['ls'] }), 409, /cannot run commands/);
}));

test('events and logs: 400 naming the parameter, 404 for an unknown app, the happy paths', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  t.store.addEvent({ app: 'shop', env: 'prod', service: 'web', instance: '', kind: 'test.event', message: 'hello' });
  await expectError(t.req('GET', '/v1/events?limit=0'), 400, /^limit: /);
  await expectError(t.req('GET', '/v1/events?since=yesterday'), 400, /since "yesterday" is not a time/);
  await expectError(t.req('GET', '/v1/events?env=prod'), 400, /give app too/);
  await expectError(t.req('GET', '/v1/events?app=shpo'), 404, /did you mean "shop"/);
  const ev = (await t.req('GET', '/v1/events?app=shop')).json();
  assert.deepEqual(ev.events.map((e: { kind: string }) => e.kind), ['test.event']);
  assert.equal(ev.last, ev.events[0].id);
  await expectError(t.req('GET', '/v1/events/stream?after=-1'), 400, /^after: /);
  await expectError(t.req('GET', '/v1/apps/shop/logs?before=abc'), 400, /^before: not a log cursor/);
  await expectError(t.req('GET', '/v1/apps/shop/logs?level=loud'), 400, /^level: /);
  await expectError(t.req('GET', '/v1/apps/shop/logs?env=staging'), 404, /staging/);
  assert.deepEqual((await t.req('GET', '/v1/apps/shop/logs')).json(), { lines: [] });
}));
