import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigStore } from './config-store.ts';
import { SecretBox, SecretKeyError } from './secret-box.ts';
import { InvalidInput, NotFound } from '../core/errors.ts';

const SECRET = 'hunter2-very-s3cr3t';
let now = 1000;
const clock = { now: () => now++ };

function withStore(fn: (s: ConfigStore, path: string, key: Buffer) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'berth-config-'));
  const key = randomBytes(32);
  try {
    const s = new ConfigStore(join(dir, 'config.db'), new SecretBox(key), clock);
    try {
      fn(s, join(dir, 'config.db'), key);
    } finally {
      s.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('versions increase by one per change; unchanged values make no version', () => {
  withStore((s) => {
    assert.equal(s.version('shop', 'prod'), 0);
    assert.deepEqual(s.resolved('shop', 'prod'), { version: 0, env: {} });
    const r1 = s.set('shop', 'prod', [{ key: 'A', value: '1', kind: 'value' }, { key: 'B', value: '2', kind: 'value' }], 'alice');
    assert.deepEqual([r1.version, r1.changed], [1, true]);
    const r2 = s.set('shop', 'prod', [{ key: 'A', value: '1', kind: 'value' }], 'bob');
    assert.deepEqual([r2.version, r2.changed, r2.changes], [1, false, []]);
    assert.equal(s.set('shop', 'prod', [{ key: 'A', value: '3', kind: 'value' }], 'bob').version, 2);
    assert.equal(s.unset('shop', 'prod', ['B'], 'carol').version, 3);
    assert.equal(s.version('shop', 'prod'), 3);
    assert.equal(s.version('shop', 'dev'), 0, 'environments are separate');
    assert.deepEqual(s.history('shop', 'prod').map((v) => [v.version, v.who]), [[3, 'carol'], [2, 'bob'], [1, 'alice']]);
    assert.deepEqual(s.history('shop', 'prod')[1]!.changes, [{ key: 'A', kind: 'value', op: 'set', old: '1', new: '3' }]);
  });
});

test('resolved() pins a past version: a release keeps the values it was made with', () => {
  withStore((s) => {
    s.set('shop', 'prod', [{ key: 'A', value: '1', kind: 'value' }, { key: 'S', value: 'one', kind: 'secret' }], 'x');
    s.set('shop', 'prod', [{ key: 'A', value: '2', kind: 'value' }, { key: 'S', value: 'two', kind: 'secret' }], 'x');
    s.unset('shop', 'prod', ['A'], 'x');
    assert.deepEqual(s.resolved('shop', 'prod', 1), { version: 1, env: { A: '1', S: 'one' } });
    assert.deepEqual(s.resolved('shop', 'prod', 2), { version: 2, env: { A: '2', S: 'two' } });
    assert.deepEqual(s.resolved('shop', 'prod'), { version: 3, env: { S: 'two' } });
  });
});

test('list masks secrets; get reveals only when asked', () => {
  withStore((s) => {
    s.set('shop', 'prod', [{ key: 'GREETING', value: 'hello', kind: 'value' }, { key: 'DB_PASSWORD', value: SECRET, kind: 'secret' }], 'alice');
    const list = s.list('shop', 'prod');
    assert.deepEqual(list.map((e) => [e.key, e.kind, e.value]), [['DB_PASSWORD', 'secret', undefined], ['GREETING', 'value', 'hello']]);
    assert.ok(!JSON.stringify(list).includes(SECRET));
    assert.equal(list[0]!.updatedBy, 'alice');
    assert.equal(s.get('shop', 'prod', 'DB_PASSWORD').value, undefined);
    assert.equal(s.get('shop', 'prod', 'DB_PASSWORD', { reveal: true }).value, SECRET);
    assert.equal(s.get('shop', 'prod', 'GREETING').value, 'hello');
    assert.throws(() => s.get('shop', 'prod', 'NOPE'), NotFound);
  });
});

test('history never contains secret values, also when a key changes kind', () => {
  withStore((s) => {
    s.set('shop', 'prod', [{ key: 'TOKEN', value: SECRET, kind: 'secret' }], 'a');
    s.set('shop', 'prod', [{ key: 'TOKEN', value: SECRET + '2', kind: 'secret' }], 'a');
    s.set('shop', 'prod', [{ key: 'TOKEN', value: 'public', kind: 'value' }], 'a');
    s.set('shop', 'prod', [{ key: 'TOKEN', value: SECRET + '3', kind: 'secret' }], 'a');
    s.unset('shop', 'prod', ['TOKEN'], 'a');
    const h = JSON.stringify(s.history('shop', 'prod'));
    assert.ok(!h.includes(SECRET), h);
    assert.deepEqual(s.history('shop', 'prod').map((v) => v.changes[0]), [
      { key: 'TOKEN', kind: 'secret', op: 'unset' },
      { key: 'TOKEN', kind: 'secret', op: 'set', old: 'public' },
      { key: 'TOKEN', kind: 'value', op: 'set', new: 'public' },
      { key: 'TOKEN', kind: 'secret', op: 'set' },
      { key: 'TOKEN', kind: 'secret', op: 'set' },
    ]);
  });
});

test('the database files contain no plaintext of a secret', () => {
  withStore((s, path) => {
    s.set('shop', 'prod', [{ key: 'DB_PASSWORD', value: SECRET, kind: 'secret' }], 'a');
    s.set('shop', 'prod', [{ key: 'DB_PASSWORD', value: SECRET + '-next', kind: 'secret' }], 'a');
    s.resolved('shop', 'prod');
    // The store is open in WAL mode, so the newest writes sit in -wal: every file must be there to be read.
    for (const f of [path, path + '-wal', path + '-shm']) {
      assert.ok(existsSync(f), `${f} exists`);
      assert.ok(!readFileSync(f).includes(Buffer.from(SECRET)), `${f} holds the plaintext`);
    }
    assert.ok(readFileSync(path + '-wal').length > 0, 'the writes are in the WAL (the check above read them)');
  });
});

test('bad key names and values are refused with a clear message; nothing changes', () => {
  withStore((s) => {
    for (const [key, re] of [['lower', /"lower" is invalid.*e\.g\. "LOWER"/], ['1ABC', /not starting with a digit/], ['A-B', /e\.g\. "A_B"/],
      ['PORT', /reserved/], ['BERTH_APP', /reserved/], ['', /empty/]] as const) {
      assert.throws(() => s.set('shop', 'prod', [{ key, value: 'v', kind: 'value' }], 'a'), (err: Error) => err instanceof InvalidInput && re.test(err.message));
    }
    assert.throws(() => s.set('shop', 'prod', [{ key: 'OK', value: 'v', kind: 'value' }, { key: 'bad', value: SECRET, kind: 'secret' }], 'a'),
      (err: Error) => err instanceof InvalidInput && !err.message.includes(SECRET));
    assert.throws(() => s.set('shop', 'prod', [{ key: 'K', value: 'a\0b', kind: 'secret' }], 'a'), (err: Error) => /NUL/.test(err.message));
    assert.throws(() => s.set('shop', 'prod', [{ key: 'K', value: 'x'.repeat(70_000), kind: 'value' }], 'a'), /longer than/);
    assert.throws(() => s.set('shop', 'prod', [{ key: 'K', value: '1', kind: 'value' }, { key: 'K', value: '2', kind: 'value' }], 'a'), /twice/);
    assert.throws(() => s.set('Shop', 'prod', [{ key: 'K', value: '1', kind: 'value' }], 'a'), /app name/);
    assert.equal(s.version('shop', 'prod'), 0);
    assert.deepEqual(s.list('shop', 'prod'), []);
  });
});

test('unset of a key that is not set changes nothing', () => {
  withStore((s) => {
    s.set('shop', 'prod', [{ key: 'A', value: '1', kind: 'value' }], 'a');
    assert.throws(() => s.unset('shop', 'prod', ['A', 'NOPE'], 'a'), (err: Error) => err instanceof NotFound && /NOPE is not set/.test(err.message));
    assert.equal(s.version('shop', 'prod'), 1);
    assert.deepEqual(s.resolved('shop', 'prod').env, { A: '1' });
  });
});

test('opened with another key: plain config works, secrets fail with what to do, never the value', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-config-'));
  try {
    const path = join(dir, 'config.db');
    const a = new ConfigStore(path, new SecretBox(randomBytes(32)), clock);
    a.set('shop', 'prod', [{ key: 'A', value: '1', kind: 'value' }, { key: 'S', value: SECRET, kind: 'secret' }], 'x');
    a.close();
    const b = new ConfigStore(path, new SecretBox(randomBytes(32), { kind: 'file', path: join(dir, 'secret.key'), created: true }), clock);
    try {
      assert.match(b.keyProblem() ?? '', /different key than the one in .*secret\.key/);
      assert.equal(b.get('shop', 'prod', 'A').value, '1');
      assert.deepEqual(b.list('shop', 'prod').map((e) => e.key), ['A', 'S']);
      const check = (err: Error) => err instanceof SecretKeyError && /restore the original key/.test(err.message) && !err.message.includes(SECRET);
      assert.throws(() => b.get('shop', 'prod', 'S', { reveal: true }), check);
      assert.throws(() => b.resolved('shop', 'prod'), check);
      assert.throws(() => b.set('shop', 'prod', [{ key: 'T', value: 'x', kind: 'secret' }], 'x'), check);
      assert.equal(b.set('shop', 'prod', [{ key: 'A', value: '2', kind: 'value' }], 'x').version, 2);
    } finally {
      b.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('purgeApp: every value, secret and version of the app in every environment, none of another app; nothing left in the file', () => {
  withStore((s, path) => {
    const marker = `plain-${randomBytes(6).toString('hex')}`;
    s.set('shop', 'prod', [{ key: 'A', value: marker, kind: 'value' }, { key: 'S', value: SECRET, kind: 'secret' }], 'alice');
    s.set('shop', 'prod', [{ key: 'A', value: `${marker}-2`, kind: 'value' }], 'alice');
    s.set('shop', 'pre', [{ key: 'B', value: '1', kind: 'value' }], 'alice');
    s.set('blog', 'prod', [{ key: 'C', value: '1', kind: 'value' }], 'alice');
    assert.deepEqual(s.appInventory('shop'), [{ env: 'pre', values: 1, secrets: 0, versions: 1 }, { env: 'prod', values: 1, secrets: 1, versions: 2 }]);
    assert.deepEqual(s.purgeApp('shop'), { values: 2, secrets: 1, versions: 3 });
    assert.deepEqual(s.appInventory('shop'), []);
    assert.deepEqual(s.appEnvs().map((x) => x.app), ['blog']);
    assert.equal(s.version('shop', 'prod'), 0, 'versions start again');
    assert.throws(() => s.get('shop', 'prod', 'S', { reveal: true }), NotFound);
    assert.equal(s.list('blog', 'prod').length, 1);
    assert.deepEqual(s.purgeApp('shop'), { values: 0, secrets: 0, versions: 0 });
    for (const f of [path, `${path}-wal`]) {
      if (existsSync(f)) assert.equal(readFileSync(f).includes(marker), false, `${f} still holds a purged value`);
    }
  });
});

test('secret and config file values: sealed by keyed digest per app/env, never in the file, gone with the app', () => {
  withStore((s, path, key) => {
    const d = s.keepFile('shop', 'prod', SECRET);
    assert.equal(s.keepFile('shop', 'prod', SECRET), d, 'idempotent');
    assert.match(d, /^[0-9a-f]{64}$/);
    assert.notEqual(s.fileDigest('shop', 'pre', SECRET), d, 'another environment, another digest');
    // Keyed: the same value under another key has another digest (a guess cannot be tested without the key).
    assert.notEqual(new SecretBox(randomBytes(32)).mac(`shop\0prod\0${SECRET}`), d);
    assert.equal(new SecretBox(key).mac(`shop\0prod\0${SECRET}`), d);
    assert.equal(s.openFile('shop', 'prod', d), SECRET);
    assert.throws(() => s.openFile('shop', 'pre', d), NotFound);
    assert.ok(!readFileSync(path).includes(SECRET) && !(existsSync(path + '-wal') && readFileSync(path + '-wal').includes(SECRET)));
    s.purgeApp('shop');
    assert.equal(s.hasFile('shop', 'prod', d), false);
  });
});
