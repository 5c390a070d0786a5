/**
 * DockerEngine against the real Docker Engine (started by scripts/dockerd.sh, images from
 * scripts/images.sh). Everything created carries a per-run label and is removed in `after`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { Conflict, EngineUnavailable, ExternalCommandFailed, InvalidInput, NotFound } from '../src/core/errors.ts';
import { LABEL, type ContainerSpec, type EngineEvent, type Logger, type LogLine } from '../src/core/ports.ts';
import { DockerEngine } from '../src/engine/docker/index.ts';
import { waitFor } from '../src/lib/backoff.ts';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOCKET = '/var/run/docker.sock';
const BUSYBOX = 'berth/busybox:latest';
const RUN_ID = randomBytes(4).toString('hex');
const APP = `enginetest-${RUN_ID}`;

const silent: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silent,
};

const engine = new DockerEngine({ socketPath: SOCKET, logger: silent, hostName: 'test-host' });
const raw = new Docker({ socketPath: SOCKET });
const createdImages: string[] = [];
const createdVolumes: string[] = [];
const tmpDirs: string[] = [];
let seq = 0;

const MiB = 1024 * 1024;

async function newContext(): Promise<string> {
  const ctx = await mkdtemp(path.join(os.tmpdir(), 'berth-build-'));
  tmpDirs.push(ctx);
  return ctx;
}

/** Host processes whose command line contains `marker` (RUN steps run as host processes). */
function processesWith(marker: string): string[] {
  return readdirSync('/proc').filter((p) => {
    if (!/^\d+$/.test(p)) return false;
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker);
    } catch {
      return false; // exited while we looked
    }
  });
}

/** This process's entries in the registry of memory-limited BuildKit builds (none once builds end). */
async function registryEntriesOfThisProcess(): Promise<string[]> {
  const names = await readdir('/run/berth/build-memory').catch(() => [] as string[]);
  return names.filter((n) => n.startsWith(`${process.pid}-`));
}

function spec(over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    name: `berth-enginetest-${RUN_ID}-${++seq}`,
    image: BUSYBOX,
    labels: { [LABEL.app]: APP, [LABEL.instance]: String(seq) },
    env: { GREETING: 'hello', PORT: '0' },
    cmd: ['sh', '-c', 'sleep 300'],
    stopTimeoutS: 1,
    mounts: [],
    ...over,
  };
}

before(async () => {
  try {
    await run('docker', ['info'], { timeout: 20_000 });
  } catch {
    await run('bash', [path.join(ROOT, 'scripts/dockerd.sh'), 'start'], { timeout: 120_000 });
  }
  if (!(await engine.imageExists(BUSYBOX))) {
    await run('bash', [path.join(ROOT, 'scripts/images.sh')], { timeout: 300_000 });
  }
});

after(async () => {
  for (const c of await engine.list({ [LABEL.app]: APP })) await engine.remove(c.id);
  for (const img of createdImages) await raw.getImage(img).remove({ force: true }).catch(() => {});
  for (const v of createdVolumes) await raw.getVolume(v).remove().catch(() => {});
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

describe('DockerEngine (real Docker Engine)', () => {
  test('create+start: list, inspect, health, host config, log rotation, logs', async () => {
    const id = await engine.create(
      spec({
        cmd: ['sh', '-c', 'echo hello; echo err >&2; sleep 300'],
        memoryBytes: 64 * 1024 * 1024,
        nanoCpus: 500_000_000,
        stopSignal: 'SIGTERM',
        healthcheck: { test: ['CMD-SHELL', 'true'], intervalMs: 300, timeoutMs: 2000, retries: 3, startPeriodMs: 0 },
      }),
    );
    await engine.start(id);
    await engine.start(id); // already started: fine

    const listed = await engine.list({ [LABEL.app]: APP, [LABEL.instance]: String(seq) });
    assert.deepEqual(listed.map((c) => c.id), [id]);
    const info = await engine.inspect(id);
    assert.ok(info);
    assert.equal(info.running, true);
    assert.equal(info.state, 'running');
    assert.equal(info.image, BUSYBOX);
    assert.equal(info.host, 'test-host');
    assert.equal(info.labels[LABEL.managed], 'true');
    assert.equal(info.labels[LABEL.app], APP);
    assert.equal(info.exitCode, undefined);
    assert.ok(info.startedAt && Date.parse(info.startedAt) > Date.now() - 120_000);

    const healthy = await waitFor(async () => (await engine.inspect(id))?.health === 'healthy', { timeoutMs: 20_000, what: 'health healthy' });
    assert.equal(healthy, true);
    assert.equal((await engine.list({ [LABEL.app]: APP, [LABEL.instance]: String(seq) }))[0]?.health, 'healthy');

    const r = await raw.getContainer(id).inspect();
    assert.equal(r.HostConfig.NetworkMode, 'host');
    assert.equal(r.HostConfig.RestartPolicy?.Name, 'no');
    assert.equal(r.HostConfig.LogConfig?.Type, 'json-file');
    assert.deepEqual(r.HostConfig.LogConfig?.Config, { 'max-size': '10m', 'max-file': '3' });
    assert.equal(r.HostConfig.Memory, 64 * 1024 * 1024);
    assert.equal(r.HostConfig.NanoCpus, 500_000_000);
    assert.equal((r.Config as { StopSignal?: string }).StopSignal, 'SIGTERM');
    assert.ok(r.Config.Env.includes('GREETING=hello'));
    assert.deepEqual(r.Config.Healthcheck?.Test, ['CMD-SHELL', 'true']);
    assert.equal(r.Config.Healthcheck?.Interval, 300_000_000);

    const lines: LogLine[] = [];
    await waitFor(
      async () => {
        lines.length = 0;
        await engine.logs(id, { follow: false }, (l) => lines.push(l));
        return lines.length >= 2;
      },
      { timeoutMs: 10_000, what: 'two log lines' },
    );
    const byStream = Object.fromEntries(lines.map((l) => [l.stream, l]));
    assert.equal(byStream.stdout?.text, 'hello');
    assert.equal(byStream.stderr?.text, 'err');
    assert.equal(byStream.stdout?.containerId, id);
    assert.match(byStream.stdout?.time ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z$/);

    // follow keeps the stream open until aborted
    const ac = new AbortController();
    const followed: LogLine[] = [];
    const following = engine.logs(id, { follow: true, tail: 1, signal: ac.signal }, (l) => followed.push(l));
    await waitFor(() => followed.length >= 1, { timeoutMs: 10_000, what: 'followed line' });
    ac.abort();
    await following;
    assert.equal(followed.length, 1);
  });

  test('watch: connected, start, die after SIGKILL; exit code 137', async () => {
    const events: EngineEvent[] = [];
    const unwatch = engine.watch((e) => events.push(e));
    try {
      await waitFor(() => events.some((e) => e.kind === 'connected'), { timeoutMs: 10_000, what: 'connected' });
      const id = await engine.create(spec());
      await engine.start(id);
      const actionsOf = (): string[] => events.flatMap((e) => (e.kind === 'container' && e.id === id ? [e.action] : []));
      await waitFor(() => actionsOf().includes('start'), { timeoutMs: 10_000, what: 'start event' });
      const startEv = events.find((e) => e.kind === 'container' && e.id === id && e.action === 'start');
      assert.equal(startEv?.kind === 'container' ? startEv.labels[LABEL.app] : undefined, APP);
      await engine.kill(id, 'SIGKILL');
      await waitFor(() => actionsOf().includes('die'), { timeoutMs: 10_000, what: 'die event' });
      const info = await engine.inspect(id);
      assert.equal(info?.running, false);
      assert.equal(info?.exitCode, 137);
      assert.ok(info?.finishedAt);
      await engine.kill(id, 'SIGKILL'); // not running any more: fine
      await engine.remove(id);
      await waitFor(() => actionsOf().includes('destroy'), { timeoutMs: 10_000, what: 'destroy event' });
      assert.deepEqual(actionsOf().filter((a) => ['create', 'start', 'kill', 'die', 'destroy'].includes(a)), ['create', 'start', 'kill', 'die', 'destroy']);
    } finally {
      unwatch();
    }
  });

  test('stop and remove are idempotent; inspect of a missing container is undefined', async () => {
    const id = await engine.create(spec());
    await engine.start(id);
    await engine.stop(id, 1);
    await engine.stop(id, 1);
    const info = await engine.inspect(id);
    assert.equal(info?.running, false);
    assert.equal(info?.state, 'exited');
    await engine.remove(id);
    await engine.remove(id);
    await engine.stop(id, 1);
    await engine.kill(id, 'SIGTERM');
    assert.equal(await engine.inspect(id), undefined);
    await assert.rejects(engine.start(id), NotFound);
  });

  test('one host: its instances are this installation\'s running containers (its cluster label), not another Berth\'s on the same engine', async () => {
    const mine = `mine-${RUN_ID}`;
    const scoped = new DockerEngine({ socketPath: SOCKET, logger: silent, hostName: 'test-host', scope: { [LABEL.cluster]: mine } });
    assert.equal((await scoped.hosts())[0]?.instances, 0);
    const ours = await engine.create(spec({ labels: { [LABEL.app]: APP, [LABEL.instance]: String(seq), [LABEL.cluster]: mine } }));
    const stopped = await engine.create(spec({ labels: { [LABEL.app]: APP, [LABEL.instance]: String(seq), [LABEL.cluster]: mine } }));
    const theirs = await engine.create(spec({ labels: { [LABEL.app]: APP, [LABEL.instance]: String(seq), [LABEL.cluster]: `other-${RUN_ID}` } }));
    await engine.start(ours);
    await engine.start(theirs);
    const [host] = await scoped.hosts();
    assert.equal(host?.name, 'test-host');
    assert.equal(host?.instances, 1, 'only the running container of this installation');
    // Without a scope (an engine made for another purpose) every running Berth container counts.
    assert.ok(((await engine.hosts())[0]?.instances ?? 0) >= 2);
    for (const id of [ours, stopped, theirs]) await engine.remove(id);
    assert.equal((await scoped.hosts())[0]?.instances, 0);
  });

  test('a container that exits 3 reports exitCode 3', async () => {
    const id = await engine.create(spec({ cmd: ['sh', '-c', 'echo bye; sleep 0.5; exit 3'] }));
    await engine.start(id);
    // Following the logs of a container returns once it ends.
    const followed: string[] = [];
    await engine.logs(id, { follow: true }, (l) => followed.push(l.text));
    assert.deepEqual(followed, ['bye']);
    const info = await waitFor(async () => {
      const i = await engine.inspect(id);
      return i && !i.running && i.state === 'exited' ? i : undefined;
    }, { timeoutMs: 10_000, what: 'exit' });
    assert.equal(info.exitCode, 3);
    assert.equal(info.oomKilled, false);
    assert.equal(info.health, 'none');
    assert.ok(info.finishedAt);
  });

  test('rejected requests keep Docker\'s message: missing bind source, executable not in the image', async () => {
    await assert.rejects(
      engine.create(spec({ mounts: [{ type: 'bind', source: `/nonexistent-${RUN_ID}`, target: '/x', readOnly: true }] })),
      (e: unknown) => e instanceof InvalidInput && e.message.includes(`bind source path does not exist: /nonexistent-${RUN_ID}`),
    );
    const id = await engine.create(spec({ cmd: ['/no/such/exe'] }));
    await assert.rejects(engine.start(id), (e: unknown) => e instanceof InvalidInput && e.message.includes('/no/such/exe'));
    const info = await engine.inspect(id);
    assert.equal(info?.state, 'created');
    assert.equal(info?.running, false);
    assert.equal(info?.exitCode, 127);
    assert.equal(info?.startedAt, undefined);
  });

  test('a missing image is a clear error; no pull is attempted', async () => {
    const image = `berth/does-not-exist-${RUN_ID}:1`;
    await assert.rejects(engine.create(spec({ image })), (e: unknown) => {
      assert.ok(e instanceof NotFound);
      assert.match(e.message, new RegExp(image.replace(/[/.:-]/g, '\\$&')));
      assert.match(e.message, /build it first/);
      return true;
    });
  });

  test('name conflicts: a stale managed container is replaced, a running one is a Conflict', async () => {
    const s = spec();
    const stale = await engine.create(s);
    const fresh = await engine.create(s);
    assert.notEqual(stale, fresh);
    assert.equal(await engine.inspect(stale), undefined);
    await engine.start(fresh);
    await assert.rejects(engine.create(s), Conflict);
    assert.equal((await engine.inspect(fresh))?.running, true);
    // A stopped container of another berth installation (cluster label) is not ours to replace.
    const other = spec({ labels: { [LABEL.app]: APP, [LABEL.cluster]: 'other-install' } });
    const theirs = await engine.create(other);
    await assert.rejects(engine.create({ ...other, labels: { [LABEL.app]: APP, [LABEL.cluster]: 'this-install' } }), Conflict);
    assert.equal((await engine.inspect(theirs))?.state, 'created');
  });

  test('volumes, mounts and env', async () => {
    const vol = `berth-enginetest-${RUN_ID}`;
    createdVolumes.push(vol);
    await engine.ensureVolume(vol, { [LABEL.app]: APP });
    await engine.ensureVolume(vol, { [LABEL.app]: APP });
    const v = await raw.getVolume(vol).inspect();
    assert.equal(v.Labels?.[LABEL.app], APP);
    const id = await engine.create(
      spec({ cmd: ['sh', '-c', 'echo "$GREETING" > /data/x && cat /data/x && touch /ro/y || echo readonly'], mounts: [
        { type: 'volume', source: vol, target: '/data', readOnly: false },
        { type: 'volume', source: vol, target: '/ro', readOnly: true },
      ] }),
    );
    await engine.start(id);
    await waitFor(async () => (await engine.inspect(id))?.state === 'exited', { timeoutMs: 10_000, what: 'exit' });
    const lines: string[] = [];
    await engine.logs(id, { follow: false }, (l) => lines.push(`${l.stream}:${l.text}`));
    assert.ok(lines.includes('stdout:hello'), lines.join('\n'));
    assert.ok(lines.includes('stdout:readonly'), lines.join('\n'));
  });

  test('build honours .dockerignore; a failing build reports its output', async () => {
    const ctx = await mkdtemp(path.join(os.tmpdir(), 'berth-build-'));
    tmpDirs.push(ctx);
    await mkdir(path.join(ctx, 'ignored'));
    await mkdir(path.join(ctx, 'src'));
    await writeFile(path.join(ctx, 'ignored', 'secret.txt'), 'nope');
    // Content unique to this run, so the RUN step really runs (and prints) instead of coming from the build cache.
    await writeFile(path.join(ctx, 'src', 'a.txt'), `A-${RUN_ID}`);
    await writeFile(path.join(ctx, 'skip.log'), 'log');
    // Ignoring the Dockerfile itself must not break the build (Docker always sends it).
    await writeFile(path.join(ctx, '.dockerignore'), 'ignored\n*.log\nDockerfile*\n');
    await writeFile(path.join(ctx, 'Dockerfile'), `FROM ${BUSYBOX}\nARG WHO=nobody\nCOPY . /ctx\nRUN echo "built for $WHO" && find /ctx | sort\n`);
    const tag = `berth-enginetest-${RUN_ID}:ok`;
    createdImages.push(tag);
    const progress: string[] = [];
    await engine.build({ context: ctx, dockerfile: 'Dockerfile', tag, args: { WHO: 'berth' }, labels: { [LABEL.app]: APP } }, (l) => progress.push(l));
    assert.equal(await engine.imageExists(tag), true);
    const out = progress.join('\n');
    assert.match(out, /built for berth/);
    assert.match(out, /\/ctx\/src\/a\.txt/);
    assert.doesNotMatch(out, /secret\.txt|skip\.log/);
    const img = await raw.getImage(tag).inspect();
    assert.equal(img.Config.Labels?.[LABEL.app], APP);
    assert.equal(await engine.imageId(tag), img.Id);
    assert.match(img.Id, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await engine.imageId(`berth-enginetest-${RUN_ID}:missing`), undefined);

    // A base image that is not there is named before dockerd would try to pull it.
    await writeFile(path.join(ctx, 'Dockerfile.nobase'), `FROM berth/no-such-base-${RUN_ID}:1\nRUN true\n`);
    await assert.rejects(engine.build({ context: ctx, dockerfile: 'Dockerfile.nobase', tag: `berth-enginetest-${RUN_ID}:nobase`, args: {} }), (e: unknown) => {
      assert.ok(e instanceof NotFound);
      assert.match(e.message, new RegExp(`base image berth/no-such-base-${RUN_ID}:1`));
      assert.match(e.message, /build it first/);
      return true;
    });

    await writeFile(path.join(ctx, 'Dockerfile.bad'), `FROM ${BUSYBOX}\nRUN echo about-to-fail && exit 7\n`);
    const bad = `berth-enginetest-${RUN_ID}:bad`;
    createdImages.push(bad);
    await assert.rejects(engine.build({ context: ctx, dockerfile: 'Dockerfile.bad', tag: bad, args: {} }), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /about-to-fail/);
      assert.match(e.message, /exit 7|code: 7|returned a non-zero code/);
      return true;
    });
    assert.equal(await engine.imageExists(bad), false);
  });

  test('BuildKit: labels are image metadata (no steps); a rebuild after a code change reports the earlier steps CACHED', async () => {
    const ctx = await newContext();
    await writeFile(path.join(ctx, 'package.json'), '{"name":"app","version":"1.0.0"}\n');
    await writeFile(path.join(ctx, 'server.js'), 'console.log("v1");\n');
    await writeFile(
      path.join(ctx, 'Dockerfile'),
      `FROM ${BUSYBOX}\nWORKDIR /app\nCOPY package.json ./\nRUN echo "deps-${RUN_ID}" && wc -c package.json\nCOPY server.js ./\nCMD ["cat", "server.js"]\n`,
    );
    const tag = `berth-enginetest-${RUN_ID}:app`;
    createdImages.push(tag);
    const labels = { [LABEL.app]: APP, 'io.berth.service': 'web', 'io.berth.commit': 'c0ffee', 'io.berth.build': 'b1', 'io.berth.depth': '2' };
    const first: string[] = [];
    await engine.build({ context: ctx, dockerfile: 'Dockerfile', tag, args: {}, labels }, (l) => first.push(l));
    const img = await raw.getImage(tag).inspect();
    for (const [k, v] of Object.entries(labels)) assert.equal(img.Config.Labels?.[k], v, k);
    // The legacy builder turns each label into a LABEL step and a commit; BuildKit adds none.
    const history = (await raw.getImage(tag).history()) as { CreatedBy: string }[];
    assert.equal(history.filter((h) => /LABEL/.test(h.CreatedBy)).length, 0, history.map((h) => h.CreatedBy).join('\n'));
    const firstOut = first.join('\n');
    assert.match(firstOut, /^#\d+ \[4\/5\] RUN echo "deps-/m);
    assert.match(firstOut, new RegExp(`^#\\d+ \\d+\\.\\d+ deps-${RUN_ID}$`, 'm'), firstOut);
    assert.match(firstOut, /^#\d+ DONE \d+\.\d+s$/m);

    await writeFile(path.join(ctx, 'server.js'), 'console.log("v2");\n');
    const second: string[] = [];
    await engine.build({ context: ctx, dockerfile: 'Dockerfile', tag, args: {}, labels }, (l) => second.push(l));
    const num = (name: string): string => {
      const headers = second.filter((l) => l.endsWith(` ${name}`) || l.includes(` ${name} `));
      assert.equal(headers.length, 1, `${name} is printed once:\n${second.join('\n')}`);
      return /^(#\d+) /.exec(headers[0]!)![1]!;
    };
    for (const step of ['[2/5] WORKDIR /app', '[3/5] COPY package.json ./', '[4/5] RUN echo']) {
      assert.ok(second.includes(`${num(step)} CACHED`), `${step} cached:\n${second.join('\n')}`);
    }
    const copy = num('[5/5] COPY server.js ./');
    assert.ok(!second.includes(`${copy} CACHED`));
    assert.ok(second.some((l) => new RegExp(`^${copy} DONE \\d`).test(l)));
    assert.doesNotMatch(second.join('\n'), new RegExp(`deps-${RUN_ID}$`, 'm'), 'the cached RUN step did not run again');
    assert.notEqual((await raw.getImage(tag).inspect()).Id, img.Id);

    // Trimming the build cache to a size it is under frees nothing, and the cache still serves.
    assert.equal(await engine.pruneBuildCache(64 * 1024 * 1024 * 1024), 0);
    await writeFile(path.join(ctx, 'server.js'), 'console.log("v3");\n');
    const third: string[] = [];
    await engine.build({ context: ctx, dockerfile: 'Dockerfile', tag, args: {}, labels }, (l) => third.push(l));
    assert.ok(third.filter((l) => / CACHED$/.test(l)).length >= 3, third.join('\n'));
  });

  test('BuildKit: a RUN step that needs more than the memory limit fails naming the limit; with room it passes', async () => {
    const ctx = await newContext();
    // dd allocates (and fills) a 300 MB buffer: anonymous memory the kernel cannot reclaim.
    await writeFile(path.join(ctx, 'Dockerfile'), `FROM ${BUSYBOX}\nRUN echo "mem-${RUN_ID}" && dd if=/dev/zero of=/dev/null bs=300M count=1 && echo survived\n`);
    const tag = `berth-enginetest-${RUN_ID}:mem`;
    createdImages.push(tag);
    const progress: string[] = [];
    await assert.rejects(engine.build({ context: ctx, dockerfile: 'Dockerfile', tag, args: {}, memoryBytes: 64 * MiB }, (l) => progress.push(l)), (e: unknown) => {
      assert.ok(e instanceof ExternalCommandFailed);
      assert.match(e.message, /memory limit of 64 MiB/);
      assert.match(e.message, /BERTH_BUILD_MEMORY_MB/);
      assert.match(e.message, /exit code: 137/);
      return true;
    });
    assert.ok(progress.some((l) => l.includes('[1/2] FROM')), 'it was a BuildKit build');
    assert.equal(await engine.imageExists(tag), false);
    // Not a registry leftover of ours keeps a limit in force.
    assert.deepEqual(await registryEntriesOfThisProcess(), []);

    const ok: string[] = [];
    await engine.build({ context: ctx, dockerfile: 'Dockerfile', tag, args: {}, memoryBytes: 512 * MiB }, (l) => ok.push(l));
    assert.match(ok.join('\n'), /survived/);
    assert.deepEqual(await registryEntriesOfThisProcess(), []);
  });

  test('BuildKit: aborting a build stops it on the daemon and rejects saying it was cancelled', async () => {
    const ctx = await newContext();
    const marker = `cancel-${RUN_ID}`;
    // Not ending in `sleep 30`: busybox sh would exec its last command, and the marker would vanish
    // from the process list while the step still runs.
    await writeFile(path.join(ctx, 'Dockerfile'), `FROM ${BUSYBOX}\nRUN echo ${marker} && sleep 30 && echo never\n`);
    const tag = `berth-enginetest-${RUN_ID}:cancel`;
    createdImages.push(tag);
    const ac = new AbortController();
    const lines: string[] = [];
    const started = Date.now();
    const building = engine.build({ context: ctx, dockerfile: 'Dockerfile', tag, args: {}, signal: ac.signal, memoryBytes: 256 * MiB }, (l) => lines.push(l));
    building.catch(() => {}); // asserted below; keeps an early rejection from counting as unhandled
    await waitFor(() => lines.some((l) => /^#\d+ \d+\.\d+ cancel-/.test(l)), { timeoutMs: 30_000, what: 'the RUN step to start' });
    await waitFor(() => processesWith(marker).length > 0, { timeoutMs: 10_000, what: 'the RUN step process' });
    ac.abort();
    await assert.rejects(building, (e: unknown) => {
      assert.ok(e instanceof ExternalCommandFailed);
      assert.match(e.message, /cancelled/);
      return true;
    });
    await waitFor(() => processesWith(marker).length === 0, { timeoutMs: 10_000, what: 'the RUN step process to be gone' });
    assert.ok(Date.now() - started < 25_000, 'stopped long before sleep 30 would have ended');
    assert.equal(await engine.imageExists(tag), false);
    assert.deepEqual(await registryEntriesOfThisProcess(), []);
    await assert.rejects(engine.build({ context: ctx, dockerfile: 'Dockerfile', tag, args: {}, signal: ac.signal }), /cancelled/);
  });

  test('builder "legacy": labels, build args, .dockerignore, and the memory limit still work', async () => {
    const legacy = new DockerEngine({ socketPath: SOCKET, logger: silent, builder: 'legacy' });
    const ctx = await newContext();
    await writeFile(path.join(ctx, '.dockerignore'), '*.log\n');
    await writeFile(path.join(ctx, 'skip.log'), 'log');
    await writeFile(path.join(ctx, 'keep.txt'), 'keep');
    await writeFile(path.join(ctx, 'Dockerfile'), `FROM ${BUSYBOX}\nARG WHO=nobody\nCOPY . /ctx\nRUN echo "legacy for $WHO" && ls /ctx\n`);
    const tag = `berth-enginetest-${RUN_ID}:legacy`;
    createdImages.push(tag);
    const lines: string[] = [];
    await legacy.build({ context: ctx, dockerfile: 'Dockerfile', tag, args: { WHO: 'berth' }, labels: { [LABEL.app]: APP } }, (l) => lines.push(l));
    const out = lines.join('\n');
    assert.match(out, /^Step 1\/\d+ : FROM/m, 'the classic builder ran');
    assert.match(out, /legacy for berth/);
    assert.match(out, /keep\.txt/);
    assert.doesNotMatch(out, /skip\.log/);
    assert.equal((await raw.getImage(tag).inspect()).Config.Labels?.[LABEL.app], APP);

    await writeFile(path.join(ctx, 'Dockerfile.mem'), `FROM ${BUSYBOX}\nRUN echo "legacy-mem-${RUN_ID}" && dd if=/dev/zero of=/dev/null bs=300M count=1\n`);
    await assert.rejects(legacy.build({ context: ctx, dockerfile: 'Dockerfile.mem', tag: `${tag}-mem`, args: {}, memoryBytes: 64 * MiB }), (e: unknown) => {
      assert.ok(e instanceof ExternalCommandFailed);
      assert.match(e.message, /memory limit of 64 MiB/);
      assert.match(e.message, /BERTH_BUILD_MEMORY_MB/);
      return true;
    });
  });

  test('a daemon that refuses BuildKit builds gets the legacy builder, from then on without asking again', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-nobk-'));
    tmpDirs.push(dir);
    const sock = path.join(dir, 'docker.sock');
    const buildRequests: string[] = [];
    // An HTTP proxy to the real engine that answers BuildKit build requests the way a daemon without
    // BuildKit does.
    const server = http.createServer((req, res) => {
      const url = req.url ?? '/';
      if (/\/build\?/.test(url)) buildRequests.push(url);
      if (/\/build\?/.test(url) && new URLSearchParams(url.split('?')[1]).get('version') === '2') {
        req.resume();
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: 'buildkit not supported by daemon' }));
        return;
      }
      const up = http.request({ socketPath: SOCKET, path: url, method: req.method, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const proxied = new DockerEngine({ socketPath: sock, logger: silent });
      const ctx = await newContext();
      await writeFile(path.join(ctx, 'Dockerfile'), `FROM ${BUSYBOX}\nRUN echo "fallback-${RUN_ID}"\n`);
      const tag = `berth-enginetest-${RUN_ID}:fallback`;
      createdImages.push(tag);
      const lines: string[] = [];
      await proxied.build({ context: ctx, dockerfile: 'Dockerfile', tag, args: {}, labels: { [LABEL.app]: APP } }, (l) => lines.push(l));
      assert.match(lines.join('\n'), /^Step 1\/\d+ : FROM/m);
      assert.equal((await raw.getImage(tag).inspect()).Config.Labels?.[LABEL.app], APP);
      await proxied.build({ context: ctx, dockerfile: 'Dockerfile', tag, args: {} }, () => {});
      assert.deepEqual(buildRequests.map((u) => new URLSearchParams(u.split('?')[1]).get('version') ?? 'legacy'), ['2', 'legacy', 'legacy']);
    } finally {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    }
  });

  test('an unreachable engine is EngineUnavailable naming the socket and how to start it', async () => {
    const sock = path.join(os.tmpdir(), `berth-nodocker-${RUN_ID}.sock`);
    const dead = new DockerEngine({ socketPath: sock, logger: silent });
    for (const p of [dead.ping(), dead.list({}), dead.create(spec()), dead.inspect('x')]) {
      await assert.rejects(p, (e: unknown) => {
        assert.ok(e instanceof EngineUnavailable);
        assert.ok(e.message.includes(sock));
        assert.match(e.message, /bash scripts\/dockerd\.sh start/);
        return true;
      });
    }
  });

  test('watch reconnects with backoff after the engine goes away (socket proxy closed and reopened)', async () => {
    // A unix-socket proxy in front of the real engine: closing it (and cutting its connections) looks to
    // the client exactly like the engine going away; reopening it like the engine coming back.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-proxy-'));
    tmpDirs.push(dir);
    const sock = path.join(dir, 'docker.sock');
    const conns = new Set<net.Socket>();
    let accepted = 0;
    const server = net.createServer((c) => {
      accepted++;
      const up = net.connect(SOCKET);
      for (const s of [c, up]) {
        conns.add(s);
        s.on('close', () => conns.delete(s));
        s.on('error', () => {});
      }
      c.pipe(up).pipe(c);
      c.on('close', () => up.destroy());
      up.on('close', () => c.destroy());
    });
    const listen = (): Promise<void> => new Promise((res) => server.listen(sock, res));
    const close = (): Promise<void> =>
      new Promise((res) => {
        server.close(() => res());
        for (const c of conns) c.destroy();
      });
    await listen();
    const proxied = new DockerEngine({ socketPath: sock, logger: silent, reconnectBaseMs: 50, reconnectMaxMs: 400 });
    const events: EngineEvent[] = [];
    const unwatch = proxied.watch((e) => events.push(e));
    try {
      const kinds = (): string[] => events.filter((e) => e.kind !== 'container').map((e) => e.kind);
      await waitFor(() => kinds().length === 1, { timeoutMs: 10_000, what: 'first connected' });
      assert.deepEqual(kinds(), ['connected']);

      await close();
      await waitFor(() => kinds().length === 2, { timeoutMs: 10_000, what: 'disconnected' });
      assert.deepEqual(kinds(), ['connected', 'disconnected']);
      const down = events.at(-1);
      assert.ok(down?.kind === 'disconnected' && down.error.length > 0);
      await assert.rejects(proxied.ping(), EngineUnavailable);
      // Retries keep failing while the engine is away, and `disconnected` is reported only once.
      await new Promise((r) => setTimeout(r, 700));
      assert.deepEqual(kinds(), ['connected', 'disconnected']);

      const before = accepted;
      await listen();
      await waitFor(() => kinds().length === 3, { timeoutMs: 10_000, what: 'reconnected' });
      assert.deepEqual(kinds(), ['connected', 'disconnected', 'connected']);
      assert.ok(accepted > before);

      // The new subscription really delivers events.
      const id = await engine.create(spec());
      await engine.start(id);
      await waitFor(() => events.some((e) => e.kind === 'container' && e.id === id && e.action === 'start'), {
        timeoutMs: 10_000,
        what: 'start event via the reconnected stream',
      });
    } finally {
      unwatch();
      await close();
    }
    // After unsubscribing nothing reconnects.
    const n = events.length;
    await listen();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(events.length, n);
    await close();
  });

  test('watch started while the engine is away reports disconnected, then connected when it appears', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-proxy-'));
    tmpDirs.push(dir);
    const sock = path.join(dir, 'docker.sock');
    const conns = new Set<net.Socket>();
    const server = net.createServer((c) => {
      const up = net.connect(SOCKET);
      for (const s of [c, up]) {
        conns.add(s);
        s.on('close', () => conns.delete(s));
        s.on('error', () => {});
      }
      c.pipe(up).pipe(c);
    });
    const proxied = new DockerEngine({ socketPath: sock, logger: silent, reconnectBaseMs: 50, reconnectMaxMs: 200 });
    const kinds: string[] = [];
    const unwatch = proxied.watch((e) => kinds.push(e.kind));
    try {
      await waitFor(() => kinds.length === 1, { timeoutMs: 10_000, what: 'disconnected' });
      assert.deepEqual(kinds, ['disconnected']);
      await new Promise<void>((res) => server.listen(sock, res));
      await waitFor(() => kinds.length === 2, { timeoutMs: 10_000, what: 'connected' });
      assert.deepEqual(kinds, ['disconnected', 'connected']);
    } finally {
      unwatch();
      await new Promise<void>((res) => {
        server.close(() => res());
        for (const c of conns) c.destroy();
      });
    }
  });
});
