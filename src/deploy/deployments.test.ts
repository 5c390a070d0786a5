import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppSpec, ServiceSpec } from '../core/spec/types.ts';
import { Conflict, InvalidInput } from '../core/errors.ts';
import { SqliteStore } from '../store/index.ts';
import { DeploymentService } from './deployments.ts';

const T0 = 1_700_000_000_000;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function svc(name: string, o: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name, image: `shop/${name}:1`, environment: {}, ports: [], health: { type: 'none' }, replicas: 1, limits: {},
    restart: { condition: 'any', delayMs: 1000 }, labels: {}, stopSignal: 'SIGTERM', stopGracePeriodMs: 10_000, volumes: [],
    dependsOn: [], routes: [], ...o,
  };
}
const spec = (name: string, ...services: ServiceSpec[]): AppSpec => ({ name, services: Object.fromEntries(services.map((s) => [s.name, s])) });

function harness() {
  const dir = mkdtempSync(join(tmpdir(), 'berth-deploysvc-'));
  dirs.push(dir);
  const clock = { now: () => T0 };
  const store = new SqliteStore(join(dir, 'berth.db'), clock);
  const enqueued: string[] = [];
  let ids = 0;
  // No timer ever wakes a follower in these tests: only changed() does.
  const service = new DeploymentService({
    store, clock, newId: () => `dep${++ids}`, enqueue: (id) => void enqueued.push(id), followRecheckMs: 2 ** 31 - 1,
    hostPaths: {
      bindSource: async (p) => (p.startsWith('/forbidden') ? { refused: 'not under an allowed root' } : { path: p }),
      buildContext: async (p) => (p.startsWith('/berth-commit') ? { refused: 'not under an allowed root' } : { path: p }),
    },
  });
  return { store, service, enqueued };
}

test('create records the deployment, its event and its source, and hands it to the controller', async () => {
  const { store, service, enqueued } = harness();
  const source = { file: 'compose.yaml', text: 'services: {}', baseDir: '/x', files: {}, variables: {} };
  const dep = await service.create({ app: 'shop', env: 'prod', spec: spec('shop', svc('web')), warnings: [], source });
  assert.deepEqual(enqueued, [dep.id]);
  const stored = store.getDeployment(dep.id)!;
  assert.equal(stored.status, 'pending');
  const sourceId = stored.spec.services.web!.source!;
  assert.match(sourceId, /^[0-9a-f]{32}$/);
  assert.equal(store.getSource(sourceId)?.text, 'services: {}');
  assert.ok(store.listEvents({ app: 'shop', limit: 10 }).some((e) => e.kind === 'deployment.created' && e.message.includes(dep.id)));
});

test('validate (a dry run) writes nothing; refusals keep their kind', async () => {
  const { store, service, enqueued } = harness();
  await service.validate({ app: 'shop', env: 'prod', spec: spec('shop', svc('web')), warnings: [] });
  assert.deepEqual(store.listDeployments({}), []);
  assert.deepEqual(enqueued, []);
  await assert.rejects(service.validate({ app: 'shop', env: 'prod', spec: spec('other', svc('web')), warnings: [] }), InvalidInput);
  await assert.rejects(service.create({ app: 'shop', env: 'prod', warnings: [],
    spec: spec('shop', svc('web', { volumes: [{ type: 'bind', source: '/forbidden/x', target: '/data', readOnly: false }] })) }),
  (err: Error) => err instanceof InvalidInput && /spec\.services\.web\.volumes\[0\]: not under an allowed root/.test(err.message));
  await assert.rejects(service.create({ app: 'shop', env: 'prod', warnings: [], spec: spec('shop', svc('web', { source: 'f'.repeat(32) })) }),
    (err: Error) => err instanceof InvalidInput && /no stored source/.test(err.message));
  assert.deepEqual(store.listDeployments({}), [], 'nothing half-written');
});

test('a route another app serves is a Conflict, also for an in-process caller', async () => {
  const { service, store } = harness();
  const first = await service.create({ app: 'shop', env: 'prod', warnings: [], spec: spec('shop', svc('web', { routes: [{ host: 'shop.local', path: '/' }] })) });
  // The controller's work, by hand: shop/prod/web runs a release with that route.
  const rel = { id: 'r1', app: 'shop', env: 'prod', service: 'web', seq: 1, spec: first.spec.services.web!, specHash: 'h', image: 'shop/web:1', imageId: 'sha256:1',
    status: 'healthy' as const, message: '', createdAt: T0, createdBy: 'admin' };
  store.putService({ app: 'shop', env: 'prod', name: 'web', replicas: 1, releaseId: 'r1', failures: 0, nextStartAt: 0, updatedAt: T0 }, rel);
  await assert.rejects(service.validate({ app: 'other', env: 'prod', warnings: [], spec: spec('other', svc('api', { routes: [{ host: 'shop.local', path: '/' }] })) }),
    (err: Error) => err instanceof Conflict && /already served by shop\/prod\/web/.test(err.message));
});

test('follow wakes on changed(), sees each status, and resolves with the outcome', async () => {
  const { store, service } = harness();
  const dep = await service.create({ app: 'shop', env: 'prod', spec: spec('shop', svc('web')), warnings: [] });
  const seen: string[] = [];
  const done = service.follow(dep.id, { onStatus: (s) => seen.push(s) });
  store.updateDeployment(dep.id, { status: 'rolling' });
  service.changed(dep.id);
  store.updateDeployment(dep.id, { status: 'succeeded', message: 'all healthy' });
  service.changed(dep.id);
  assert.deepEqual(await done, { status: 'succeeded', message: 'all healthy' });
  assert.equal(seen[0], 'pending');
  assert.equal(seen.at(-1), 'succeeded');
  assert.deepEqual(await service.follow('nope'), { status: 'failed', message: 'deployment nope vanished' });
});

test('a deployment with build sections names its build: its own id for host contexts, the caller\'s (a push) whose contexts are not host paths', async () => {
  const { store, service } = harness();
  const build = (context: string) => ({ context, dockerfile: 'Dockerfile', args: {} });
  const own = await service.create({ app: 'shop', env: 'prod', spec: spec('shop', svc('web', { build: build('/src/web') }), svc('db')), warnings: [] });
  assert.equal(store.getDeployment(own.id)!.buildId, own.id, 'the deployment\'s own build shares its id');
  const plain = await service.create({ app: 'shop', env: 'prod', spec: spec('shop', svc('db')), warnings: [] });
  assert.equal(store.getDeployment(plain.id)!.buildId, undefined, 'nothing to build, no build');
  // A commit's directory is no host path: without the push build that made the images it is refused...
  await assert.rejects(service.validate({ app: 'shop', env: 'prod', spec: spec('shop', svc('web', { build: build('/berth-commit/b1') })), warnings: [] }),
    (err: Error) => err instanceof InvalidInput && /^spec\.services\.web\.build\.context: not under an allowed root/.test(err.message));
  // ...with it, the build's images are deployed and the context is not looked at.
  const pushed = await service.create({ app: 'shop', env: 'prod', spec: spec('shop', svc('web', { build: build('/berth-commit/b1') })), warnings: [], buildId: 'b1' });
  const rec = store.getDeployment(pushed.id)!;
  assert.equal(rec.buildId, 'b1');
  assert.equal(rec.spec.services.web!.build!.context, '/berth-commit/b1', 'the spec keeps its build section');
});

test('cluster mode: a deploy that does not fit its pool is refused before anything is written; one that fits is recorded', async () => {
  const { FakeEngine } = await import('../engine/fake/index.ts');
  const engine = new FakeEngine({ hosts: [{ name: 'h1', pool: 'a', cpus: 2, memoryBytes: 4 * 1024 ** 3 }, { name: 'h2', pool: 'a', cpus: 2, memoryBytes: 4 * 1024 ** 3 }] });
  const dir = mkdtempSync(join(tmpdir(), 'berth-deploysvc-'));
  dirs.push(dir);
  const clock = { now: () => T0 };
  const store = new SqliteStore(join(dir, 'berth.db'), clock);
  const enqueued: string[] = [];
  const service = new DeploymentService({
    store, clock, newId: () => 'dep1', enqueue: (id) => void enqueued.push(id),
    hostPaths: { bindSource: async (p) => ({ path: p }), buildContext: async (p) => ({ path: p }) },
    placement: { mode: () => engine.clusterMode(), hosts: () => engine.hosts() },
  });
  const big = spec('shop', svc('web', { pool: 'a', replicas: 5, reservations: { nanoCpus: 1e9, memoryBytes: 1024 ** 3 } }));
  for (const attempt of [() => service.create({ app: 'shop', env: 'prod', spec: big, warnings: [] }), () => service.validate({ app: 'shop', env: 'prod', spec: big, warnings: [] })]) {
    await assert.rejects(attempt(), (e: unknown) => e instanceof Conflict
      && e.message === 'shop in prod does not fit: pool a: asks 5 CPUs / 5 GiB, free 4 CPUs / 8 GiB on 2 hosts; web (1 CPU / 1 GiB each) does not fit; nothing was deployed'
      && (e.details as { pool: string }).pool === 'a');
  }
  assert.deepEqual(enqueued, []);
  assert.equal(store.listDeployments({}).length, 0);
  assert.equal(store.listEvents({ app: 'shop' }).length, 0);
  const dep = await service.create({ app: 'shop', env: 'prod', spec: spec('shop', svc('web', { pool: 'a', replicas: 4, reservations: { nanoCpus: 1e9, memoryBytes: 1024 ** 3 } })), warnings: [] });
  assert.deepEqual(enqueued, [dep.id]);
});
