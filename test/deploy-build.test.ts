/**
 * One build path: a `build:` section in `berth deploy` is a build record run by the build controller
 * (the host-context pipeline: build → checks → test → push to Berth's registry), visible in
 * `berth builds`, followed in the deploy's output, cancellable with `berth build cancel`; the
 * deployment only resolves the images it made. Real server, Docker Engine, registry.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, docker, type CliResult } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const APP = 'dbuild';

interface Rel { id: string; image: string; imageId: string; status: string; current: boolean; service: string; seq: number }
interface Build { id: string; app: string; env: string; source: string; status: string; stage?: string; message: string; images: Record<string, string>;
  deploymentId?: string; checks?: Record<string, { id: string; level: string }[]> }

describe('berth deploy with build sections: one build path', () => {
  let h: Harness;
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-dbuild-'));
    await mkdir(join(work, 'app'));
    await writeFile(join(work, 'app', 'Dockerfile'), 'FROM berth/node:20\nCOPY idle.js /app/idle.js\nCMD ["node", "/app/idle.js"]\n');
    await writeFile(join(work, 'app', 'idle.js'), `setInterval(() => {}, 1 << 30); process.on('SIGTERM', () => process.exit(0));\n`);
    h = await Harness.create({ portRange: '18800-18899' });
    await h.startServer();
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-5000));
    await h.cleanup();
    await rm(work, { recursive: true, force: true });
    await docker('image', 'rm', '-f', `berth-${APP}/app:latest`, `berth-${APP}/worker:latest`, `berth-${APP}/slow:latest`, `berth-${APP}/bad:latest`).catch(() => '');
  });

  /** web and worker share one build section (built once, tagged for each); web has a test command. */
  const compose = (extra = '') => `name: ${APP}
services:
  web:
    build: ./app
    image: berth-${APP}/app:latest
    environment: {ROLE: web}
    stop_grace_period: 1s
    x-berth:
      test: ["node", "-e", "process.exit(require('fs').existsSync('/app/idle.js') ? 0 : 3)"]
  worker:
    build: ./app
    environment: {ROLE: worker}
    stop_grace_period: 1s
${extra}`;
  const deploy = (file: string, args: string[] = []) => h.cli(['deploy', '-f', join(work, file), ...args]);
  const releases = async (): Promise<Rel[]> => ((await h.api('GET', `/v1/apps/${APP}/releases?env=prod`)).json.releases as Rel[]) ?? [];
  const current = async () => Object.fromEntries((await releases()).filter((r) => r.current).map((r) => [r.service, r]));
  const builds = async (): Promise<Build[]> => (await h.api('GET', `/v1/builds?app=${APP}`)).json.builds as Build[];
  const buildLog = async (id: string): Promise<string> =>
    (await fetch(`http://127.0.0.1:${h.apiPort}/v1/builds/${id}/logs`, { headers: { authorization: `Bearer ${await h.token()}` } })).text();

  test('deploy with build: a build record (checks ran, test ran, pushed to the registry) whose images the releases run; its log in the deploy output', async () => {
    await writeFile(join(work, 'compose.yaml'), compose());
    // --timeout takes a duration (plain numbers stay seconds).
    const r = await deploy('compose.yaml', ['--timeout', '2m']);
    assert.equal(r.code, 0, r.stderr);
    // The build's progress, as `berth build logs` shows it: one build for the two services.
    assert.match(r.stderr, new RegExp(`-----> Building web, worker as berth-${APP}/app:latest from `));
    assert.equal(r.stderr.match(/-----> Building /g)?.length, 1, 'one identical build section is built once');
    assert.match(r.stderr, /-----> Checks for web\n\s+pass base-chain/);
    assert.match(r.stderr, /-----> Tests of web passed/);
    assert.match(r.stderr, new RegExp(`-----> web pushed: 127\\.0\\.0\\.1:${h.registryPort}/${APP}/web@sha256:[0-9a-f]{64}`));
    const [b, ...older] = await builds();
    assert.equal(older.length, 0);
    assert.equal(b!.source, 'deploy');
    assert.equal(b!.status, 'succeeded', b!.message);
    assert.equal(b!.env, 'prod');
    assert.equal(b!.deploymentId, b!.id, 'the build shares its deployment\'s id');
    assert.deepEqual(Object.keys(b!.checks ?? {}).sort(), ['web', 'worker']);
    const rel = await current();
    assert.match(rel.web!.image, new RegExp(`^127\\.0\\.0\\.1:${h.registryPort}/${APP}/web@sha256:[0-9a-f]{64}$`));
    assert.match(rel.worker!.image, new RegExp(`^127\\.0\\.0\\.1:${h.registryPort}/${APP}/worker@sha256:[0-9a-f]{64}$`));
    assert.equal(rel.web!.image, b!.images.web);
    assert.equal(rel.web!.imageId, rel.worker!.imageId, 'one image for both');
    assert.equal(rel.web!.imageId, (await docker('image', 'inspect', '-f', '{{.Id}}', `berth-${APP}/worker:latest`)).trim(), 'tagged with each service\'s name');
    // In `berth builds`, and its log as NDJSON lines.
    const list = await h.cli(['builds', APP]);
    assert.match(list.stdout, new RegExp(`${b!.id}\\s+${APP}\\s+\\(deploy\\)\\s+prod\\s+-\\s+succeeded`));
    const logs = await h.cli(['--json', 'build', 'logs', b!.id]);
    assert.equal(logs.code, 0, logs.stderr);
    const lines = logs.stdout.trim().split('\n').map((l) => JSON.parse(l) as { line: string });
    assert.ok(lines.some((l) => /^-----> Images ready for deployment /.test(l.line)), logs.stdout.slice(-2000));
    // The same file again: the same image (layer cache, same digest), no new release.
    const again = await deploy('compose.yaml', ['--timeout', '90']);
    assert.equal(again.code, 0, again.stderr);
    const rel2 = await current();
    assert.equal(rel2.web!.id, rel.web!.id, 'an unchanged rebuild is not a new release');
    assert.equal((await builds()).length, 2);
  });

  test('a Node app with a dependency builds on berth/node:20 with RUN npm install --offline (a file: package, no registry)', async () => {
    const dir = join(work, 'nodeapp');
    await mkdir(join(dir, 'vendor', 'greet'), { recursive: true });
    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'nodeapp', version: '1.0.0', private: true, dependencies: { greet: 'file:vendor/greet' } }));
    await writeFile(join(dir, 'vendor', 'greet', 'package.json'), JSON.stringify({ name: 'greet', version: '1.0.0', main: 'index.js' }));
    // A new dependency every run, so the build cache of an earlier run cannot skip `npm install`.
    const nonce = randomBytes(6).toString('hex');
    await writeFile(join(dir, 'vendor', 'greet', 'index.js'), `module.exports = (n) => \`hello \${n} from a dependency ${nonce}\`;\n`);
    await writeFile(join(dir, 'server.js'), "console.log(require('greet')('berth'));\nsetInterval(() => {}, 1 << 30);\nprocess.on('SIGTERM', () => process.exit(0));\n");
    await writeFile(join(dir, 'Dockerfile'), [
      'FROM berth/node:20', 'WORKDIR /app', 'COPY package.json ./', 'COPY vendor ./vendor',
      'RUN npm install --offline --no-audit --no-fund', 'COPY server.js ./', 'CMD ["node", "server.js"]', '',
    ].join('\n'));
    await writeFile(join(work, 'node.yaml'), `name: nodedeps\nservices:\n  app:\n    build: ./nodeapp\n    stop_grace_period: 1s\n`);
    const r = await deploy('node.yaml', ['--timeout', '3m']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /RUN npm install --offline/);
    assert.match(r.stderr, /added 1 package/);
    const [c] = await h.containers('nodedeps');
    assert.ok(c, 'the app runs');
    const logs = await waitFor(async () => {
      const out = await docker('logs', c.id);
      return out.includes(`hello berth from a dependency ${nonce}`) ? out : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100, what: 'the app to print what its dependency returns' });
    assert.ok(logs.includes(`hello berth from a dependency ${nonce}`), logs);
    await h.cli(['rm', 'nodedeps']);
  });

  test('build.secrets: a RUN --mount=type=secret step reads the value through a BuildKit session; it is in no image, history, log, output or server file', async () => {
    const value = `tok-${randomBytes(12).toString('hex')}`;
    const app = `${APP}-sec`;
    await mkdir(join(work, 'sec'), { recursive: true });
    // The step fails without the file; it writes only the value's hash (the nonce defeats the layer cache).
    const step = `const fs=require('fs'); const v=fs.readFileSync('/run/secrets/npm_token','utf8'); if(!v) process.exit(4); ` +
      `fs.writeFileSync('/token.sha', require('crypto').createHash('sha256').update(v).digest('hex')); /* ${randomBytes(6).toString('hex')} */`;
    await writeFile(join(work, 'sec', 'Dockerfile'), `FROM berth/node:20\nRUN --mount=type=secret,id=npm_token ${JSON.stringify(['node', '-e', step])}\n` +
      `CMD ["node", "-e", "setInterval(() => {}, 1 << 30); process.on('SIGTERM', () => process.exit(0))"]\n`);
    await writeFile(join(work, 'sec.yaml'), `name: ${app}
services:
  api:
    build: {context: ./sec, secrets: [npm_token]}
    image: berth-${app}/api:latest
    stop_grace_period: 1s
secrets:
  npm_token: {environment: NPM_TOKEN}
`);
    try {
      const r = await h.cli(['deploy', '-f', join(work, 'sec.yaml'), '--timeout', '2m'], { env: { NPM_TOKEN: value } });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(`${r.stdout}${r.stderr}`.includes(value), false, 'not in the deploy output');
      const rel = ((await h.api('GET', `/v1/apps/${app}/releases?env=prod`)).json.releases as Rel[]).find((x) => x.current && x.service === 'api')!;
      assert.ok(rel, 'api runs');
      const sha = await docker('run', '--rm', '--network', 'none', rel.imageId, 'node', '-e', "process.stdout.write(require('fs').readFileSync('/token.sha', 'utf8'))");
      assert.equal(sha.trim(), createHash('sha256').update(value).digest('hex'), 'the build read the value');
      assert.equal((await docker('history', '--no-trunc', rel.imageId)).includes(value), false, 'not in the image history');
      assert.equal((await docker('image', 'inspect', rel.imageId)).includes(value), false, 'not in the image config');
      const [b] = (await h.api('GET', `/v1/builds?app=${app}`)).json.builds as Build[];
      assert.ok(b);
      const log = await buildLog(b.id);
      assert.match(log, /RUN --mount=type=secret,id=npm_token/);
      assert.equal(log.includes(value), false, 'not in the build log');
      // No file of the server's (berth.db and its WAL, config.db, build logs, registry) holds it in plain text.
      const hits = await new Promise<string>((resolve) => execFile('grep', ['-r', '-l', '-a', '-F', value, h.dataDir], (_e, out) => resolve(out)));
      assert.equal(hits.trim(), '', `found in ${hits}`);
      assert.equal(h.serverLog.includes(value), false, 'not in the server log');
    } finally {
      await docker('image', 'rm', '-f', `berth-${app}/api:latest`).catch(() => '');
    }
  });

  test('a bad --timeout is refused before anything is deployed (exit 2)', async () => {
    const before = (await builds()).length;
    const r = await deploy('compose.yaml', ['--timeout', '5x']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--timeout 5x: "5x" is not a duration: write a duration such as 10s/);
    assert.equal((await builds()).length, before);
  });

  test('a failing build: the deploy fails naming the service and the build\'s error (exit 1); nothing changed', async () => {
    const before = await current();
    await mkdir(join(work, 'bad'), { recursive: true });
    await writeFile(join(work, 'bad', 'Dockerfile'), 'FROM berth/node:20\nRUN echo "about to fail" && exit 7\n');
    await writeFile(join(work, 'bad.yaml'), compose(`  bad:\n    build: ./bad\n    image: berth-${APP}/bad:latest\n`));
    const r = await deploy('bad.yaml');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /about to fail/, 'the build output is shown');
    assert.match(r.stderr, /deployment \w+ failed: build \w+ failed: build of bad failed: .*(exit code: 7|exit 7|code 7)/);
    assert.deepEqual(await current(), before, 'no release changed');
    const b = (await builds())[0]!;
    assert.equal(b.status, 'failed');
    assert.equal(b.stage, 'build');
  });

  test('a failed image check fails the build before anything is pushed or deployed', async () => {
    const before = await current();
    await mkdir(join(work, 'loose'), { recursive: true });
    await writeFile(join(work, 'loose', 'Dockerfile'), 'FROM berth/busybox:latest\nCMD ["sleep", "3600"]\n');
    await writeFile(join(work, 'loose.yaml'), compose(`  loose:\n    build: ./loose\n`));
    const r = await deploy('loose.yaml');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /fail pinned-from: FROM berth\/busybox:latest is not pinned/);
    assert.match(r.stderr, /build \w+ failed: image checks failed for loose: pinned-from/);
    assert.deepEqual(await current(), before);
    assert.equal((await builds())[0]!.stage, 'checks');
  });

  test('berth build cancel mid-build: the deploy fails "cancelled" (exit 1), nothing half-applied', async () => {
    const before = await current();
    const marker = `slow-${process.pid}-${Date.now()}`;
    await mkdir(join(work, 'slow'), { recursive: true });
    await writeFile(join(work, 'slow', 'Dockerfile'), `FROM berth/node:20\nRUN echo ${marker} && sleep 60\n`);
    await writeFile(join(work, 'slow.yaml'), compose(`  slow:\n    build: ./slow\n    image: berth-${APP}/slow:latest\n`));
    const running: Promise<CliResult> = deploy('slow.yaml');
    // Running, in its build stage, with the RUN step started.
    const b = await waitFor(async () => {
      const x = (await builds()).find((y) => y.status === 'running' && y.stage === 'build');
      if (!x) return undefined;
      return (await buildLog(x.id)).includes(marker) ? x : undefined;
    }, { timeoutMs: 60_000, intervalMs: 100, what: 'the slow build to run its RUN step' }).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await builds())}`);
    });
    const c = await h.cli(['build', 'cancel', b.id]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, new RegExp(`build ${b.id} of ${APP} \\(deployment ${b.id}\\) cancelled: cancelled by admin during the build stage`));
    const r = await running;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`deployment ${b.id} failed: build ${b.id} cancelled by admin during the build stage: nothing was deployed`));
    const dep = (await h.api('GET', `/v1/deployments/${b.id}`)).json.deployment;
    assert.equal(dep.status, 'failed');
    assert.match(dep.message, /cancelled/);
    assert.deepEqual(await current(), before, 'no release changed');
    assert.equal((await releases()).some((x) => x.service === 'slow'), false, 'no release of the cancelled service');
    assert.deepEqual((await h.containers(APP)).length, 2, 'web and worker still run, nothing of slow');
    assert.equal(await docker('images', '-q', `berth-${APP}/slow:latest`), '', 'no image of the cancelled build');
  });

  test('the server killed mid-build: after the restart the build runs again and the deployment completes', async () => {
    await mkdir(join(work, 'nap'), { recursive: true });
    const marker = `nap-${process.pid}-${Date.now()}`;
    await writeFile(join(work, 'nap', 'Dockerfile'), `FROM berth/node:20\nRUN echo ${marker} && sleep 3\nCMD ["sleep", "3600"]\n`);
    await writeFile(join(work, 'nap.yaml'), compose(`  nap:\n    build: ./nap\n    image: berth-${APP}/nap:latest\n    stop_grace_period: 1s\n`));
    const r = await deploy('nap.yaml', ['--no-wait']);
    assert.equal(r.code, 0, r.stderr);
    const id = /deployment (\w+)/.exec(r.stderr)?.[1];
    assert.ok(id, r.stderr);
    await waitFor(async () => (await builds()).some((x) => x.id === id && x.stage === 'build'), { timeoutMs: 60_000, intervalMs: 100, what: 'the build to start' });
    await h.killServer('SIGKILL');
    await h.startServer();
    const dep = await waitFor(async () => {
      const d = (await h.api('GET', `/v1/deployments/${id}`)).json.deployment as { status: string; message: string };
      return d.status === 'succeeded' || d.status === 'failed' ? d : undefined;
    }, { timeoutMs: 120_000, intervalMs: 200, what: 'the deployment to finish after the restart' });
    assert.equal(dep.status, 'succeeded', dep.message);
    const b = (await builds()).find((x) => x.id === id)!;
    assert.equal(b.status, 'succeeded');
    assert.match(await buildLog(id!), /The Berth server restarted during this build: running it again/);
    assert.match((await current()).nap!.image, new RegExp(`/${APP}/nap@sha256:`));
    await docker('image', 'rm', '-f', `berth-${APP}/nap:latest`).catch(() => '');
  });
});
