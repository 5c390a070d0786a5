import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { parsePushEvent, verifyWebhook } from './webhooks.ts';

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
