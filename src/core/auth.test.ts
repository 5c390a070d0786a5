import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allows, capGrants, covers, mayGrant, OWNER_GRANT, type Action } from './auth.ts';

const g = (role: string, team: string, app = '*', env = '*') => ({ role, team, app, env }) as Parameters<typeof covers>[0];

test('allows: roles are cumulative, scoped by team, app and environment; test never implies prod', () => {
  const dev = [g('deployer', 'a', '*', 'test'), g('viewer', 'a')];
  const shop = { app: 'shop', team: 'a' };
  const cases: [Action, { app: string; team: string | undefined; env?: string }, boolean][] = [
    ['app.read', shop, true],
    ['app.read', { ...shop, env: 'prod' }, true],
    ['app.deploy', { ...shop, env: 'test' }, true],
    ['app.deploy', { ...shop, env: 'prod' }, false],
    ['app.operate', { ...shop, env: 'test' }, true],
    ['app.logs', { ...shop, env: 'prod' }, false],
    ['app.config', { ...shop, env: 'test' }, false],
    ['app.read', { app: 'blog', team: 'b' }, false],
    ['app.read', { app: 'orphan', team: undefined }, false],
    ['app.admin', { ...shop, env: '*' }, false],
    ['cluster.read', shop, false],
  ];
  for (const [action, target, want] of cases) assert.equal(allows(dev, action, target), want, `${action} ${JSON.stringify(target)}`);
  assert.equal(allows([g('admin', 'a', 'shop', '*')], 'app.admin', { ...shop, env: '*' }), true);
  assert.equal(allows([g('admin', 'a', 'shop', 'prod')], 'app.admin', { ...shop, env: '*' }), false, 'removing every env needs env *');
  assert.equal(allows([g('operator', 'a', 'shop')], 'app.deploy', { ...shop, env: 'test' }), false, 'operators deploy no new code');
  assert.equal(allows([OWNER_GRANT], 'cluster.admin'), true);
  assert.equal(allows([OWNER_GRANT], 'app.admin', { app: 'orphan', team: undefined, env: '*' }), true);
  assert.equal(allows([g('admin', 'a')], 'any'), true);
  assert.equal(allows([], 'any'), false);
});

test('covers, capGrants, mayGrant: nobody gives more than they hold', () => {
  assert.equal(covers(g('maintainer', 'a'), g('deployer', 'a', 'shop', 'prod')), true);
  assert.equal(covers(g('deployer', 'a', '*', 'test'), g('deployer', 'a', 'shop', 'prod')), false);
  assert.equal(covers(g('admin', 'a'), g('viewer', 'b')), false);
  assert.equal(covers(g('admin', 'a'), g('owner', '*')), false);
  assert.deepEqual(capGrants([g('deployer', 'a', 'shop', 'prod'), g('deployer', 'b')], [g('maintainer', 'a')]), [g('deployer', 'a', 'shop', 'prod')]);
  assert.equal(mayGrant([g('admin', 'a')], g('deployer', 'a', '*', 'prod')), true);
  assert.equal(mayGrant([g('maintainer', 'a')], g('viewer', 'a')), false, 'granting needs admin');
  assert.equal(mayGrant([g('admin', 'a', 'shop')], g('viewer', 'a')), false, 'an app admin cannot grant the whole team');
  assert.equal(mayGrant([OWNER_GRANT], g('owner', '*')), true);
});
