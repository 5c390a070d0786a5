/**
 * git push to a deployed app, end to end: a real `berth server`, git over smart HTTP, the Docker
 * Engine and nginx. Push → built as berth/APP/SERVICE:SHA12 → tested → deployed → served by the
 * ingress, with the pipeline's progress in the `git push` output; a push whose tests fail reports the
 * failure and leaves the running release serving; a wrong token stores nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { git, gitTimed, helloCompose, pushSetup, type PushSetup } from './helpers/git.ts';
import { docker, get, type Harness } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const APP = 'pushy';

function compose(version: string, testCmd?: string, more: { xTest?: string; top?: string } = {}): string {
  return helloCompose(APP, version, { ...(testCmd ? { testCmd } : {}), ...more });
}

describe('git push', () => {
  let h: Harness;
  let work: string;
  let token: string;
  let setup: PushSetup;
  before(async () => {
    setup = await pushSetup({ portRange: '10000-10099', prefix: 'berth-push-', compose: compose('v1') });
    ({ h, work, token } = setup);
  });
  after(() => setup.cleanup());

  const remote = (t: string, app = APP) => setup.remote(app, t);
  const whoami = async () => JSON.parse((await get(h.ingressPort, '/api/whoami')).body) as { version: string; instance: string };

  test('a wrong token is refused with 401 and stores nothing', async () => {
    const r = await git(work, ['push', remote('wrong-token', 'intruder'), 'main']);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /Authentication failed|401/);
    const raw = await fetch(`http://127.0.0.1:${h.apiPort}/git/intruder.git/info/refs?service=git-receive-pack`, {
      headers: { authorization: `Basic ${Buffer.from('x:nope').toString('base64')}` },
    });
    assert.equal(raw.status, 401);
    assert.match(raw.headers.get('www-authenticate') ?? '', /^Basic/);
    assert.equal(existsSync(join(h.dataDir, 'git', 'intruder.git')), false);
    // The hook endpoint wants the hook token, not an API token.
    const hook = await fetch(`http://127.0.0.1:${h.apiPort}/v1/git/hooks/pre-receive?app=${APP}`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' }, body: '',
    });
    assert.equal(hook.status, 401);
  });

  test('a push naming a branch Berth cannot build ("-x") is refused whole with the reason, not an internal error; nothing is built', async () => {
    const r = await git(work, ['push', remote(token, 'badbranch'), 'main', 'HEAD:refs/heads/-x']);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /"-x" is not a branch name Berth deploys: a branch name does not start with "-"; push to a branch such as main/);
    assert.doesNotMatch(r.out, /internal error/);
    // main was pushed alongside: it is not built either (nothing half-applied; builds are recorded before the push answers).
    const builds = (await h.api('GET', '/v1/builds')).json.builds as { app: string }[];
    assert.deepEqual(builds.filter((b) => b.app === 'badbranch'), []);
    assert.doesNotMatch((await git(work, ['ls-remote', remote(token, 'badbranch')])).out, /refs\/heads\//, 'no ref was stored');
  });

  test('push main: built, deployed to prod, served through the ingress', async () => {
    const r = await git(work, ['push', remote(token), 'main']);
    assert.equal(r.code, 0, r.out);
    const sha = (await git(work, ['rev-parse', 'HEAD'])).out.trim();
    assert.match(r.out, /remote: -----> Building web as berth\/pushy\/web:/);
    assert.match(r.out, new RegExp(`remote: -----> web built: berth/${APP}/web:${sha.slice(0, 12)}`));
    assert.match(r.out, /remote: -----> pushy deployed to prod/);
    const w = await whoami();
    assert.equal(w.version, 'v1');
    const labels = JSON.parse(await docker('image', 'inspect', '--format', '{{json .Config.Labels}}', `berth/${APP}/web:${sha.slice(0, 12)}`));
    assert.equal(labels['io.berth.commit'], sha);
    // Labelled from the commit alone (no branch, build id or build time): a rebuild is the same image.
    assert.equal(labels['io.berth.commit-time'], new Date((await git(work, ['show', '-s', '--format=%cI', sha])).out.trim()).toISOString());
    assert.equal(labels['io.berth.build-time'], undefined);
    const builds = await h.api('GET', `/v1/builds?app=${APP}`);
    assert.equal(builds.status, 200);
    assert.equal(builds.json.builds.length, 1);
    const b = builds.json.builds[0];
    assert.equal(b.status, 'succeeded');
    assert.equal(b.commit, sha);
    assert.equal(b.env, 'prod');
    const logs = await fetch(`http://127.0.0.1:${h.apiPort}/v1/builds/${b.id}/logs`, { headers: { authorization: `Bearer ${token}` } });
    assert.match(await logs.text(), /deployed to prod/);
    const cli = await h.cli(['builds', APP]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`${b.id}\\s+${APP}\\s+main\\s+prod\\s+${sha.slice(0, 12)}\\s+succeeded`));
    const cliLogs = await h.cli(['build', 'logs', b.id]);
    assert.match(cliLogs.stdout, /deployed to prod/);
    assert.equal((await h.cli(['build', 'logs', 'nope'])).code, 3);
  });

  test('a push whose tests fail reports it and leaves the running release serving', async () => {
    const before = await whoami();
    // x-berth.test (the `berth-test` label, used below, is the older spelling).
    await writeFile(join(work, 'compose.yaml'), compose('v2', undefined, { xTest: "[sh, -c, 'echo running tests; exit 1']" }));
    assert.equal((await git(work, ['commit', '-qam', 'v2 with failing tests'])).code, 0);
    const r = await git(work, ['push', remote(token), 'main']);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /remote: -----> Testing web/);
    assert.match(r.out, /remote: +running tests/);
    assert.match(r.out, /tests of web failed \(exit code 1\)/);
    assert.doesNotMatch(r.out, /deployed to prod/);
    const now = await whoami();
    assert.equal(now.version, 'v1');
    assert.equal(now.instance, before.instance);
    const builds = (await h.api('GET', `/v1/builds?app=${APP}`)).json.builds;
    assert.deepEqual(builds.map((b: { status: string }) => b.status), ['failed', 'succeeded']);
    const releases = (await h.api('GET', `/v1/apps/${APP}/releases?env=prod`)).json.releases;
    assert.equal(releases.length, 1);
    // The image the failed build made is not left on the engine.
    const failedTag = `berth/${APP}/web:${(await git(work, ['rev-parse', 'HEAD'])).out.trim().slice(0, 12)}`;
    await waitFor(async () => (await docker('image', 'ls', '-q', failedTag)) === '', { timeoutMs: 15_000, what: `${failedTag} removed` });
  });

  test('a push whose tests pass rolls the new commit out, its progress shown live', async () => {
    await writeFile(join(work, 'compose.yaml'), compose('v3', "sh -c 'echo tests ok; sleep 2'"));
    assert.equal((await git(work, ['commit', '-qam', 'v3'])).code, 0);
    const r = await gitTimed(work, ['push', remote(token), 'main']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /remote: -----> Tests of web passed/);
    // Live: the line announcing the tests reaches the pusher while they run, not with the rest at the end.
    const at = (re: RegExp) => r.lines.find((l) => re.test(l.text))?.ms ?? NaN;
    const gap = at(/Tests of web passed/) - at(/-----> Testing web/);
    assert.ok(gap >= 1500, `"Testing web" arrived ${gap} ms before "Tests of web passed" (the tests sleep 2 s)`);
    assert.match(r.out, /remote: -----> Done in [0-9.]+s \(archive [0-9.]+s · build [0-9.]+s · checks [0-9.]+s · test [0-9.]+s · push [0-9.]+s · deploy [0-9.]+s\)/);
    assert.match(r.out, /remote: -----> pushy deployed to prod/);
    assert.equal((await whoami()).version, 'v3');
    const sha = (await git(work, ['rev-parse', 'HEAD'])).out.trim();
    // The branch in Berth's repository is what runs: the rejected commit never landed there.
    const remoteHead = await git(work, ['ls-remote', remote(token), 'refs/heads/main']);
    assert.match(remoteHead.out, new RegExp(`^${sha}\\s`));
    // The image standards report is part of the push output.
    assert.match(r.out, /remote: -----> Checks for web/);
    assert.match(r.out, /remote:\s+pass pinned-from: FROM images are pinned/);
    assert.match(r.out, /remote:\s+pass base-chain: image chain is 2 levels deep/);
  });

  test('an image with a secret in ENV fails the checks: the push is rejected, the running release stays', async () => {
    const before = await whoami();
    const df = join(work, 'Dockerfile');
    const original = await readFile(df, 'utf8');
    await writeFile(df, original + 'ENV DB_PASSWORD=hunter2\n');
    await writeFile(join(work, 'compose.yaml'), compose('v4'));
    assert.equal((await git(work, ['commit', '-qam', 'v4 with a secret baked in'])).code, 0);
    const r = await git(work, ['push', remote(token), 'main']);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /fail no-secrets: ENV DB_PASSWORD sets a secret-looking name/);
    assert.match(r.out, /image checks failed for web: no-secrets/);
    assert.equal((await whoami()).instance, before.instance);
    await writeFile(df, original);
    assert.equal((await git(work, ['commit', '-qam', 'no secret'])).code, 0);
  });

  test('a push whose deployment would be refused (a route another app serves) fails before anything is built', async () => {
    const r = await git(work, ['push', remote(token, 'pushy-twin'), 'main']);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /deployment to prod would be refused, so nothing was built: route \(any host\)\/ of web is already served by pushy\/prod\/web/);
    assert.doesNotMatch(r.out, /-----> Building/);
    const b = (await h.api('GET', '/v1/builds?app=pushy-twin')).json.builds[0];
    assert.equal(b.status, 'failed');
    assert.deepEqual(b.images, {});
    assert.equal((await h.api('GET', '/v1/apps/pushy-twin')).status, 404, 'no app, no deployment');
  });

  test('x-berth.pipeline.checks strict: [non-root] turns the root warning into a rejected push', async () => {
    const before = await whoami();
    await writeFile(join(work, 'compose.yaml'), compose('v4b', undefined, { top: 'x-berth:\n  pipeline:\n    checks:\n      strict: [non-root]\n' }));
    assert.equal((await git(work, ['commit', '-qam', 'v4b: strict about root'])).code, 0);
    const r = await git(work, ['push', remote(token), 'main']);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /fail non-root: runs as root: add USER with an unprivileged user \(strict in x-berth\.pipeline\.checks\)/);
    assert.match(r.out, /image checks failed for web: non-root/);
    assert.equal((await whoami()).instance, before.instance);
    const b = (await h.api('GET', `/v1/builds?app=${APP}&limit=1`)).json.builds[0];
    assert.equal(b.checks.web.find((c: { id: string }) => c.id === 'non-root').level, 'fail', 'the report is on the build record');
  });

  test('a code-only change reuses the cached dependency layers', async () => {
    // A Dockerfile with the dependency layers before the code, as the image standards recommend.
    await writeFile(join(work, 'Dockerfile'), 'FROM berth/node:20\nWORKDIR /app\nCOPY package.json ./\nCOPY node_modules ./node_modules\nCOPY server.js ./\nCMD ["node", "/app/server.js"]\n');
    await writeFile(join(work, 'package.json'), JSON.stringify({ name: 'pushy', version: '1.0.0', dependencies: { leftpad: '1' } }));
    await mkdir(join(work, 'node_modules', 'leftpad'), { recursive: true });
    await writeFile(join(work, 'node_modules', 'leftpad', 'index.js'), 'module.exports = (s, n) => String(s).padStart(n);\n');
    await writeFile(join(work, 'compose.yaml'), compose('v5'));
    assert.equal((await git(work, ['add', '-A'])).code, 0);
    assert.equal((await git(work, ['commit', '-qm', 'v5 with dependencies'])).code, 0);
    const first = await git(work, ['push', remote(token), 'main']);
    assert.equal(first.code, 0, first.out);
    const before = (await git(work, ['rev-parse', 'HEAD'])).out.trim().slice(0, 12);

    await writeFile(join(work, 'server.js'), (await readFile(join(work, 'server.js'), 'utf8')) + '\n// a code-only change\n');
    assert.equal((await git(work, ['commit', '-qam', 'v5: code only'])).code, 0);
    const second = await git(work, ['push', remote(token), 'main']);
    assert.equal(second.code, 0, second.out);
    const after = (await git(work, ['rev-parse', 'HEAD'])).out.trim().slice(0, 12);
    // The build output says the dependency steps came from the cache…
    const deps = second.out.split('\n').filter((l) => /COPY (package\.json|node_modules)/.test(l));
    assert.ok(deps.length >= 2, second.out);
    assert.match(second.out, /CACHED|Using cache/);
    // …and the images prove it: every layer but the code's is shared with the previous build.
    const layers = async (tag: string) => JSON.parse(await docker('image', 'inspect', '--format', '{{json .RootFS.Layers}}', `berth/${APP}/web:${tag}`)) as string[];
    const a = await layers(before);
    const b = await layers(after);
    assert.equal(a.length, b.length);
    assert.deepEqual(b.slice(0, -1), a.slice(0, -1), 'dependency layers reused');
    assert.notEqual(b.at(-1), a.at(-1), 'the code layer is new');
  });

  test('berth build cancel stops a running build: the push is rejected, nothing deployed, no test container left', async () => {
    const before = await whoami();
    await writeFile(join(work, 'compose.yaml'), compose('v6', 'sleep 60'));
    assert.equal((await git(work, ['commit', '-qam', 'v6 with slow tests'])).code, 0);
    const push = git(work, ['push', remote(token), 'main']);
    let id = '';
    await waitFor(async () => {
      const b = (await h.api('GET', `/v1/builds?app=${APP}`)).json.builds[0] as { id: string; status: string; stage?: string };
      id = b.id;
      return b.status === 'running' && b.stage === 'test';
    }, { timeoutMs: 120_000, intervalMs: 100, what: 'the build to reach its tests' });
    await waitFor(async () => (await docker('ps', '-q', '--filter', `label=io.berth.build=${id}`)).trim() !== '', { timeoutMs: 30_000, what: 'the test container' });
    const c = await h.cli(['build', 'cancel', id]);
    assert.equal(c.code, 0, c.stdout + c.stderr);
    assert.match(c.stdout, /cancelled/);
    const r = await push;
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /cancelled by admin during the test stage: nothing was deployed/);
    const b = (await h.api('GET', `/v1/builds/${id}`)).json.build;
    assert.equal(b.status, 'cancelled');
    assert.equal((await docker('ps', '-aq', '--filter', `label=io.berth.build=${id}`)).trim(), '', 'the test container is gone');
    assert.equal((await whoami()).instance, before.instance, 'the running release is untouched');
    // Cancelling again, or a build that does not exist: conflict (4) and not found (3).
    assert.equal((await h.cli(['build', 'cancel', id])).code, 4);
    assert.equal((await h.cli(['build', 'cancel', 'nope'])).code, 3);
  });

  test('a build context outside the repository is refused: builds use only what the commit holds', async () => {
    await writeFile(join(work, 'compose.yaml'), compose('v7').replace('build: .', 'build: ..'));
    assert.equal((await git(work, ['commit', '-qam', 'v7 builds from the parent directory'])).code, 0);
    const r = await git(work, ['push', remote(token, 'pushy-escape'), 'main']);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /the build context of web \(\.\.\) is outside the repository/);
    assert.doesNotMatch(r.out, /-----> Building/);
  });
});
