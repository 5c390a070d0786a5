import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROUTE_DOCS, openApiDocument, openApiPath } from './openapi.ts';
import { RESPONSES } from './responses.ts';

import { testApi } from '../../test/helpers/api-inject.ts';

test('openApiPath: fastify parameters and the wildcard become OpenAPI path parameters', () => {
  assert.deepEqual(openApiPath('/v1/apps/:app/config/:key'), { path: '/v1/apps/{app}/config/{key}', params: ['app', 'key'] });
  assert.deepEqual(openApiPath('/git/*'), { path: '/git/{path}', params: ['path'] });
  assert.deepEqual(openApiPath('/v1/ping'), { path: '/v1/ping', params: [] });
});

test('every registered route is in /v1/openapi.json, documented; every documented route is registered', async () => {
  const t = await testApi();
  try {
    // The document lists the routes as fastify registered them (buildApi's onRoute hook sees every
    // registration, in every module); fastify's own table confirms each documented route exists.
    const res = await t.req('GET', '/v1/openapi.json');
    assert.equal(res.statusCode, 200, res.body);
    const doc = res.json() as { openapi: string; paths: Record<string, Record<string, { summary: string; requestBody?: unknown; parameters?: { name: string; in: string }[] }>> };
    assert.equal(doc.openapi, '3.1.0');
    for (const key of Object.keys(ROUTE_DOCS)) {
      const [method, url] = key.split(' ') as [string, string];
      assert.ok(t.api.hasRoute({ method: method as 'GET', url }), `${key} is in ROUTE_DOCS but no module registers it`);
      const op = doc.paths[openApiPath(url).path]?.[method.toLowerCase()];
      assert.ok(op, `${key} is documented but not registered (or missing from the document)`);
      assert.equal(op.summary, ROUTE_DOCS[key]!.summary);
    }
    let operations = 0;
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        operations++;
        const key = Object.keys(ROUTE_DOCS).find((k) => k.startsWith(`${method.toUpperCase()} `) && openApiPath(k.split(' ')[1]!).path === path);
        assert.ok(key, `${method.toUpperCase()} ${path} is registered but has no entry in ROUTE_DOCS (add its summary and schemas)`);
      }
    }
    assert.equal(operations, Object.keys(ROUTE_DOCS).length);
    // Schemas come from the routes' zod schemas: the deploy body names the spec, config's query its env.
    const deploy = doc.paths['/v1/apps/{app}/deployments']!.post! as { requestBody: { content: { 'application/json': { schema: { properties: Record<string, unknown>; required: string[] } } } } };
    assert.ok(deploy.requestBody.content['application/json'].schema.properties.spec);
    assert.deepEqual(deploy.requestBody.content['application/json'].schema.required, ['spec']);
    assert.deepEqual(doc.paths['/v1/apps/{app}/config']!.get!.parameters!.map((p) => `${p.in}:${p.name}`), ['path:app', 'query:env']);
    // Response bodies come from api/responses.ts: what a deployment answers, down to its services' instances.
    type Op = { responses: Record<string, { content?: Record<string, { schema: { properties?: Record<string, { required?: string[] }>; required?: string[] }; 'x-berth-events'?: Record<string, unknown> }> }> };
    const dep = (doc.paths['/v1/deployments/{id}']!.get! as unknown as Op).responses['200']!.content!['application/json']!.schema;
    assert.deepEqual(dep.required, ['deployment', 'services']);
    assert.ok(dep.properties!.deployment!.required!.includes('status'));
    const stream = (doc.paths['/v1/deployments/{id}/stream']!.get! as unknown as Op).responses['200']!.content!['text/event-stream']!;
    assert.deepEqual(Object.keys(stream['x-berth-events']!), ['event', 'state']);
    for (const key of Object.keys(RESPONSES)) assert.ok(ROUTE_DOCS[key], `${key} has a response schema but no route`);
    const withBody = Object.keys(ROUTE_DOCS).filter((k) => (ROUTE_DOCS[k]!.contentType ?? 'application/json') === 'application/json' && ROUTE_DOCS[k]!.status !== 204 && ROUTE_DOCS[k]!.status !== 302);
    const untyped = withBody.filter((k) => !RESPONSES[k]);
    assert.deepEqual(untyped, [], 'a JSON route without a declared response schema (api/responses.ts)');
  } finally {
    await t.close();
  }
});

test('the document needs the token like every route', async () => {
  const t = await testApi();
  try {
    assert.equal((await t.anon('GET', '/v1/openapi.json')).statusCode, 401);
  } finally {
    await t.close();
  }
});

test('openApiDocument: a route without an entry still appears, with a generic operation (the route test above refuses it)', () => {
  const doc = openApiDocument([{ method: 'GET', url: '/v1/new/:x' }, { method: 'HEAD', url: '/v1/new/:x' }], '1') as { paths: Record<string, Record<string, unknown>> };
  assert.deepEqual(Object.keys(doc.paths), ['/v1/new/{x}']);
  assert.deepEqual(Object.keys(doc.paths['/v1/new/{x}']!), ['get']);
});
