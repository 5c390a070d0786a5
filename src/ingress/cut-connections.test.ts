import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cutFilter } from './cut-connections.ts';

test('cutFilter: one `dst ADDR:PORT` per target joined by `or`, IPv6 in brackets, duplicates once', () => {
  assert.deepEqual(cutFilter([]), []);
  assert.deepEqual(cutFilter([{ address: '10.77.6.13', port: 20300 }]), ['dst', '10.77.6.13:20300']);
  assert.deepEqual(cutFilter([{ address: '10.77.6.13', port: 20300 }, { address: 'fd00::3', port: 80 }, { address: '10.77.6.13', port: 20300 }]),
    ['dst', '10.77.6.13:20300', 'or', 'dst', '[fd00::3]:80']);
});

test('cutFilter refuses what is not an address and a port (nothing reaches ss but literals)', () => {
  assert.throws(() => cutFilter([{ address: 'example.com', port: 80 }]), /not an IP address: "example.com"/);
  assert.throws(() => cutFilter([{ address: '10.0.0.1 or dst 0.0.0.0/0', port: 80 }]), /not an IP address/);
  assert.throws(() => cutFilter([{ address: '10.0.0.1', port: 0 }]), /not a port: 0/);
  assert.throws(() => cutFilter([{ address: '10.0.0.1', port: 70000 }]), /not a port: 70000/);
});
