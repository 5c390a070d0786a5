/**
 * In-process contract tests of the container guardrails' routes (src/api/policy-routes.ts) and of
 * the check on the deploy path (deploy/deployments.ts) and rollback (service-routes.ts): who sets
 * which layer, who exempts, a refused deployment changes nothing, an exemption lets exactly its key
 * through, expiry re-refuses, versions are kept, other teams see nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, NOW, serviceSpec, withTestApi, actAs } from '../../test/helpers/api-inject.ts';

test('policies: 401 without a token; owners set any layer; team admins tighten their own; versions kept; bad fields named', () => withTestApi(async (t) => {
  for (const team of ['web', 'data']) t.auth.addTeam({ name: team, createdAt: 0, createdBy: 'admin' });
  const lead = actAs(t, 'lead', [{ role: 'admin', team: 'web' }]);
  const ann = actAs(t, 'ann', [{ role: 'deployer', team: 'web' }]);
  const stranger = actAs(t, 'stranger', [{ role: 'admin', team: 'data' }]);

  await expectError(t.anon('GET', '/v1/policies'), 401);
  await expectError(t.anon('PUT', '/v1/policies', { policy: {} }), 401);
  await expectError(t.req('PUT', '/v1/policies', { policy: { privileged: 'no' } }), 400, /^policy\.privileged: /);
  await expectError(t.req('PUT', '/v1/policies', { policy: { nope: true } }), 400, /nope/);
  await expectError(t.req('PUT', '/v1/policies', { policy: { capabilities: ['NET_RWA'] } }), 400, /"NET_RWA" is not a Linux capability/);
  await expectError(t.req('PUT', '/v1/policies', { team: 'ghost', policy: {} }), 404, /no team "ghost"/);

  const r = await t.req('PUT', '/v1/policies', { policy: { pidsLimit: 2048 } });
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual([r.json().layer.scope, r.json().layer.version], ['the installation', 1]);
  assert.equal((await t.req('PUT', '/v1/policies', { policy: { pidsLimit: 1024 } })).json().layer.version, 2);
  const history = (await t.req('GET', '/v1/policies?history=true')).json().layers;
  assert.deepEqual(history.map((l: { version: number; policy: object }) => [l.version, l.policy]), [[2, { pidsLimit: 1024 }], [1, { pidsLimit: 2048 }]]);

  // The installation's and an environment's layers are the owners'; a team's its admins' (tighten only).
  await expectError(lead('PUT', '/v1/policies', { env: 'prod', policy: { readOnly: true } }), 403, /owners' to set/);
  await expectError(ann('PUT', '/v1/policies', { team: 'web', policy: { readOnly: true } }), 403, /admin role of team web/);
  await expectError(stranger('PUT', '/v1/policies', { team: 'web', policy: { readOnly: true } }), 404, /no team "web"/);
  await expectError(lead('PUT', '/v1/policies', { team: 'web', policy: { privileged: true, pidsLimit: 4096 } }), 403, /not loosen it \(privileged, pidsLimit\)/);
  const tight = await lead('PUT', '/v1/policies', { team: 'web', env: 'prod', policy: { readOnly: true, pidsLimit: 512 } });
  assert.equal(tight.statusCode, 200, tight.body);
  assert.equal(tight.json().layer.scope, 'team web (env prod)');

  const shown = (await ann('GET', '/v1/policies?team=web&env=prod')).json();
  assert.equal(shown.effective.policy.pidsLimit, 512);
  assert.equal(shown.effective.from.pidsLimit, 'policy of team web (env prod)');
  assert.equal(shown.effective.from.memoryDefaultBytes, "Berth's built-in policy");
  assert.equal(shown.effective.shown.memoryDefaultBytes, '1g');
  // A stranger sees the installation's layer, not team web's.
  assert.deepEqual((await stranger('GET', '/v1/policies')).json().layers.map((l: { scope: string }) => l.scope), ['the installation']);
  await expectError(stranger('GET', '/v1/policies?team=web'), 404);
}));

test('deploy: refused keys listed at once with the policy, nothing stored; an exemption lets exactly that key through in that env; revocation and rollback re-refuse', () => withTestApi(async (t) => {
  t.auth.addTeam({ name: 'web', createdAt: 0, createdBy: 'admin' });
  t.addService('shop', 'test', 'web');
  t.auth.setAppTeam('shop', 'web');
  const lead = actAs(t, 'lead', [{ role: 'admin', team: 'web' }]);
  const ann = actAs(t, 'ann', [{ role: 'deployer', team: 'web' }]);
  const tester = actAs(t, 'tester', [{ role: 'admin', team: 'web', env: 'test' }]);
  const risky = { name: 'shop', services: { web: serviceSpec('web', { privileged: true, hostNamespaces: ['pid'], capAdd: ['SYS_PTRACE'] }) } };

  const deploymentsBefore = t.store.listDeployments({}).length;
  const callsBefore = t.calls.length;
  const r = await ann('POST', '/v1/apps/shop/deployments', { env: 'prod', spec: risky });
  assert.equal(r.statusCode, 400, r.body);
  const err = r.json().error;
  assert.deepEqual(err.details.refused.map((x: { path: string; key: string }) => `${x.path} ${x.key}`),
    ['services.web.cap_add[0] cap_add', 'services.web.pid pid', 'services.web.privileged privileged']);
  assert.match(err.message, /spec\.services\.web\.privileged: refused by Berth's built-in policy \(app shop of team web in env prod\): privileged containers are not allowed/);
  assert.equal(t.store.listDeployments({}).length, deploymentsBefore, 'no deployment recorded');
  assert.equal(t.calls.length, callsBefore, 'nothing queued');
  // A dry run says the same.
  await expectError(ann('POST', '/v1/apps/shop/deployments?dry_run=true', { env: 'prod', spec: risky }), 400, /privileged/);

  // Exemptions: the app's admins in that env, reasoned and expiring.
  const ex = { app: 'shop', service: 'web', env: 'prod', key: 'privileged', reason: 'vendor image needs it until v2', expires: '7d' };
  await expectError(t.anon('POST', '/v1/exemptions', ex), 401);
  await expectError(ann('POST', '/v1/exemptions', ex), 403, /admin role of team web/);
  await expectError(tester('POST', '/v1/exemptions', ex), 403, /admin role/);
  await expectError(lead('POST', '/v1/exemptions', { ...ex, reason: '' }), 400, /^reason: /);
  await expectError(lead('POST', '/v1/exemptions', { ...ex, expires: '365d' }), 400, /^expires: /);
  await expectError(lead('POST', '/v1/exemptions', { ...ex, key: 'root' }), 400, /^key: /);
  await expectError(actAs(t, 'stranger', [{ role: 'admin', team: 'data' }])('POST', '/v1/exemptions', ex), 404, /no app "shop"/);
  const made = await lead('POST', '/v1/exemptions', ex);
  assert.equal(made.statusCode, 201, made.body);
  const exemption = made.json().exemption;
  assert.deepEqual([exemption.status, exemption.expiresAt, exemption.createdBy], ['active', NOW + 7 * 86_400_000, 'lead']);
  await lead('POST', '/v1/exemptions', { ...ex, key: 'pid' });

  // Only cap_add is left; in test (no exemption there) privileged is still refused.
  const again = await ann('POST', '/v1/apps/shop/deployments', { env: 'prod', spec: risky });
  assert.deepEqual(again.json().error.details.refused.map((x: { key: string }) => x.key), ['cap_add']);
  const inTest = await ann('POST', '/v1/apps/shop/deployments', { env: 'test', spec: risky });
  assert.deepEqual(inTest.json().error.details.refused.map((x: { key: string }) => x.key).sort(), ['cap_add', 'pid', 'privileged']);
  const ok = await ann('POST', '/v1/apps/shop/deployments', { env: 'prod', spec: { name: 'shop', services: { web: serviceSpec('web', { privileged: true, hostNamespaces: ['pid'] }) } } });
  assert.equal(ok.statusCode, 202, ok.body);
  const stored = t.store.getDeployment(ok.json().deployment.id)!.spec.services.web!;
  assert.deepEqual(stored.exemptions?.map((e) => e.key).sort(), ['pid', 'privileged']);
  assert.deepEqual(stored.limits, { pids: 4096, memoryBytes: 1024 ** 3 });

  // Listed; revoked (by id); a revoked one no longer applies.
  const list = (await ann('GET', '/v1/exemptions?app=shop')).json().exemptions;
  assert.deepEqual(list.map((e: { key: string; status: string }) => `${e.key} ${e.status}`), ['privileged active', 'pid active']);
  await expectError(ann('DELETE', `/v1/exemptions/${exemption.id}`), 403);
  await expectError(lead('DELETE', '/v1/exemptions/nope'), 404);
  const rev = await lead('DELETE', `/v1/exemptions/${exemption.id}`);
  assert.deepEqual([rev.json().revoked, rev.json().exemption.status], [true, 'revoked']);
  assert.equal((await lead('DELETE', `/v1/exemptions/${exemption.id}`)).json().revoked, false);
  const after = await ann('POST', '/v1/apps/shop/deployments', { env: 'prod', spec: { name: 'shop', services: { web: serviceSpec('web', { privileged: true }) } } });
  assert.deepEqual(after.json().error.details.refused.map((x: { key: string }) => x.key), ['privileged']);

  // Rollback to a release the policy now refuses: refused, nothing changed.
  t.auth.setAppTeam('old', 'web');
  t.addService('old', 'prod', 'web');
  const svc = t.store.getService({ app: 'old', env: 'prod', service: 'web' })!;
  const r1 = t.store.getRelease(svc.releaseId)!;
  t.store.putService({ ...svc, releaseId: 'r-priv' }, { ...r1, id: 'r-priv', seq: 2, spec: { ...r1.spec, privileged: true } });
  t.store.putService({ ...svc, releaseId: 'r-3' }, { ...r1, id: 'r-3', seq: 3 });
  const before = t.store.getService({ app: 'old', env: 'prod', service: 'web' })!.releaseId;
  await expectError(ann('POST', '/v1/apps/old/rollback', { env: 'prod', service: 'web', to: '2' }), 400, /rollback to release 2 of web: services\.web\.privileged: refused/);
  assert.equal(before, 'r-3');
  assert.equal(t.store.getService({ app: 'old', env: 'prod', service: 'web' })!.releaseId, before);
}));
