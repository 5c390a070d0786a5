import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LABEL } from '../../core/ports.ts';
import { networkCreateBody, networkInfoOf } from './app-networks.ts';

const subnet = { cidr: '10.208.7.0/24', gateway: '10.208.7.1' };

test('one host: a bridge on a /24 of the pool; cluster mode: an attachable Swarm-scoped overlay on the same kind of /24, unencrypted', () => {
  const bridge = networkCreateBody('berth_c_shop_prod_default', { [LABEL.app]: 'shop' }, subnet, 'bridge');
  assert.deepEqual(bridge, {
    Name: 'berth_c_shop_prod_default', Driver: 'bridge', CheckDuplicate: true, Attachable: true,
    IPAM: { Driver: 'default', Config: [{ Subnet: '10.208.7.0/24', Gateway: '10.208.7.1' }] },
    Labels: { [LABEL.app]: 'shop', [LABEL.managed]: 'true' },
  });
  const overlay = networkCreateBody('berth_c_shop_prod_default', { [LABEL.app]: 'shop' }, subnet, 'overlay');
  assert.deepEqual({ ...overlay, IPAM: undefined, Labels: undefined }, {
    Name: 'berth_c_shop_prod_default', Driver: 'overlay', CheckDuplicate: true, Attachable: true, Scope: 'swarm', IPAM: undefined, Labels: undefined,
  });
  assert.deepEqual(overlay.IPAM, bridge.IPAM);
  assert.equal(overlay.Labels?.[LABEL.managed], 'true', 'found again after a restart by its labels');
  assert.equal(overlay.Options, undefined, 'no "encrypted" option (IPsec: see docs/DESIGN.md)');
});

test('an overlay has no gateway Berth could listen on (it is on no host): overlay set, gateway absent; a bridge keeps its IPv4 gateway', () => {
  const ipam = { Config: [{ Subnet: 'fd00::/64', Gateway: 'fd00::1' }, { Subnet: '10.208.7.0/24', Gateway: '10.208.7.1' }] };
  assert.deepEqual(networkInfoOf({ Name: 'n', Id: 'i', Driver: 'overlay', Scope: 'swarm', Labels: { a: 'b' }, IPAM: ipam }), { name: 'n', id: 'i', labels: { a: 'b' }, overlay: true });
  assert.deepEqual(networkInfoOf({ Name: 'n', Id: 'i', Driver: 'bridge', IPAM: ipam }), { name: 'n', id: 'i', labels: {}, gateway: '10.208.7.1' });
  assert.deepEqual(networkInfoOf({ Name: 'n', Id: 'i', Driver: 'bridge' }), { name: 'n', id: 'i', labels: {} });
});
