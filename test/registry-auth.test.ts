/**
 * Berth's image registry is closed, end to end: a real `berth server` with its managed
 * `docker-registry`. Without Berth's credentials nothing is allowed — not a read, not a blob upload,
 * not a manifest push, not a delete — from a container on the host network or from the host; with
 * them, a delete outside garbage collection's deletion window is refused (405). A git push still
 * pushes and deploys by digest (the engine pushes with the credentials), a build FROM an image of
 * the registry pulls it with them, and an open registry left running by an older Berth is restarted
 * with auth instead of being adopted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exampleRepo, git, helloCompose, pushSetup, registryAuthorization, type PushSetup } from './helpers/git.ts';
import { docker, type Harness } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { stopLocalRegistry } from '../src/images/registry-process.ts';

const APP = 'authapp';
const DERIVED = 'authderived';
const MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

describe("Berth's image registry requires credentials", () => {
  let h: Harness;
  let work: string;
  let setup: PushSetup;
  let digest = '';
  let sha12 = '';
  const extra: string[] = [];
  before(async () => {
    setup = await pushSetup({ portRange: '10300-10399', prefix: 'berth-regauth-', compose: helloCompose(APP, 'v1', { route: false }) });
    ({ h, work } = setup);
  });
  after(async () => {
    await setup.cleanup();
    for (const d of extra) await rm(d, { recursive: true, force: true });
  });

  const reg = () => `http://127.0.0.1:${h.registryPort}`;
  /** Status of a request to the registry, with the given Authorization header (or none). */
  const status = async (method: string, path: string, authorization?: string): Promise<number> => {
    const r = await fetch(`${reg()}${path}`, { method, headers: { accept: MANIFEST, ...(authorization ? { authorization } : {}) } });
    await r.arrayBuffer();
    return r.status;
  };

  test('a push deploys by digest through the closed registry; the credentials are 0600 files, deletes are off', async () => {
    const r = await git(work, ['push', setup.remote(APP), 'main']);
    assert.equal(r.code, 0, r.out);
    sha12 = (await git(work, ['rev-parse', 'HEAD'])).out.trim().slice(0, 12);
    const rels = (await h.api('GET', `/v1/apps/${APP}/releases?env=prod`)).json.releases as { image: string; current: boolean }[];
    const image = rels.find((x) => x.current)?.image ?? '';
    digest = /@(sha256:[0-9a-f]{64})$/.exec(image)?.[1] ?? '';
    assert.equal(image, `127.0.0.1:${h.registryPort}/${APP}/web@${digest}`);
    for (const f of ['password', 'htpasswd']) {
      assert.equal((await stat(join(h.dataDir, 'registry', f))).mode & 0o777, 0o600, `registry/${f} is 0600`);
    }
    const config = await readFile(join(h.dataDir, 'registry', 'config.yml'), 'utf8');
    assert.match(config, /auth:\n {2}htpasswd:/);
    assert.match(config, /delete:\n {4}enabled: false/);
  });

  test('without credentials: reads, blob uploads, manifest pushes and deletes are 401, from a container on the host network and from the host', async () => {
    const requests: [string, string, string][] = [
      ['read', 'GET', '/v2/_catalog'],
      ['upload', 'POST', `/v2/${APP}/web/blobs/uploads/`],
      ['manifest', 'PUT', `/v2/${APP}/web/manifests/evil`],
      ['delete', 'DELETE', `/v2/${APP}/web/manifests/${digest}`],
    ];
    // What any container on the host network can do: berth/node:20's own fetch.
    const script = `(async () => {
      const out = {};
      for (const [k, method, path] of ${JSON.stringify(requests)}) {
        const put = method === 'PUT';
        const r = await fetch('${reg()}' + path, { method, headers: put ? { 'content-type': '${MANIFEST}' } : {}, body: put ? '{}' : undefined });
        out[k] = r.status;
      }
      console.log(JSON.stringify(out));
    })().catch((e) => { console.log(JSON.stringify({ error: String(e) })); });`;
    const out = await docker('run', '--rm', '--name', `berth-regauth-probe-${process.pid}`, '--network', 'host', '--entrypoint', 'node', 'berth/node:20', '-e', script);
    assert.deepEqual(JSON.parse(out.split('\n').pop()!), { read: 401, upload: 401, manifest: 401, delete: 401 });
    const wrong = `Basic ${Buffer.from('berth:not-the-password').toString('base64')}`;
    for (const [, method, path] of requests) {
      assert.equal(await status(method, path), 401, `${method} ${path} without credentials`);
      assert.equal(await status(method, path, wrong), 401, `${method} ${path} with a wrong password`);
    }
    assert.equal(await status('HEAD', `/v2/${APP}/web/manifests/${digest}`, await registryAuthorization(h)), 200, 'the image is still there');
  });

  test('with credentials, outside garbage collection a delete is refused (405) and changes nothing', async () => {
    const auth = await registryAuthorization(h);
    const r = await setup.registryFetch(`/v2/${APP}/web/manifests/${digest}`, { method: 'DELETE' });
    assert.equal(r.status, 405, await r.text());
    assert.equal(await status('HEAD', `/v2/${APP}/web/manifests/${digest}`, auth), 200);
    assert.equal(await status('HEAD', `/v2/${APP}/web/manifests/${sha12}`, auth), 200);
  });

  test('a build FROM an image of the registry pulls it with the credentials', async () => {
    const base = `127.0.0.1:${h.registryPort}/${APP}/web:${sha12}`;
    // Not on the engine by its registry names any more (the image itself stays: berth/APP/web tags it).
    const byDigest = `127.0.0.1:${h.registryPort}/${APP}/web@${digest}`;
    await docker('rmi', base);
    // The engine drops the digest reference with the repository's last tag; if it did not, drop it too.
    if (await docker('image', 'inspect', byDigest).then(() => true, () => false)) await docker('rmi', byDigest);
    await assert.rejects(docker('image', 'inspect', base), 'not on the engine by that name');
    const derived = await exampleRepo('berth-regauth-derived-', helloCompose(DERIVED, 'd1', { route: false }));
    extra.push(derived);
    await writeFile(join(derived, 'Dockerfile'), `FROM ${base}\nENV DERIVED=1\n`);
    assert.equal((await git(derived, ['commit', '-qam', 'from the registry'])).code, 0);
    const r = await git(derived, ['push', setup.remote(DERIVED), 'main']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`pulling ${base.replace(/[.]/g, '\\.')}`));
    assert.match(r.out, new RegExp(`${DERIVED} deployed to prod`));
    assert.ok(await docker('image', 'inspect', '--format', '{{.Id}}', base), 'pulled back onto the engine');
  });

  test('an open registry left running by an older Berth is restarted with auth, not adopted', async () => {
    await h.killServer();
    await stopLocalRegistry(h.dataDir);
    // What Berth wrote before registries had credentials: no auth, deletes on, a pid file without identity.
    const dir = join(h.dataDir, 'registry');
    const configPath = join(dir, 'config.yml');
    await writeFile(configPath, [
      'version: 0.1', 'storage:', '  filesystem:', `    rootdirectory: ${JSON.stringify(dir)}`, '  delete:', '    enabled: true',
      'http:', `  addr: 127.0.0.1:${h.registryPort}`, '',
    ].join('\n'));
    const log = openSync(join(dir, 'registry.log'), 'a');
    const old = spawn('docker-registry', ['serve', configPath], { detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    old.unref();
    await writeFile(join(dir, 'registry.pid'), `${old.pid}\n`);
    await waitFor(async () => (await status('GET', '/v2/_catalog').catch(() => 0)) === 200, { timeoutMs: 20_000, what: 'the old, open registry to answer' });

    await h.startServer();
    assert.equal(old.exitCode !== null || old.signalCode !== null || !(await alive(old.pid!)), true, 'the old registry process was stopped');
    assert.equal(await status('GET', '/v2/_catalog'), 401, 'closed after the upgrade');
    assert.equal(await status('DELETE', `/v2/${APP}/web/manifests/${digest}`), 401);
    const r = await setup.registryFetch(`/v2/${APP}/web/manifests/${digest}`, { method: 'DELETE' });
    assert.equal(r.status, 405, 'deletes off');
    assert.equal(await status('HEAD', `/v2/${APP}/web/manifests/${digest}`, await registryAuthorization(h)), 200, 'its images are still there');
  });
});

async function alive(pid: number): Promise<boolean> {
  const st = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return st !== undefined && !/^\S+ \(.*\) [ZX]/.test(st);
}
