/**
 * In-process contract tests of the event routes (src/api/event-routes.ts): no token → 401, bad input → 400 naming the field, unknown →
 * 404, conflict → 409, the happy path; a refused request changes nothing.
 */
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { NOW, expectError, openSse, withTestApi } from '../../test/helpers/api-inject.ts';
import { STREAM_MESSAGES } from './responses.ts';

test('events and logs: 400 naming the parameter, 404 for an unknown app, the happy paths', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  t.store.addEvent({ app: 'shop', env: 'prod', service: 'web', instance: '', kind: 'test.event', message: 'hello' });
  await expectError(t.req('GET', '/v1/events?limit=0'), 400, /^limit: /);
  await expectError(t.req('GET', '/v1/events?since=yesterday'), 400, /since "yesterday" is not a time/);
  await expectError(t.req('GET', '/v1/events?env=prod'), 400, /give app too/);
  await expectError(t.req('GET', '/v1/events?app=shpo'), 404, /did you mean "shop"/);
  const ev = (await t.req('GET', '/v1/events?app=shop')).json();
  assert.deepEqual(ev.events.map((e: { kind: string }) => e.kind), ['test.event']);
  assert.equal(ev.last, ev.events[0].id);
  // A time window (a release's events): since inclusive, until exclusive; a bad until is refused in words.
  const kinds = async (q: string) => (await t.req('GET', `/v1/events?app=shop&${q}`)).json().events.map((e: { kind: string }) => e.kind);
  assert.deepEqual(await kinds(`since=${NOW}&until=${NOW + 1}`), ['test.event']);
  assert.deepEqual(await kinds(`until=${NOW}`), []);
  assert.deepEqual(await kinds(`since=${NOW + 1}`), []);
  assert.deepEqual(await kinds(`until=${new Date(NOW + 1000).toISOString()}`), ['test.event']);
  await expectError(t.req('GET', '/v1/events?until=tomorrow'), 400, /until "tomorrow" is not a time/);
  await expectError(t.req('GET', '/v1/events/stream?after=-1'), 400, /^after: /);
  await expectError(t.req('GET', '/v1/apps/shop/logs?before=abc'), 400, /^before: not a log cursor/);
  await expectError(t.req('GET', '/v1/apps/shop/logs?level=loud'), 400, /^level: /);
  await expectError(t.req('GET', '/v1/apps/shop/logs?env=staging'), 404, /staging/);
  assert.deepEqual((await t.req('GET', '/v1/apps/shop/logs')).json(), { lines: [] });
}));

test('events stream: woken by the store write itself, in order, only the app asked for; from a cursor without gaps', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  t.addService('other', 'prod', 'web');
  const ev = (app: string, kind: string) => t.store.addEvent({ app, env: 'prod', service: 'web', instance: '', kind, message: kind });
  const before = ev('shop', 'before.stream');
  const s = await openSse(t, '/v1/events/stream?app=shop');
  assert.equal(s.status, 200);
  ev('other', 'not.mine');
  const mine = ev('shop', 'first');
  ev('shop', 'second');
  const first = await s.next();
  assert.deepEqual([first.event, first.id], ['first', mine.id], 'nothing from before the stream, nothing of another app');
  assert.equal((await s.next()).event, 'second');
  s.close();
  // A cursor: everything after it, oldest first, even more than one page (500) of it.
  for (let i = 0; i < 620; i++) ev('shop', `burst.${i}`);
  const c = await openSse(t, `/v1/events/stream?app=shop&after=${before.id}`);
  const last = await c.next((m) => m.event === 'burst.619');
  const kinds = c.all.map((m) => m.event);
  assert.deepEqual(kinds.slice(0, 3), ['first', 'second', 'burst.0']);
  assert.equal(kinds.length, 622, 'no gap between pages');
  assert.ok(last.id! > mine.id);
  for (const m of c.all) STREAM_MESSAGES['GET /v1/events/stream']!['(event kind)']!.parse(m.data);
  c.close();
}));

test('events stream of a team member: only the apps they may see; another team\'s app is a 404 like an unknown one', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  t.addService('blog', 'prod', 'web');
  for (const team of ['a', 'b']) t.auth.addTeam({ name: team, createdAt: 0, createdBy: 'admin' });
  t.auth.setAppTeam('shop', 'a');
  t.auth.setAppTeam('blog', 'b');
  t.auth.addUser({ id: 'u-ann', name: 'ann', passwordHash: '', createdAt: 0, createdBy: 'admin' });
  t.auth.addGrant({ id: 'g-ann', subject: 'user:u-ann', role: 'viewer', team: 'a', app: '*', env: '*', createdAt: 0, createdBy: 'admin' });
  const session = 'berths_ann-session-token';
  t.auth.addSession({ id: createHash('sha256').update(session).digest('hex'), userId: 'u-ann', kind: 'cli', csrfHash: '', createdAt: 0, expiresAt: NOW + 3600_000, ip: '' });
  const ev = (app: string, kind: string) => t.store.addEvent({ app, env: app ? 'prod' : '', service: app ? 'web' : '', instance: '', kind, message: kind });
  const s = await openSse(t, '/v1/events/stream', session);
  assert.equal(s.status, 200);
  const before = ev('blog', 'not.hers');
  ev('', 'installation.wide');
  const mine = ev('shop', 'hers');
  const first = await s.next();
  assert.deepEqual([first.event, first.id], ['hers', mine.id], 'neither another team\'s app nor installation-wide events');
  s.close();
  // From a cursor too: what she may not see is skipped, never sent.
  const c = await openSse(t, `/v1/events/stream?after=${before.id - 1}`, session);
  assert.equal((await c.next()).event, 'hers');
  assert.deepEqual(c.all.map((m) => m.event), ['hers']);
  c.close();
  const other = await openSse(t, '/v1/events/stream?app=blog', session);
  assert.equal(other.status, 404);
  other.close();
}));
