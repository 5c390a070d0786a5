/**
 * Builds from a remote through webhooks: a wrong signature is 401 and nothing is built; a signed
 * GitHub push event makes Berth fetch the commit from the app's remote, build it and deploy it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Harness, ROOT, get } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const exec = promisify(execFile);
const APP = 'hooked';
const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.invalid' };

describe('webhooks', () => {
  let h: Harness;
  let dir: string;
  let remote: string;
  let sha: string;
  let secret: string;
  before(async () => {
    h = await Harness.create({ portRange: '33100-33199' });
    await h.startServer();
    dir = await mkdtemp(join(tmpdir(), 'berth-hook-'));
    const work = join(dir, 'work');
    remote = join(dir, 'remote.git');
    await exec('git', ['init', '-q', '-b', 'main', work]);
    for (const f of ['Dockerfile', 'server.js']) await copyFile(join(ROOT, 'examples/hello', f), join(work, f));
    // The pushed compose.yaml maps main to the pre-production environment.
    await writeFile(join(work, 'compose.yaml'), `name: ${APP}\nx-berth:\n  pipeline:\n    branches: {main: pre}\nservices:\n  web:\n    build: .\n    environment:\n      APP_VERSION: hooked-v1\n    x-berth:\n      port: 3000\n      routes: [{path: /}]\n      health: {http: /healthz}\n`);
    await exec('git', ['-C', work, 'add', '.'], { env: gitEnv });
    await exec('git', ['-C', work, 'commit', '-qm', 'v1'], { env: gitEnv });
    await exec('git', ['clone', '-q', '--bare', work, remote]);
    sha = (await exec('git', ['-C', work, 'rev-parse', 'HEAD'])).stdout.trim();
    const src = await h.api('PUT', `/v1/apps/${APP}/source`, { remote });
    assert.equal(src.status, 200, JSON.stringify(src.json));
    secret = src.json.secret;
  });
  after(async () => {
    await h.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  const post = (body: string, headers: Record<string, string>) => fetch(`http://127.0.0.1:${h.apiPort}/v1/hooks/github/${APP}`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push', ...headers }, body,
  });

  test('a wrong signature is 401 and nothing is built', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main', after: sha });
    const bad = await post(body, { 'x-hub-signature-256': 'sha256=' + createHmac('sha256', 'not-the-secret').update(body).digest('hex') });
    assert.equal(bad.status, 401);
    const none = await post(body, {});
    assert.equal(none.status, 401);
    assert.deepEqual((await h.api('GET', `/v1/builds?app=${APP}`)).json.builds, []);
  });

  test('a signed push event fetches the commit from the remote, builds and deploys it', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main', after: sha, repository: { full_name: 'x/y' } });
    const ok = await post(body, { 'x-hub-signature-256': 'sha256=' + createHmac('sha256', secret).update(body).digest('hex') });
    assert.equal(ok.status, 202, await ok.text());
    const build = await waitFor(async () => {
      const b = (await h.api('GET', `/v1/builds?app=${APP}`)).json.builds[0];
      if (b?.status === 'failed') throw new Error(b.message);
      return b?.status === 'succeeded' ? b : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500, what: 'webhook build' });
    assert.equal(build.commit, sha);
    assert.equal(build.env, 'pre', 'x-berth.pipeline.branches: main → pre');
    assert.equal((await h.api('GET', `/v1/apps/${APP}?env=pre`)).status, 200);
    assert.equal(JSON.parse((await get(h.ingressPort, '/api/whoami')).body).version, 'hooked-v1');
  });
});
