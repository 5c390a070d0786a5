/**
 * Builds from a remote through webhooks, against a real git host (smart HTTP on 127.0.0.1): a wrong
 * signature is 401 and nothing is built; a signed GitHub push event makes Berth fetch the commit from
 * the app's remote, build it and deploy it. The source remote is a network remote only (never an
 * option git would run, never a local path); a delivery is acted on once; a webhook never moves a
 * branch backwards; hook URLs do not tell which apps exist.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Harness, ROOT, docker, get } from './helpers/harness.ts';
import { serveGitRemotes } from './helpers/git.ts';
import { waitFor } from '../src/lib/backoff.ts';

const exec = promisify(execFile);
const APP = 'hooked';
const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.invalid' };

function compose(version: string): string {
  // The pushed compose.yaml maps main to the pre-production environment.
  return `name: ${APP}\nx-berth:\n  pipeline:\n    branches: {main: pre}\nservices:\n  web:\n    build: .\n    environment:\n      APP_VERSION: ${version}\n    x-berth:\n      port: 3000\n      routes: [{path: /}]\n      health: {http: /healthz}\n`;
}

const json = async (r: Response): Promise<any> => r.json();

interface Build {
  id: string;
  status: string;
  message: string;
  commit: string;
  env: string;
  images: Record<string, string>;
}

describe('webhooks', () => {
  let h: Harness;
  let dir: string;
  let work: string;
  let host: { url: string; close(): Promise<void> };
  let remote: string;
  let sha: string;
  let secret: string;
  const git = async (...args: string[]) => (await exec('git', ['-C', work, ...args], { env: gitEnv })).stdout.trim();
  /** Commits what is in `work` and publishes the branch on the git host. */
  const publish = async (msg: string, branch = 'main') => {
    await git('add', '-A');
    await git('commit', '-qm', msg);
    await git('push', '-q', join(dir, 'srv', `${APP}.git`), `HEAD:refs/heads/${branch}`);
    return git('rev-parse', 'HEAD');
  };

  before(async () => {
    h = await Harness.create({ portRange: '10100-10199' });
    await h.startServer();
    dir = await mkdtemp(join(tmpdir(), 'berth-hook-'));
    work = join(dir, 'work');
    await exec('git', ['init', '-q', '-b', 'main', work]);
    await mkdir(join(dir, 'srv'));
    await exec('git', ['init', '-q', '--bare', '-b', 'main', join(dir, 'srv', `${APP}.git`)]);
    for (const f of ['Dockerfile', 'server.js']) await copyFile(join(ROOT, 'examples/hello', f), join(work, f));
    await writeFile(join(work, 'compose.yaml'), compose('hooked-v1'));
    sha = await publish('v1');
    host = await serveGitRemotes(join(dir, 'srv'));
    remote = `${host.url}/${APP}.git`;
    const src = await h.api('PUT', `/v1/apps/${APP}/source`, { remote });
    assert.equal(src.status, 200, JSON.stringify(src.json));
    secret = src.json.secret;
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-5000));
    await h.cleanup();
    await host?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const sign = (body: string, s = secret) => 'sha256=' + createHmac('sha256', s).update(body).digest('hex');
  const post = (body: string, headers: Record<string, string>, app = APP) => fetch(`http://127.0.0.1:${h.apiPort}/v1/hooks/github/${app}`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push', ...headers }, body,
  });
  /** A signed push event as GitHub sends it, with a fresh delivery id unless one is given. */
  const deliver = (body: string, o: { delivery?: string; app?: string; secret?: string } = {}) =>
    post(body, { 'x-github-delivery': o.delivery ?? randomUUID(), 'x-hub-signature-256': sign(body, o.secret) }, o.app);
  const pushEvent = (commit: string, extra: Record<string, unknown> = {}) => JSON.stringify({ ref: 'refs/heads/main', after: commit, ...extra });
  const builds = async (app = APP) => (await h.api('GET', `/v1/builds?app=${app}`)).json.builds as Build[];
  const finished = (id: string) => waitFor(async () => {
    const b = (await h.api('GET', `/v1/builds/${id}`)).json.build as Build;
    return b.status === 'succeeded' || b.status === 'failed' || b.status === 'cancelled' ? b : undefined;
  }, { timeoutMs: 180_000, intervalMs: 300, what: `build ${id} to finish` });
  const succeeded = async (id: string) => {
    const b = await finished(id);
    assert.equal(b.status, 'succeeded', b.message);
    return b;
  };
  const version = async () => (JSON.parse((await get(h.ingressPort, '/api/whoami')).body) as { version: string }).version;

  test('a source remote git would run or read locally is refused: 400 naming the field, nothing stored', async () => {
    const marker = join(dir, 'pwned-by-put');
    const stored = await readFile(join(h.dataDir, 'git', `${APP}.source.json`), 'utf8');
    for (const [bad, why] of [
      [`--upload-pack=touch ${marker}`, /white space/],
      [`--upload-pack=touch\${IFS}${marker}`, /starts with "-"/],
      [`file://${join(h.dataDir, 'git', 'other.git')}`, /file:\/\/ remotes/],
      [join(h.dataDir, 'git', 'other.git'), /local paths are not accepted/],
      ['ext::sh -c touch% /tmp/x', /white space/],
      ['ext::touch%/tmp/x', /remote helpers/],
    ] as const) {
      const r = await h.api('PUT', `/v1/apps/${APP}/source`, { remote: bad });
      assert.equal(r.status, 400, `${bad}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.code, 'invalid_input');
      assert.match(r.json.error.message, /^remote: ".*" is not an accepted git remote \(/);
      assert.match(r.json.error.message, why);
      assert.match(r.json.error.message, /use https:\/\/HOST\/PATH, http:\/\/HOST\/PATH, ssh:\/\/\[USER@\]HOST\[:PORT\]\/PATH or scp-style \[USER@\]HOST:PATH/);
    }
    const fresh = await h.api('PUT', '/v1/apps/newcomer/source', { remote: `--upload-pack=touch ${marker}` });
    assert.equal(fresh.status, 400);
    assert.equal(existsSync(join(h.dataDir, 'git', 'newcomer.source.json')), false, 'nothing stored for a refused remote');
    assert.equal(existsSync(join(h.dataDir, 'git', 'newcomer.git')), false, 'no repository made for a refused remote');
    assert.equal(await readFile(join(h.dataDir, 'git', `${APP}.source.json`), 'utf8'), stored, 'the app keeps its good source');
    assert.equal(existsSync(marker), false);
  });

  test('a source stored before remotes were checked is refused when a webhook build fetches: git never runs it', async () => {
    const marker = join(dir, 'pwned-by-fetch');
    const legacySecret = 'a'.repeat(32);
    await writeFile(join(h.dataDir, 'git', 'legacy.source.json'), JSON.stringify({ remote: `--upload-pack=touch ${marker}`, secret: legacySecret }));
    const r = await deliver(pushEvent(sha), { app: 'legacy', secret: legacySecret });
    assert.equal(r.status, 202, await r.clone().text());
    const b = await finished((await json(r)).build);
    assert.equal(b.status, 'failed');
    assert.match(b.message, /^the source remote of legacy is not accepted \(it contains white space/);
    assert.equal(existsSync(marker), false, 'the --upload-pack command never ran');
    // Another app's Berth repository through file://: refused the same way.
    await writeFile(join(h.dataDir, 'git', 'legacy.source.json'), JSON.stringify({ remote: `file://${join(h.dataDir, 'git', `${APP}.git`)}`, secret: legacySecret }));
    const r2 = await deliver(pushEvent(sha, { n: 2 }), { app: 'legacy', secret: legacySecret });
    const b2 = await finished((await json(r2)).build);
    assert.match(b2.message, /^the source remote of legacy is not accepted \(file:\/\/ remotes/);
  });

  test('unknown apps and apps without a source answer exactly like a wrong signature', async () => {
    const body = pushEvent(sha);
    const wrong = await post(body, { 'x-hub-signature-256': sign(body, 'not-the-secret-at-all') });
    const unknown = await post(body, { 'x-hub-signature-256': sign(body, 'not-the-secret-at-all') }, 'no-such-app');
    // `legacy-less`: has a Berth repository (pushed to) but no source.
    await mkdir(join(h.dataDir, 'git', 'sourceless.git'), { recursive: true });
    const sourceless = await post(body, { 'x-hub-signature-256': sign(body) }, 'sourceless');
    const unsigned = await post(body, {}, 'no-such-app');
    for (const r of [wrong, unknown, sourceless, unsigned]) assert.equal(r.status, 401);
    const texts = await Promise.all([wrong, unknown, sourceless, unsigned].map((r) => r.text()));
    assert.equal(new Set(texts).size, 1, texts.join('\n'));
    // Nothing was queued: the app still does not exist (its builds are a 404 with a did-you-mean).
    const none = await h.api('GET', '/v1/builds?app=no-such-app');
    assert.equal(none.status, 404, JSON.stringify(none.json));
  });

  test('a wrong signature is 401 and nothing is built', async () => {
    const body = pushEvent(sha);
    const bad = await post(body, { 'x-hub-signature-256': sign(body, 'not-the-secret') });
    assert.equal(bad.status, 401);
    const none = await post(body, {});
    assert.equal(none.status, 401);
    assert.deepEqual(await builds(), []);
  });

  let first: Build;
  const delivery = randomUUID();
  const firstBody = pushEvent('', { repository: { full_name: 'x/y' } });

  test('a signed push event fetches the commit from the remote, builds and deploys it', async () => {
    const body = firstBody.replace('"after":""', `"after":"${sha}"`);
    const ok = await deliver(body, { delivery });
    assert.equal(ok.status, 202, await ok.clone().text());
    first = await succeeded((await json(ok)).build);
    assert.equal(first.commit, sha);
    assert.equal(first.env, 'pre', 'x-berth.pipeline.branches: main → pre');
    assert.equal((await h.api('GET', `/v1/apps/${APP}?env=pre`)).status, 200);
    assert.equal(await version(), 'hooked-v1');
  });

  test('a delivery is acted on once: the same delivery id, or the same signed body under a new id, is 409 and builds nothing', async () => {
    const body = firstBody.replace('"after":""', `"after":"${sha}"`);
    const again = await deliver(body, { delivery });
    assert.equal(again.status, 409, await again.clone().text());
    assert.match((await json(again)).error.message, new RegExp(`already received at .* \\(delivery id ${delivery}\\)`));
    const replay = await deliver(body);
    assert.equal(replay.status, 409);
    assert.match((await json(replay)).error.message, /already received at .* \(the same signed body\)/);
    // The same id with another body (a new event reusing an id) is a repeat too.
    const reused = await deliver(pushEvent(sha, { other: true }), { delivery });
    assert.equal(reused.status, 409);
    assert.equal((await builds()).length, 1, 'nothing was queued');
  });

  test('the same commit rebuilt by a webhook is the very same image: same digest, no build time in it', async () => {
    const r = await deliver(pushEvent(sha, { rebuild: true }));
    assert.equal(r.status, 202, await r.clone().text());
    const again = await succeeded((await json(r)).build);
    assert.notEqual(again.id, first.id);
    assert.match(first.images.web!, /@sha256:[0-9a-f]{64}$/);
    assert.equal(again.images.web, first.images.web, 'a rebuild of one commit pushes the same digest');
    const labels = JSON.parse(await docker('image', 'inspect', '--format', '{{json .Config.Labels}}', `berth/${APP}/web:${sha.slice(0, 12)}`));
    const committed = await git('show', '-s', '--format=%cI', sha);
    assert.equal(labels['io.berth.commit'], sha);
    assert.equal(labels['io.berth.commit-time'], new Date(committed).toISOString(), 'dated by the commit');
    for (const k of ['io.berth.build', 'io.berth.build-time', 'io.berth.branch']) assert.equal(labels[k], undefined, `no ${k} label`);
  });

  test('a webhook never deploys a commit older than the branch\'s current one', async () => {
    await writeFile(join(work, 'compose.yaml'), compose('hooked-v2'));
    const v2 = await publish('v2');
    const r = await deliver(pushEvent(v2, { before: sha }));
    assert.equal(r.status, 202);
    await succeeded((await json(r)).build);
    assert.equal(await version(), 'hooked-v2');
    // A signed event for v1 that Berth has not seen (e.g. older than the deliveries it remembers).
    const old = await deliver(pushEvent(sha, { before: '0'.repeat(40), captured: true }));
    assert.equal(old.status, 202);
    const b = await finished((await json(old)).build);
    assert.equal(b.status, 'failed');
    assert.match(b.message, new RegExp(`^commit ${sha.slice(0, 12)} does not descend from main's ${v2.slice(0, 12)} in Berth \\(older commit, replayed delivery or force-push\\)`));
    assert.equal(await version(), 'hooked-v2', 'v2 still serves');
    const head = (await exec('git', ['--git-dir', join(h.dataDir, 'git', `${APP}.git`), 'rev-parse', 'refs/heads/main'])).stdout.trim();
    assert.equal(head, v2, 'the branch in Berth did not move back');
  });

  test('a failed build\'s MESSAGE is one short line (in the record and `berth builds`); the whole error is in its log', async () => {
    await writeFile(join(work, 'Dockerfile'), 'FROM berth/node:20\nCOPY server.js /app/server.js\nCOPY no-such-file /app/\nCMD ["node", "/app/server.js"]\n');
    const broken = await publish('broken: copies a file that is not there');
    const r = await deliver(pushEvent(broken));
    assert.equal(r.status, 202, await r.clone().text());
    const b = await finished((await json(r)).build);
    assert.equal(b.status, 'failed');
    assert.match(b.message, /^build of web failed: /);
    assert.doesNotMatch(b.message, /\n/, 'one line');
    assert.ok(b.message.length <= 200, `short: ${b.message.length} characters`);
    const log = await (await fetch(`http://127.0.0.1:${h.apiPort}/v1/builds/${b.id}/logs`, { headers: { authorization: `Bearer ${await h.token()}` } })).text();
    assert.match(log, / ! {5}--- last build output ---/, 'the whole error is in the log');
    const cli = await h.cli(['builds', APP]);
    assert.equal(cli.code, 0, cli.stderr);
    const rows = cli.stdout.trimEnd().split('\n');
    assert.equal(rows.length, (await builds()).length + 1, `one line per build:\n${cli.stdout}`);
    const row = rows.find((l) => l.startsWith(b.id))!;
    assert.match(row, /failed .*build of web failed: /);
  });
});
