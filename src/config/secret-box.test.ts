import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretBox, SecretKeyError, loadSecretKey } from './secret-box.ts';
import { InvalidInput } from '../core/errors.ts';

const VALUE = 'pässwörd-s3cr3t';

test('seal/open round trip; a fresh IV per value', () => {
  const box = new SecretBox(randomBytes(32));
  const a = box.seal(VALUE, 'app/prod/DB_PASSWORD');
  const b = box.seal(VALUE, 'app/prod/DB_PASSWORD');
  assert.equal(a.iv.length, 12);
  assert.equal(a.tag.length, 16);
  assert.notDeepEqual(a.iv, b.iv);
  assert.notDeepEqual(a.ciphertext, b.ciphertext);
  assert.ok(!a.ciphertext.toString('utf8').includes('s3cr3t'));
  assert.equal(box.open(a, 'app/prod/DB_PASSWORD'), VALUE);
  assert.equal(box.open(box.seal('', 'x/y/Z'), 'x/y/Z'), '');
});

test('tampered ciphertext, tag or iv does not open, and the error never contains the value', () => {
  const box = new SecretBox(randomBytes(32));
  const s = box.seal(VALUE, 'app/prod/K');
  const flip = (b: Buffer) => {
    const c = Buffer.from(b);
    c[0] = c[0]! ^ 1;
    return c;
  };
  for (const bad of [{ ...s, ciphertext: flip(s.ciphertext) }, { ...s, tag: flip(s.tag) }, { ...s, iv: flip(s.iv) }]) {
    assert.throws(() => box.open(bad, 'app/prod/K'), (err: Error) => {
      assert.ok(err instanceof SecretKeyError);
      assert.ok(!err.message.includes(VALUE));
      assert.match(err.message, /app\/prod\/K/);
      return true;
    });
  }
});

test('the wrong key does not open, with a message that says what to do', () => {
  const s = new SecretBox(randomBytes(32)).seal(VALUE, 'a/prod/K');
  const other = new SecretBox(randomBytes(32), { kind: 'file', path: '/data/secret.key', created: false });
  assert.throws(() => other.open(s, 'a/prod/K'), (err: Error) => err instanceof SecretKeyError && /\/data\/secret\.key/.test(err.message) && !err.message.includes(VALUE));
});

test('AAD binding: a ciphertext moved to another key, env or app does not open', () => {
  const box = new SecretBox(randomBytes(32));
  const s = box.seal(VALUE, 'shop/prod/DB_PASSWORD');
  for (const aad of ['shop/prod/API_KEY', 'shop/dev/DB_PASSWORD', 'other/prod/DB_PASSWORD']) {
    assert.throws(() => box.open(s, aad), SecretKeyError);
  }
});

test('the key file is created once with mode 0600 and reused; a readable key file is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-key-'));
  try {
    const first = loadSecretKey({ dataDir: dir });
    assert.equal(first.source.kind === 'file' && first.source.created, true);
    assert.equal(statSync(join(dir, 'secret.key')).mode & 0o777, 0o600);
    assert.equal(Buffer.from(readFileSync(join(dir, 'secret.key'), 'utf8').trim(), 'base64').length, 32);
    const again = loadSecretKey({ dataDir: dir });
    assert.deepEqual(again.key, first.key);
    assert.equal(again.source.kind === 'file' && again.source.created, false);
    chmodSync(join(dir, 'secret.key'), 0o644);
    assert.throws(() => loadSecretKey({ dataDir: dir }), (err: Error) => err instanceof SecretKeyError && /chmod 600/.test(err.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('BERTH_SECRET_KEY wins over the file; a malformed one is refused without echoing it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-key-'));
  try {
    const key = randomBytes(32);
    const k = loadSecretKey({ dataDir: dir, fromEnv: key.toString('base64') });
    assert.deepEqual(k.key, key);
    assert.equal(k.source.kind, 'env');
    assert.throws(() => statSync(join(dir, 'secret.key')), 'no key file is made when the env var gives the key');
    const bad = 'not-a-key-but-maybe-a-secret';
    assert.throws(() => loadSecretKey({ dataDir: dir, fromEnv: bad }), (err: Error) =>
      err instanceof InvalidInput && /openssl rand -base64 32/.test(err.message) && !err.message.includes(bad));
    assert.throws(() => loadSecretKey({ dataDir: dir, fromEnv: randomBytes(16).toString('base64') }), InvalidInput);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
