import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostPathGuard } from './host-paths.ts';
import { loadConfig } from './config.ts';

let dir: string;
let allowed: string;
let guard: HostPathGuard;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-hostpaths-'));
  allowed = join(dir, 'apps');
  await mkdir(join(allowed, 'app', 'data'), { recursive: true });
  await mkdir(join(dir, 'outside'), { recursive: true });
  await mkdir(join(dir, 'state'), { recursive: true });
  await writeFile(join(allowed, 'app', 'Dockerfile'), 'FROM scratch\n');
  await writeFile(join(dir, 'outside', 'Dockerfile'), 'FROM scratch\n');
  await symlink('/', join(allowed, 'app', 'rootlink'));
  await symlink(join(dir, 'outside'), join(allowed, 'app', 'outlink'));
  await symlink(join(allowed, 'app', 'data'), join(allowed, 'app', 'datalink'));
  await symlink(join(dir, 'state'), join(allowed, 'app', 'statelink'));
  await symlink(join(dir, 'nowhere'), join(allowed, 'app', 'dangling'));
  await symlink(join(dir, 'outside', 'Dockerfile'), join(allowed, 'app', 'Dockerfile.out'));
  guard = new HostPathGuard({
    allowedRoots: [allowed],
    forbidden: [{ path: join(dir, 'state'), what: "Berth's data directory" }],
  });
});
after(async () => rm(dir, { recursive: true, force: true }));

test('a path under an allowed root passes, resolved; a symlink is judged by where it leads', async () => {
  assert.deepEqual(await guard.bindSource(join(allowed, 'app', 'data')), { path: join(allowed, 'app', 'data') });
  assert.deepEqual(await guard.bindSource(join(allowed, 'app', 'datalink')), { path: join(allowed, 'app', 'data') });
  const root = await guard.bindSource(join(allowed, 'app', 'rootlink'));
  assert.match(root.refused ?? '', /cannot bind-mount ".*rootlink" \(it resolves to "\/"\): it contains Berth's data directory/);
  const out = await guard.bindSource(join(allowed, 'app', 'outlink'));
  assert.match(out.refused ?? '', /\(it resolves to ".*\/outside"\): it is outside the directories this server allows \(.*\/apps\); an admin allows directories by starting berth server with BERTH_ALLOWED_BIND_ROOTS=DIR\[:DIR\.\.\.\] or --allowed-bind-roots DIR\[:DIR\.\.\.\]; or use a named volume$/);
  assert.match((await guard.bindSource('/etc')).refused ?? '', /^cannot bind-mount "\/etc": it is outside the directories this server allows/);
});

test('forbidden paths are refused inside an allowed root, below them and above them', async () => {
  const g = new HostPathGuard({ allowedRoots: ['/'], forbidden: [{ path: join(dir, 'state'), what: "Berth's data directory (x)" }] });
  assert.match((await g.bindSource(join(dir, 'state'))).refused ?? '', /: it is Berth's data directory \(x\); Berth never allows it, whatever the allowed directories$/);
  await mkdir(join(dir, 'state', 'sub'), { recursive: true });
  assert.match((await g.bindSource(join(dir, 'state', 'sub'))).refused ?? '', /it is Berth's data directory/);
  assert.match((await g.bindSource(dir)).refused ?? '', /it contains Berth's data directory/);
  assert.match((await g.bindSource(join(allowed, 'app', 'statelink'))).refused ?? '', /\(it resolves to ".*\/state"\): it is Berth's data directory/);
  assert.deepEqual(await g.bindSource(join(dir, 'outside')), { path: join(dir, 'outside') });
});

test('missing paths, relative paths and no roots at all are refused with what to do', async () => {
  assert.match((await guard.bindSource(join(allowed, 'app', 'missing'))).refused ?? '', /it does not exist on the server .*: create it first/);
  assert.match((await guard.bindSource(join(allowed, 'app', 'dangling'))).refused ?? '', /does not exist on the server \(or a symlink in it leads nowhere\)/);
  assert.match((await guard.bindSource('data')).refused ?? '', /not an absolute path/);
  const none = new HostPathGuard({ allowedRoots: [], forbidden: [] });
  assert.match((await none.bindSource(join(allowed, 'app', 'data'))).refused ?? '', /this server allows no host directories \(BERTH_ALLOWED_BIND_ROOTS is not set\); an admin allows/);
});

test('build contexts: the same rule, a directory, and a Dockerfile that stays inside', async () => {
  assert.deepEqual(await guard.buildContext(join(allowed, 'app'), 'Dockerfile'), { path: join(allowed, 'app') });
  assert.match((await guard.buildContext(join(dir, 'outside'), 'Dockerfile')).refused ?? '', /^cannot build from ".*\/outside": it is outside .*; or push the app with git/);
  assert.match((await guard.buildContext(join(allowed, 'app', 'outlink'), 'Dockerfile')).refused ?? '', /it resolves to ".*\/outside"/);
  assert.match((await guard.buildContext(join(allowed, 'app', 'Dockerfile'), 'Dockerfile')).refused ?? '', /it is not a directory/);
  const df = await guard.buildContext(join(allowed, 'app'), 'Dockerfile.out');
  assert.equal(df.refused !== undefined && df.dockerfile, true);
  assert.match(df.refused ?? '', /its Dockerfile Dockerfile\.out resolves to ".*\/outside\/Dockerfile", outside the build context/);
  assert.match((await guard.buildContext(join(allowed, 'app'), 'Nope')).refused ?? '', /its Dockerfile Nope does not exist/);
});

test('BERTH_ALLOWED_BIND_ROOTS / --allowed-bind-roots: absolute directories, ":"-separated, none by default', () => {
  assert.deepEqual(loadConfig({}, {}).allowedBindRoots, []);
  assert.deepEqual(loadConfig({}, { BERTH_ALLOWED_BIND_ROOTS: '/srv/data/:/opt//apps' }).allowedBindRoots, ['/srv/data', '/opt/apps']);
  assert.deepEqual(loadConfig({ allowedBindRoots: '/x' }, { BERTH_ALLOWED_BIND_ROOTS: '/y' }).allowedBindRoots, ['/x']);
  assert.throws(() => loadConfig({}, { BERTH_ALLOWED_BIND_ROOTS: '/srv:data' }), /"data" is not an absolute path/);
});
