import { test } from 'node:test';
import assert from 'node:assert/strict';
import { poolSubnets } from './docker-engine.ts';

test('a network pool is cut into /24s: count, first, last, gateways', () => {
  const p = poolSubnets('10.208.0.0/12');
  assert.equal(p.count, 4096);
  assert.deepEqual(p.at(0), { cidr: '10.208.0.0/24', gateway: '10.208.0.1' });
  assert.deepEqual(p.at(1), { cidr: '10.208.1.0/24', gateway: '10.208.1.1' });
  assert.deepEqual(p.at(4095), { cidr: '10.223.255.0/24', gateway: '10.223.255.1' });
  assert.deepEqual(poolSubnets('192.168.7.0/24').at(0), { cidr: '192.168.7.0/24', gateway: '192.168.7.1' });
  assert.equal(poolSubnets('172.20.5.9/16').at(3).cidr, '172.20.3.0/24', 'host bits of the base are ignored');
});
