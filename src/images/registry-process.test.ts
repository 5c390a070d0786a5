import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configIdentity, renderRegistryConfig } from './registry-process.ts';

const o = { dir: '/var/lib/berth/registry', port: 5000, htpasswdPath: '/var/lib/berth/registry/htpasswd' };

test('the registry config: loopback only, htpasswd auth always, deletes only when asked for', () => {
  const normal = renderRegistryConfig({ ...o, deletes: false });
  assert.match(normal, /\nhttp:\n {2}addr: 127\.0\.0\.1:5000\n/);
  assert.match(normal, /\nauth:\n {2}htpasswd:\n {4}realm: berth-registry\n {4}path: "\/var\/lib\/berth\/registry\/htpasswd"\n/);
  assert.match(normal, /\n {2}delete:\n {4}enabled: false\n/);
  const window = renderRegistryConfig({ ...o, deletes: true });
  assert.match(window, /\n {2}delete:\n {4}enabled: true\n/);
  assert.match(window, /\nauth:\n {2}htpasswd:/, 'the deletion window is authenticated too');
});

test('the identity a running registry is adopted by changes with its config and with the password hash', () => {
  const normal = renderRegistryConfig({ ...o, deletes: false });
  const id = configIdentity(normal, 'berth:$2b$04$a\n');
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.equal(configIdentity(normal, 'berth:$2b$04$a\n'), id);
  assert.notEqual(configIdentity(renderRegistryConfig({ ...o, deletes: true }), 'berth:$2b$04$a\n'), id, 'a deletion window left behind is not adopted');
  assert.notEqual(configIdentity(normal, 'berth:$2b$04$b\n'), id, 'a new password restarts it');
  assert.notEqual(configIdentity(renderRegistryConfig({ ...o, port: 5001, deletes: false }), 'berth:$2b$04$a\n'), id);
});
