/**
 * In-process contract tests of `POST /v1/apps/:app/failover` (src/api/failover-routes.ts) over the
 * fake engine's simulated Swarm (h1, h2, h3): 401, 403 for viewers, 400 naming the field, 404 for an
 * unknown service or host, 409 for a service that is not pinned, a target that is not ready, a live
 * host without force; the happy path pins, asks for replacement and says the volume starts empty.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actAs, expectError, NOW, withTestApi } from '../../test/helpers/api-inject.ts';

const VOL = [{ type: 'volume' as const, source: 'data', target: '/data', readOnly: false }];

test('failover: a pinned service moves to a ready host as asked; everything refused changes nothing', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'db', { volumes: VOL });
  t.addService('shop', 'prod', 'web');
  const svc = t.store.getService({ app: 'shop', env: 'prod', service: 'db' })!;
  const [inst] = t.store.createInstances([{ id: 'i1', app: 'shop', env: 'prod', service: 'db', releaseId: svc.releaseId, host: 'h2', address: '10.99.0.3',
    state: 'running', health: 'healthy', createdAt: NOW }], { min: 20000, max: 20010, isFree: () => true });
  const body = { service: 'db', to: 'h3' };

  await expectError(t.anon('POST', '/v1/apps/shop/failover', body), 401);
  t.auth.addTeam({ name: 'web', createdAt: 0, createdBy: 'admin' });
  t.auth.setAppTeam('shop', 'web');
  const vic = actAs(t, 'vic', [{ role: 'viewer', team: 'web' }]);
  await expectError(vic('POST', '/v1/apps/shop/failover', body), 403);
  await expectError(t.req('POST', '/v1/apps/shop/failover', { to: 'h3' }), 400, /^service: /);
  await expectError(t.req('POST', '/v1/apps/shop/failover', { service: 'db', to: 'h 3' }), 400, /^to: a host name/);
  await expectError(t.req('POST', '/v1/apps/shop/failover', { ...body, extra: 1 }), 400, /extra/);
  await expectError(t.req('POST', '/v1/apps/shop/failover', { ...body, service: 'dbx' }), 404, /db/);
  await expectError(t.req('POST', '/v1/apps/nope/failover', body), 404);
  await expectError(t.req('POST', '/v1/apps/shop/failover', { ...body, service: 'web' }), 409, /no named volume, so it is not pinned/);
  await expectError(t.req('POST', '/v1/apps/shop/failover', { ...body, to: 'h9' }), 404, /no host h9: `berth hosts` lists them \(h1, h2, h3\)/);
  await expectError(t.req('POST', '/v1/apps/shop/failover', { ...body, to: 'h2' }), 409, /runs on h2 already/);
  // Its host is up: moving would leave the data behind; only with force.
  await expectError(t.req('POST', '/v1/apps/shop/failover', body), 409, /host h2 is not down: its volume data would start empty on h3 .*force/);
  await t.engine.drainHost('h3', true);
  t.engine.hostDown('h2');
  await expectError(t.req('POST', '/v1/apps/shop/failover', body), 409, /host h3 is draining: pick a ready host/);
  assert.deepEqual(t.pins, [], 'nothing pinned by a refused request');
  assert.equal(t.store.getInstance(inst!.id)?.replaceRequestedAt, undefined, 'nothing asked of the instance');

  const ok = await t.req('POST', '/v1/apps/shop/failover', { ...body, to: 'h1' });
  assert.equal(ok.statusCode, 202, ok.body);
  assert.deepEqual(ok.json(), { service: 'db', env: 'prod', from: 'h2', to: 'h1', volumes: ['data'], instances: ['i1'] });
  assert.deepEqual(t.pins, [{ service: 'shop/prod/db', host: 'h1' }]);
  assert.equal(t.store.getInstance('i1')?.replaceRequestedAt, NOW);
  assert.ok(t.calls.includes('svc shop/prod/db'), 'the service reconciler is woken');
  const ev = t.store.listEvents({ app: 'shop' }).find((e) => e.kind === 'service.failover');
  assert.match(ev?.message ?? '', /db moves to host h1 as asked \(from h2\): volume data starts empty there/);

  // With force, a live host's service moves too.
  t.engine.hostUp('h2');
  await t.engine.drainHost('h3', false);
  const forced = await t.req('POST', '/v1/apps/shop/failover', { ...body, force: true });
  assert.equal(forced.statusCode, 202, forced.body);
}));

test('status says where a stateful service is pinned (service and instance views, every status route); a stateless one and one host say nothing', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'db', { volumes: [...VOL, { type: 'volume' as const, source: 'logs', target: '/logs', readOnly: false }] });
  t.addService('shop', 'prod', 'web');
  const svc = t.store.getService({ app: 'shop', env: 'prod', service: 'db' })!;
  t.store.createInstances([{ id: 'i1', app: 'shop', env: 'prod', service: 'db', releaseId: svc.releaseId, host: 'h2', address: '10.99.0.3',
    state: 'running', health: 'healthy', createdAt: NOW }], { min: 20000, max: 20010, isFree: () => true });
  type View = { services: Array<{ name: string; pinned?: { host: string; volumes: string[]; text: string }; instances: Array<{ id: string; pinned?: string }> }> };
  const db = async (): Promise<View['services'][number]> => ((await t.req('GET', '/v1/apps/shop')).json() as View).services.find((s) => s.name === 'db')!;
  // Nothing learned yet (one host, or before the reconciler saw where it runs): no pin.
  assert.equal((await db()).pinned, undefined);
  assert.equal((await db()).instances[0]!.pinned, undefined);
  t.pinned.set('shop/prod/db', 'h2');
  // A pin of a service whose release has no named volume is not shown (nothing holds it there).
  t.pinned.set('shop/prod/web', 'h1');
  assert.deepEqual((await db()).pinned, { host: 'h2', volumes: ['data', 'logs'], text: 'pinned to h2 (volumes data, logs)' });
  assert.equal((await db()).instances[0]!.pinned, 'pinned to h2 (volumes data, logs)');
  const all = (await t.req('GET', '/v1/apps')).json() as { apps: Array<View> };
  const services = all.apps[0]!.services;
  assert.equal(services.find((s) => s.name === 'db')?.pinned?.host, 'h2');
  assert.equal(services.find((s) => s.name === 'web')?.pinned, undefined);
  // `berth failover` re-pins: status shows the new host at once (its instances follow).
  t.engine.hostDown('h2');
  const ok = await t.req('POST', '/v1/apps/shop/failover', { service: 'db', to: 'h3' });
  assert.equal(ok.statusCode, 202, ok.body);
  assert.equal((await db()).pinned?.text, 'pinned to h3 (volumes data, logs)');
}));
