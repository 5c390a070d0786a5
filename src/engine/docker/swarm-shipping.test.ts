import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterRef, renderClusterRegistryConfig } from '../../images/cluster-registry.ts';
import { clusterResolvConf } from '../../server/cluster-data-wiring.ts';
import { registryTrustCommand } from '../../api/host-routes.ts';
import { pickClusterRef, secretName } from './swarm-shipping.ts';

const D = `sha256:${'a'.repeat(64)}`;
const toCluster = (r: string) => clusterRef(r, '127.0.0.1:5000', '10.0.0.5:5443');

test('clusterRef: only digest references of the local registry move to the cluster registry', () => {
  assert.equal(toCluster(`127.0.0.1:5000/shop/web@${D}`), `10.0.0.5:5443/shop/web@${D}`);
  assert.equal(toCluster('127.0.0.1:5000/shop/web:latest'), undefined, 'a tag can move: never shipped');
  assert.equal(toCluster(`127.0.0.1:50000/shop/web@${D}`), undefined, 'another port is another registry');
  assert.equal(toCluster(`registry.example/shop/web@${D}`), undefined);
  assert.equal(toCluster(`127.0.0.1:5000/../x@${D}`), undefined);
});

test('pickClusterRef: an image id becomes the digest reference every host pulls', () => {
  assert.equal(pickClusterRef(`sha256:${'b'.repeat(64)}`, [`docker.io/library/redis@${D}`, `127.0.0.1:5000/shop/web@${D}`], toCluster), `10.0.0.5:5443/shop/web@${D}`);
  assert.equal(pickClusterRef(`sha256:${'b'.repeat(64)}`, [`docker.io/library/redis@${D}`], toCluster), `docker.io/library/redis@${D}`, 'pulled from another registry: its digest');
  assert.equal(pickClusterRef(`sha256:${'b'.repeat(64)}`, [], toCluster), `sha256:${'b'.repeat(64)}`, 'a local-only image stays an id (every host must have it)');
  assert.equal(pickClusterRef(`127.0.0.1:5000/shop/web@${D}`, [], toCluster), `10.0.0.5:5443/shop/web@${D}`);
  assert.equal(pickClusterRef('redis:7', [], toCluster), 'redis:7');
});

test('secret names: per installation and content', () => {
  const a = secretName('c1', Buffer.from('x'));
  assert.match(a, /^berth-c1-[0-9a-f]{32}$/);
  assert.equal(secretName('c1', Buffer.from('x')), a);
  assert.notEqual(secretName('c1', Buffer.from('y')), a);
  assert.notEqual(secretName('c2', Buffer.from('x')), a);
});

test('the cluster registry is read-only, TLS, behind the same account; resolv.conf names the cluster address', () => {
  const c = renderClusterRegistryConfig({ dir: '/d/registry', addr: '10.0.0.5:5443', htpasswdPath: '/d/registry/htpasswd', certPath: '/run/t/c', keyPath: '/run/t/k' });
  assert.match(c, /readonly:\n {6}enabled: true/);
  assert.match(c, /uploadpurging:\n {6}enabled: false/);
  assert.match(c, /delete:\n {4}enabled: false/);
  assert.match(c, /addr: 10\.0\.0\.5:5443\n {2}tls:\n {4}certificate: "\/run\/t\/c"\n {4}key: "\/run\/t\/k"/);
  assert.match(c, /htpasswd:\n {4}realm: berth-registry\n {4}path: "\/d\/registry\/htpasswd"/);
  assert.equal(clusterResolvConf('# x\nnameserver 127.0.0.153\nsearch a.prod.berth\n', '127.0.0.153', '10.0.0.5'), '# x\nnameserver 10.0.0.5\nsearch a.prod.berth\n');
  assert.equal(clusterResolvConf('nameserver 1.1.1.1\n', '127.0.0.153', '10.0.0.5'), 'nameserver 1.1.1.1\n');
  const cmd = registryTrustCommand({ host: '10.0.0.5:5443', caPem: '-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n' });
  assert.equal(cmd, "mkdir -p /etc/docker/certs.d/10.0.0.5:5443 && printf '%s\\n' '-----BEGIN CERTIFICATE-----' 'AAA' '-----END CERTIFICATE-----' > /etc/docker/certs.d/10.0.0.5:5443/ca.crt");
});
