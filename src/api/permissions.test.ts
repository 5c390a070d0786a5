/**
 * Every route fastify registers declares its permission in ROUTE_PERMISSIONS (a new route without
 * one fails here), and every declaration names a registered route.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ROUTE_PERMISSIONS } from './permissions.ts';
import { ACTION_ROLE, ROLES, roleAtLeast } from '../core/auth.ts';
import { NOW, serviceSpec, testApi } from '../../test/helpers/api-inject.ts';

test('every registered route has a permission in ROUTE_PERMISSIONS, and every entry is registered', async () => {
  const t = await testApi();
  try {
    const doc = (await t.req('GET', '/v1/openapi.json')).json() as { paths: Record<string, Record<string, unknown>> };
    const registered = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) registered.add(`${method.toUpperCase()} ${path.replace(/\{path\}$/, '*').replace(/\{(\w+)\}/g, ':$1')}`);
    }
    const missing = [...registered].filter((k) => !ROUTE_PERMISSIONS[k]);
    assert.deepEqual(missing, [], 'routes without a permission: declare them in src/api/permissions.ts');
    for (const key of Object.keys(ROUTE_PERMISSIONS)) {
      const [method, url] = key.split(' ') as [string, string];
      assert.ok(t.api.hasRoute({ method: method as 'GET', url }), `${key} is declared in ROUTE_PERMISSIONS but no module registers it`);
    }
  } finally {
    await t.close();
  }
});

/** A concrete request for every declared route, against app `app` (its deployment `dep`, build `build`). */
function requestFor(key: string, app: string, ids: { dep: string; build: string }): { method: 'GET' | 'POST' | 'PUT' | 'DELETE'; url: string; payload?: object } {
  const [method, pattern] = key.split(' ') as ['GET' | 'POST' | 'PUT' | 'DELETE', string];
  let url = pattern.replace(':app', app).replace(':team', 'a').replace(':env', 'prod').replace(':service', 'web').replace(':key', 'K')
    .replace(':provider', 'github').replace(':name', 'x');
  if (url.startsWith('/v1/deployments/')) url = url.replace(':id', ids.dep);
  else if (url.startsWith('/v1/builds/')) url = url.replace(':id', ids.build);
  else url = url.replace(':id', 'r-none');
  if (url === '/git/*') url = `/git/${app}.git/info/refs?service=git-upload-pack`;
  // Lists name the app in the query: asking about another team's app is refused like an unknown one.
  if (ROUTE_PERMISSIONS[key]!.app === 'query') url += `?app=${app}`;
  const payload = method === 'GET' ? undefined : key.endsWith('/promote') ? { from: 'test', to: 'prod' } : { env: 'prod' };
  return { method, url, ...(payload ? { payload } : {}) };
}

test('the role matrix: every route × every role on team a, against its own app and another team\'s (404, never 403)', async (ctx) => {
  const t = Object.assign(await testApi(), { diagnostic: (m: string) => ctx.diagnostic(m) });
  try {
    t.addService('shop', 'prod', 'web');
    t.addService('blog', 'prod', 'web');
    const build = { branch: 'main', env: 'prod', commit: 'c0ffee', images: {}, createdAt: 1, status: 'succeeded', message: '' };
    t.builds.push({ ...build, id: 'b-shop', app: 'shop' }, { ...build, id: 'b-blog', app: 'blog' });
    for (const team of ['a', 'b']) t.auth.addTeam({ name: team, createdAt: 0, createdBy: 'admin' });
    t.auth.setAppTeam('shop', 'a');
    t.auth.setAppTeam('blog', 'b');
    const deps = { shop: 'd-shop', blog: 'd-blog' };
    for (const [app, id] of Object.entries(deps)) {
      t.store.createDeployment({ id, app, env: 'prod', spec: { name: app, services: {} } as never, warnings: [], status: 'succeeded', message: '', createdAt: 1, createdBy: 'admin', releases: {} });
    }
    // One user per role, each with that role on team a only; owners on everything.
    const tokens: Record<string, string> = {};
    for (const role of ROLES) {
      const id = `u-${role}`;
      t.auth.addUser({ id, name: role, passwordHash: '', createdAt: 0, createdBy: 'admin' });
      t.auth.addGrant({ id: `g-${role}`, subject: `user:${id}`, role, team: role === 'owner' ? '*' : 'a', app: '*', env: '*', createdAt: 0, createdBy: 'admin' });
      const s = `berths_${role}-session-token`;
      t.auth.addSession({ id: createHash('sha256').update(s).digest('hex'), userId: id, kind: 'cli', csrfHash: '', createdAt: 0, expiresAt: NOW + 3600_000, ip: '' });
      tokens[role] = s;
    }
    let checked = 0;
    for (const [key, perm] of Object.entries(ROUTE_PERMISSIONS)) {
      // Logging out would end the session the next checks use (auth-routes.test.ts covers it).
      if ((perm.auth && perm.auth !== 'credential') || key === 'DELETE /v1/session') continue;
      // Streams never end by themselves: only their authorization is checked (a denied one answers at once).
      // (A finished deployment's stream and an unknown purge's answer at once, so those are checked whole.)
      const streaming = key === 'GET /v1/events/stream' || key === 'GET /v1/registry/:env/:service/stream' || key === 'GET /v1/apps/:app/stream';
      for (const role of ROLES) {
        for (const app of ['shop', 'blog']) {
          const want = perm.action === 'any' || (perm.action.startsWith('cluster.') ? role === 'owner'
            : role === 'owner' || (app === 'shop' && roleAtLeast(role, ACTION_ROLE[perm.action])));
          if (streaming && want) continue;
          const r = requestFor(key, app, { dep: deps[app as 'shop'], build: `b-${app}` });
          t.reached.length = 0;
          // Owners' requests (assign, unassign) move apps between teams: put them back each time.
          t.auth.setAppTeam('shop', 'a');
          t.auth.setAppTeam('blog', 'b');
          const res = await t.api.inject({ ...r, headers: { authorization: `Bearer ${tokens[role]}` } });
          const got = t.reached.includes(key);
          assert.equal(got, want, `${role} → ${key} on ${app}: ${want ? 'allowed' : 'denied'} expected, got ${res.statusCode} ${res.body.slice(0, 200)}`);
          if (!want) {
            // Another team's app is as invisible as one that does not exist; one's own is a 403 that names the role.
            const hidden = app === 'blog' && !perm.action.startsWith('cluster.') && perm.action !== 'any';
            assert.equal(res.statusCode, hidden ? 404 : 403, `${role} → ${key} on ${app}: ${res.body}`);
            assert.doesNotMatch(res.body, /did you mean/);
          }
          checked++;
        }
      }
    }
    assert.ok(checked > 500, `${checked} checks`);
    t.diagnostic?.(`role matrix: ${checked} route × role × app checks over ${Object.keys(ROUTE_PERMISSIONS).length} routes`);
  } finally {
    await t.close();
  }
});

test('environments: a deployer of test cannot deploy, scale or restart prod; promote checks its target', async () => {
  const t = await testApi();
  try {
    t.addService('shop', 'prod', 'web');
    t.addService('shop', 'test', 'web');
    t.auth.addTeam({ name: 'a', createdAt: 0, createdBy: 'admin' });
    t.auth.setAppTeam('shop', 'a');
    t.auth.addUser({ id: 'u1', name: 'dev', passwordHash: '', createdAt: 0, createdBy: 'admin' });
    t.auth.addGrant({ id: 'g1', subject: 'user:u1', role: 'deployer', team: 'a', app: 'shop', env: 'test', createdAt: 0, createdBy: 'admin' });
    const s = 'berths_dev-session';
    t.auth.addSession({ id: createHash('sha256').update(s).digest('hex'), userId: 'u1', kind: 'cli', csrfHash: '', createdAt: 0, expiresAt: NOW + 1, ip: '' });
    const as = (method: 'GET' | 'POST', url: string, payload?: object) =>
      t.api.inject({ method, url, headers: { authorization: `Bearer ${s}` }, ...(payload ? { payload } : {}) });
    assert.equal((await as('POST', '/v1/apps/shop/scale', { env: 'test', service: 'web', replicas: 2 })).statusCode, 202);
    const prod = await as('POST', '/v1/apps/shop/scale', { service: 'web', replicas: 2 });
    assert.equal(prod.statusCode, 403, 'no env means prod, never "any"');
    assert.match(prod.json().error.message, /dev may not do this to shop in prod: it needs the operator role there/);
    assert.equal((await as('POST', '/v1/apps/shop/restart', { env: 'prod' })).statusCode, 403);
    assert.equal((await as('POST', '/v1/apps/shop/promote', { from: 'prod', to: 'test' })).statusCode !== 403, true);
    assert.equal((await as('POST', '/v1/apps/shop/promote', { from: 'test', to: 'prod' })).statusCode, 403);
    assert.equal((await as('GET', '/v1/apps/shop/logs?env=prod')).statusCode, 403);
    assert.equal((await as('GET', '/v1/apps/shop')).statusCode, 200, 'reading the app needs a role in any of its environments');
    assert.equal(t.store.getService({ app: 'shop', env: 'prod', service: 'web' })!.replicas, 1);
  } finally {
    await t.close();
  }
});

test('a new app deployed by a team member becomes the team\'s; a refused deploy claims nothing; another team cannot take it', async () => {
  const t = await testApi();
  try {
    for (const team of ['a', 'b']) t.auth.addTeam({ name: team, createdAt: 0, createdBy: 'admin' });
    const session = (user: string, team: string) => {
      t.auth.addUser({ id: user, name: user, passwordHash: '', createdAt: 0, createdBy: 'admin' });
      t.auth.addGrant({ id: `g-${user}`, subject: `user:${user}`, role: 'deployer', team, app: '*', env: '*', createdAt: 0, createdBy: 'admin' });
      const s = `berths_${user}`;
      t.auth.addSession({ id: createHash('sha256').update(s).digest('hex'), userId: user, kind: 'cli', csrfHash: '', createdAt: 0, expiresAt: NOW + 1, ip: '' });
      return (payload: object) => t.api.inject({ method: 'POST', url: '/v1/apps/new/deployments', headers: { authorization: `Bearer ${s}` }, payload });
    };
    const ann = session('ann', 'a');
    const bob = session('bob', 'b');
    const spec = { name: 'new', services: { web: serviceSpec('web') } };
    assert.equal((await ann({ spec: { name: 'new', services: {} } })).statusCode, 400);
    assert.equal(t.auth.appTeam('new'), undefined, 'a refused deploy claims nothing');
    const ok = await ann({ spec });
    assert.equal(ok.statusCode, 202, ok.body);
    assert.equal(t.auth.appTeam('new'), 'a');
    const other = await bob({ spec });
    assert.equal(other.statusCode, 404, other.body);
    assert.equal(t.auth.appTeam('new'), 'a');
  } finally {
    await t.close();
  }
});

test('metrics and top: a team member reads their apps; installation-wide series are the owners\'', async () => {
  const t = await testApi();
  try {
    t.auth.addTeam({ name: 'a', createdAt: 0, createdBy: 'admin' });
    t.addService('shop', 'prod', 'web');
    t.auth.setAppTeam('shop', 'a');
    t.auth.addUser({ id: 'u1', name: 'dev', passwordHash: '', createdAt: 0, createdBy: 'admin' });
    t.auth.addGrant({ id: 'g1', subject: 'user:u1', role: 'viewer', team: 'a', app: '*', env: '*', createdAt: 0, createdBy: 'admin' });
    const s = 'berths_dev-metrics';
    t.auth.addSession({ id: createHash('sha256').update(s).digest('hex'), userId: 'u1', kind: 'cli', csrfHash: '', createdAt: 0, expiresAt: NOW + 1, ip: '' });
    const as = (url: string) => t.api.inject({ method: 'GET', url, headers: { authorization: `Bearer ${s}` } });
    const wide = await as('/v1/metrics/query?kind=cpu');
    assert.equal(wide.statusCode, 400);
    assert.match(wide.json().error.message, /^app: give the app whose metrics to read/);
    // The harness's metrics store is inert: that the handlers are reached is what is checked here.
    t.reached.length = 0;
    await t.req('GET', '/v1/metrics/query?kind=cpu');
    await as('/v1/top');
    await as('/v1/metrics/query?kind=cpu&app=shop');
    assert.deepEqual(t.reached, ['GET /v1/metrics/query', 'GET /v1/top', 'GET /v1/metrics/query']);
  } finally {
    await t.close();
  }
});
