/**
 * In-process contract tests of the webhook routes (an app's source remote and the deliveries of
 * GitHub, Gitea/Forgejo and GitLab): who may call them, what bad input answers. Signed deliveries that
 * build and deploy are end-to-end tests: test/webhooks.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { expectError, withTestApi } from '../../test/helpers/api-inject.ts';

test('webhook source: 401, 400 for a local path or option as remote and a short secret, the happy path names the hook URLs', () => withTestApi(async (t) => {
  await expectError(t.anon('PUT', '/v1/apps/shop/source', { remote: 'https://git.example/shop.git' }), 401);
  await expectError(t.req('PUT', '/v1/apps/shop/source', { remote: '/etc' }), 400, /remote/);
  await expectError(t.req('PUT', '/v1/apps/shop/source', { remote: '--upload-pack=touch /tmp/x' }), 400, /remote/);
  await expectError(t.req('PUT', '/v1/apps/shop/source', { remote: 'https://git.example/shop.git', secret: 'short' }), 400, /^secret: /);
  assert.deepEqual(t.calls, []);
  const ok = await t.req('PUT', '/v1/apps/shop/source', { remote: 'https://git.example/shop.git', secret: 'a-secret-of-enough-length' });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.deepEqual(ok.json().webhooks, ['github', 'gitea', 'gitlab'].map((p) => `http://127.0.0.1:1/v1/hooks/${p}/shop`));
  assert.deepEqual(t.calls, ['repo shop', 'source shop']);
}));

test('webhooks: a delivery for an app without a source fails like a bad signature (401), not the API token; 400 for an unknown provider', () => withTestApi(async (t) => {
  await expectError(t.anon('POST', '/v1/hooks/github/shop', { ref: 'refs/heads/main' }), 401, /webhook signature does not match/);
  await expectError(t.req('POST', '/v1/hooks/github/shop', { ref: 'refs/heads/main' }), 401, /webhook signature does not match/);
  await expectError(t.anon('POST', '/v1/hooks/bitbucket/shop', {}), 400, /^provider: /);
  assert.deepEqual(t.calls, []);
}));

test('webhooks: a GitHub push signed with the source\'s secret queues one build (202); the same delivery again is 409; a wrong signature is 401; a tag push is ignored', () => withTestApi(async (t) => {
  const secret = 'a-secret-of-enough-length';
  assert.equal((await t.req('PUT', '/v1/apps/shop/source', { remote: 'https://git.example/shop.git', secret })).statusCode, 200);
  const commit = 'a'.repeat(40);
  const send = (body: object, id: string, key = secret) => {
    const raw = JSON.stringify(body);
    return t.api.inject({ method: 'POST', url: '/v1/hooks/github/shop', payload: raw, headers: {
      'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': id,
      'x-hub-signature-256': `sha256=${createHmac('sha256', key).update(raw).digest('hex')}`,
    } });
  };
  const push = { ref: 'refs/heads/main', after: commit };
  await expectError(send(push, 'd0', 'not-the-secret-at-all'), 401, /webhook signature does not match/);
  const ok = await send(push, 'd1');
  assert.equal(ok.statusCode, 202, ok.body);
  assert.deepEqual([ok.json().accepted, ok.json().branch, ok.json().commit], [true, 'main', commit]);
  await expectError(send(push, 'd1'), 409, /already received/);
  const tag = await send({ ref: 'refs/tags/v1', after: commit }, 'd2');
  assert.equal(tag.statusCode, 202, tag.body);
  assert.deepEqual(tag.json(), { ignored: 'not a branch push' });
  assert.deepEqual(t.calls.filter((c) => c.startsWith('build')), ['build shop main aaaaaaa (webhook)']);
}));
