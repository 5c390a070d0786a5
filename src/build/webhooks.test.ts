import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { deliveryId, parsePushEvent, verifyWebhook } from './webhooks.ts';

const raw = Buffer.from('{"ref":"refs/heads/main","after":"' + 'a'.repeat(40) + '"}');
const mac = (s: string) => createHmac('sha256', s).update(raw).digest('hex');

test('GitHub, Gitea and GitLab signatures are checked on the raw body', () => {
  assert.ok(verifyWebhook('github', { 'x-hub-signature-256': `sha256=${mac('s3')}` }, raw, 's3'));
  assert.ok(!verifyWebhook('github', { 'x-hub-signature-256': `sha256=${mac('other')}` }, raw, 's3'));
  assert.ok(!verifyWebhook('github', { 'x-hub-signature-256': `sha256=${mac('s3')}` }, Buffer.concat([raw, Buffer.from(' ')]), 's3'), 'a changed body fails');
  assert.ok(verifyWebhook('gitea', { 'x-gitea-signature': mac('s3') }, raw, 's3'));
  assert.ok(!verifyWebhook('gitea', {}, raw, 's3'));
  assert.ok(verifyWebhook('gitlab', { 'x-gitlab-token': 's3' }, raw, 's3'));
  assert.ok(!verifyWebhook('gitlab', { 'x-gitlab-token': 's4' }, raw, 's3'));
});

test('push events: ref and commit; GitLab prefers checkout_sha; junk is undefined', () => {
  assert.deepEqual(parsePushEvent('github', JSON.parse(raw.toString())), { ref: 'refs/heads/main', commit: 'a'.repeat(40) });
  assert.deepEqual(parsePushEvent('gitlab', { ref: 'refs/heads/x', after: 'b'.repeat(40), checkout_sha: 'c'.repeat(40) }), { ref: 'refs/heads/x', commit: 'c'.repeat(40) });
  assert.equal(parsePushEvent('github', { ref: 'refs/heads/main', after: 'nope' }), undefined);
  assert.equal(parsePushEvent('github', null), undefined);
});

test('delivery ids: GitHub, Gitea/Forgejo, GitLab; absent or implausible is undefined', () => {
  assert.equal(deliveryId('github', { 'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958' }), '72d3162e-cc78-11e3-81ab-4c9367dc0958');
  assert.equal(deliveryId('gitea', { 'x-gitea-delivery': 'abc' }), 'abc');
  assert.equal(deliveryId('gitea', { 'x-forgejo-delivery': 'f1' }), 'f1');
  assert.equal(deliveryId('gitlab', { 'x-gitlab-event-uuid': 'u1' }), 'u1');
  assert.equal(deliveryId('gitlab', { 'idempotency-key': 'k1', 'x-gitlab-event-uuid': 'u1' }), 'k1');
  assert.equal(deliveryId('github', {}), undefined);
  assert.equal(deliveryId('github', { 'x-github-delivery': 'a b' }), undefined);
  assert.equal(deliveryId('github', { 'x-gitea-delivery': 'abc' }), undefined, 'only the provider\'s own header');
});
