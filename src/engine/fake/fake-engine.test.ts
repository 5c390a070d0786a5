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

const GIB = 1024 ** 3;
const placed = (pool: string, cpus = 0.5, over: Partial<NonNullable<ContainerSpec['placement']>> = {}): NonNullable<ContainerSpec['placement']> => ({
  pool, constraints: [], spread: [], reservation: { nanoCpus: cpus * 1e9, memoryBytes: GIB / 2 }, ...over,
});

test('one-host mode: a single ready host in the default pool; host changes refused', async () => {
  const eng = new FakeEngine({ hostName: 'solo', images: ['app:1'] });
  assert.equal(await eng.clusterMode(), 'single');
  const [h] = await eng.hosts();
  assert.equal(h?.name, 'solo');
  assert.equal(h?.pool, 'default');
  assert.equal(h?.state, 'ready');
  const id = await eng.create(spec({ placement: placed('elsewhere') }));
  assert.equal((await eng.inspect(id))?.host, 'solo', 'one host ignores placement');
  await assert.rejects(eng.drainHost('solo', true), (e: unknown) => e instanceof Conflict && /berth cluster init/.test(e.message));
  await assert.rejects(eng.labelHost('solo', { a: 'b' }), Conflict);
});

test('simulated hosts: pools, spread, capacity refusals, reservations and instances', async () => {
  const eng = new FakeEngine({
    images: ['app:1'],
    hosts: [{ name: 'h1', pool: 'a' }, { name: 'h2', pool: 'a' }, { name: 'h3', pool: 'a' }, { name: 'h4', pool: 'b', cpus: 1 }],
  });
  assert.equal(await eng.clusterMode(), 'swarm');
  assert.equal(eng.hostName, 'h1');
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push(await eng.create(spec({ name: `web-${i}`, labels: { [LABEL.app]: 'shop', [LABEL.env]: 'prod', [LABEL.service]: 'web' }, placement: placed('a') })));
  const where = await Promise.all(ids.map(async (id) => (await eng.inspect(id))!));
  const tally: Record<string, number> = {};
  for (const c of where) tally[c.host] = (tally[c.host] ?? 0) + 1;
  assert.deepEqual(tally, { h1: 2, h2: 2, h3: 2 });
  assert.ok(where.every((c) => c.hostAddress?.startsWith('10.99.')));
  const b = await eng.create(spec({ name: 'db-0', placement: placed('b', 1) }));
  assert.equal((await eng.inspect(b))?.host, 'h4');
  await assert.rejects(eng.create(spec({ name: 'db-1', placement: placed('b', 1) })), (e: unknown) => e instanceof Conflict && /^pool b: asks 1 CPU \/ 512 MiB, free 0 CPUs \/ 3\.5 GiB on 1 host/.test(e.message));
  assert.equal((await eng.list({})).length, 7, 'a refused create creates nothing');
  const hosts = await eng.hosts();
  const h1 = hosts.find((h) => h.name === 'h1')!;
  assert.deepEqual(h1.reserved, { nanoCpus: 1e9, memoryBytes: GIB });
  assert.equal(h1.instances, 2);
  assert.equal(h1.pool, 'a');
  await assert.rejects(eng.drainHost('h9', true), NotFound);
});

test('simulated hosts: drain, labels, host loss and return, removal', async () => {
  const eng = new FakeEngine({ images: ['app:1'], hosts: [{ name: 'h1', pool: 'a' }, { name: 'h2', pool: 'a' }] });
  const events: EngineEvent[] = [];
  eng.watch((e) => events.push(e));
  const drained = await eng.drainHost('h2', true);
  assert.equal(drained.state, 'draining');
  const id1 = await eng.create(spec({ name: 'w-1', placement: placed('a') }));
  const id2 = await eng.create(spec({ name: 'w-2', placement: placed('a') }));
  assert.equal((await eng.inspect(id1))?.host, 'h1');
  assert.equal((await eng.inspect(id2))?.host, 'h1', 'nothing new lands on a draining host');
  await eng.drainHost('h2', false);
  await eng.start(id1);
  await eng.start(id2);

  const relabelled = await eng.labelHost('h2', { 'io.berth.pool': 'b', zone: 'z1' });
  assert.equal(relabelled.pool, 'b');
  assert.equal((await eng.labelHost('h2', { 'io.berth.pool': null })).pool, 'default');

  eng.hostDown('h1');
  const lost = await eng.inspect(id1);
  assert.equal(lost?.state, 'lost');
  assert.equal(lost?.running, false);
  assert.equal((await eng.hosts()).find((h) => h.name === 'h1')?.state, 'down');
  assert.ok(events.some((e) => e.kind === 'host' && e.name === 'h1' && e.state === 'down'));
  assert.ok(events.some((e) => e.kind === 'container' && e.id === id1 && e.action === 'lost'));
  await assert.rejects(eng.start(id1), EngineUnavailable);
  await eng.remove(id1); // Berth replaced it: the lost one is forgotten
  eng.hostUp('h1');
  assert.equal(await eng.inspect(id1), undefined, 'a removed lost container does not come back');
  assert.equal((await eng.inspect(id2))?.running, true, 'one not removed comes back running (a duplicate, unless Berth removes it)');

  await assert.rejects(eng.removeHost('h2', { force: false }), (e: unknown) => e instanceof Conflict && /drain it first/.test(e.message));
  eng.hostDown('h2');
  await eng.removeHost('h2', { force: false });
  assert.deepEqual((await eng.hosts()).map((h) => h.name), ['h1']);
  await assert.rejects(eng.removeHost('h1', { force: true }), (e: unknown) => e instanceof Conflict && /only manager/.test(e.message));
});

test('a hundred simulated hosts', async () => {
  const eng = new FakeEngine({ images: ['app:1'], hosts: Array.from({ length: 100 }, (_, i) => ({ name: `h${i}`, pool: i < 50 ? 'a' : 'b' })) });
  const hosts = await eng.hosts();
  assert.equal(hosts.length, 100);
  assert.equal(new Set(hosts.map((h) => h.address)).size, 100, 'addresses are distinct');
  assert.equal(hosts.filter((h) => h.pool === 'a').length, 50);
});
