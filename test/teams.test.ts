/**
 * People, sessions and teams against a real `berth server`: `berth user add`, `berth login` (the
 * session kept 0600 in the CLI's config dir), `berth whoami`, `berth logout`; a user without roles
 * sees nothing; the portal's cookie session needs its CSRF token to change anything.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import Database from 'better-sqlite3';
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
    h = await Harness.create({ portRange: '19000-19099' });
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

    // No roles yet: the owner-only user list is refused, and no app is visible (both asked at once).
    const [me, users] = await Promise.all([h.cli(['whoami', '--json'], { env }), h.cli(['user', 'ls'], { env })]);
    assert.equal(me.code, 0, me.stderr);
    assert.deepEqual([JSON.parse(me.stdout).name, JSON.parse(me.stdout).kind], ['ann', 'user']);
    assert.equal(users.code, 5, users.stderr);
    assert.match(users.stderr, /owner/);

    const out = await h.cli(['logout', '--json'], { env });
    assert.equal(out.code, 0, out.stderr);
    assert.equal(JSON.parse(out.stdout).sessionEnded, true);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), {});
    // The session is gone on the server too.
    assert.equal((await h.api('GET', '/v1/session', undefined, token)).status, 401);
    // Without a session the CLI on the server's machine falls back to the admin token (the bootstrap owner).
    const [admin, list] = await Promise.all([h.cli(['whoami', '--json'], { env }), h.cli(['user', 'ls', '--json'], { env })]);
    assert.equal(JSON.parse(admin.stdout).kind, 'admin');
    assert.deepEqual(JSON.parse(list.stdout).map((u: { name: string }) => u.name), ['ann']);
  });

  test('two teams: a deployer of team a deploys a new app (it becomes a\'s); team b cannot read, scale, log, push to it — 404 as if it did not exist', async () => {
    for (const r of await Promise.all(['a', 'b'].map((team) => h.cli(['team', 'add', team])))) assert.equal(r.code, 0, r.stderr);
    const session = async (user: string, team: string) => {
      assert.equal((await cliStdin(h, ['user', 'add', user, '--password-stdin'], 'correct horse battery\n', env)).code, 0);
      const g = await h.cli(['grant', 'add', user, 'deployer', '--team', team, '--json']);
      assert.equal(g.code, 0, g.stderr);
      const r = await h.api('POST', '/v1/session', { user, password: 'correct horse battery', client: 'cli' }, null);
      assert.equal(r.status, 201);
      return r.json.token as string;
    };
    const [dee, bob] = await Promise.all([session('dee', 'a'), session('bob', 'b')]);
    const file = join(home, 'alpha.yaml');
    await writeFile(file, 'name: alpha\nservices:\n  worker:\n    image: berth/busybox\n    command: ["sleep", "600"]\n    stop_grace_period: 1s\n');
    const d = await h.cli(['deploy', '-f', file, '--json'], { env: { BERTH_TOKEN: dee }, timeoutMs: 120_000 });
    assert.equal(d.code, 0, d.stderr + d.stdout);
    assert.deepEqual(JSON.parse((await h.cli(['team', 'ls', '--json'])).stdout).map((t: { name: string; apps: string[] }) => [t.name, t.apps]), [['a', ['alpha']], ['b', []]]);
    // Team b: every way of asking about alpha is the 404 of an app that does not exist.
    const unknown = await h.api('GET', '/v1/apps/no-such-app', undefined, bob);
    for (const [method, path, body] of [
      ['GET', '/v1/apps/alpha'], ['GET', '/v1/apps/alpha/releases'], ['GET', '/v1/apps/alpha/logs'], ['GET', '/v1/events?app=alpha'],
      ['POST', '/v1/apps/alpha/scale', { service: 'worker', replicas: 3 }], ['POST', '/v1/apps/alpha/restart', {}], ['DELETE', '/v1/apps/alpha'],
      ['GET', '/v1/apps/alpha/config'], ['POST', '/v1/apps/alpha/deployments', { spec: { name: 'alpha', services: {} } }],
    ] as [string, string, unknown?][]) {
      const r = await h.api(method, path, body, bob);
      assert.equal(r.status, 404, `${method} ${path}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.message, unknown.json.error.message.replace('no-such-app', 'alpha'), `${method} ${path}`);
    }
    assert.deepEqual((await h.api('GET', '/v1/apps', undefined, bob)).json.apps, []);
    assert.ok((await h.api('GET', '/v1/events', undefined, bob)).json.events.every((e: { app: string }) => e.app !== 'alpha'));
    assert.equal((await h.api('GET', '/v1/apps/alpha', undefined, dee)).status, 200);
    // git push to alpha's remote with bob's credential: refused before git runs; no repository appears.
    const work = join(home, 'repo');
    const git = (args: string[], cwd = home) => new Promise<{ code: number; out: string }>((res) => {
      execFile('git', args, { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } }, (err, stdout, stderr) => res({ code: err ? 1 : 0, out: stdout + stderr }));
    });
    assert.equal((await git(['init', '-q', '-b', 'main', work])).code, 0);
    await writeFile(join(work, 'README'), 'x\n');
    assert.equal((await git(['-c', 'user.email=b@x', '-c', 'user.name=b', 'commit', '-q', '--allow-empty', '-m', 'x'], work)).code, 0);
    const push = await git(['push', `http://bob:${bob}@127.0.0.1:${h.apiPort}/git/alpha.git`, 'main'], work);
    assert.notEqual(push.code, 0, push.out);
    assert.match(push.out, /not found|404/i);
    assert.equal(existsSync(join(h.dataDir, 'git', 'alpha.git')), false);
    const raw = await fetch(`http://127.0.0.1:${h.apiPort}/git/alpha.git/info/refs?service=git-receive-pack`, {
      headers: { authorization: `Basic ${Buffer.from(`bob:${bob}`).toString('base64')}` },
    });
    assert.equal(raw.status, 404);
    // Scaling alpha is still one replica: nothing bob asked for happened.
    assert.equal((await h.api('GET', '/v1/apps/alpha')).json.services[0].desired, 1);

    // A deployer of alpha's test environment only: pushing main (which deploys to prod) is refused before anything is built.
    assert.equal((await cliStdin(h, ['user', 'add', 'tess', '--password-stdin'], 'correct horse battery\n', env)).code, 0);
    assert.equal((await h.cli(['grant', 'add', 'tess', 'deployer', '--team', 'a', '--app', 'alpha', '--env', 'test'])).code, 0);
    const tess = (await h.api('POST', '/v1/session', { user: 'tess', password: 'correct horse battery', client: 'cli' }, null)).json.token as string;
    await writeFile(join(work, 'compose.yaml'), 'name: alpha\nservices:\n  worker:\n    image: berth/busybox\n    command: ["sleep", "600"]\n');
    assert.equal((await git(['add', 'compose.yaml'], work)).code, 0);
    assert.equal((await git(['-c', 'user.email=t@x', '-c', 'user.name=t', 'commit', '-q', '-m', 'compose'], work)).code, 0);
    const tpush = await git(['push', `http://tess:${tess}@127.0.0.1:${h.apiPort}/git/alpha.git`, 'main'], work);
    assert.notEqual(tpush.code, 0, tpush.out);
    assert.match(tpush.out, /the pusher may not deploy alpha to prod: it needs the deployer role there/);
    const deployments = (await h.api('GET', '/v1/audit?app=alpha&action=git.push')).json.entries as { actorName: string }[];
    assert.ok(deployments.some((e) => e.actorName === 'tess'), 'the push is in the audit log');
    assert.equal((await h.api('GET', '/v1/apps/alpha/releases')).json.releases.length, 1, 'nothing was deployed');
  });

  test('berth token: a CI token made from dee\'s roles, scoped to alpha in test, shown once; revoked at once', async () => {
    const dee = (await h.api('POST', '/v1/session', { user: 'dee', password: 'correct horse battery', client: 'cli' }, null)).json.token as string;
    const as = { env: { BERTH_TOKEN: dee } };
    const tooMuch = await h.cli(['token', 'create', 'ci', '--grant', 'deployer:b'], as);
    assert.equal(tooMuch.code, 5, tooMuch.stderr);
    const made = await h.cli(['token', 'create', 'ci alpha', '--grant', 'operator:a/alpha/test', '--expires', '1d', '--json'], as);
    assert.equal(made.code, 0, made.stderr);
    const { token, id } = JSON.parse(made.stdout) as { token: string; id: string };
    assert.match(token, /^bertht_/);
    const listed = await h.cli(['token', 'ls', '--json'], as);
    assert.ok(!listed.stdout.includes(token), 'never shown again');
    assert.equal((await h.api('GET', '/v1/apps/alpha', undefined, token)).status, 200);
    assert.equal((await h.api('POST', '/v1/apps/alpha/scale', { service: 'worker', replicas: 2 }, token)).status, 403, 'prod is not test');
    assert.equal((await h.cli(['token', 'revoke', id], as)).code, 0);
    assert.equal((await h.api('GET', '/v1/apps/alpha', undefined, token)).status, 401);
  });

  test('approval: prod of team a requires a second person; dee\'s deploy waits, dee cannot approve it, the owner can', async () => {
    const pol = await h.cli(['team', 'policy', 'a', 'prod', '--require-approval', '--json']);
    assert.equal(pol.code, 0, pol.stderr);
    const dee = (await h.api('POST', '/v1/session', { user: 'dee', password: 'correct horse battery', client: 'cli' }, null)).json.token as string;
    const d = await h.cli(['deploy', '-f', join(home, 'alpha.yaml'), '--json'], { env: { BERTH_TOKEN: dee }, timeoutMs: 120_000 });
    assert.equal(d.code, 0, d.stderr + d.stdout);
    const { approval } = JSON.parse(d.stdout) as { approval: { id: string; status: string } };
    assert.equal(approval.status, 'pending');
    const self = await h.cli(['approve', approval.id], { env: { BERTH_TOKEN: dee } });
    assert.equal(self.code, 5, self.stderr);
    assert.match(self.stderr, /a second person must approve it/);
    const ok = await h.cli(['approve', approval.id, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    const r = JSON.parse(ok.stdout) as { approval: { status: string; decidedBy: string }; status: number; result: { deployment: { id: string } } };
    assert.deepEqual([r.approval.status, r.approval.decidedBy, r.status], ['approved', 'admin', 202]);
    const list = JSON.parse((await h.cli(['approvals', '--status', 'approved', '--json'], { env: { BERTH_TOKEN: dee } })).stdout) as { id: string }[];
    assert.deepEqual(list.map((a) => a.id), [approval.id]);
    assert.equal((await h.cli(['team', 'policy', 'a', 'prod', '--no-require-approval'])).code, 0);
  });

  test('berth audit: who did what from where (CLI, API, tokens); JSON lines; verify finds a row edited in the SQLite file', async () => {
    // Reads of the log: side by side.
    const [list, sessions, jsonl, ok] = await Promise.all([h.cli(['audit', '--json', '--actor', 'dee']), h.cli(['audit', '--json', '--action', 'session']),
      h.cli(['audit', '--jsonl', '--app', 'alpha']), h.cli(['audit', 'verify', '--json'])]);
    assert.equal(list.code, 0, list.stderr);
    const mine = JSON.parse(list.stdout) as { action: string; app: string; ip: string; status: number }[];
    assert.ok(mine.some((e) => e.action === 'POST /v1/apps/:app/deployments' && e.app === 'alpha' && e.status === 202 && e.ip === '127.0.0.1'), list.stdout);
    const failedLogin = JSON.parse(sessions.stdout) as { actorName: string; status: number }[];
    assert.ok(failedLogin.some((e) => e.actorName === 'ann' && e.status === 401));
    assert.equal(jsonl.code, 0, jsonl.stderr);
    const lines = jsonl.stdout.trim().split('\n').map((l) => JSON.parse(l) as { app: string; hash: string });
    assert.ok(lines.length >= 1 && lines.every((e) => e.app === 'alpha' && /^[0-9a-f]{64}$/.test(e.hash)));
    assert.ok(!jsonl.stdout.includes('correct horse battery'));
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal(JSON.parse(ok.stdout).ok, true);
    // A viewer of nothing cannot read the log.
    const denied = await h.api('GET', '/v1/audit', undefined, (await h.api('POST', '/v1/session', { user: 'ann', password: 'correct horse battery', client: 'cli' }, null)).json.token);
    assert.equal(denied.status, 403);
    // An intruder with the file: drops the trigger, edits a row.
    const db = new Database(join(h.dataDir, 'audit.db'));
    try {
      db.exec('DROP TRIGGER audit_no_update');
      db.prepare("UPDATE audit SET actor_name = 'nobody' WHERE seq = 2").run();
    } finally {
      db.close();
    }
    const bad = await h.cli(['audit', 'verify']);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, /audit log TAMPERED at entry #2: its contents do not match its hash/);
  });

  test('the server log never holds a password or a session token', async () => {
    assert.ok(h.serverLog.length > 0);
    assert.ok(!h.serverLog.includes('correct horse battery'));
    assert.ok(!/berth[st]_[A-Za-z0-9_-]{20}/.test(h.serverLog), 'no session or API token');
    assert.ok(!h.serverLog.includes(await h.token()), 'no admin token');
  });
});
