import { test } from 'node:test';
import assert from 'node:assert/strict';
import { instanceIndex } from './observability-wiring.ts';

test('instanceIndex: an upstream address is the instance of the route\'s service there (published or direct address, IPv6 in brackets)', () => {
  const ix = instanceIndex([
    { id: 'i-1', app: 'shop', env: 'prod', service: 'web', address: '127.0.0.1', port: 30001 },
    { id: 'i-2', app: 'shop', env: 'prod', service: 'db', address: '::1', port: 30002 },
    { id: 'i-3', app: 'shop', env: 'prod', service: 'api', address: '10.0.0.1', port: 30003 },
  ], new Map([['i-3', { address: '172.20.0.5', port: 8080 }]]));
  const web = { app: 'shop', env: 'prod', service: 'web' };
  assert.equal(ix.of(web, '127.0.0.1:30001'), 'i-1');
  assert.equal(ix.of({ ...web, service: 'db' }, '[::1]:30002'), 'i-2');
  assert.equal(ix.of({ ...web, service: 'api' }, '172.20.0.5:8080'), 'i-3');
  assert.equal(ix.of({ ...web, service: 'api' }, '10.0.0.1:30003'), 'i-3');
  // Another service's address, another environment, an unknown address: none.
  assert.equal(ix.of(web, '10.0.0.1:30003'), undefined);
  assert.equal(ix.of({ ...web, env: 'pre' }, '127.0.0.1:30001'), undefined);
  assert.equal(ix.of(web, '127.0.0.1:1'), undefined);
  assert.equal(ix.has('i-2'), true);
  assert.equal(ix.has('i-9'), false);
});
