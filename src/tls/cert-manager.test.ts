import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IngressRoute } from '../core/ports.ts';
import type { NewEvent } from '../core/store.ts';
import { Conflict, InvalidInput, NotFound } from '../core/errors.ts';
import { SecretBox } from '../config/secret-box.ts';
import { silentLogger } from '../lib/logger.ts';
import { makeCa, makeLeaf, type TestCa } from '../../test/helpers/certs.ts';
import { CertStore } from './cert-store.ts';
import { CertManager } from './cert-manager.ts';
import type { CertIssuer } from './acme-issuer.ts';

const DAY = 86_400_000;

class FakeIssuer implements CertIssuer {
  calls: string[] = [];
  fail: string | undefined;
  constructor(private readonly ca: TestCa, private readonly now: () => number) {}
  async issue(host: string) {
    this.calls.push(host);
    if (this.fail) throw new Error(this.fail);
    // 3-day certificates: renewal due 2 days after issue.
    return makeLeaf(this.ca, [host], { notBefore: this.now() - 1000, notAfter: this.now() - 1000 + 3 * DAY });
  }
}

async function setup(o: { acme?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'berth-tls-'));
  const clock = { t: Date.now(), now() { return this.t; } };
  const ca = await makeCa();
  const issuer = new FakeIssuer(ca, () => clock.now());
  const store = new CertStore(join(dir, 'tls.db'), new SecretBox(randomBytes(32)));
  const events: NewEvent[] = [];
  let routes: IngressRoute[] = [];
  let changed = 0;
  const m = new CertManager({
    store, ...(o.acme === false ? {} : { issuer }), fileDir: join(dir, 'files'), clock, logger: silentLogger,
    events: { addEvent: (e) => (events.push(e), { ...e, id: events.length, ts: clock.now() }), listEvents: () => [] },
    routes: () => routes, changed: () => void changed++, retryBaseMs: 60_000, retryMaxMs: 3_600_000,
  });
  await m.start(); // no run(): no timers in unit tests, each pass is m.check()
  return {
    dir, clock, ca, issuer, store, events, m, get changed() { return changed; },
    setRoutes(r: IngressRoute[]) { routes = r; },
    done() { store.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}

const owner = { app: 'shop', env: 'prod', service: 'web' };
const route = (host: string | undefined, extra: Partial<IngressRoute> = {}): IngressRoute => ({ upstream: 'shop.prod.web.0', path: '/', backends: [], owner, ...(host ? { host } : {}), ...extra });

test('a route with a host gets an ACME certificate: stored with its key sealed, written 0600 for nginx, routes decorated, an event with the time it took', async () => {
  const t = await setup();
  try {
    t.setRoutes([route('shop.example.com'), route(undefined, { upstream: 'shop.prod.web.1', path: '/any' }), route('plain.example.com', { upstream: 'x.y.z.0', https: { wantsCert: false, redirect: false } })]);
    assert.deepEqual(t.m.list().map((v) => [v.host, v.status]), [['shop.example.com', 'pending']]);
    await t.m.check();
    assert.deepEqual(t.issuer.calls, ['shop.example.com'], 'no certificate for a route without a host, nor for tls: false');
    assert.equal(t.changed, 1);
    assert.equal(t.events.length, 1);
    assert.equal(t.events[0]!.kind, 'cert.issued');
    assert.equal(t.events[0]!.app, 'shop');
    assert.match(t.events[0]!.message, /^certificate for shop\.example\.com issued by Berth Test CA in \d+ ms, valid until /);
    const [v] = t.m.list();
    assert.equal(v!.status, 'valid');
    assert.equal(v!.source, 'acme');
    assert.deepEqual(v!.routes, ['shop/prod/web']);
    assert.equal(v!.renewAt, v!.notBefore! + Math.floor(3 * DAY * 2 / 3));
    const dec = t.m.decorate([route('shop.example.com'), route('plain.example.com', { https: { wantsCert: false, redirect: false } }), route(undefined)]);
    assert.ok(dec[0]!.tls);
    assert.equal(dec[1]!.tls, undefined);
    assert.equal(dec[2]!.tls, undefined);
    const { certFile, keyFile } = dec[0]!.tls!;
    assert.match(keyFile, new RegExp(`shop\\.example\\.com\\.${v!.fingerprint!.slice(0, 16)}\\.key$`));
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(statSync(certFile).mode & 0o777, 0o600);
    assert.equal(statSync(join(t.dir, 'files')).mode & 0o777, 0o700);
    const key = readFileSync(keyFile, 'utf8');
    assert.match(key, /BEGIN PRIVATE KEY/);
    // At rest the key is ciphertext only.
    const body = key.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    for (const f of readdirSync(t.dir).filter((n) => n.startsWith('tls.db'))) assert.ok(!readFileSync(join(t.dir, f)).toString('latin1').includes(body.slice(0, 40)), `${f} holds the key in clear`);
    // Nothing due: no second order.
    await t.m.check();
    assert.equal(t.issuer.calls.length, 1);
  } finally {
    t.done();
  }
});

test('renewal at 2/3 of the lifetime, backoff after a failure (an event each time, the old certificate kept), then success', async () => {
  const t = await setup();
  try {
    t.setRoutes([route('shop.example.com')]);
    await t.m.check();
    const first = t.m.list()[0]!;
    t.clock.t = first.renewAt! - 1000;
    await t.m.check();
    assert.equal(t.issuer.calls.length, 1, 'not due yet');
    t.clock.t = first.renewAt! + 1000;
    assert.equal(t.m.list()[0]!.status, 'renewing');
    t.issuer.fail = 'urn:ietf:params:acme:error:connection: connection refused';
    await t.m.check();
    assert.equal(t.issuer.calls.length, 2);
    let v = t.m.list()[0]!;
    assert.equal(v.status, 'failed');
    assert.equal(v.fingerprint, first.fingerprint, 'the current certificate is still served');
    assert.equal(v.retryAt, t.clock.t + 60_000);
    assert.match(v.lastError!, /connection refused/);
    const failed = t.events.filter((e) => e.kind === 'cert.failed');
    assert.equal(failed.length, 1);
    assert.match(failed[0]!.message, /not renewed \(attempt 1, next at .*the current certificate is served until/);
    await t.m.check();
    assert.equal(t.issuer.calls.length, 2, 'backing off');
    t.clock.t += 60_001;
    await t.m.check();
    assert.equal(t.issuer.calls.length, 3);
    assert.equal(t.m.list()[0]!.retryAt, t.clock.t + 120_000, 'the second failure waits twice as long');
    t.issuer.fail = undefined;
    t.clock.t += 120_001;
    await t.m.check();
    v = t.m.list()[0]!;
    assert.equal(v.status, 'valid');
    assert.notEqual(v.fingerprint, first.fingerprint);
    assert.equal(v.lastError, undefined);
    assert.equal(t.events.filter((e) => e.kind !== 'cert.expiring').at(-1)!.kind, 'cert.renewed');
    // While ACME failed, the 3-day certificate had under 14 days left: its app heard so, once.
    assert.equal(t.events.filter((e) => e.kind === 'cert.expiring').length, 1);
    assert.match(t.events.find((e) => e.kind === 'cert.expiring')!.message, /will not be renewed: ACME is failing: .*connection refused/);
    assert.notDeepEqual(t.m.decorate([route('shop.example.com')])[0]!.tls, undefined);
  } finally {
    t.done();
  }
});

test('renew on request; uploads win over ACME and are never renewed by it; remove; errors for unknown hosts and bad input', async () => {
  const t = await setup();
  try {
    t.setRoutes([route('shop.example.com'), route('*.apps.example.com', { upstream: 'w.w.w.0' })]);
    await t.m.check();
    assert.deepEqual(t.issuer.calls, ['shop.example.com'], 'no HTTP-01 for a wildcard');
    assert.deepEqual(t.m.list().map((v) => [v.host, v.status]), [['*.apps.example.com', 'wildcard'], ['shop.example.com', 'valid']]);
    assert.equal(t.m.renew('shop.example.com').status, 'renewing');
    await t.m.check();
    assert.equal(t.issuer.calls.length, 2);
    assert.equal(t.m.list()[1]!.status, 'valid');
    assert.throws(() => t.m.renew('nowhere.example.com'), NotFound);
    assert.throws(() => t.m.renew('*.apps.example.com'), Conflict);
    assert.throws(() => t.m.renew('bad host!'), (e: unknown) => e instanceof InvalidInput && /^host: /.test(e.message));

    const leaf = await makeLeaf(t.ca, ['*.apps.example.com']);
    const up = await t.m.upload('*.apps.example.com', leaf.certPem, leaf.keyPem);
    assert.equal(up.status, 'valid');
    assert.equal(up.source, 'upload');
    assert.throws(() => t.m.renew('*.apps.example.com'), /was uploaded: renew it by uploading a new one/);
    // An upload replaces an ACME certificate and stops renewals of it.
    const shop = await makeLeaf(t.ca, ['shop.example.com'], { notBefore: t.clock.t - DAY, notAfter: t.clock.t + DAY });
    await t.m.upload('shop.example.com', shop.certPem, shop.keyPem);
    t.clock.t += 10 * DAY;
    await t.m.check();
    assert.equal(t.issuer.calls.length, 2);
    assert.equal(t.m.list().find((v) => v.host === 'shop.example.com')!.status, 'expired');
    // Nothing renews an upload: its apps hear about it, once a day.
    const expiring = t.events.filter((e) => e.kind === 'cert.expiring' && e.message.includes(' shop.example.com '));
    assert.equal(expiring.length, 1);
    // The wildcard upload (20 days, 10 gone) warns too: nothing renews it either.
    assert.match(t.events.find((e) => e.kind === 'cert.expiring' && e.message.includes('*.apps'))!.message, /expires in \d+ days .* and will not be renewed: upload a new one/);
    assert.match(expiring[0]!.message, /^certificate for shop\.example\.com expired at .*: upload a new one \(berth cert add shop\.example\.com --cert FILE --key FILE\)$/);
    await t.m.check();
    assert.equal(t.events.filter((e) => e.kind === 'cert.expiring').length, 2, 'once a day');
    // A refused upload changes nothing.
    const before = t.m.list();
    await assert.rejects(t.m.upload('shop.example.com', leaf.certPem, leaf.keyPem), /^InvalidInput: cert: the certificate is for \*\.apps\.example\.com, not shop\.example\.com/);
    assert.deepEqual(t.m.list(), before);
    // rm: the route still wants one, so ACME gets it again.
    assert.equal(await t.m.remove('shop.example.com'), true);
    assert.equal(await t.m.remove('shop.example.com'), false);
    assert.equal(t.m.list().find((v) => v.host === 'shop.example.com')!.status, 'pending');
    await t.m.check();
    assert.equal(t.issuer.calls.length, 3);
  } finally {
    t.done();
  }
});

test('without ACME: wanted hosts say no-acme, uploads are served', async () => {
  const t = await setup({ acme: false });
  try {
    t.setRoutes([route('shop.example.com')]);
    await t.m.check();
    assert.deepEqual(t.m.list().map((v) => v.status), ['no-acme']);
    assert.throws(() => t.m.renew('shop.example.com'), /no ACME CA is configured/);
    const leaf = await makeLeaf(t.ca, ['shop.example.com']);
    await t.m.upload('shop.example.com', leaf.certPem, leaf.keyPem);
    assert.deepEqual(t.m.list().map((v) => v.status), ['valid']);
    t.setRoutes([]);
    assert.deepEqual(t.m.list().map((v) => v.status), ['unused']);
  } finally {
    t.done();
  }
});
