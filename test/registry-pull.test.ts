/**
 * Images from registries, as Docker pulls them: a second local docker-registry with htpasswd auth on
 * 127.0.0.1 (no public registry is reachable here) holds an image that is not on the engine. Without
 * a login the deploy fails naming the image, the registry and "authentication", and changes nothing;
 * after `berth registry login` it is pulled (progress in the deploy output) and runs; by digest too;
 * `pull_policy: always` re-pulls a tag that moved. Credentials are sealed at rest and never listed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, ROOT, docker, freePort, type CliResult } from './helpers/harness.ts';
import { LocalRegistry } from '../src/images/registry-process.ts';
import { DockerEngine } from '../src/engine/docker/index.ts';
import type { Logger } from '../src/core/ports.ts';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent } as unknown as Logger;
const APP = 'pullapp';

describe('images pulled from a private registry', () => {
  let h: Harness;
  let work: string;
  let other: LocalRegistry;
  let pusher: DockerEngine;
  const repo = () => `${other.host}/team/tool`;

  /** Builds a tiny image with `marker` in it and pushes it to the other registry as `repo:tag`; then forgets it locally. */
  const publish = async (tag: string, marker: string): Promise<{ id: string; digest: string }> => {
    const ctx = join(work, `img-${marker}`);
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), `FROM berth/busybox:latest\nRUN echo ${marker} > /marker\nCMD ["sleep", "3600"]\n`);
    const ref = `${repo()}:${tag}`;
    await docker('build', '-q', '-t', ref, ctx);
    const id = (await docker('image', 'inspect', '-f', '{{.Id}}', ref)).trim();
    const { digest } = await pusher.push(ref);
    await docker('image', 'rm', ref);
    if (await docker('image', 'inspect', `${repo()}@${digest}`).then(() => true, () => false)) await docker('image', 'rm', `${repo()}@${digest}`);
    return { id, digest };
  };
  const cliWithStdin = (args: string[], input: string): Promise<CliResult> => new Promise((resolve) => {
    const p = spawn(join(ROOT, 'bin/berth'), args, { env: h.env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    p.stdin.end(input);
  });
  const current = async (service: string) => {
    const rels = ((await h.api('GET', `/v1/apps/${APP}/releases?env=prod`)).json.releases ?? []) as { service: string; current: boolean; image: string; imageId: string }[];
    return rels.find((r) => r.current && r.service === service);
  };

  let v1: { id: string; digest: string };
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-pull-'));
    other = new LocalRegistry({ dataDir: join(work, 'other'), port: await freePort(), logger: silent });
    await other.start();
    pusher = new DockerEngine({ socketPath: '/var/run/docker.sock', logger: silent, registryAuth: (host) => (host === other.host ? other.credentials : undefined) });
    v1 = await publish('1', `v1-${process.pid}`);
    // Pulls here take well under a second; the stalled registry below must not hold the file for long.
    h = await Harness.create({ portRange: '18900-18999', env: { BERTH_PULL_TIMEOUT_S: '8' } });
    await h.startServer();
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-5000));
    await h.cleanup();
    await other.stop();
    for (const ref of [`${repo()}:1`, `${repo()}@${v1.digest}`]) await docker('image', 'rm', '-f', ref).catch(() => '');
    await rm(work, { recursive: true, force: true });
  });

  const compose = (image: string, extra = '') => `name: ${APP}
services:
  tool:
    image: ${image}
    stop_grace_period: 1s
${extra}`;

  test('without a login: the deploy fails naming the image, the registry and authentication (exit 1); nothing changes', async () => {
    await writeFile(join(work, 'c1.yaml'), compose(`${repo()}:1`));
    const r = await h.cli(['deploy', '-f', join(work, 'c1.yaml')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`pull of ${repo().replace(/\./g, '\\.')}:1 \\(service tool\\) from registry ${other.host.replace(/\./g, '\\.')} failed: authentication: .*` +
      `Berth has no credentials for ${other.host.replace(/\./g, '\\.')}: run \`berth registry login ${other.host.replace(/\./g, '\\.')}\``));
    assert.equal(await current('tool'), undefined, 'no release');
    assert.deepEqual(await h.containers(APP), []);
  });

  test('berth registry login: sealed, listed without the password; then the image is pulled with progress and runs', async () => {
    const password = other.credentials!.password;
    const bad = await cliWithStdin(['registry', 'login', 'https://x.example', '-u', 'u', '--password-stdin'], 'p\n');
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /write the host without a scheme: x\.example/);
    const login = await cliWithStdin(['registry', 'login', other.host, '-u', other.credentials!.username, '--password-stdin'], `${password}\n`);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, new RegExp(`logged in to ${other.host.replace(/\./g, '\\.')} as ${other.credentials!.username}`));
    const list = await h.cli(['--json', 'registry', 'logins']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual((JSON.parse(list.stdout) as { host: string; username: string }[]).map((l) => [l.host, l.username]), [[other.host, other.credentials!.username]]);
    assert.equal(list.stdout.includes(password), false, 'never the password');
    assert.equal((await readFile(join(h.dataDir, 'registry-logins.json'), 'utf8')).includes(password), false, 'sealed at rest');

    const r = await h.cli(['deploy', '-f', join(work, 'c1.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`image\\.pulling\\s+pulling ${repo().replace(/\./g, '\\.')}:1 from ${other.host.replace(/\./g, '\\.')}`));
    assert.match(r.stderr, /image\.pulled\s+pulled .*\(\d+\/\d+ layers, [\d.]+\/[\d.]+ MB\)/);
    const rel = await current('tool');
    assert.equal(rel?.imageId, v1.id, 'the pushed image runs');
    assert.equal(h.serverLog.includes(password), false, 'the password is never logged');
  });

  test('pull by digest; pull_policy: always re-pulls a tag that moved; missing (the default) does not', async () => {
    await docker('image', 'rm', '-f', `${repo()}@${v1.digest}`).catch(() => '');
    await writeFile(join(work, 'c2.yaml'), compose(`${repo()}:1`, `  pinned:\n    image: ${repo()}@${v1.digest}\n    stop_grace_period: 1s\n`));
    const byDigest = await h.cli(['deploy', '-f', join(work, 'c2.yaml')]);
    assert.equal(byDigest.code, 0, byDigest.stderr);
    assert.equal((await current('pinned'))?.imageId, v1.id);

    const v2 = await publish('1', `v2-${process.pid}`); // the tag moves in the registry
    assert.notEqual(v2.id, v1.id);
    // (publishing untagged it here: the engine still has v1 under that tag, as after the first pull)
    await docker('tag', v1.id, `${repo()}:1`);
    const missing = await h.cli(['deploy', '-f', join(work, 'c2.yaml')]);
    assert.equal(missing.code, 0, missing.stderr);
    assert.equal((await current('tool'))?.imageId, v1.id, 'missing: what is here runs, no pull');
    assert.doesNotMatch(missing.stderr, /image\.pulling/);

    await writeFile(join(work, 'c3.yaml'), compose(`${repo()}:1`, `    pull_policy: always\n  pinned:\n    image: ${repo()}@${v1.digest}\n    pull_policy: always\n    stop_grace_period: 1s\n`));
    const always = await h.cli(['deploy', '-f', join(work, 'c3.yaml')]);
    assert.equal(always.code, 0, always.stderr);
    assert.equal((await current('tool'))?.imageId, v2.id, 'always: the moved tag was pulled and runs');
    assert.equal((await current('pinned'))?.imageId, v1.id, 'a digest that is here is not pulled again');
    assert.equal(always.stderr.match(/image\.pulled\s+pulled /g)?.length, 1, always.stderr);
  });

  test('berth registry logout: the next pull of a missing image fails on authentication again; unknown host is exit 3', async () => {
    const out = await h.cli(['registry', 'logout', other.host]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal((await h.cli(['registry', 'logout', other.host])).code, 3);
    await writeFile(join(work, 'c4.yaml'), compose(`${repo()}:2`));
    const r = await h.cli(['deploy', '-f', join(work, 'c4.yaml')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /failed: authentication: /);
  });

  test('a registry that accepts the connection and then stalls: the deploy fails after BERTH_PULL_TIMEOUT_S naming the image and the registry; nothing changes', async () => {
    const held: Socket[] = [];
    const stall = createServer((sock) => void held.push(sock)); // accepts, never answers (neither TLS nor HTTP)
    await new Promise<void>((resolve) => stall.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(stall.address() as { port: number }).port}`;
    try {
      await writeFile(join(work, 'c5.yaml'), `name: ${APP}-stall\nservices:\n  tool:\n    image: ${host}/team/slow:1\n    stop_grace_period: 1s\n`);
      const t0 = Date.now();
      const r = await h.cli(['deploy', '-f', join(work, 'c5.yaml')]);
      const took = Date.now() - t0;
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`pull of ${host.replace(/\./g, '\\.')}/team/slow:1 \\(service tool\\) from registry ${host.replace(/\./g, '\\.')} timed out after 8s.*BERTH_PULL_TIMEOUT_S`));
      assert.ok(held.length >= 1, 'dockerd did connect to the stalled registry');
      assert.ok(took >= 8000 && took < 60_000, `gave up after the timeout (${took} ms)`);
      assert.equal(((await h.api('GET', `/v1/apps/${APP}-stall/releases?env=prod`)).json.releases ?? []).length, 0, 'no release');
      assert.deepEqual(await h.containers(`${APP}-stall`), []);
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => stall.close(() => resolve()));
    }
  });
});
