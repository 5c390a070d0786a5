import { test } from 'node:test';
import assert from 'node:assert/strict';
import { edgeRoutes, edgeToken, isBehind, parseEdgeToken } from './edge.ts';

const secret = 'a'.repeat(64);

test('edge tokens: host and secret round-trip; anything else is no edge token', () => {
  assert.deepEqual(parseEdgeToken(edgeToken('edge-1.example', secret)), { host: 'edge-1.example', secret });
  for (const bad of ['', 'berth_abc', 'berth-edge.', `berth-edge.${secret}`, `berth-edge.-x.${secret}`, `berth-edge.e1.${secret.slice(1)}`, `berth-edge.e1.${'A'.repeat(64)}`, `berth-edge.e 1.${secret}`]) {
    assert.equal(parseEdgeToken(bad), undefined, bad);
  }
});

test('edge routes: loopback backends go to the control host\'s address (or are left out); certificate files are dropped', () => {
  const routes = [
    { upstream: 'a.prod.web.0', path: '/', host: 'a.example', backends: [{ address: '127.0.0.1', port: 20001, instance: 'i1' }, { address: '10.0.0.8', port: 20002, instance: 'i2' }],
      tls: { certFile: '/var/lib/berth/tls/x.pem', keyFile: '/var/lib/berth/tls/x.key' }, https: { wantsCert: true, redirect: true } },
  ];
  assert.deepEqual(edgeRoutes(routes, '10.0.0.5'), [{
    upstream: 'a.prod.web.0', path: '/', host: 'a.example', https: { wantsCert: true, redirect: true },
    backends: [{ address: '10.0.0.5', port: 20001, instance: 'i1' }, { address: '10.0.0.8', port: 20002, instance: 'i2' }],
  }]);
  assert.deepEqual(edgeRoutes(routes, undefined)[0]!.backends, [{ address: '10.0.0.8', port: 20002, instance: 'i2' }]);
  assert.equal(routes[0]!.backends[0]!.address, '127.0.0.1', 'the control host\'s table is not changed');
});

test('a poll is behind when it has nothing, another epoch or another generation', () => {
  const cur = { epoch: 'e1', generation: 3 };
  assert.equal(isBehind({}, cur), true);
  assert.equal(isBehind({ epoch: 'e0', generation: 3 }, cur), true);
  assert.equal(isBehind({ epoch: 'e1', generation: 2 }, cur), true);
  assert.equal(isBehind({ epoch: 'e1' }, cur), true);
  assert.equal(isBehind({ epoch: 'e1', generation: 3 }, cur), false);
});
