/**
 * Every route fastify registers declares its permission in ROUTE_PERMISSIONS (a new route without
 * one fails here), and every declaration names a registered route.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROUTE_PERMISSIONS } from './permissions.ts';
import { testApi } from '../../test/helpers/api-inject.ts';

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
