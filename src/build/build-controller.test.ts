import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildController } from './build-controller.ts';
import { BuildLog, type BuildRecord } from './build-log.ts';
import { GitRepos } from './git-repos.ts';
import { BuildCancelled, PipelineFailed, type RunContext } from './pipeline.ts';
import type { Logger } from '../core/ports.ts';
import { Conflict, NotFound } from '../core/errors.ts';

const quiet: Logger = { info() {}, warn() {}, error() {}, debug() {}, child: () => quiet } as unknown as Logger;
const sha = (n: number) => String(n).padStart(40, 'a');

/**
 * A pipeline whose stages are steps the test releases one by one: `gate(id)` resolves the current
 * stage of build `id`; a cancelled build's stage rejects as the real pipeline does (BuildCancelled).
 */
function fakePipeline(stages: ('build' | 'test' | 'deploy')[] = ['build', 'deploy']) {
  const started: string[] = [];
  const gates = new Map<string, () => void>();
  const fail = new Set<string>();
  return {
    started, fail,
    gate(id: string) {
      const g = gates.get(id);
      assert.ok(g, `build ${id} is waiting on a stage`);
      gates.delete(id);
      g();
    },
    waiting: (id: string) => gates.has(id),
    async run(rec: BuildRecord, c: RunContext): Promise<void> {
      started.push(rec.id);
      for (const s of stages) {
        c.stage(s);
        c.say(`stage ${s}`);
        await new Promise<void>((resolve, reject) => {
          gates.set(rec.id, resolve);
          if (s !== 'deploy') c.signal.addEventListener('abort', () => reject(new BuildCancelled(s)), { once: true });
        });
        if (fail.has(rec.id)) throw new PipelineFailed(`stage ${s} failed`);
      }
    },
  };
}

function setup(stages?: ('build' | 'test' | 'deploy')[]) {
  const dir = mkdtempSync(join(tmpdir(), 'berth-bc-'));
  const builds = new BuildLog(join(dir, 'builds'));
  const pipeline = fakePipeline(stages);
  let n = 0;
  let now = 1_000;
  const mk = (remoteOf: (app: string) => Promise<string | undefined> = async () => undefined) => new BuildController({
    builds, repos: new GitRepos(dir, process.env), pipeline, clock: { now: () => (now += 10) }, logger: quiet, newId: () => `b${++n}`, remoteOf,
  });
  return { dir, builds, pipeline, c: mk(), mk, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(cond(), 'condition reached');
};

test('builds of one app run one after the other, in order; the record follows the stages', async () => {
  const { c, pipeline, cleanup } = setup();
  try {
    const a = await c.submit({ app: 'shop', branch: 'main', commit: sha(1), source: 'push' });
    const b = await c.submit({ app: 'shop', branch: 'main', commit: sha(2), source: 'push' });
    assert.equal(a.status, 'queued');
    await until(() => pipeline.waiting('b1'));
    assert.equal(c.get('b1')!.status, 'running');
    assert.equal(c.get('b1')!.stage, 'build');
    assert.equal(c.get('b2')!.status, 'queued', 'the second waits for the first');
    pipeline.gate('b1');
    await until(() => c.get('b1')!.stage === 'deploy');
    pipeline.gate('b1');
    const done = await c.wait(a.id);
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(Object.keys(done.timings!).sort(), ['build', 'deploy']);
    await until(() => pipeline.waiting('b2'));
    pipeline.gate('b2');
    await until(() => pipeline.waiting('b2'));
    pipeline.gate('b2');
    assert.equal((await c.wait(b.id)).status, 'succeeded');
    assert.deepEqual(pipeline.started, ['b1', 'b2']);
    assert.match(c.text('b1'), /-----> Berth build b1: shop main @ aaaa/);
    assert.match(c.text('b1'), /-----> Done in/);
  } finally {
    cleanup();
  }
});

test('cancel: a queued build never runs, a running one stops, a deploying one is refused', async () => {
  const { c, pipeline, cleanup } = setup();
  try {
    await c.submit({ app: 'shop', branch: 'main', commit: sha(1), source: 'push' });
    await c.submit({ app: 'shop', branch: 'main', commit: sha(2), source: 'push' });
    await until(() => pipeline.waiting('b1'));
    const q = await c.cancel('b2', 'alice');
    assert.equal(q.status, 'cancelled');
    assert.match(q.message, /cancelled by alice while queued/);
    const r = await c.cancel('b1', 'alice');
    assert.equal(r.status, 'cancelled');
    assert.match(r.message, /cancelled by alice during the build stage: nothing was deployed/);
    assert.match(c.text('b1'), /push of main cancelled: the running release is untouched/);
    assert.deepEqual(pipeline.started, ['b1'], 'the queued one never started');
    await assert.rejects(c.cancel('b1', 'alice'), Conflict);
    await assert.rejects(c.cancel('nope', 'alice'), NotFound);

    await c.submit({ app: 'shop', branch: 'main', commit: sha(3), source: 'push' });
    await until(() => pipeline.waiting('b3'));
    pipeline.gate('b3');
    await until(() => c.get('b3')!.stage === 'deploy');
    await assert.rejects(c.cancel('b3', 'alice'), (e: Error) => e instanceof Conflict && /is deploying/.test(e.message));
    pipeline.gate('b3');
    assert.equal((await c.wait('b3')).status, 'succeeded');
  } finally {
    cleanup();
  }
});

test('a failed stage fails the build with its message; the next build of the app still runs', async () => {
  const { c, pipeline, cleanup } = setup();
  try {
    await c.submit({ app: 'shop', branch: 'main', commit: sha(1), source: 'push' });
    await c.submit({ app: 'shop', branch: 'main', commit: sha(2), source: 'push' });
    pipeline.fail.add('b1');
    await until(() => pipeline.waiting('b1'));
    pipeline.gate('b1');
    const f = await c.wait('b1');
    assert.equal(f.status, 'failed');
    assert.equal(f.message, 'stage build failed');
    await until(() => pipeline.waiting('b2'));
    assert.equal(c.get('b2')!.status, 'running');
  } finally {
    cleanup();
  }
});

test('follow streams stored lines then live ones, each once, and ends with the build', async () => {
  const { c, pipeline, cleanup } = setup();
  try {
    await c.submit({ app: 'shop', branch: 'main', commit: sha(1), source: 'push' });
    await until(() => pipeline.waiting('b1'));
    const lines: string[] = [];
    const f = c.follow('b1', (l) => lines.push(l));
    pipeline.gate('b1');
    await until(() => pipeline.waiting('b1'));
    pipeline.gate('b1');
    const end = await f.done;
    assert.equal(end.status, 'succeeded');
    assert.deepEqual(lines.filter((l) => l.startsWith('stage')), ['stage build', 'stage deploy']);
    assert.equal(lines.filter((l) => l.startsWith('-----> Berth build')).length, 1);
    assert.throws(() => c.follow('nope', () => undefined), NotFound);
  } finally {
    cleanup();
  }
});

test('after a restart, an interrupted push is failed (its pusher was answered already)', async () => {
  const { c, mk, pipeline, cleanup } = setup();
  try {
    await c.submit({ app: 'shop', branch: 'main', commit: sha(1), source: 'push' });
    await until(() => pipeline.waiting('b1'));
    // A new controller over the same records, as after a crash: the old one's state is gone.
    const c2 = mk();
    await c2.recover();
    const r = c2.get('b1')!;
    assert.equal(r.status, 'failed');
    assert.match(r.message, /interrupted: the Berth server stopped during this build, so the push was rejected; push again/);
    assert.equal(pipeline.started.length, 1, 'a push is not run again');
  } finally {
    cleanup();
  }
});

test('after a restart, an unfinished webhook build runs again (here: its source is gone, so it fails saying so)', async () => {
  const { mk, pipeline, cleanup } = setup();
  try {
    // The first server hangs in the fetch stage (its remote never answers) when it "crashes".
    const c = mk(() => new Promise(() => undefined));
    await c.submit({ app: 'shop', branch: 'main', commit: sha(1), source: 'webhook' });
    await until(() => c.get('b1')!.stage === 'fetch');
    const c2 = mk();
    await c2.recover();
    const r = await c2.wait('b1');
    assert.match(c2.text('b1'), /The Berth server restarted during this build: running it again/);
    assert.equal(r.status, 'failed');
    assert.match(r.message, /app shop has no source remote any more: set one with PUT \/v1\/apps\/shop\/source/);
    assert.equal(pipeline.started.length, 0, 'it stopped at the fetch, before the pipeline');
  } finally {
    cleanup();
  }
});

test('a webhook build whose stored remote is not accepted (an older server kept it) fails before git runs', async () => {
  const marker = join(tmpdir(), `berth-bc-pwned-${process.pid}`);
  const { mk, pipeline, cleanup } = setup();
  try {
    for (const [remote, why] of [
      [`--upload-pack=touch ${marker}`, /it contains white space/],
      ['--upload-pack=true', /starts with "-"/],
      ['file:///var/lib/berth/git/other.git', /file:\/\/ remotes/],
      ['/var/lib/berth/git/other.git', /local paths/],
    ] as const) {
      const c = mk(async () => remote);
      const b = await c.submit({ app: 'shop', branch: 'main', commit: sha(1), source: 'webhook' });
      const r = await c.wait(b.id);
      assert.equal(r.status, 'failed');
      assert.match(r.message, /^the source remote of shop is not accepted \(/);
      assert.match(r.message, why);
    }
    assert.equal(existsSync(marker), false);
    assert.equal(pipeline.started.length, 0);
  } finally {
    cleanup();
  }
});

test('a branch name git would not accept is refused when a build is submitted', async () => {
  const { c, cleanup } = setup();
  try {
    await assert.rejects(c.submit({ app: 'shop', branch: 'x:refs/heads/main', commit: sha(1), source: 'webhook' }), /"x:refs\/heads\/main" is not a branch name/);
    await assert.rejects(c.submit({ app: 'shop', branch: '-x', commit: sha(1), source: 'webhook' }), /not a branch name/);
    assert.deepEqual(c.list(), []);
  } finally {
    cleanup();
  }
});

test('a deploy build: submitted once under its deployment\'s id, queued behind the app\'s builds, cancellable in any stage; its end wakes the deployment', async () => {
  const { dir, builds, pipeline, cleanup } = setup(['build', 'test']);
  const ended: string[] = [];
  let n = 0;
  const c = new BuildController({
    builds, repos: new GitRepos(dir, process.env), pipeline, clock: { now: () => 1_000 }, logger: quiet, newId: () => `b${++n}`,
    remoteOf: async () => undefined, finished: (r) => void ended.push(`${r.id} ${r.status}`),
  });
  try {
    const push = await c.submit({ app: 'shop', branch: 'main', commit: sha(1), source: 'push' });
    const rec = await c.submitForDeployment({ id: 'dep1', app: 'shop', env: 'pre' });
    assert.deepEqual({ id: rec.id, source: rec.source, deploymentId: rec.deploymentId, env: rec.env, status: rec.status },
      { id: 'dep1', source: 'deploy', deploymentId: 'dep1', env: 'pre', status: 'queued' });
    assert.equal((await c.submitForDeployment({ id: 'dep1', app: 'shop', env: 'pre' })).id, 'dep1', 'a second submit returns the same build');
    assert.equal(c.list('shop').length, 2, 'visible among the app\'s builds, once');
    await until(() => pipeline.waiting(push.id));
    pipeline.gate(push.id);
    await until(() => pipeline.waiting(push.id));
    pipeline.gate(push.id);
    await until(() => pipeline.waiting('dep1'));
    assert.equal(c.get('dep1')!.stage, 'build');
    const cancelled = await c.cancel('dep1', 'alice');
    assert.equal(cancelled.status, 'cancelled');
    assert.match(cancelled.message, /^cancelled by alice during the build stage: nothing was deployed/);
    assert.match(c.text('dep1'), /build for deployment dep1 cancelled: the running release is untouched/);
    assert.deepEqual(ended, [`${push.id} succeeded`, 'dep1 cancelled']);
    assert.equal((await c.submitForDeployment({ id: 'dep1', app: 'shop', env: 'pre' })).status, 'cancelled', 'never built again');
  } finally {
    cleanup();
  }
});

test('after a restart, an unfinished deploy build runs again (its deployment waits for it)', async () => {
  const { dir, builds, pipeline, cleanup } = setup(['build']);
  try {
    const rec: BuildRecord = { id: 'dep2', app: 'shop', branch: '', env: 'prod', commit: '', status: 'running', stage: 'build', message: '', images: {},
      createdAt: 1, source: 'deploy', deploymentId: 'dep2', timings: {} };
    await builds.create(rec);
    const c = new BuildController({ builds, repos: new GitRepos(dir, process.env), pipeline, clock: { now: () => 5 }, logger: quiet, newId: () => 'x', remoteOf: async () => undefined });
    await c.recover();
    await until(() => pipeline.waiting('dep2'));
    pipeline.gate('dep2');
    const done = await c.wait('dep2');
    assert.equal(done.status, 'succeeded');
    assert.equal(done.message, 'built for deployment dep2');
    assert.match(c.text('dep2'), /The Berth server restarted during this build: running it again/);
  } finally {
    cleanup();
  }
});
