import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LABEL, type EngineEvent, type Logger } from '../core/ports.ts';
import type { NewEvent, ServiceKey } from '../core/store.ts';
import { downReason, watchEngineEvents } from './engine-events.ts';
import { Resync } from './resync.ts';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

function setup() {
  let send: (e: EngineEvent) => void = () => {};
  let unwatched = false;
  const woken: [ServiceKey, string][] = [];
  const recorded: NewEvent[] = [];
  const down: [string, string][] = [];
  let reachable = 0;
  const unwatch = watchEngineEvents({
    engine: { watch: (fn) => ((send = fn), () => void (unwatched = true)) },
    cluster: 'c1', logger: quiet,
    events: { addEvent: (e) => (recorded.push(e), { ...e, id: recorded.length, ts: 0 }) },
    serviceChanged: (k, action) => woken.push([k, action]),
    reachable: () => void reachable++,
    instanceDown: (instance, why) => void down.push([instance, why]),
  });
  return { send: (e: EngineEvent) => send(e), woken, recorded, down, reachable: () => reachable, unwatch, unwatched: () => unwatched };
}

const labels = (cluster: string) => ({ [LABEL.app]: 'shop', [LABEL.env]: 'prod', [LABEL.service]: 'web', [LABEL.cluster]: cluster });

test('a container event of this cluster wakes its service; other clusters and unlabelled containers wake nothing', () => {
  const s = setup();
  s.send({ kind: 'container', action: 'die', id: 'x', labels: labels('c1') });
  s.send({ kind: 'container', action: 'die', id: 'y', labels: labels('other') });
  s.send({ kind: 'container', action: 'start', id: 'z', labels: { [LABEL.cluster]: 'c1' } });
  assert.deepEqual(s.woken, [[{ app: 'shop', env: 'prod', service: 'web' }, 'die']]);
  s.unwatch();
  assert.ok(s.unwatched());
});

test('a lost engine is recorded once; regaining it records it and resyncs; a first connect only resyncs', () => {
  const s = setup();
  s.send({ kind: 'connected' });
  assert.equal(s.reachable(), 1);
  assert.equal(s.recorded.length, 0);
  s.send({ kind: 'disconnected', error: 'ECONNREFUSED' });
  s.send({ kind: 'disconnected', error: 'ECONNREFUSED' });
  s.send({ kind: 'connected' });
  assert.deepEqual(s.recorded.map((e) => e.kind), ['engine.disconnected', 'engine.connected']);
  assert.match(s.recorded[0]!.message, /ECONNREFUSED/);
  assert.equal(s.reachable(), 2);
});

test('resync wakes every service, instance, container, unfinished deployment and running purge', async () => {
  const woken: string[] = [];
  const r = new Resync({
    store: {
      listServices: () => [{ app: 'a', env: 'prod', name: 'web' }] as never,
      listInstances: () => [{ app: 'b', env: 'prod', service: 'api' }] as never,
      listDeployments: (f) => (assert.deepEqual(f.status, ['pending', 'building', 'rolling']), [{ id: 'd1' }] as never),
      listPurges: () => [{ app: 'p', state: 'purging' }, { app: 'q', state: 'done' }] as never,
    },
    engine: { list: async () => [{ labels: labels('c1') }, { labels: {} }] as never },
    logger: quiet, intervalMs: 10_000,
    wakeService: (k) => woken.push(`svc/${k.app}/${k.env}/${k.service}`),
    wakeDeployment: (id) => woken.push(`deploy/${id}`),
    wakePurge: (app) => woken.push(`purge/${app}`),
  });
  await r.all();
  assert.deepEqual(woken, ['svc/a/prod/web', 'svc/b/prod/api', 'deploy/d1', 'purge/p', 'svc/shop/prod/web']);
});

test('resync survives an unreachable engine: the store keys are still woken', async () => {
  const woken: string[] = [];
  const r = new Resync({
    store: { listServices: () => [{ app: 'a', env: 'prod', name: 'web' }] as never, listInstances: () => [], listDeployments: () => [], listPurges: () => [] },
    engine: { list: async () => { throw new Error('engine down'); } },
    logger: quiet, intervalMs: 10_000,
    wakeService: (k) => woken.push(k.service), wakeDeployment: () => {}, wakePurge: () => {},
  });
  await r.all();
  assert.deepEqual(woken, ['web']);
});

test('an instance whose container died, ran out of memory or was sent SIGKILL is down at that event, before its service is woken; a reload signal is not', () => {
  const s = setup();
  const inst = (id: string, extra: Record<string, string> = {}) => ({ ...labels('c1'), [LABEL.instance]: id, ...extra });
  s.send({ kind: 'container', action: 'kill', id: 'a', labels: inst('i1', { signal: '9' }) });
  s.send({ kind: 'container', action: 'die', id: 'b', labels: inst('i2', { exitCode: '137' }) });
  s.send({ kind: 'container', action: 'oom', id: 'c', labels: inst('i3') });
  s.send({ kind: 'container', action: 'kill', id: 'd', labels: inst('i4', { signal: '1' }) });
  s.send({ kind: 'container', action: 'kill', id: 'e', labels: inst('i5', { signal: '15' }) });
  s.send({ kind: 'container', action: 'start', id: 'f', labels: inst('i6') });
  s.send({ kind: 'container', action: 'die', id: 'g', labels: { ...inst('i7'), [LABEL.cluster]: 'other' } });
  assert.deepEqual(s.down, [
    ['i1', 'its container was sent SIGKILL'],
    ['i2', 'its container exited with code 137'],
    ['i3', 'its container ran out of memory'],
  ]);
  // Every event of this cluster still wakes its service (the reconciler does the rest).
  assert.equal(s.woken.length, 6);
  assert.equal(downReason('die', {}), 'its container exited');
  assert.equal(downReason('kill', { signal: 'SIGKILL' }), 'its container was sent SIGKILL');
  assert.equal(downReason('stop', {}), undefined);
});
