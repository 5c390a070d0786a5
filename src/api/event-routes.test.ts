/**
 * In-process contract tests of the event routes (src/api/event-routes.ts): no token → 401, bad input → 400 naming the field, unknown →
 * 404, conflict → 409, the happy path; a refused request changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, withTestApi } from '../../test/helpers/api-inject.ts';

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
  await expectError(t.req('GET', '/v1/events/stream?after=-1'), 400, /^after: /);
  await expectError(t.req('GET', '/v1/apps/shop/logs?before=abc'), 400, /^before: not a log cursor/);
  await expectError(t.req('GET', '/v1/apps/shop/logs?level=loud'), 400, /^level: /);
  await expectError(t.req('GET', '/v1/apps/shop/logs?env=staging'), 404, /staging/);
  assert.deepEqual((await t.req('GET', '/v1/apps/shop/logs')).json(), { lines: [] });
}));
