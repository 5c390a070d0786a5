import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Conflict, EngineUnavailable, NotFound } from '../../core/errors.ts';
import { LABEL, type ContainerSpec, type EngineEvent } from '../../core/ports.ts';
import { FakeEngine } from './fake-engine.ts';

const spec = (over: Partial<ContainerSpec> = {}): ContainerSpec => ({
  name: 'web-1',
  image: 'app:1',
  labels: { [LABEL.app]: 'shop' },
  env: { PORT: '8080' },
  mounts: [],
  ...over,
});

test('lifecycle, events and labels', async () => {
  const eng = new FakeEngine({ images: ['app:1'], clock: { now: () => 1_700_000_000_000 } });
  const events: EngineEvent[] = [];
  const unwatch = eng.watch((e) => events.push(e));
  const id = await eng.create(spec({ healthcheck: { test: ['CMD', 'true'], intervalMs: 1000, timeoutMs: 1000, retries: 3, startPeriodMs: 0 } }));
  await eng.start(id);
  let info = await eng.inspect(id);
  assert.equal(info?.running, true);
  assert.equal(info?.health, 'starting');
  assert.equal(info?.labels[LABEL.managed], 'true');
  assert.equal(info?.startedAt, '2023-11-14T22:13:20.000Z');
  eng.setHealth(id, 'healthy');
  assert.equal((await eng.list({ [LABEL.app]: 'shop' }))[0]?.health, 'healthy');
  assert.deepEqual(await eng.list({ [LABEL.app]: 'other' }), []);

  eng.crash(id, 3);
  info = await eng.inspect(id);
  assert.equal(info?.running, false);
  assert.equal(info?.exitCode, 3);
  assert.equal(info?.state, 'exited');
  await eng.stop(id, 5); // stopped already: fine
  await eng.remove(id);
  await eng.remove(id); // missing: fine
  assert.equal(await eng.inspect(id), undefined);
  unwatch();
  assert.deepEqual(
    events.map((e) => (e.kind === 'container' ? e.action : e.kind)),
    ['connected', 'create', 'start', 'health_status: healthy', 'die', 'destroy'],
  );
});

test('missing image, name conflicts and stale containers', async () => {
  const eng = new FakeEngine({ images: ['app:1'] });
  await assert.rejects(eng.create(spec({ image: 'nope:1' })), NotFound);
  const a = await eng.create(spec());
  await eng.start(a);
  await assert.rejects(eng.create(spec()), Conflict);
  await eng.kill(a, 'SIGKILL');
  assert.equal((await eng.inspect(a))?.exitCode, 137);
  const b = await eng.create(spec()); // the stale, stopped one is replaced
  assert.notEqual(a, b);
  assert.equal(await eng.inspect(a), undefined);
});

test('outage: calls fail, watchers see disconnected then connected', async () => {
  const eng = new FakeEngine();
  const kinds: string[] = [];
  eng.watch((e) => kinds.push(e.kind));
  eng.outage();
  await assert.rejects(eng.ping(), EngineUnavailable);
  await assert.rejects(eng.list({}), EngineUnavailable);
  eng.recover();
  await eng.ping();
  assert.deepEqual(kinds, ['connected', 'disconnected', 'connected']);
});

test('logs with tail', async () => {
  const eng = new FakeEngine({ images: ['app:1'] });
  const id = await eng.create(spec());
  eng.appendLog(id, 'stdout', 'one');
  eng.appendLog(id, 'stderr', 'two');
  const got: string[] = [];
  await eng.logs(id, { follow: false, tail: 1 }, (l) => got.push(`${l.stream}:${l.text}`));
  assert.deepEqual(got, ['stderr:two']);
});

test('failNext: the next call of that kind rejects once, without effect and without a calls entry', async () => {
  const eng = new FakeEngine({ images: ['app:1'] });
  eng.failNext('create', new Error('daemon hiccup'));
  await assert.rejects(eng.create(spec()), /daemon hiccup/);
  assert.deepEqual(await eng.list({}), [], 'no container was made');
  assert.deepEqual(eng.calls, []);
  const id = await eng.create(spec());
  eng.failNext('start');
  await assert.rejects(eng.start(id), /start failed/);
  assert.equal((await eng.inspect(id))?.state, 'created');
  await eng.start(id);
  assert.equal((await eng.inspect(id))?.running, true);
  eng.failNext('build');
  await assert.rejects(eng.build({ tag: 'app:2' }));
  assert.equal(await eng.imageExists('app:2'), false);
  assert.deepEqual(eng.calls, ['create web-1', `start ${id}`]);
});

test('create accepts an image id as well as a reference, like Docker', async () => {
  const eng = new FakeEngine({ images: ['app:1'] });
  const imageId = await eng.imageId('app:1');
  assert.match(imageId ?? '', /^sha256:/);
  const id = await eng.create(spec({ image: imageId! }));
  assert.equal((await eng.inspect(id))?.image, imageId);
});

test('build and push take an AbortSignal: a held build aborted midway rejects as cancelled and tags nothing', async () => {
  const eng = new FakeEngine({ images: ['app:1'] });
  const release = eng.holdBuilds();
  const ac = new AbortController();
  const lines: string[] = [];
  const building = eng.build({ tag: 'app:2', signal: ac.signal }, (l) => lines.push(l));
  const other = eng.build({ tag: 'app:3' });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(eng.calls, ['build app:2', 'build app:3']);
  ac.abort();
  await assert.rejects(building, /build of app:2 was cancelled/);
  assert.equal(await eng.imageExists('app:2'), false);
  release();
  await other;
  assert.equal(await eng.imageExists('app:3'), true);
  await assert.rejects(eng.build({ tag: 'app:4', signal: AbortSignal.abort() }), /cancelled/);
  await assert.rejects(eng.push('127.0.0.1:5000/app:1', undefined, AbortSignal.abort()), /push of 127\.0\.0\.1:5000\/app:1 was cancelled/);
  assert.ok(lines.some((l) => l.includes('app:2')));
});
