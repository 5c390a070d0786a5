import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LABEL, type ContainerSpec } from '../../core/ports.ts';
import { createLogger } from '../../lib/logger.ts';
import { FakeEngine } from '../fake/fake-engine.ts';
import { DockerEngine } from './docker-engine.ts';
import { HostEvents, type FollowedHost, type HostEventSource } from './host-events.ts';
import { toInfo } from './swarm-containers.ts';

const logger = createLogger('silent');

/**
 * A fake host's engine as the feed follows it (its watch; its Berth containers as a listing). Container
 * ids are made unique across the fake engines (each counts from 1) by prefixing the host's name.
 */
function source(e: FakeEngine, o: { failObserve?: () => boolean } = {}): HostEventSource {
  const id = (x: string): string => `${e.hostName}-${x}`;
  return {
    watch: (cb) => e.watch((ev) => cb(ev.kind === 'container' ? { ...ev, id: id(ev.id) } : ev)),
    observe: async () => {
      if (o.failObserve?.()) throw new Error('list refused');
      return (await e.list({ [LABEL.managed]: 'true' })).map((c) => ({ id: id(c.id), labels: c.labels, running: c.running, health: c.health, ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}) }));
    },
  };
}

const spec = (name: string, service: string, healthcheck = false): ContainerSpec => ({
  name, image: 'img', env: {}, mounts: [],
  labels: { [LABEL.managed]: 'true', [LABEL.cluster]: 'c1', [LABEL.app]: 'shop', [LABEL.env]: 'prod', [LABEL.service]: service },
  ...(healthcheck ? { healthcheck: { test: ['CMD', 'true'], intervalMs: 1000, timeoutMs: 1000, retries: 1, startPeriodMs: 0 } } : {}),
});

async function running(e: FakeEngine, name: string, service: string, healthcheck = false): Promise<string> {
  e.addImage('img');
  const id = await e.create(spec(name, service, healthcheck));
  await e.start(id);
  return id;
}

/** The id the feed knows a fake host's container by (see source). */
const fid = (e: FakeEngine, id: string): string => `${e.hostName}-${id}`;

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

test('fan-in: container events of every followed host reach the listener; the control host\'s only as observations', async () => {
  const h1 = new FakeEngine({ hostName: 'h1' });
  const h2 = new FakeEngine({ hostName: 'h2' });
  const h3 = new FakeEngine({ hostName: 'h3' });
  const a = await running(h2, 'web-1', 'web', true);
  const b = await running(h3, 'api-1', 'api');
  const local = await running(h1, 'web-0', 'web');
  const [A, B, L] = [fid(h2, a), fid(h3, b), fid(h1, local)];
  const got: Array<[string, string, string]> = [];
  const feed = new HostEvents({ logger, onEvent: (host, e) => got.push([host, e.action, e.id]) });
  feed.sync([
    { key: 'n1@local', name: 'h1', source: () => source(h1), emit: false },
    { key: 'n2@tcp://10.0.0.2:2376', name: 'h2', source: () => source(h2), emit: true },
    { key: 'n3@tcp://10.0.0.3:2376', name: 'h3', source: () => source(h3), emit: true },
  ]);
  await flush();
  // The (re)connect resync wakes each service with a container there once, and fills the observations.
  assert.deepEqual(got.sort(), [['h2', 'resync', A], ['h3', 'resync', B]]);
  assert.equal(feed.observed(A)?.running, true);
  assert.equal(feed.observed(A)?.health, 'starting');
  assert.equal(feed.observed(L)?.host, 'h1');
  got.length = 0;
  h2.setHealth(a, 'healthy');
  h3.crash(b, 137);
  h1.crash(local, 1);
  assert.deepEqual(got, [['h2', 'health_status: healthy', A], ['h3', 'die', B]]);
  assert.equal(feed.observed(A)?.health, 'healthy');
  assert.equal(feed.observed(B)?.running, false);
  assert.equal(feed.observed(L)?.running, false, 'the control host\'s death is observed, not emitted twice');
  h2.setHealth(a, 'unhealthy');
  assert.equal(feed.observed(A)?.health, 'unhealthy');
  // A destroyed container is forgotten.
  await h3.remove(b);
  assert.equal(feed.observed(B), undefined);
  assert.deepEqual(feed.health().map((x) => [x.host, x.connected, x.resyncs]), [['h1', true, 1], ['h2', true, 1], ['h3', true, 1]]);
  assert.deepEqual(got.at(-1), ['h3', 'destroy', B]);
  const n = got.length;
  feed.stop();
  h2.crash(a, 1);
  assert.equal(got.length, n, 'nothing after stop');
  assert.equal(feed.size, 0);
});

test('reconnect: a host lost drops its observations and stalls no other; back, it resyncs what was missed', async () => {
  const h2 = new FakeEngine({ hostName: 'h2' });
  const h3 = new FakeEngine({ hostName: 'h3' });
  const a = await running(h2, 'web-1', 'web');
  const b = await running(h3, 'web-2', 'web');
  const [A, B] = [fid(h2, a), fid(h3, b)];
  const got: string[] = [];
  const feed = new HostEvents({ logger, onEvent: (host, e) => got.push(`${host} ${e.action}`) });
  const hosts: FollowedHost[] = [
    { key: 'n2@x', name: 'h2', source: () => source(h2), emit: true },
    { key: 'n3@x', name: 'h3', source: () => source(h3), emit: true },
  ];
  feed.sync(hosts);
  await flush();
  got.length = 0;
  h2.outage();
  assert.equal(feed.observed(A), undefined, 'a lost host\'s word is not kept: the Swarm\'s view stands');
  assert.equal(feed.health().find((x) => x.host === 'h2')?.connected, false);
  // The other host's events still arrive.
  h3.crash(b, 137);
  assert.deepEqual(got, ['h3 die']);
  assert.equal(feed.observed(B)?.running, false);
  assert.equal(feed.observed(B)?.exitCode, undefined, 'the fake engine\'s die carries no exit code');
  // While h2 is away its container dies (the event is missed); back, the resync learns it and wakes the service.
  h2.crash(a, 2);
  got.length = 0;
  h2.recover();
  await flush();
  assert.deepEqual(got, ['h2 resync']);
  assert.equal(feed.observed(A)?.running, false);
  assert.equal(feed.observed(A)?.exitCode, 2);
  assert.deepEqual(feed.health().map((x) => [x.host, x.connected, x.resyncs]), [['h2', true, 2], ['h3', true, 1]]);
  // A host that leaves (or whose endpoint changes) is unfollowed and forgotten; a new key re-follows.
  feed.sync([hosts[1]!]);
  assert.equal(feed.observed(A), undefined);
  assert.deepEqual(feed.health().map((x) => x.host), ['h3']);
  feed.sync([{ ...hosts[1]!, key: 'n3@y' }]);
  await flush();
  assert.equal(feed.health()[0]?.resyncs, 1, 'a changed endpoint is a new follower');
  feed.stop();
});

test('a resync that fails keeps the host followed and its events observed', async () => {
  const h2 = new FakeEngine({ hostName: 'h2' });
  const a = await running(h2, 'web-1', 'web');
  const A = fid(h2, a);
  let fail = true;
  const got: string[] = [];
  const feed = new HostEvents({ logger, onEvent: (_h, e) => got.push(e.action) });
  feed.sync([{ key: 'k', name: 'h2', source: () => source(h2, { failObserve: () => fail }), emit: true }]);
  await flush();
  assert.match(feed.health()[0]?.error ?? '', /resync: list refused/);
  assert.equal(feed.observed(A), undefined);
  h2.crash(a, 1);
  assert.deepEqual(got, ['die'], 'events still followed');
  assert.equal(feed.observed(A)?.running, false);
  fail = false;
  feed.stop();
});

test('a source that cannot be made (no TLS material, bad endpoint) is reported and skipped; bounded per host', async () => {
  const h2 = new FakeEngine({ hostName: 'h2' });
  const feed = new HostEvents({ logger, onEvent: () => undefined, maxPerHost: 3 });
  feed.sync([
    { key: 'a', name: 'bad', source: () => { throw new Error('host bad has no address'); }, emit: true },
    { key: 'b', name: 'h2', source: () => source(h2), emit: true },
  ]);
  for (let i = 0; i < 6; i++) await running(h2, `web-${i}`, 'web');
  assert.equal(feed.size, 3, 'at most maxPerHost observations per host');
  assert.match(feed.health().find((x) => x.host === 'bad')?.error ?? '', /no address/);
  feed.stop();
});

test('the containers role overlays a host\'s word on the manager\'s: a death before the manager knows, and the task container\'s health', () => {
  const svc = { ID: 's'.repeat(25), Version: { Index: 1 }, Spec: { Name: 'web-1', Labels: { [LABEL.app]: 'shop' }, Mode: { Replicated: { Replicas: 1 } }, TaskTemplate: { ContainerSpec: { Image: 'img' } } } };
  const task = { ID: 't1', ServiceID: svc.ID, NodeID: 'n2', CreatedAt: '2026-12-01T00:00:00Z', Status: { State: 'running', Timestamp: '2026-12-01T00:00:01Z', ContainerStatus: { ContainerID: 'c'.repeat(64) } } };
  const nodes = new Map([['n2', { ID: 'n2', Version: { Index: 1 }, Spec: {}, Description: { Hostname: 'h2' }, Status: { State: 'ready', Addr: '10.0.0.2' } }]]);
  const obs = (o: Partial<{ running: boolean; health: 'healthy' | 'unhealthy' | 'none'; exitCode: number }>) => (id: string) =>
    (id === task.Status.ContainerStatus.ContainerID ? { id, host: 'h2', labels: {}, running: true, health: 'none' as const, at: Date.parse('2026-12-01T00:00:05Z'), ...o } : undefined);
  assert.equal(toInfo(svc, [task], nodes).health, 'none', 'the manager says no health');
  assert.deepEqual([toInfo(svc, [task], nodes, obs({ health: 'healthy' }))].map((i) => [i.state, i.running, i.health]), [['running', true, 'healthy']]);
  assert.deepEqual([toInfo(svc, [task], nodes, obs({ health: 'unhealthy' }))].map((i) => [i.state, i.running, i.health]), [['running', true, 'unhealthy']]);
  const dead = toInfo(svc, [task], nodes, obs({ running: false, exitCode: 137 }));
  assert.deepEqual([dead.state, dead.running, dead.exitCode, dead.finishedAt, dead.host], ['exited', false, 137, '2026-12-01T00:00:05.000Z', 'h2']);
  // The manager's terminal state stands whatever the host said.
  const failed = { ...task, Status: { ...task.Status, State: 'failed', ContainerStatus: { ...task.Status.ContainerStatus, ExitCode: 1 } } };
  assert.deepEqual([toInfo(svc, [failed], nodes, obs({ running: true })).state], ['dead']);
});

test('a host engine\'s task containers from one list call: filtered by the cluster label, state and health from Status', async () => {
  let filters: unknown;
  const docker = {
    listContainers: async (o: { filters: unknown }) => {
      filters = o.filters;
      return [
        { Id: 'a', State: 'running', Status: 'Up 3 seconds (healthy)', Labels: { [LABEL.cluster]: 'c1' } },
        { Id: 'b', State: 'running', Status: 'Up 1 second (health: starting)', Labels: {} },
        { Id: 'c', State: 'exited', Status: 'Exited (137) 2 seconds ago', Labels: {} },
        { Id: 'd', State: 'running', Status: 'Up 2 minutes', Labels: {} },
      ];
    },
  };
  const e = new DockerEngine({ docker: docker as never, logger });
  assert.deepEqual(await e.taskContainers(), [
    { id: 'a', labels: { [LABEL.cluster]: 'c1' }, running: true, health: 'healthy' },
    { id: 'b', labels: {}, running: true, health: 'starting' },
    { id: 'c', labels: {}, running: false, exitCode: 137, health: 'none' },
    { id: 'd', labels: {}, running: true, health: 'none' },
  ]);
  // Swarm task containers carry the installation's label, not io.berth.managed.
  assert.deepEqual(filters, { label: [LABEL.cluster, 'com.docker.swarm.service.id'] });
});
