/**
 * In-process contract tests of the certificate routes (src/api/cert-routes.ts) over the real
 * CertManager and CertStore: 401, 400 naming the field, 404, 409, the happy path; a refused upload
 * changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expectError, serviceSpec, withTestApi } from '../../test/helpers/api-inject.ts';
import { makeCa, makeLeaf } from '../../test/helpers/certs.ts';

test('cert routes: 401, 400 naming the field, 404, 409, upload, list, renew, remove', () => withTestApi(async (t) => {
  const ca = await makeCa();
  const good = await makeLeaf(ca, ['shop.example.com']);
  const other = await makeLeaf(ca, ['other.example.com']);
  await expectError(t.anon('GET', '/v1/certs'), 401);
  await expectError(t.anon('PUT', '/v1/certs/shop.example.com', { cert: good.certPem, key: good.keyPem }), 401);
  await expectError(t.anon('DELETE', '/v1/certs/shop.example.com'), 401);
  await expectError(t.anon('POST', '/v1/certs/shop.example.com/renew'), 401);

  t.addService('shop', 'prod', 'web', { routes: [{ host: 'shop.example.com', path: '/' }, { path: '/any' }] });
  assert.deepEqual((await t.req('GET', '/v1/certs')).json(), { certs: [{ host: 'shop.example.com', status: 'pending', routes: ['shop/prod/web'] }] });

  await expectError(t.req('PUT', '/v1/certs/shop.example.com', { cert: good.certPem }), 400, /^key: /);
  await expectError(t.req('PUT', '/v1/certs/shop.example.com', { cert: good.certPem, key: other.keyPem }), 400, /^key: this private key does not belong to the certificate/);
  await expectError(t.req('PUT', '/v1/certs/shop.example.com', { cert: other.certPem, key: other.keyPem }), 400, /^cert: the certificate is for other\.example\.com, not shop\.example\.com/);
  await expectError(t.req('PUT', '/v1/certs/bad_host!', { cert: good.certPem, key: good.keyPem }), 400, /^host: /);
  const expired = await makeLeaf(ca, ['shop.example.com'], { notBefore: Date.now() - 5 * 86_400_000, notAfter: Date.now() - 1000 });
  await expectError(t.req('PUT', '/v1/certs/shop.example.com', { cert: expired.certPem, key: expired.keyPem }), 400, /^cert: the certificate expired on/);
  assert.equal((await t.req('GET', '/v1/certs')).json().certs[0].status, 'pending', 'refused uploads changed nothing');
  assert.ok(!t.calls.includes('ingress'));

  const up = await t.req('PUT', '/v1/certs/Shop.Example.COM', { cert: good.certPem, key: good.keyPem });
  assert.equal(up.statusCode, 200, up.body);
  const v = up.json();
  assert.equal(v.host, 'shop.example.com');
  assert.equal(v.status, 'valid');
  assert.equal(v.source, 'upload');
  assert.equal(v.issuer, 'Berth Test CA');
  assert.ok(v.notAfter > Date.now());
  assert.ok(!JSON.stringify((await t.req('GET', '/v1/certs')).json()).includes('PRIVATE KEY'), 'the key is never shown');
  assert.deepEqual(t.calls, ['ingress']);

  await expectError(t.req('POST', '/v1/certs/shop.example.com/renew'), 409, /was uploaded: renew it by uploading a new one/);
  await expectError(t.req('POST', '/v1/certs/nowhere.example.com/renew'), 404, /no certificate and no route for nowhere\.example\.com/);
  await expectError(t.req('DELETE', '/v1/certs/nowhere.example.com'), 404, /no certificate stored for nowhere\.example\.com/);
  assert.equal((await t.req('DELETE', '/v1/certs/shop.example.com')).statusCode, 204);
  const renew = await t.req('POST', '/v1/certs/shop.example.com/renew');
  assert.equal(renew.statusCode, 202, renew.body);
  assert.equal(renew.json().status, 'pending');
}));

test('route HTTPS options through the deploy API: only on routes with a host, only the values that differ from the default; refused deploys record nothing', () => withTestApi(async (t) => {
  const deploy = (routes: unknown[]) => t.req('POST', '/v1/apps/shop/deployments', { env: 'prod', spec: { name: 'shop', services: { web: { ...serviceSpec('web'), port: 8080, routes } } } });
  await expectError(deploy([{ path: '/x', tls: false }]), 400, /^spec\.services\.web\.routes\.0: tls, redirect and hsts need a host/);
  await expectError(deploy([{ host: 'a.example.com', path: '/', tls: true }]), 400, /^spec\.services\.web\.routes\.0\.tls: /);
  await expectError(deploy([{ host: 'a.example.com', path: '/', hstsSeconds: 0 }]), 400, /^spec\.services\.web\.routes\.0\.hstsSeconds: /);
  assert.deepEqual(t.calls, []);
  const ok = await deploy([{ host: 'a.example.com', path: '/', redirect: false, hstsSeconds: 600 }, { host: 'b.example.com', path: '/', tls: false }]);
  assert.equal(ok.statusCode, 202, ok.body);
}));
