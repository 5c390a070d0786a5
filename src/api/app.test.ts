/**
 * In-process contract tests of the routes buildApi registers itself (the 401 sweep over every route,
 * deployments, apps, releases): no token → 401, bad input → 400 naming the
 * field, unknown → 404, conflict → 409, and the happy path — and a refused request changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, openSse, serviceSpec, withTestApi } from '../../test/helpers/api-inject.ts';
import { STREAM_MESSAGES } from './responses.ts';

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

test('deploy with secrets: values never stored as sent (digests), 400 naming the field, an unset external secret refused naming how to set it', () =>
  withTestApi(async (t) => {
    const VALUE = 'pw-that-must-not-be-stored';
    const mount = (over: Record<string, unknown>) => ({ name: 'db_password', target: '/run/secrets/db_password', uid: 0, gid: 0, mode: 0o444, ...over });
    const withSecrets = (secrets: unknown[]) => ({ name: 'shop', services: { db: { ...serviceSpec('db'), secrets } } });
    await expectError(t.req('POST', '/v1/apps/shop/deployments', { spec: withSecrets([mount({ from: 'file' })]) }), 400,
      /spec\.services\.db\.secrets\.0: external mounts name a `key`; the others carry a `value`/);
    await expectError(t.req('POST', '/v1/apps/shop/deployments', { spec: withSecrets([mount({ from: 'file', value: 'x', target: 'rel' })]) }), 400,
      /spec\.services\.db\.secrets\.0\.target: /);
    await expectError(t.req('POST', '/v1/apps/shop/deployments', { spec: withSecrets([mount({ from: 'external', key: 'API_KEY' })]) }), 400,
      /secret "db_password" is external and reads API_KEY .* not set: set it with `printf %s "\$VALUE" \| berth secret set shop API_KEY --env prod`/);
    await expectError(t.req('POST', '/v1/apps/shop/deployments', { spec: withSecrets([mount({ from: 'file', digest: 'a'.repeat(64) })]) }), 400,
      /secret "db_password" has no value/);
    assert.deepEqual(t.calls, []);
    assert.deepEqual(t.store.listApps(), []);
    const r = await t.req('POST', '/v1/apps/shop/deployments', { spec: withSecrets([mount({ from: 'file', value: VALUE })]) });
    assert.equal(r.statusCode, 202, r.body);
    const stored = t.store.getDeployment(r.json().deployment.id)!;
    const m = stored.spec.services.db!.secrets![0]!;
    assert.equal(m.value, undefined);
    assert.match(m.digest!, /^[0-9a-f]{64}$/);
    assert.ok(!JSON.stringify(stored).includes(VALUE));
    assert.equal(t.config.openFile('shop', 'prod', m.digest!), VALUE);
    // The digest of a kept value is enough for a later deploy (a spec read back from the server).
    const again = await t.req('POST', '/v1/apps/shop/deployments', { spec: withSecrets([mount({ from: 'file', digest: m.digest })]) });
    assert.equal(again.statusCode, 202, again.body);
    // ... but only in the app and environment it was kept for.
    await expectError(t.req('POST', '/v1/apps/shop/deployments', { env: 'pre', spec: withSecrets([mount({ from: 'file', digest: m.digest })]) }), 400,
      /has no value/);
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

test('deployment stream: 401, 400 naming the field, 404; events and state as the store is written; its outcome, then the end', () => withTestApi(async (t) => {
  await expectError(t.anon('GET', '/v1/deployments/x/stream'), 401, /bearer token/);
  await expectError(t.req('GET', '/v1/deployments/nope/stream'), 404, /no deployment nope/);
  const r = await t.req('POST', '/v1/apps/shop/deployments', { spec: spec() });
  const id = r.json().deployment.id as string;
  await expectError(t.req('GET', `/v1/deployments/${id}/stream?after=x`), 400, /^after: /);
  const s = await openSse(t, `/v1/deployments/${id}/stream?after=0`);
  const created = await s.next();
  assert.deepEqual([created.event, (created.data as { kind: string }).kind], ['event', 'deployment.created'], 'events after the cursor first');
  const first = await s.next();
  assert.equal(first.event, 'state');
  assert.equal((first.data as { deployment: { status: string } }).deployment.status, 'pending');
  t.store.updateDeployment(id, { status: 'rolling' });
  assert.equal(((await s.next()).data as { deployment: { status: string } }).deployment.status, 'rolling');
  t.store.addEvent({ app: 'other', env: 'prod', service: '', instance: '', kind: 'not.mine', message: '' });
  t.addService('shop', 'prod', 'web');
  const svc = await s.next((m) => m.event === 'state');
  assert.equal((svc.data as { services: { name: string; desired: number }[] }).services[0]!.desired, 1, 'a service write wakes it too');
  // The controller's last write: the status and the outcome event together.
  t.store.updateDeployment(id, { status: 'succeeded', message: 'all services healthy' });
  t.store.addEvent({ app: 'shop', env: 'prod', service: '', instance: '', kind: 'deployment.succeeded', message: `deployment ${id} of shop/prod succeeded` });
  await s.ended;
  const tail = s.all.slice(-2).map((m) => [m.event, m.event === 'state' ? (m.data as { deployment: { status: string } }).deployment.status : (m.data as { kind: string }).kind]);
  assert.deepEqual(tail, [['event', 'deployment.succeeded'], ['state', 'succeeded']], 'the outcome event, then the last state, then the end');
  assert.ok(!s.all.some((m) => m.event === 'event' && (m.data as { kind: string }).kind === 'not.mine'));
  // Each message is what the route declares (api/responses.ts, in /v1/openapi.json).
  for (const m of s.all) STREAM_MESSAGES['GET /v1/deployments/:id/stream']![m.event]!.parse(m.data);
  // Already finished when asked: its state at once, and the end.
  const again = await t.req('GET', `/v1/deployments/${id}/stream`);
  assert.equal(again.statusCode, 200);
  assert.match(again.body, /event: state\ndata: .*"status":"succeeded"/);
}));

test('app stream: 401, 400, 404 with a did-you-mean; a state on each change of its services, not of other apps', () => withTestApi(async (t) => {
  await expectError(t.anon('GET', '/v1/apps/shop/stream'), 401, /bearer token/);
  t.addService('shop', 'prod', 'web');
  t.addService('other', 'prod', 'web');
  await expectError(t.req('GET', '/v1/apps/shpo/stream'), 404, /did you mean "shop"/);
  await expectError(t.req('GET', '/v1/apps/shop/stream?env=staging'), 404, /staging/);
  await expectError(t.req('GET', '/v1/apps/shop/stream?after=-2'), 400, /^after: /);
  const s = await openSse(t, '/v1/apps/shop/stream?env=prod');
  const first = await s.next();
  assert.deepEqual((first.data as { services: { desired: number }[] }).services.map((x) => x.desired), [1]);
  t.store.updateService({ app: 'other', env: 'prod', service: 'web' }, { replicas: 5 });
  t.store.updateService({ app: 'shop', env: 'prod', service: 'web' }, { replicas: 3 });
  const next = await s.next();
  assert.equal(next.event, 'state');
  assert.deepEqual((next.data as { services: { desired: number }[] }).services.map((x) => x.desired), [3], 'the other app woke nothing');
  for (const m of s.all) STREAM_MESSAGES['GET /v1/apps/:app/stream']![m.event]!.parse(m.data);
  s.close();
}));
