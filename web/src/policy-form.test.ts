import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GUARD_FIELDS, type GuardPolicy } from '../../src/core/guard.ts';
import { fieldText, fieldValue, layerFrom } from './policy-form.ts';

test('typed values become a layer: empty inherits, none is an empty list, sizes and capabilities are normalised', () => {
  const typed: Record<string, string> = { pidsLimit: ' 512 ', memoryDefaultBytes: '512m', capabilities: 'cap_net_admin, SYS_TIME,', sysctls: 'none', readOnly: 'true', privileged: 'false', binds: '' };
  assert.deepEqual(layerFrom((f) => typed[f] ?? ''), {
    pidsLimit: 512, memoryDefaultBytes: 512 * 1024 ** 2, capabilities: ['NET_ADMIN', 'SYS_TIME'], sysctls: [], readOnly: true, privileged: false,
  });
  assert.deepEqual(layerFrom(() => ''), {});
  assert.equal(fieldValue('memoryDefaultBytes', '0'), 0);
});

test('what the form cannot take is refused naming the field, before any request', () => {
  assert.throws(() => fieldValue('pidsLimit', 'lots'), /^Error: pidsLimit: "lots" is not a whole number/);
  assert.throws(() => fieldValue('pidsLimit', '-1'), /pidsLimit/);
  assert.throws(() => fieldValue('memoryDefaultBytes', '16x'), /^Error: memoryDefault: /);
  assert.throws(() => fieldValue('readOnly', 'yes'), /readOnly: true, false, or empty to inherit/);
});

test('a stored layer shows in the form as it would be typed, and reads back the same', () => {
  const layer: GuardPolicy = { pidsLimit: 100, memoryDefaultBytes: 1024 ** 3, capabilities: ['NET_ADMIN'], bindRoots: [], noNewPrivileges: true };
  const shown = Object.fromEntries(GUARD_FIELDS.map((f) => [f, fieldText(layer, f)]));
  assert.deepEqual([shown.pidsLimit, shown.memoryDefaultBytes, shown.capabilities, shown.bindRoots, shown.noNewPrivileges, shown.readOnly], ['100', '1g', 'NET_ADMIN', 'none', 'true', '']);
  assert.deepEqual(layerFrom((f) => shown[f]!), layer);
});
