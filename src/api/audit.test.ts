/**
 * The audit log over the API (src/api/audit.ts, store/audit-store.ts): every mutating request and
 * secret read recorded with who/where/what/result, secrets and passwords never; owners only; JSON
 * lines; a row edited in the SQLite file (its trigger dropped first, as an intruder would) is found by
 * verify; retention keeps the chain verifiable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expectError, NOW, withTestApi } from '../../test/helpers/api-inject.ts';
import { redact } from './audit.ts';

test('redact: passwords, tokens, values and secrets never reach the audit log; a spec is its service names', () => {
  assert.deepEqual(redact({ user: 'ann', password: 'p', entries: [{ key: 'K', value: 'v', secret: true }], spec: { name: 'shop', services: { web: {}, db: {} } } }),
    { user: 'ann', password: '[redacted]', entries: [{ key: 'K', value: '[redacted]', secret: '[redacted]' }], spec: { name: 'shop', services: ['web', 'db'] } });
});

test('audit: changes, failed logins and secret reads are recorded (who, from where, what, result); reads are not; owners only', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  await t.req('POST', '/v1/apps/shop/scale', { service: 'web', replicas: 2 });
  await t.req('POST', '/v1/apps/shop/scale', { service: 'nope', replicas: 2 });
  await t.req('PUT', '/v1/apps/shop/config', { entries: [{ key: 'DB_PASSWORD', value: 'hunter2-secret', secret: true }] });
  await t.req('GET', '/v1/apps/shop/config/DB_PASSWORD?reveal=true');
  await t.req('GET', '/v1/apps/shop');
  await t.anon('POST', '/v1/session', { user: 'mallory', password: 'guessing-password' });
  await t.req('POST', '/v1/users', { name: 'ann', password: 'correct horse battery' });
  const r = await t.req('GET', '/v1/audit');
  assert.equal(r.statusCode, 200, r.body);
  const entries = r.json().entries as { action: string; actor: string; actorName: string; ip: string; app: string; env: string; status: number; result: string; request: string }[];
  assert.deepEqual(entries.map((e) => [e.action, e.status]), [
    ['POST /v1/apps/:app/scale', 202], ['POST /v1/apps/:app/scale', 404], ['PUT /v1/apps/:app/config', 200], ['GET /v1/apps/:app/config/:key', 200],
    ['POST /v1/session', 401], ['POST /v1/users', 201],
  ]);
  assert.deepEqual([entries[0]!.actor, entries[0]!.actorName, entries[0]!.ip, entries[0]!.app, entries[0]!.env], ['admin', 'admin', '127.0.0.1', 'shop', '']);
  assert.match(entries[0]!.request, /"replicas":2/);
  assert.match(entries[1]!.result, /not_found/);
  assert.deepEqual([entries[4]!.actor, entries[4]!.actorName], ['anonymous', 'mallory']);
  const all = JSON.stringify(entries);
  for (const secret of ['hunter2-secret', 'guessing-password', 'correct horse battery']) assert.ok(!all.includes(secret), `${secret} leaked into the audit log`);
  // JSON lines, with the filters.
  const lines = await t.api.inject({ method: 'GET', url: '/v1/audit?format=jsonl&action=scale', headers: { authorization: 'Bearer test-token' } });
  assert.match(String(lines.headers['content-type']), /^application\/x-ndjson/);
  assert.deepEqual(lines.body.trim().split('\n').map((l) => JSON.parse(l).action), ['POST /v1/apps/:app/scale', 'POST /v1/apps/:app/scale']);
  await expectError(t.req('GET', '/v1/audit?limit=0'), 400, /^limit: /);
  await expectError(t.anon('GET', '/v1/audit'), 401);
  await expectError(t.anon('GET', '/v1/audit/verify'), 401);
  assert.deepEqual((await t.req('GET', '/v1/audit/verify')).json(), { ok: true, checked: 6, retainedFrom: 1 });
}));

test('audit verify: an edited and a removed row are each found, naming the row', () => withTestApi(async (t) => {
  for (let i = 0; i < 5; i++) await t.req('POST', '/v1/teams', { name: `team${i}` });
  assert.equal((await t.req('GET', '/v1/audit/verify')).json().ok, true);
  const db = new Database(join(t.dir, 'audit.db'));
  try {
    assert.throws(() => db.prepare("UPDATE audit SET actor_name = 'someone' WHERE seq = 3").run(), /append-only/);
    assert.throws(() => db.prepare('DELETE FROM audit WHERE seq = 3').run(), /append-only/);
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare("UPDATE audit SET actor_name = 'someone' WHERE seq = 3").run();
    const v = (await t.req('GET', '/v1/audit/verify')).json();
    assert.equal(v.ok, false);
    assert.deepEqual(v.firstBad, { seq: 3, reason: 'its contents do not match its hash (the row was edited)' });
    db.prepare("UPDATE audit SET actor_name = 'admin' WHERE seq = 3").run();
    assert.equal((await t.req('GET', '/v1/audit/verify')).json().ok, true);
    db.exec('DROP TRIGGER audit_no_delete');
    db.prepare('DELETE FROM audit WHERE seq = 2').run();
    assert.deepEqual((await t.req('GET', '/v1/audit/verify')).json().firstBad, { seq: 3, reason: 'row 2 is missing (found 3 next)' });
  } finally {
    db.close();
  }
  // Retention: pruning old rows keeps the rest verifiable.
  t.audit.prune(NOW + 1);
  assert.deepEqual(t.audit.verify(), { ok: true, checked: 0, retainedFrom: 6 });
  t.audit.append({ ts: NOW, actor: 'admin', actorName: 'admin', ip: '', action: 'x', app: '', env: '', request: '{}', result: 'ok', status: 200 });
  assert.equal(t.audit.verify().ok, true);
}));
