/**
 * In-process contract tests of approvals (src/api/approval-routes.ts and the gate in authorize.ts):
 * an environment that requires approval keeps deploys and promotions pending (nothing queued); only
 * a second person who deploys there approves (not the requester, nor their token); the approved
 * request runs as its requester; decided twice is 409; other teams see nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, NOW, serviceSpec, withTestApi, actAs } from '../../test/helpers/api-inject.ts';
import { hashToken } from '../auth/index.ts';

test('approvals: policy by team admins; a prod deploy waits; the requester (or their token) cannot approve; a second deployer can, once', () => withTestApi(async (t) => {
  for (const team of ['web', 'data']) t.auth.addTeam({ name: team, createdAt: 0, createdBy: 'admin' });
  t.addService('shop', 'prod', 'web');
  t.auth.setAppTeam('shop', 'web');
  const lead = actAs(t, 'lead', [{ role: 'admin', team: 'web' }]);
  const ann = actAs(t, 'ann', [{ role: 'deployer', team: 'web' }]);
  const tester = actAs(t, 'tester', [{ role: 'deployer', team: 'web', env: 'test' }]);
  const bob = actAs(t, 'bob', [{ role: 'deployer', team: 'web', env: 'prod' }]);
  const stranger = actAs(t, 'stranger', [{ role: 'admin', team: 'data' }]);

  await expectError(t.anon('PUT', '/v1/teams/web/policies/prod', { requireApproval: true }), 401);
  await expectError(ann('PUT', '/v1/teams/web/policies/prod', { requireApproval: true }), 403, /admin role/);
  await expectError(stranger('PUT', '/v1/teams/web/policies/prod', { requireApproval: true }), 404, /no team "web"/);
  await expectError(lead('PUT', '/v1/teams/web/policies/prod', { requireApproval: 'yes' }), 400, /^requireApproval: /);
  assert.deepEqual((await lead('PUT', '/v1/teams/web/policies/prod', { requireApproval: true })).json(), { team: 'web', env: 'prod', requireApproval: true });
  assert.deepEqual((await ann('GET', '/v1/teams/web/policies')).json().policies, [{ team: 'web', env: 'prod', requireApproval: true }]);

  const spec = { name: 'shop', services: { web: serviceSpec('web') } };
  // A dry run is not a deploy; a test deploy needs nobody.
  assert.equal((await ann('POST', '/v1/apps/shop/deployments?dry_run=true', { spec })).statusCode, 200);
  assert.equal((await ann('POST', '/v1/apps/shop/deployments', { env: 'test', spec })).statusCode, 202);
  const before = t.calls.length;
  const r = await ann('POST', '/v1/apps/shop/deployments', { spec });
  assert.equal(r.statusCode, 202, r.body);
  const { approval } = r.json();
  assert.deepEqual([approval.status, approval.env, approval.requestedBy, approval.action], ['pending', 'prod', 'ann', 'POST /v1/apps/:app/deployments']);
  assert.match(r.json().message, new RegExp(`berth approve ${approval.id}`));
  assert.equal(t.calls.length, before, 'nothing was queued');
  // The request is an event of the app: pages following the event stream see it.
  assert.deepEqual(t.store.listEvents({ app: 'shop' }).filter((e) => e.kind.startsWith('approval.')).map((e) => [e.kind, e.env]), [['approval.requested', 'prod']]);

  await expectError(ann('POST', `/v1/approvals/${approval.id}/approve`), 403, /a second person must approve/);
  // Ann's own token is still ann.
  t.auth.addApiToken({ id: 'tk', name: 'ann ci', hash: hashToken('bertht_ann-ci'), createdBy: 'user:u-ann', createdAt: 0, expiresAt: NOW + 1, revokedAt: 0, lastUsedAt: 0 });
  t.auth.addGrant({ id: 'g-tk', subject: 'token:tk', role: 'deployer', team: 'web', app: '*', env: '*', createdAt: 0, createdBy: 'ann' });
  await expectError(t.api.inject({ method: 'POST', url: `/v1/approvals/${approval.id}/approve`, headers: { authorization: 'Bearer bertht_ann-ci' } }), 403, /second person/);
  await expectError(tester('POST', `/v1/approvals/${approval.id}/approve`), 403, /deployer role for shop in prod/);
  await expectError(stranger('POST', `/v1/approvals/${approval.id}/approve`), 404);
  assert.deepEqual((await stranger('GET', '/v1/approvals')).json().approvals, []);
  // A forged replay header is nobody.
  await expectError(t.api.inject({ method: 'POST', url: '/v1/apps/shop/deployments', headers: { 'x-berth-approval': `${approval.id}:guess` }, payload: { spec } }), 401);
  assert.equal(t.calls.length, before);

  const ok = await bob('POST', `/v1/approvals/${approval.id}/approve`);
  assert.equal(ok.statusCode, 200, ok.body);
  assert.equal(ok.json().status, 202);
  assert.equal(ok.json().result.deployment.app, 'shop');
  assert.equal(ok.json().approval.decidedBy, 'bob');
  assert.equal(t.store.listEvents({ app: 'shop' }).filter((e) => e.kind.startsWith('approval.')).at(-1)?.kind, 'approval.approved');
  assert.deepEqual(t.calls.slice(before), [`deployment ${ok.json().result.deployment.id}`]);
  await expectError(bob('POST', `/v1/approvals/${approval.id}/approve`), 409, /approved already/);
  await expectError(t.api.inject({ method: 'POST', url: '/v1/apps/shop/deployments', headers: { 'x-berth-approval': `${approval.id}:x` }, payload: { spec } }), 401);
  // Deny: a promotion into prod waits too, and is denied.
  const pr = await ann('POST', '/v1/apps/shop/promote', { from: 'test', to: 'prod' });
  assert.equal(pr.statusCode, 202, pr.body);
  const denied = await bob('POST', `/v1/approvals/${pr.json().approval.id}/deny`);
  assert.equal(denied.json().approval.status, 'denied');
  await expectError(ann('POST', `/v1/approvals/${pr.json().approval.id}/approve`), 409);
  const pending = (await ann('GET', '/v1/approvals?status=pending')).json().approvals;
  assert.deepEqual(pending, []);
  await expectError(ann('GET', '/v1/approvals?status=maybe'), 400, /^status: /);
}));
