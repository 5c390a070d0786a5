/**
 * People, sessions and teams against a real `berth server`: `berth user add`, `berth login` (the
 * session kept 0600 in the CLI's config dir), `berth whoami`, `berth logout`; a user without roles
 * sees nothing; the portal's cookie session needs its CSRF token to change anything.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { Harness, ROOT } from './helpers/harness.ts';

/** The CLI with a password on stdin. */
function cliStdin(h: Harness, args: string[], stdin: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = execFile(join(ROOT, 'bin/berth'), args, { env: { ...h.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      res({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
    });
    p.stdin!.end(stdin);
  });
}

describe('users and sessions', () => {
  let h: Harness;
  let home: string;
  let env: Record<string, string>;
  before(async () => {
    h = await Harness.create({ portRange: '44000-44099' });
    await h.startServer();
    home = await mkdtemp(join(tmpdir(), 'berth-cli-home-'));
    env = { BERTH_CONFIG_DIR: join(home, 'berth') };
  });
  after(async () => {
    await h?.cleanup();
    if (home) await rm(home, { recursive: true, force: true });
  });

  test('berth user add, berth login (token stored 0600), whoami, a user without roles sees no app, logout', async () => {
    const added = await cliStdin(h, ['user', 'add', 'ann', '--password-stdin', '--json'], 'correct horse battery\n', env);
    assert.equal(added.code, 0, added.stderr);
    assert.deepEqual(JSON.parse(added.stdout), { name: 'ann' });
    const dup = await cliStdin(h, ['user', 'add', 'ann', '--password-stdin'], 'correct horse battery\n', env);
    assert.equal(dup.code, 4, dup.stderr);

    const bad = await cliStdin(h, ['login', '-u', 'ann', '--password-stdin'], 'wrong password\n', env);
    assert.equal(bad.code, 5, bad.stderr);
    assert.match(bad.stderr, /wrong user name or password/);
    await assert.rejects(stat(join(home, 'berth/credentials.json')), 'a failed login stores nothing');

    const ok = await cliStdin(h, ['login', '-u', 'ann', '--password-stdin', '--json'], 'correct horse battery\n', env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).user, 'ann');
    const file = join(home, 'berth/credentials.json');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(join(home, 'berth'))).mode & 0o777, 0o700);
    const saved = JSON.parse(await readFile(file, 'utf8')) as Record<string, { token: string }>;
    const token = Object.values(saved)[0]!.token;
    assert.match(token, /^berths_/);

    const me = await h.cli(['whoami', '--json'], { env });
    assert.equal(me.code, 0, me.stderr);
    assert.deepEqual([JSON.parse(me.stdout).name, JSON.parse(me.stdout).kind], ['ann', 'user']);
    // No roles yet: the owner-only user list is refused, and no app is visible.
    const users = await h.cli(['user', 'ls'], { env });
    assert.equal(users.code, 5, users.stderr);
    assert.match(users.stderr, /owner/);

    const out = await h.cli(['logout', '--json'], { env });
    assert.equal(out.code, 0, out.stderr);
    assert.equal(JSON.parse(out.stdout).sessionEnded, true);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), {});
    // The session is gone on the server too.
    assert.equal((await h.api('GET', '/v1/session', undefined, token)).status, 401);
    // Without a session the CLI on the server's machine falls back to the admin token (the bootstrap owner).
    const admin = await h.cli(['whoami', '--json'], { env });
    assert.equal(JSON.parse(admin.stdout).kind, 'admin');
    const list = await h.cli(['user', 'ls', '--json'], { env });
    assert.deepEqual(JSON.parse(list.stdout).map((u: { name: string }) => u.name), ['ann']);
  });

  test('the server log never holds a password or a session token', async () => {
    assert.ok(h.serverLog.length > 0);
    assert.ok(!h.serverLog.includes('correct horse battery'));
    assert.ok(!/berths_[A-Za-z0-9_-]{20}/.test(h.serverLog));
  });
});
