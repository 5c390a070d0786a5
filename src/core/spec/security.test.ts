import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BERTH_DROPPED_CAPS, DOCKER_DEFAULT_CAPS, LINUX_CAPS, capabilitySets, normalizeCap } from './security.ts';

test('Berth drops NET_RAW and the other unneeded defaults; cap_add gives any of them back', () => {
  assert.deepEqual(capabilitySets({}), { capAdd: [], capDrop: ['AUDIT_WRITE', 'MKNOD', 'NET_RAW', 'SETFCAP', 'SYS_CHROOT'] });
  assert.deepEqual(capabilitySets({ capAdd: ['NET_RAW'] }), { capAdd: ['NET_RAW'], capDrop: ['AUDIT_WRITE', 'MKNOD', 'SETFCAP', 'SYS_CHROOT'] });
  // Adding a default Berth keeps changes nothing.
  assert.deepEqual(capabilitySets({ capAdd: ['CHOWN'] }).capAdd, []);
  assert.deepEqual(capabilitySets({ capDrop: ['CHOWN', 'NET_RAW'] }).capDrop, ['AUDIT_WRITE', 'CHOWN', 'MKNOD', 'NET_RAW', 'SETFCAP', 'SYS_CHROOT']);
  assert.deepEqual(capabilitySets({ capDrop: ['ALL'], capAdd: ['NET_BIND_SERVICE', 'CHOWN'] }), { capAdd: ['CHOWN', 'NET_BIND_SERVICE'], capDrop: ['ALL'] });
});

test('capability names: Docker\'s defaults and Berth\'s drops are Linux capabilities; CAP_ prefix and case do not matter', () => {
  for (const c of [...DOCKER_DEFAULT_CAPS, ...BERTH_DROPPED_CAPS]) assert.ok(LINUX_CAPS.includes(c), c);
  for (const c of BERTH_DROPPED_CAPS) assert.ok(DOCKER_DEFAULT_CAPS.includes(c), c);
  assert.equal(normalizeCap(' cap_net_raw '), 'NET_RAW');
  assert.equal(normalizeCap('Sys_Chroot'), 'SYS_CHROOT');
});
