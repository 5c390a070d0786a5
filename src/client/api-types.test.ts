import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { API_TYPES, apiTypes, serverDocument } from '../../scripts/gen-api.ts';
import { target } from './client.ts';

test('api-types.ts is what `npm run gen:api` makes of the document the server builds (run it after changing a route schema)', async () => {
  const doc = await serverDocument();
  const want = await apiTypes(doc);
  const have = readFileSync(API_TYPES, 'utf8');
  if (have !== want) {
    const a = have.split('\n');
    const b = want.split('\n');
    const i = a.findIndex((line, n) => line !== b[n]);
    assert.fail(`src/client/api-types.ts is stale against GET /v1/openapi.json: run \`npm run gen:api\` (first difference at line ${i + 1}: ` +
      `${JSON.stringify(a[i])} vs ${JSON.stringify(b[i])})`);
  }
});

test('a schema change shows in the generated types (the file depends on the document, not only on the route list)', async () => {
  const doc = await serverDocument() as { paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, { schema: { properties: Record<string, unknown>; required: string[] } }> }> }>> };
  const ping = doc.paths['/v1/ping']!.get!.responses['200']!.content['application/json']!.schema;
  ping.properties.extra = { type: 'string' };
  ping.required.push('extra');
  const text = await apiTypes(doc);
  assert.notEqual(text, readFileSync(API_TYPES, 'utf8'));
  assert.match(text, /extra: string;/);
});

test('target: path parameters are encoded into the template, unset query values are left out', () => {
  assert.equal(target('/v1/apps/{app}/config/{key}', { path: { app: 'shop', key: 'a b/c' }, query: { env: 'prod', reveal: undefined, n: 3, e: '' } }),
    '/v1/apps/shop/config/a%20b%2Fc?env=prod&n=3');
  assert.equal(target('/v1/apps', {}), '/v1/apps');
  assert.throws(() => target('/v1/apps/{app}', {}), /the parameter app is missing/);
});
