/**
 * In-process contract tests of the git routes (smart HTTP, the pre-receive hook, builds): who may call
 * them, what bad input and unknown names answer (the webhook routes: webhook-routes.test.ts). Pushes
 * themselves (git http-backend, builds) are end-to-end tests: test/git-push.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HOOK_TOKEN, TOKEN, expectError, withTestApi } from '../../test/helpers/api-inject.ts';

test('git smart HTTP: 401 with a Basic challenge without a token; 404 for an unknown repository or a dumb-protocol request', () => withTestApi(async (t) => {
  const anon = await t.anon('GET', '/git/shop.git/info/refs?service=git-upload-pack');
  assert.equal(anon.statusCode, 401);
  assert.match(String(anon.headers['www-authenticate']), /^Basic realm="Berth"/);
  await expectError(t.anon('POST', '/git/shop.git/git-receive-pack'), 401);
  // git sends the token as a Basic password.
  const basic = `Basic ${Buffer.from(`berth:${TOKEN}`).toString('base64')}`;
  const r = await t.api.inject({ method: 'GET', url: '/git/shop.git/info/refs?service=git-upload-pack', headers: { authorization: basic } });
  assert.equal(r.statusCode, 404, r.body);
  assert.match(r.json().error.message, /no git repository for app "shop": push to it first/);
  await expectError(t.req('GET', '/git/shop.git/info/refs'), 404, /only the smart HTTP protocol/);
  await expectError(t.req('GET', '/git/Shop/x'), 404, /no git endpoint \/git\/Shop\/x: push to \/git\/APP\.git/);
  assert.deepEqual(t.calls, []);
}));

test('pre-receive hook: only the hook token (the API token is not enough); 400 without the app', () => withTestApi(async (t) => {
  await expectError(t.anon('POST', '/v1/git/hooks/pre-receive?app=shop'), 401, /invalid hook token/);
  await expectError(t.req('POST', '/v1/git/hooks/pre-receive?app=shop'), 401, /invalid hook token/);
  const r = await t.api.inject({ method: 'POST', url: '/v1/git/hooks/pre-receive', headers: { 'x-berth-hook-token': HOOK_TOKEN } });
  assert.equal(r.statusCode, 400, r.body);
  assert.match(r.json().error.message, /^app: /);
}));

test('build routes: 401, 400 naming the parameter, 404 for unknown builds and apps, 409 cancelling a finished build, the happy path', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  const build = { app: 'shop', branch: 'main', env: 'prod', commit: 'c0ffee', images: {}, createdAt: 1 };
  t.builds.push({ ...build, id: 'b1', status: 'succeeded', message: 'deployed' }, { ...build, id: 'b2', status: 'running', message: '' });
  for (const [m, u] of [['GET', '/v1/builds'], ['GET', '/v1/builds/b1'], ['POST', '/v1/builds/b1/cancel'], ['GET', '/v1/builds/b1/logs']] as const) {
    await expectError(t.anon(m, u), 401);
  }
  await expectError(t.req('GET', '/v1/builds?limit=0'), 400, /^limit: /);
  await expectError(t.req('GET', '/v1/builds?app=shpo'), 404, /did you mean "shop"/);
  await expectError(t.req('GET', '/v1/builds/nope'), 404, /no build nope/);
  await expectError(t.req('GET', '/v1/builds/b1/logs?follow=maybe'), 400, /^follow: /);
  await expectError(t.req('POST', '/v1/builds/b1/cancel'), 409, /build b1 succeeded before it could be cancelled/);
  assert.deepEqual((await t.req('GET', '/v1/builds?app=shop')).json().builds.map((b: { id: string }) => b.id), ['b1', 'b2']);
  assert.equal((await t.req('GET', '/v1/builds/b1')).json().build.status, 'succeeded');
  assert.equal((await t.req('GET', '/v1/builds/b1/logs')).body, 'log of b1\n');
  assert.equal((await t.req('POST', '/v1/builds/b2/cancel')).json().build.status, 'cancelled');
}));

