/**
 * In-process contract tests of the pool routes (src/api/pool-routes.ts) and of the pool admission on
 * the deploy path (deploy/deployments.ts) and `scale` (service-routes.ts): owners set quotas and
 * grants (audited), members cannot grant themselves, a non-owner sees only the pools open to them
 * with other teams' names hidden, a refused deploy or scale changes nothing and says why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actAs, expectError, serviceSpec, withTestApi } from '../../test/helpers/api-inject.ts';

const GIB = 1024 ** 3;

test('pools: 401 without a token; owners set quotas and grants (audited, before/after); members cannot; bad fields and unknown teams named', () => withTestApi(async (t) => {
  for (const team of ['web', 'data']) t.auth.addTeam({ name: team, createdAt: 0, createdBy: 'admin' });
  const lead = actAs(t, 'lead', [{ role: 'admin', team: 'web' }]);

  await expectError(t.anon('GET', '/v1/pools'), 401);
  await expectError(t.anon('PUT', '/v1/pools/default/quota', { instances: 5 }), 401);
  // A team's admin cannot grant their team a pool, nor set a quota, nor revoke another's grant.
  await expectError(lead('POST', '/v1/pools/gpu/grants/web'), 403, /needs the owner role \(cluster\.admin\)/);
  await expectError(lead('PUT', '/v1/pools/default/quota', { instances: 500 }), 403, /owner role/);
  await expectError(lead('DELETE', '/v1/pools/default/grants/*'), 403, /owner role/);
  assert.equal(t.auth.getPool('gpu'), undefined, 'nothing made by the refused grant');

  await expectError(t.req('PUT', '/v1/pools/default/quota', { cpus: 'many' }), 400, /^cpus: "many" is not a number/);
  await expectError(t.req('PUT', '/v1/pools/default/quota', { memory: '16x' }), 400, /^memory: "16x" is not a size/);
  await expectError(t.req('PUT', '/v1/pools/default/quota', { instances: 2.5 }), 400, /^instances: /);
  await expectError(t.req('PUT', '/v1/pools/default/quota', {}), 400, /nothing to change/);
  await expectError(t.req('PUT', '/v1/pools/default/quota', { instances: 5, teams: ['web'] }), 400, /teams/);
  await expectError(t.req('PUT', '/v1/pools/Big_Pool/quota', { instances: 5 }), 400, /^pool: a pool name/);
  await expectError(t.req('POST', '/v1/pools/gpu/grants/ghost'), 404, /no team "ghost"/);
  await expectError(t.req('POST', '/v1/pools/gpu/grants/We%20b'), 400, /^team: a team name, or \*/);
  await expectError(t.req('DELETE', '/v1/pools/nowhere/grants/web'), 404, /no pool "nowhere"/);

  const q = await t.req('PUT', '/v1/pools/gpu/quota', { cpus: 8, memory: '16g', instances: 50 });
  assert.equal(q.statusCode, 200, q.body);
  assert.deepEqual(q.json().before, {});
  assert.deepEqual(q.json().pool.quota, { nanoCpus: 8e9, memoryBytes: 16 * GIB, instances: 50 });
  assert.equal(q.json().pool.quotaShown, '8 CPUs, 16 GiB, 50 instances');
  // Absent keeps a limit, null removes it.
  const q2 = await t.req('PUT', '/v1/pools/gpu/quota', { cpus: null, instances: 40 });
  assert.deepEqual(q2.json().before, { nanoCpus: 8e9, memoryBytes: 16 * GIB, instances: 50 });
  assert.deepEqual(q2.json().pool.quota, { memoryBytes: 16 * GIB, instances: 40 });
  assert.deepEqual(q2.json().pool.teams, [], 'a new pool is closed');

  const g = await t.req('POST', '/v1/pools/gpu/grants/web');
  assert.equal(g.statusCode, 201, g.body);
  assert.deepEqual([g.json().granted, g.json().pool.teams], [true, ['web']]);
  assert.equal((await t.req('POST', '/v1/pools/gpu/grants/web')).statusCode, 200, 'granting again changes nothing');
  await t.req('POST', '/v1/pools/gpu/grants/data');
  const r = await t.req('DELETE', '/v1/pools/gpu/grants/data');
  assert.deepEqual([r.statusCode, r.json().revoked, r.json().pool.teams], [200, true, ['web']]);
  assert.equal((await t.req('DELETE', '/v1/pools/gpu/grants/data')).json().revoked, false);

  // A team that goes takes its pool grants with it (a team of the same name made later gets none).
  assert.equal((await t.req('DELETE', '/v1/teams/web')).statusCode, 204);
  assert.deepEqual(t.auth.getPool('gpu')!.teams, []);
  assert.deepEqual(t.auth.getPool('default')!.teams, ['*'], 'default is seeded open to every team');

  const audit = t.audit.list({ limit: 100 }).filter((e) => e.action.includes('/v1/pools/'));
  assert.deepEqual(audit.filter((e) => e.status === 403).map((e) => `${e.action} ${e.actorName}`), [
    'POST /v1/pools/:pool/grants/:team lead', 'PUT /v1/pools/:pool/quota lead', 'DELETE /v1/pools/:pool/grants/:team lead',
  ]);
  const changes = audit.filter((e) => e.status < 300);
  assert.deepEqual(changes.map((e) => e.action), [
    'PUT /v1/pools/:pool/quota', 'PUT /v1/pools/:pool/quota', 'POST /v1/pools/:pool/grants/:team', 'POST /v1/pools/:pool/grants/:team',
    'POST /v1/pools/:pool/grants/:team', 'DELETE /v1/pools/:pool/grants/:team', 'DELETE /v1/pools/:pool/grants/:team',
  ]);
  assert.match(changes[1]!.result, /"before":\{"nanoCpus":8000000000,"memoryBytes":17179869184,"instances":50\}/);
  assert.match(changes[1]!.request, /"cpus":null,"instances":40/);
  assert.ok(t.audit.verify().ok);
}));

test('GET /v1/pools: owners see every pool and grant; a member sees only the pools open to them, other teams\' names hidden', () => withTestApi(async (t) => {
  for (const team of ['web', 'data', 'ml']) t.auth.addTeam({ name: team, createdAt: 0, createdBy: 'admin' });
  t.addService('shop', 'prod', 'web', { replicas: 3, memoryBytes: GIB });
  t.auth.setAppTeam('shop', 'web');
  await t.req('POST', '/v1/pools/gpu/grants/ml');
  await t.req('POST', '/v1/pools/batch/grants/data');
  await t.req('POST', '/v1/pools/batch/grants/web');
  await t.req('PUT', '/v1/pools/default/quota', { instances: 20 });

  const all = (await t.req('GET', '/v1/pools')).json().pools;
  assert.deepEqual(all.map((p: { name: string; teams: string[] }) => `${p.name}: ${p.teams.join(',')}`), ['batch: data,web', 'default: *', 'gpu: ml']);
  const def = all.find((p: { name: string }) => p.name === 'default');
  assert.deepEqual(def.hosts, ['h1', 'h2', 'h3']);
  assert.ok(def.capacity.nanoCpus > 0 && def.capacity.memoryBytes > 0, JSON.stringify(def.capacity));
  assert.deepEqual(def.used, { instances: 3, nanoCpus: 0, memoryBytes: 3 * GIB });
  assert.deepEqual(def.quota, { instances: 20 });

  const ann = actAs(t, 'ann', [{ role: 'deployer', team: 'web' }]);
  const seen = (await ann('GET', '/v1/pools')).json().pools;
  assert.deepEqual(seen.map((p: { name: string; teams: string[] }) => `${p.name}: ${p.teams.join(',')}`), ['batch: web', 'default: *'], 'gpu hidden, team data not named');
  const nobody = actAs(t, 'nobody', []);
  assert.deepEqual((await nobody('GET', '/v1/pools')).json().pools.map((p: { name: string }) => p.name), ['default']);
}));

test('deploy and scale: a pool not granted to the app\'s team is 403 naming the pool and the teams; over quota 409 with quota, used, asked; nothing recorded; owners bypass grants, not quotas; body fields do not help', () => withTestApi(async (t) => {
  for (const team of ['web', 'data']) t.auth.addTeam({ name: team, createdAt: 0, createdBy: 'admin' });
  t.addService('blog', 'prod', 'web', { replicas: 4, memoryBytes: GIB });
  t.addService('shop', 'prod', 'web', { replicas: 1, memoryBytes: GIB });
  t.auth.setAppTeam('shop', 'web');
  const ann = actAs(t, 'ann', [{ role: 'deployer', team: 'web' }, { role: 'viewer', team: 'data' }]);
  const spec = (replicas: number) => ({ name: 'shop', services: { web: serviceSpec('web', { replicas, limits: { memoryBytes: GIB } }) } });
  const deployments = () => t.store.listDeployments({}).length;
  const before = deployments();
  const calls = t.calls.length;

  // x-berth.pool names a pool not granted to team web: refused, whichever pool default's grants say.
  const gpu = { name: 'shop', services: { web: serviceSpec('web', { replicas: 1, limits: { memoryBytes: GIB }, pool: 'gpu' }) } };
  await expectError(ann('POST', '/v1/apps/shop/deployments', { env: 'prod', spec: gpu }), 403, /^pool gpu is not granted to team web .*berth pool grant gpu web/);
  await t.req('POST', '/v1/pools/gpu/grants/web');
  assert.equal((await ann('POST', '/v1/apps/shop/deployments?dry_run=true', { env: 'prod', spec: gpu })).statusCode, 200, 'granted: admitted');
  await t.req('DELETE', '/v1/pools/gpu/grants/web');

  // default restricted to team data: web's deploys are refused (the dry run too), an owner's are not.
  await t.req('DELETE', '/v1/pools/default/grants/*');
  await t.req('POST', '/v1/pools/default/grants/data');
  const r = await ann('POST', '/v1/apps/shop/deployments', { env: 'prod', spec: spec(2) });
  assert.equal(r.statusCode, 403, r.body);
  assert.match(r.json().error.message, /^pool default is not granted to team web \(app shop belongs to team web; ann is in teams data, web\): web cannot be placed there/);
  await expectError(ann('POST', '/v1/apps/shop/deployments?dry_run=true', { env: 'prod', spec: spec(2) }), 403, /pool default is not granted/);
  // Fields of the body cannot make the caller someone else.
  await expectError(ann('POST', '/v1/apps/shop/deployments', { env: 'prod', spec: spec(2), actor: 'admin', pool: 'data' }), 403, /pool default is not granted/);
  await expectError(ann('POST', '/v1/apps/shop/scale', { env: 'prod', service: 'web', replicas: 3 }), 403, /pool default is not granted to team web/);
  assert.equal(deployments(), before, 'no deployment recorded');
  assert.equal(t.calls.length, calls, 'nothing queued');
  assert.equal(t.store.getService({ app: 'shop', env: 'prod', service: 'web' })!.replicas, 1);
  // Shrinking is always allowed.
  assert.equal((await ann('POST', '/v1/apps/shop/scale', { env: 'prod', service: 'web', replicas: 0 })).statusCode, 202);
  assert.equal((await t.req('POST', '/v1/apps/shop/deployments', { env: 'prod', spec: spec(1) })).statusCode, 202, 'the owner bypasses grants');

  // Quota: blog uses 4 of 6 instances.
  await t.req('POST', '/v1/pools/default/grants/web');
  await t.req('PUT', '/v1/pools/default/quota', { instances: 6, memory: '6g' });
  const n = deployments();
  const q = await ann('POST', '/v1/apps/shop/deployments', { env: 'prod', spec: spec(3) });
  assert.equal(q.statusCode, 409, q.body);
  assert.equal(q.json().error.message,
    "pool default's quota is exceeded: instances quota 6, used 4 by other apps and environments, asked 3 by shop/prod (web 3) — ask for less, or an owner raises it: berth pool quota default --instances N");
  assert.deepEqual(q.json().error.details, { pool: 'default', resource: 'instances', quota: 6, used: 4, asked: 3 });
  await expectError(t.req('POST', '/v1/apps/shop/deployments', { env: 'prod', spec: spec(3) }), 409, /instances quota 6/);
  await expectError(t.req('POST', '/v1/apps/shop/deployments', { env: 'prod', spec: { name: 'shop', services: { web: serviceSpec('web', { replicas: 2, limits: { memoryBytes: 2 * GIB } }) } } }), 409,
    /memory quota 6 GiB, used 4 GiB .* asked 4 GiB by shop\/prod \(web 2 × 2 GiB\)/);
  await expectError(ann('POST', '/v1/apps/shop/scale', { env: 'prod', service: 'web', replicas: 3, force: true }), 409, /instances quota 6, used 4 .* asked 3/);
  assert.equal(deployments(), n, 'no deployment recorded');
  assert.equal((await ann('POST', '/v1/apps/shop/deployments', { env: 'prod', spec: spec(2) })).statusCode, 202, 'within the quota');
  // Another environment counts against the same pool.
  await expectError(ann('POST', '/v1/apps/shop/deployments', { env: 'test', spec: spec(1) }), 409, /instances quota 6, used 6 by other apps and environments, asked 1 by shop\/test/);
}));
