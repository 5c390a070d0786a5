import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { InvalidInput, NotFound } from '../core/errors.ts';
import { RegistryLogins } from './registry-logins.ts';
import { SecretBox, SecretKeyError } from './secret-box.ts';

test('registry logins: sealed at rest (never the password in the file), listed without passwords, replaced, removed, kept across restarts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-reglogins-'));
  try {
    const path = join(dir, 'registry-logins.json');
    const key = randomBytes(32);
    const clock = { now: () => 1000 };
    const logins = new RegistryLogins(path, new SecretBox(key), clock);
    const password = 'pw-' + randomBytes(8).toString('hex');
    assert.deepEqual(await logins.set('Registry.Example.com:5000', 'alice', password), { host: 'registry.example.com:5000', username: 'alice', updatedAt: 1000 });
    assert.equal(readFileSync(path, 'utf8').includes(password), false, 'no plaintext on disk');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(logins.list(), [{ host: 'registry.example.com:5000', username: 'alice', updatedAt: 1000 }]);
    assert.equal(JSON.stringify(logins.list()).includes(password), false);
    const again = new RegistryLogins(path, new SecretBox(key), clock);
    assert.deepEqual(again.credentials('registry.example.com:5000'), { username: 'alice', password });
    assert.equal(again.credentials('other.example.com'), undefined);
    await again.set('registry.example.com:5000', 'bob', 'x');
    assert.deepEqual(again.credentials('registry.example.com:5000'), { username: 'bob', password: 'x' });
    // Another key cannot read them, and says so without the value.
    assert.throws(() => new RegistryLogins(path, new SecretBox(randomBytes(32)), clock).credentials('registry.example.com:5000'),
      (e: Error) => e instanceof SecretKeyError && !e.message.includes('x"'));
    await assert.rejects(again.set('https://ghcr.io', 'a', 'b'), (e: Error) => e instanceof InvalidInput && /without a scheme: ghcr\.io/.test(e.message));
    await assert.rejects(again.set('ghcr.io', 'a b', 'b'), (e: Error) => e instanceof InvalidInput && /^username:/.test(e.message));
    await assert.rejects(again.set('ghcr.io', 'a', ''), (e: Error) => e instanceof InvalidInput && /^password:/.test(e.message));
    await again.remove('registry.example.com:5000');
    assert.deepEqual(again.list(), []);
    await assert.rejects(again.remove('registry.example.com:5000'), NotFound);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
