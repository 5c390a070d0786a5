import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppSpec, ServiceSpec } from '../core/spec/types.ts';
import type { DeploymentRecord } from '../core/store.ts';
import type { BuildState, DeploymentBuildsPort } from '../core/deployments.ts';
import { FakeEngine } from '../engine/fake/index.ts';
import { SqliteStore } from '../store/index.ts';
import { silentLogger } from '../lib/logger.ts';
import { DeploymentController, releaseHash } from './deployment-controller.ts';
import { containerSpecFor } from './container-spec.ts';
import { LABEL } from '../core/ports.ts';

const T0 = 1_700_000_000_000;

function svc(name: string, o: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name, image: `shop/${name}:1`, environment: { MODE: 'prod' }, ports: [], health: { type: 'none' }, replicas: 2, limits: {},
    restart: { condition: 'any', delayMs: 1000 }, labels: {}, stopSignal: 'SIGTERM', stopGracePeriodMs: 10_000, volumes: [],
    dependsOn: [], routes: name === 'web' ? [{ path: '/' }] : [], ...o,
  };
}
const app = (...services: ServiceSpec[]): AppSpec => ({ name: 'shop', services: Object.fromEntries(services.map((s) => [s.name, s])) });

function harness() {
  const dir = mkdtempSync(join(tmpdir(), 'berth-deployments-'));
  const clock = { t: T0, now() { return this.t; } };
  const store = new SqliteStore(join(dir, 'berth.db'), clock);
  const engine = new FakeEngine({ clock, images: ['shop/web:1', 'shop/worker:1'] });
  const enqueued: string[] = [];
  let applyRoutes = 0;
  let ids = 0;
  // The build controller as the deployment controller sees it: records by id; tests move them along.
  const buildRecords = new Map<string, BuildState>();
  const submitted: string[] = [];
  const builds: DeploymentBuildsPort = {
    get: (id) => (buildRecords.has(id) ? structuredClone(buildRecords.get(id)!) : undefined),
    submitForDeployment: async (dep) => {
      if (!buildRecords.has(dep.id)) {
        submitted.push(dep.id);
        buildRecords.set(dep.id, { id: dep.id, status: 'queued', message: '', images: {} });
      }
      return structuredClone(buildRecords.get(dep.id)!);
    },
  };
  const controller = new DeploymentController({
    store, engine, clock, logger: silentLogger, newId: () => `id${++ids}`, builds,
    enqueueService: (a, e, s) => void enqueued.push(`${a}/${e}/${s}`),
    applyRoutes: () => void applyRoutes++,
  });
  let deps = 0;
  const h = {
    store, engine, clock, controller, enqueued, buildRecords, submitted, dir,
    get applyRoutes() { return applyRoutes; },
    /** Records a deployment as the API does and runs the controller on it once. */
    async deploy(spec: AppSpec, env = 'prod') {
      const d: DeploymentRecord = {
        id: `d${++deps}`, app: spec.name, env, spec, warnings: [], status: 'pending', message: '', createdAt: clock.now(),
        createdBy: 'admin', releases: {}, ...(Object.values(spec.services).some((x) => x.build) ? { buildId: `d${deps}` } : {}),
      };
      store.createDeployment(d);
      clock.t += 1000;
      const result = await controller.reconcile(d.id);
      return { id: d.id, result, dep: store.getDeployment(d.id)! };
    },
    /** Desired state of the app, for before/after comparisons. */
    snapshot: () => ({
      services: store.listServices({ app: 'shop' }),
      releases: store.listReleases({ app: 'shop' }),
    }),
    /** `n` running, healthy instances of the service's current release (what its reconciler would make). */
    healthyInstances(service: string, n: number, health: 'healthy' | 'starting' = 'healthy') {
      const k = { app: 'shop', env: 'prod', service };
      const rel = store.getService(k)!.releaseId;
      for (let i = 0; i < n; i++) {
        store.createInstance({ id: `${service}-${++ids}`, ...k, releaseId: rel, host: 'h', address: '127.0.0.1', state: 'running', health, createdAt: clock.now() },
          { min: 20000, max: 20999, isFree: () => true });
      }
    },
    releaseOf: (service: string, env = 'prod') => {
      const s = store.getService({ app: 'shop', env, service });
      return s && store.getRelease(s.releaseId);
    },
    close() {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}
type H = ReturnType<typeof harness>;
const open: H[] = [];
function setup(): H {
  const h = harness();
  open.push(h);
  return h;
}
afterEach(() => {
  for (const h of open.splice(0)) h.close();
});

test('a first deployment creates a release and a service per service, wakes their reconcilers and follows them', async () => {
  const h = setup();
  const { result, dep } = await h.deploy(app(svc('web', { replicas: 3 }), svc('worker', { replicas: 1 })));
  assert.equal(dep.status, 'rolling');
  assert.deepEqual(Object.keys(dep.releases).sort(), ['web', 'worker']);
  for (const [name, replicas] of [['web', 3], ['worker', 1]] as const) {
    const s = h.store.getService({ app: 'shop', env: 'prod', service: name })!;
    assert.equal(s.replicas, replicas);
    assert.equal(s.releaseId, dep.releases[name]);
    const rel = h.store.getRelease(s.releaseId)!;
    assert.equal(rel.status, 'progressing');
    assert.equal(rel.seq, 1);
    assert.equal(rel.image, `shop/${name}:1`);
    assert.equal(rel.imageId, await h.engine.imageId(`shop/${name}:1`), 'a release names the image id, not the tag');
    assert.equal(rel.createdBy, 'admin');
  }
  assert.deepEqual(h.enqueued.sort(), ['shop/prod/web', 'shop/prod/worker']);
  assert.equal(h.applyRoutes, 1, 'routes go to the ingress while containers start');
  assert.deepEqual(result, { requeueAfterMs: 2000 }, 'a safety-net requeue while releases progress');
  const kinds = h.store.listEvents({ app: 'shop' }).map((e) => e.kind);
  assert.deepEqual(kinds.filter((k) => k === 'release.created').length, 2);
});

test('an identical second deployment creates no new release; a rebuilt image (new id) does', async () => {
  const h = setup();
  const spec = app(svc('web'), svc('worker'));
  const first = await h.deploy(spec);
  const before = h.snapshot();
  const second = await h.deploy(structuredClone(spec));
  assert.deepEqual(second.dep.releases, first.dep.releases, 'the second deployment follows the same releases');
  assert.deepEqual(h.snapshot().releases, before.releases, 'no release added or changed');
  assert.deepEqual(h.snapshot().services.map((s) => s.releaseId), before.services.map((s) => s.releaseId));

  h.engine.addImage('shop/web:1'); // same tag, new image id: a rebuild that changed something
  const third = await h.deploy(structuredClone(spec));
  assert.notEqual(third.dep.releases.web, first.dep.releases.web);
  assert.equal(third.dep.releases.worker, first.dep.releases.worker);
  assert.equal(h.releaseOf('web')?.seq, 2);
  assert.equal(h.releaseOf('web')?.imageId, await h.engine.imageId('shop/web:1'));
});

test('a changed environment variable makes a new release of that service only; the unfinished one is superseded', async () => {
  const h = setup();
  const first = await h.deploy(app(svc('web'), svc('worker')));
  const second = await h.deploy(app(svc('web', { environment: { MODE: 'prod', FEATURE_X: 'on' } }), svc('worker')));
  assert.notEqual(second.dep.releases.web, first.dep.releases.web);
  assert.equal(second.dep.releases.worker, first.dep.releases.worker);
  const rel = h.releaseOf('web')!;
  assert.equal(rel.seq, 2);
  assert.equal(rel.spec.environment.FEATURE_X, 'on');
  assert.equal(h.store.getRelease(first.dep.releases.web!)?.status, 'superseded');
  assert.equal(h.store.listReleases({ app: 'shop', service: 'worker' }).length, 1);
});

test('a replicas-only change updates the service without a new release', async () => {
  const h = setup();
  const first = await h.deploy(app(svc('web', { replicas: 2 })));
  h.enqueued.length = 0;
  const second = await h.deploy(app(svc('web', { replicas: 5 })));
  assert.equal(second.dep.releases.web, first.dep.releases.web);
  assert.equal(h.store.getService({ app: 'shop', env: 'prod', service: 'web' })?.replicas, 5);
  assert.equal(h.store.listReleases({ app: 'shop' }).length, 1);
  assert.deepEqual(h.enqueued, ['shop/prod/web'], 'its reconciler is woken to scale');
});

test('a service missing from the new spec is deleted (and its reconciler woken to stop it); other envs keep theirs', async () => {
  const h = setup();
  await h.deploy(app(svc('web'), svc('worker')));
  await h.deploy(app(svc('web'), svc('worker')), 'staging');
  h.enqueued.length = 0;
  const { dep } = await h.deploy(app(svc('web')));
  assert.equal(dep.status, 'rolling');
  assert.equal(h.store.getService({ app: 'shop', env: 'prod', service: 'worker' }), undefined);
  assert.ok(h.store.getService({ app: 'shop', env: 'staging', service: 'worker' }), 'staging is another environment');
  assert.ok(h.enqueued.includes('shop/prod/worker'));
  assert.deepEqual(Object.keys(dep.releases), ['web']);
  assert.ok(h.store.listEvents({ app: 'shop' }).some((e) => e.kind === 'service.removed' && e.service === 'worker' && e.env === 'prod'));
});

test('a missing image that cannot be pulled fails the deployment with a clear message and changes no service', async () => {
  const h = setup();
  await h.deploy(app(svc('web'), svc('worker'), svc('cron', { image: 'shop/worker:1' })));
  const before = h.snapshot();
  h.enqueued.length = 0;
  // web changes and cron goes away, but worker's image is not there: none of it may happen.
  const { dep, result } = await h.deploy(app(svc('web', { environment: { MODE: 'debug' } }), svc('worker', { image: 'shop/worker:9' })));
  assert.equal(dep.status, 'failed');
  assert.match(dep.message, /^pull of shop\/worker:9 \(service worker\) from registry docker\.io failed: not found: /);
  assert.ok(h.engine.calls.includes('pull shop/worker:9'), 'a missing image is pulled (pull_policy missing)');
  assert.equal(result, undefined, 'nothing to retry');
  assert.deepEqual(h.snapshot(), before, 'no service or release changed');
  assert.deepEqual(h.enqueued, []);
  assert.deepEqual(dep.releases, {});
  assert.ok(h.store.listEvents({ app: 'shop' }).some((e) => e.kind === 'deployment.failed' && /shop\/worker:9/.test(e.message)));
});

test('a failing build fails the deployment with the build\'s reason and changes nothing', async () => {
  const h = setup();
  const build = { context: '/src/shop/web', dockerfile: 'Dockerfile', args: {} };
  await h.deploy(app(svc('web'), svc('worker')));
  const before = h.snapshot();
  h.enqueued.length = 0;
  const { id, dep, result } = await h.deploy(app(svc('worker', { environment: { MODE: 'debug' } }), svc('web', { image: 'shop/web:2', build })));
  assert.deepEqual(h.submitted, [id], 'the deployment submitted its build, under its own id');
  assert.equal(dep.status, 'building');
  assert.ok(result && result.requeueAfterMs! > 0, 'a safety-net requeue while the build runs');
  assert.ok(h.store.listEvents({ app: 'shop' }).some((e) => e.kind === 'build.queued' && e.message.includes(`berth build logs ${id}`)));
  h.buildRecords.set(id, { id, status: 'failed', stage: 'build', message: 'build of web failed: COPY failed: file not found in build context: package.json', images: {} });
  await h.controller.reconcile(id);
  const failed = h.store.getDeployment(id)!;
  assert.equal(failed.status, 'failed');
  assert.match(failed.message, new RegExp(`^build ${id} failed: build of web failed: COPY failed: file not found in build context: package\\.json`));
  assert.deepEqual(h.snapshot(), before);
  assert.deepEqual(h.enqueued, []);
  assert.equal(h.engine.calls.some((c) => c.startsWith('build')), false, 'the deployment controller never builds');
});

test('a cancelled build fails its deployment as cancelled; nothing changes', async () => {
  const h = setup();
  await h.deploy(app(svc('web')));
  const before = h.snapshot();
  const { id } = await h.deploy(app(svc('web', { image: 'shop/web:2', build: { context: '/src/web', dockerfile: 'Dockerfile', args: {} } })));
  h.buildRecords.set(id, { id, status: 'cancelled', stage: 'build', message: 'cancelled by admin during the build stage: nothing was deployed', images: {} });
  await h.controller.reconcile(id);
  const dep = h.store.getDeployment(id)!;
  assert.equal(dep.status, 'failed');
  assert.equal(dep.message, `build ${id} cancelled by admin during the build stage: nothing was deployed`);
  assert.deepEqual(h.snapshot(), before);
});

test('a service with a build section runs the image its build made; the release holds that image, not the recipe', async () => {
  const h = setup();
  const build = { context: '/src/shop/web', dockerfile: 'Dockerfile', args: { NODE_ENV: 'production' } };
  const { id } = await h.deploy(app(svc('web', { image: 'shop/web:2', build }), svc('worker')));
  assert.equal(h.store.getDeployment(id)!.status, 'building');
  // Rounds while the build runs change nothing and submit nothing again.
  h.buildRecords.set(id, { id, status: 'running', stage: 'checks', message: '', images: { web: 'shop/web:2' } });
  await h.controller.reconcile(id);
  assert.equal(h.store.getDeployment(id)!.status, 'building');
  assert.deepEqual(h.submitted, [id]);
  h.engine.addImage('reg/shop/web@sha256:1');
  h.buildRecords.set(id, { id, status: 'succeeded', stage: 'push', message: '', images: { web: 'reg/shop/web@sha256:1' } });
  await h.controller.reconcile(id);
  assert.equal(h.store.getDeployment(id)!.status, 'rolling');
  const rel = h.releaseOf('web')!;
  assert.equal(rel.image, 'reg/shop/web@sha256:1');
  assert.equal(rel.imageId, await h.engine.imageId('reg/shop/web@sha256:1'));
  assert.equal(rel.spec.image, 'reg/shop/web@sha256:1');
  assert.equal(rel.spec.build, undefined, 'a config rollout or rollback runs the image again, it does not rebuild');
  assert.equal(h.releaseOf('worker')!.image, 'shop/worker:1');
  // The same file deployed again with a build that made the same image: no new release.
  const again = await h.deploy(app(svc('web', { image: 'shop/web:2', build }), svc('worker')));
  h.buildRecords.set(again.id, { id: again.id, status: 'succeeded', stage: 'push', message: '', images: { web: 'reg/shop/web@sha256:1' } });
  await h.controller.reconcile(again.id);
  assert.equal(h.releaseOf('web')!.id, rel.id);
});

test('a push build\'s deployment runs its images once the build is deploying, and still after a restart failed the push', async () => {
  const h = setup();
  const build = { context: '/berth-commit/b9', dockerfile: 'Dockerfile', args: {} };
  h.engine.addImage('reg/shop/web@sha256:9');
  h.buildRecords.set('b9', { id: 'b9', status: 'failed', stage: 'deploy', message: 'interrupted', images: { web: 'reg/shop/web@sha256:9' } });
  const d: DeploymentRecord = { id: 'dp', app: 'shop', env: 'prod', spec: app(svc('web', { build })), warnings: [], status: 'pending', message: '',
    createdAt: h.clock.now(), createdBy: 'admin', releases: {}, buildId: 'b9' };
  h.store.createDeployment(d);
  await h.controller.reconcile('dp');
  assert.equal(h.store.getDeployment('dp')!.status, 'rolling');
  assert.equal(h.releaseOf('web')!.image, 'reg/shop/web@sha256:9');
  assert.deepEqual(h.submitted, [], 'a push build is never submitted again');
  // A build that vanished (its record purged) fails the deployment instead of waiting forever.
  h.store.createDeployment({ ...d, id: 'dq', buildId: 'gone' });
  await h.controller.reconcile('dq');
  assert.match(h.store.getDeployment('dq')!.message, /^build gone that made this deployment's images no longer exists/);
});

test('follow(): rolling until every release is healthy, then succeeded', async () => {
  const h = setup();
  const { id, dep } = await h.deploy(app(svc('web'), svc('worker')));
  h.healthyInstances('web', 2);
  h.healthyInstances('worker', 2);
  h.store.updateRelease(dep.releases.web!, { status: 'healthy' });
  assert.deepEqual(await h.controller.reconcile(id), { requeueAfterMs: 2000 });
  assert.equal(h.store.getDeployment(id)?.status, 'rolling', 'worker still progresses');
  h.store.updateRelease(dep.releases.worker!, { status: 'healthy' });
  assert.equal(await h.controller.reconcile(id), undefined);
  const done = h.store.getDeployment(id)!;
  assert.equal(done.status, 'succeeded');
  assert.equal(done.message, 'all services healthy');
  // Finished deployments are left alone, whatever happens to their releases later.
  h.store.updateRelease(dep.releases.worker!, { status: 'failed' });
  assert.equal(await h.controller.reconcile(id), undefined);
  assert.equal(h.store.getDeployment(id)?.status, 'succeeded');
});

test('follow(): a deploy that only raises replicas succeeds once that many instances are healthy, not at once', async () => {
  const h = setup();
  const first = await h.deploy(app(svc('web', { replicas: 1 })));
  h.healthyInstances('web', 1);
  h.store.updateRelease(first.dep.releases.web!, { status: 'healthy' });
  await h.controller.reconcile(first.id);
  assert.equal(h.store.getDeployment(first.id)?.status, 'succeeded');
  const second = await h.deploy(app(svc('web', { replicas: 3 })));
  assert.equal(second.dep.releases.web, first.dep.releases.web, 'the same healthy release');
  assert.deepEqual(second.result, { requeueAfterMs: 250 });
  assert.equal(h.store.getDeployment(second.id)?.status, 'rolling', '1/3 healthy is not deployed');
  h.healthyInstances('web', 2, 'starting');
  assert.deepEqual(await h.controller.reconcile(second.id), { requeueAfterMs: 250 });
  for (const i of h.store.listInstances({ service: 'web' })) h.store.updateInstance(i.id, { health: 'healthy' });
  assert.equal(await h.controller.reconcile(second.id), undefined);
  assert.equal(h.store.getDeployment(second.id)?.status, 'succeeded');
});

test('follow(): replicas that do not get healthy fail the deployment at the deadline, saying what the check found', async () => {
  const h = setup();
  const update = { strategy: 'rolling' as const, maxSurge: 1, maxUnavailable: 0, keepPreviousMs: 0, signal: 'SIGHUP', onFailure: 'rollback' as const, deadlineMs: 10_000 };
  const first = await h.deploy(app(svc('web', { replicas: 1, update })));
  h.healthyInstances('web', 1);
  h.store.updateRelease(first.dep.releases.web!, { status: 'healthy' });
  await h.controller.reconcile(first.id);
  const second = await h.deploy(app(svc('web', { replicas: 2, update })));
  h.healthyInstances('web', 1, 'starting');
  const starting = h.store.listInstances({ service: 'web' }).find((i) => i.health === 'starting')!;
  h.store.updateInstance(starting.id, { check: { ok: false, text: 'GET /healthz → 404', since: h.clock.now() } });
  assert.deepEqual(await h.controller.reconcile(second.id), { requeueAfterMs: 250 });
  h.clock.t += 10_000;
  assert.equal(await h.controller.reconcile(second.id), undefined);
  const d = h.store.getDeployment(second.id)!;
  assert.equal(d.status, 'failed');
  assert.match(d.message, /^web not healthy within 10s: 1\/2 healthy; last check GET \/healthz → 404 \(/);
});

test('follow(): failed as soon as one release failed, naming it and why', async () => {
  const h = setup();
  const { id, dep } = await h.deploy(app(svc('web'), svc('worker')));
  h.store.updateRelease(dep.releases.web!, { status: 'healthy' });
  h.store.updateRelease(dep.releases.worker!, { status: 'failed', message: 'its instances crashed 3 times in a row (crash loop)' });
  assert.equal(await h.controller.reconcile(id), undefined);
  const d = h.store.getDeployment(id)!;
  assert.equal(d.status, 'failed');
  assert.equal(d.message, 'release 1 of worker failed: its instances crashed 3 times in a row (crash loop)');
});

test('follow(): a deployment whose release was superseded by a newer one fails', async () => {
  const h = setup();
  const first = await h.deploy(app(svc('web')));
  await h.deploy(app(svc('web', { environment: { MODE: 'debug' } })));
  await h.controller.reconcile(first.id);
  const d = h.store.getDeployment(first.id)!;
  assert.equal(d.status, 'failed');
  assert.match(d.message, /release 1 of web superseded/);
});

test('follow(): a release that no longer exists fails the deployment instead of throwing', async () => {
  const h = setup();
  h.store.createDeployment({
    id: 'dx', app: 'shop', env: 'prod', spec: app(svc('web')), warnings: [], status: 'rolling', message: '', createdAt: T0,
    createdBy: 'admin', releases: { web: 'gone' },
  });
  assert.equal(await h.controller.reconcile('dx'), undefined);
  const d = h.store.getDeployment('dx')!;
  assert.equal(d.status, 'failed');
  assert.equal(d.message, 'a release vanished');
});

test('a deployment interrupted while building is applied again without duplicating releases', async () => {
  const h = setup();
  const { id, dep } = await h.deploy(app(svc('web'), svc('worker')));
  const before = h.snapshot();
  // The server died after the releases were written but before the deployment said so.
  h.store.updateDeployment(id, { status: 'building', releases: {} });
  await h.controller.reconcile(id);
  const again = h.store.getDeployment(id)!;
  assert.equal(again.status, 'rolling');
  assert.deepEqual(again.releases, dep.releases);
  assert.deepEqual(h.snapshot().releases, before.releases);
});

test('a restarted release (next restart generation) is the same release to a later deploy of the unchanged file; its containers differ', async () => {
  const h = setup();
  await h.deploy(app(svc('web')));
  const r1 = h.releaseOf('web')!;
  // What POST /v1/apps/:app/restart writes: the same spec and image with the next generation.
  const restarted = { ...r1, id: 'restart1', seq: 2, spec: { ...r1.spec, restartGeneration: 1 }, status: 'healthy' as const };
  h.store.putService({ ...h.store.getService({ app: 'shop', env: 'prod', service: 'web' })!, releaseId: restarted.id }, restarted);
  assert.equal(releaseHash(restarted.spec, restarted.imageId), r1.specHash);
  await h.deploy(app(svc('web')));
  assert.equal(h.releaseOf('web')!.id, 'restart1', 'no new release: the restart generation is not part of the hash');
  const inst = { id: 'i1', app: 'shop', env: 'prod', service: 'web', releaseId: 'x', host: 'h', address: '127.0.0.1', port: 1, state: 'running' as const,
    health: 'healthy' as const, createdAt: 0 };
  assert.equal(containerSpecFor(r1, inst).labels[LABEL.restart], undefined);
  assert.equal(containerSpecFor(restarted, inst).labels[LABEL.restart], '1');
});

test('a long build does not eat the rollout deadline: it counts from when the deployment made the release', async () => {
  const h = setup();
  const { id } = await h.deploy(app(svc('web', { image: 'shop/web:2', build: { context: '/src/web', dockerfile: 'Dockerfile', args: {} }, update: {
    strategy: 'rolling', maxSurge: 1, maxUnavailable: 0, keepPreviousMs: 0, signal: 'SIGHUP', onFailure: 'rollback', deadlineMs: 60_000 } })));
  h.clock.t += 10 * 60_000; // ten minutes of building
  h.engine.addImage('shop/web:2');
  h.buildRecords.set(id, { id, status: 'succeeded', stage: 'checks', message: '', images: { web: 'shop/web:2' } });
  await h.controller.reconcile(id);
  // Healthy once, with its replicas still to come (as after a scale-up).
  h.store.updateRelease(h.store.getDeployment(id)!.releases.web!, { status: 'healthy' });
  assert.deepEqual(await h.controller.reconcile(id), { requeueAfterMs: 250 });
  assert.equal(h.store.getDeployment(id)!.status, 'rolling', 'not failed at once for the build\'s ten minutes');
  h.clock.t += 61_000;
  await h.controller.reconcile(id);
  const dep = h.store.getDeployment(id)!;
  assert.equal(dep.status, 'failed');
  assert.match(dep.message, /^web not healthy within 60s/);
});

test('pull_policy: missing pulls only what is not here, always pulls a moved tag again (never a digest that is here), never refuses; each pull once per reference', async () => {
  const h = setup();
  const pulls = () => h.engine.calls.filter((c) => c.startsWith('pull '));
  h.engine.addRemoteImage('reg.example.com/shop/db:16');
  const db = (o: Partial<ServiceSpec> = {}) => svc('db', { image: 'reg.example.com/shop/db:16', ...o });
  const first = await h.deploy(app(svc('web'), db(), svc('replica', { image: 'reg.example.com/shop/db:16' })));
  assert.equal(first.dep.status, 'rolling', first.dep.message);
  assert.deepEqual(pulls(), ['pull reg.example.com/shop/db:16'], 'shop/web:1 is here; db is pulled once for two services');
  const events = h.store.listEvents({ app: 'shop' }).map((e) => `${e.kind} ${e.message}`);
  assert.ok(events.includes('image.pulling pulling reg.example.com/shop/db:16 from reg.example.com'), events.join('\n'));
  assert.ok(events.some((e) => /^image\.pulled pulled reg\.example\.com\/shop\/db:16 \(1\/1 layers/.test(e)), events.join('\n'));
  const rel1 = h.releaseOf('db')!;
  // missing (the default): here now, not pulled again even though the registry's tag moved.
  h.engine.addRemoteImage('reg.example.com/shop/db:16');
  await h.deploy(app(svc('web'), db(), svc('replica', { image: 'reg.example.com/shop/db:16' })));
  assert.equal(pulls().length, 1);
  assert.equal(h.releaseOf('db')!.id, rel1.id);
  // always: pulled again; the moved tag is a new image, so a new release.
  await h.deploy(app(svc('web'), db({ pullPolicy: 'always' } as Partial<ServiceSpec>)));
  assert.equal(pulls().length, 2);
  assert.notEqual(h.releaseOf('db')!.imageId, rel1.imageId);
  // never: a missing image is refused without a pull.
  const never = await h.deploy(app(svc('web'), svc('db', { image: 'reg.example.com/shop/db:17', pullPolicy: 'never' } as Partial<ServiceSpec>)));
  assert.equal(never.dep.status, 'failed');
  assert.match(never.dep.message, /^image reg\.example\.com\/shop\/db:17 of service db is not on the engine and its pull_policy is never/);
  assert.equal(pulls().length, 2);
  // A refused pull says which image, which registry and what failed.
  h.engine.failNext('pull', new Error('pulling reg.example.com/shop/db:18 failed: unauthorized: authentication required'));
  const denied = await h.deploy(app(svc('web'), svc('db', { image: 'reg.example.com/shop/db:18' })));
  assert.equal(denied.dep.message, 'pull of reg.example.com/shop/db:18 (service db) from registry reg.example.com failed: authentication: ' +
    'unauthorized: authentication required: Berth has no credentials for reg.example.com: run `berth registry login reg.example.com`');
});

test('pull_policy daily: pulled once a day, and the last pull is remembered across a server restart (it is in the store)', async () => {
  const h = setup();
  const pulls = () => h.engine.calls.filter((c) => c.startsWith('pull '));
  h.engine.addRemoteImage('reg.example.com/shop/cache:7');
  const spec = app(svc('web'), svc('cache', { image: 'reg.example.com/shop/cache:7', pullPolicy: 'daily' } as Partial<ServiceSpec>));
  assert.equal((await h.deploy(spec)).dep.status, 'rolling');
  assert.equal(pulls().length, 1);
  h.clock.t += 3_600_000;
  await h.deploy(spec);
  assert.equal(pulls().length, 1, 'an hour later: not pulled again');
  // A restarted server: a new store connection on the same database, a new controller.
  const store = new SqliteStore(join(h.dir, 'berth.db'), h.clock);
  try {
    const controller = new DeploymentController({ store, engine: h.engine, clock: h.clock, logger: silentLogger, newId: () => `r${h.clock.t}`,
      enqueueService: () => {}, applyRoutes: () => {} });
    const deployAfterRestart = async (id: string) => {
      store.createDeployment({ id, app: 'shop', env: 'prod', spec, warnings: [], status: 'pending', message: '', createdAt: h.clock.now(), createdBy: 'admin', releases: {} });
      h.clock.t += 1000;
      await controller.reconcile(id);
      return store.getDeployment(id)!;
    };
    assert.notEqual((await deployAfterRestart('after-restart')).status, 'failed');
    assert.equal(pulls().length, 1, 'after a restart within the day: still not pulled again');
    h.clock.t += 86_400_000;
    await deployAfterRestart('next-day');
    assert.equal(pulls().length, 2, 'a day after the last pull: pulled again');
    assert.equal(store.lastPulled('reg.example.com/shop/cache:7'), h.clock.now(), 'the new pull time is recorded');
  } finally {
    store.close();
  }
});

test('a pull that stalls is given up after the pull timeout with a message naming the image, the registry and the setting; nothing changes', async () => {
  const h = setup();
  const before = h.snapshot();
  let aborted = false;
  // A registry that accepted the pull and then says nothing: the pull ends only when its signal aborts.
  const stalled = {
    imageId: (ref: string) => h.engine.imageId(ref),
    pull: (_ref: string, o: { signal?: AbortSignal } = {}) => new Promise<void>((_resolve, reject) => {
      o.signal?.addEventListener('abort', () => { aborted = true; reject(new Error('pull cancelled')); });
    }),
  };
  const controller = new DeploymentController({ store: h.store, engine: stalled, clock: h.clock, logger: silentLogger, newId: () => 'x1',
    enqueueService: () => {}, applyRoutes: () => {}, pullTimeoutMs: 30 });
  h.store.createDeployment({ id: 'stall', app: 'shop', env: 'prod', spec: app(svc('web'), svc('db', { image: 'reg.example.com:5000/shop/db:16' })),
    warnings: [], status: 'pending', message: '', createdAt: h.clock.now(), createdBy: 'admin', releases: {} });
  await controller.reconcile('stall');
  const dep = h.store.getDeployment('stall')!;
  assert.ok(aborted, 'the engine\'s pull was cancelled');
  assert.equal(dep.status, 'failed');
  assert.match(dep.message, /^pull of reg\.example\.com:5000\/shop\/db:16 \(service db\) from registry reg\.example\.com:5000 timed out after 30ms \(no layer started\): .*BERTH_PULL_TIMEOUT_S/);
  assert.deepEqual(h.snapshot(), before, 'no service or release was written');
});

test('a service held by a dependency past the deadline: the deployment names the dependency and its last check', async () => {
  const h = setup();
  const update = { strategy: 'rolling' as const, maxSurge: 1, maxUnavailable: 0, keepPreviousMs: 0, signal: 'SIGHUP', onFailure: 'rollback' as const, deadlineMs: 60_000 };
  const spec = app(svc('db', { image: 'shop/worker:1', routes: [], replicas: 1 }), svc('web', { replicas: 1, dependsOn: ['db'], dependsOnConditions: { db: 'service_healthy' }, update }));
  const { id, dep: first } = await h.deploy(spec);
  assert.equal(first.status, 'rolling', first.message);
  h.healthyInstances('db', 1, 'starting');
  const db = h.store.listInstances({ app: 'shop', env: 'prod', service: 'db' })[0]!;
  h.store.updateInstance(db.id, { check: { ok: false, text: 'healthcheck exit 1: pg_isready: no response', since: h.clock.now() } });
  // Both releases count as healthy (as after a scale-up that reuses them); web has no instance: db holds it.
  for (const r of Object.values(h.store.getDeployment(id)!.releases)) h.store.updateRelease(r, { status: 'healthy' });
  h.store.updateInstance(db.id, { health: 'healthy' });
  assert.deepEqual(await h.controller.reconcile(id), { requeueAfterMs: 250 });
  h.store.updateInstance(db.id, { health: 'unhealthy' });
  h.clock.t += 61_000;
  await h.controller.reconcile(id);
  const dep = h.store.getDeployment(id)!;
  assert.equal(dep.status, 'failed');
  assert.equal(dep.message, 'web: db did not become healthy in 60s: healthcheck exit 1: pg_isready: no response');
});

test('depends_on restart: true — a deploy that replaces db restarts web after db is healthy (a new release of the same spec and image, once); an unchanged db restarts nothing', async () => {
  const h = setup();
  const web = (o: Partial<ServiceSpec> = {}) => svc('web', { replicas: 1, dependsOn: ['db'], restartWith: ['db'], ...o });
  const db = (mode: string) => svc('db', { image: 'shop/worker:1', routes: [], replicas: 1, environment: { MODE: mode } });
  /** Marks every release of the deployment healthy with `replicas` healthy instances each, and reconciles once. */
  const healthy = async (id: string) => {
    for (const [service, rel] of Object.entries(h.store.getDeployment(id)!.releases)) {
      if (h.store.getRelease(rel)!.status === 'healthy') continue;
      h.healthyInstances(service, 1);
      h.store.updateRelease(rel, { status: 'healthy' });
    }
    return h.controller.reconcile(id);
  };
  const first = await h.deploy(app(db('a'), web()));
  assert.equal(await healthy(first.id), undefined);
  assert.equal(h.store.getDeployment(first.id)!.status, 'succeeded', 'a first deploy restarts nothing (web started after db anyway)');
  const webRel1 = h.releaseOf('web')!;

  // Unchanged db: nothing restarts.
  const same = await h.deploy(app(db('a'), web()));
  assert.equal(await healthy(same.id), undefined);
  assert.equal(h.releaseOf('web')!.id, webRel1.id);

  // db replaced: web is restarted once db is healthy, with release 1's spec and image.
  const second = await h.deploy(app(db('b'), web()));
  assert.equal(second.dep.releases.web, webRel1.id, 'web is unchanged by the deploy itself');
  assert.equal(h.releaseOf('web')!.id, webRel1.id, 'not restarted before db is healthy');
  assert.deepEqual(await healthy(second.id), { requeueAfterMs: 250 });
  const webRel2 = h.releaseOf('web')!;
  assert.notEqual(webRel2.id, webRel1.id);
  assert.equal(webRel2.imageId, webRel1.imageId);
  assert.equal(webRel2.specHash, webRel1.specHash);
  assert.equal(webRel2.spec.restartGeneration, 1);
  assert.equal(h.store.getDeployment(second.id)!.releases.web, webRel2.id, 'the deploy follows the restart');
  assert.ok(h.store.listEvents({ app: 'shop' }).some((e) => e.kind === 'service.restarting' && /db was replaced by this deploy \(depends_on restart: true\)/.test(e.message)));
  assert.equal(h.store.getDeployment(second.id)!.status, 'rolling');
  assert.equal(await healthy(second.id), undefined);
  assert.equal(h.store.getDeployment(second.id)!.status, 'succeeded');
  assert.equal(h.releaseOf('web')!.id, webRel2.id, 'restarted once');

  // Without restart: true, a replaced db restarts nothing.
  const third = await h.deploy(app(db('c'), web({ restartWith: undefined } as Partial<ServiceSpec>)));
  assert.equal(await healthy(third.id), undefined);
  assert.equal(h.releaseOf('web')!.id, webRel2.id);
});
