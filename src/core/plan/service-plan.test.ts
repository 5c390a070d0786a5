import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planService, crashLoopDelayMs, COMPLETED_REASON, dependencyWait, dependencyWaitText, dependencyTimeoutText, type DependencyView, type DesiredView, type InstanceView } from './service-plan.ts';

const desired = (o: Partial<DesiredView> = {}): DesiredView => ({
  replicas: 3, releaseId: 'r2', restart: { condition: 'any', delayMs: 1000 }, failures: 0, nextStartAt: 0, maxSurge: 1, ...o,
});
let n = 0;
const inst = (o: Partial<InstanceView> = {}): InstanceView => ({
  id: `i${++n}`, releaseId: 'r2', state: 'running', health: 'healthy', observed: 'running', createdAt: n, ...o,
});
const kinds = (a: { kind: string }[]) => a.map((x) => x.kind).sort();

test('fresh service: creates all replicas at once', () => {
  assert.deepEqual(planService(desired(), [], [], 0), [{ kind: 'create', count: 3 }]);
});

test('steady state: nothing to do', () => {
  assert.deepEqual(planService(desired(), [inst(), inst(), inst()], [], 0), []);
});

test('scale down stops the extras, not-serving first, then newest', () => {
  const a = inst({ createdAt: 1 }), b = inst({ createdAt: 2 }), c = inst({ createdAt: 3, health: 'starting' }), d = inst({ createdAt: 4 }), e = inst({ createdAt: 5 });
  const acts = planService(desired({ replicas: 2 }), [a, b, c, d, e], [], 0);
  assert.deepEqual(acts.map((x) => x.kind === 'stop' && x.instance).sort(), [c.id, d.id, e.id].sort());
});

test('a crashed instance is reaped and no replacement is created in the same round', () => {
  const dead = inst({ observed: 'exited', exitCode: 137 });
  const acts = planService(desired(), [inst(), inst(), dead], [], 0);
  assert.deepEqual(acts, [{ kind: 'reap', instance: dead.id, exitCode: 137, countsAsFailure: true }]);
});

test('crash-loop backoff: waits until nextStartAt, then creates', () => {
  assert.deepEqual(planService(desired({ replicas: 1, failures: 3, nextStartAt: 5000 }), [], [], 1000), [
    { kind: 'wait', untilMs: 5000, reason: 'crash-loop backoff' },
  ]);
  assert.deepEqual(planService(desired({ replicas: 1, failures: 3, nextStartAt: 5000 }), [], [], 5000), [{ kind: 'create', count: 1 }]);
});

test('restart policy on-failure keeps a clean exit stopped; none keeps any exit stopped', () => {
  const clean = inst({ observed: 'exited', exitCode: 0 });
  assert.deepEqual(planService(desired({ replicas: 1, restart: { condition: 'on-failure', delayMs: 0 } }), [clean], [], 0),
    [{ kind: 'mark-exited', instance: clean.id, exitCode: 0 }]);
  const failed = inst({ observed: 'exited', exitCode: 1 });
  assert.deepEqual(planService(desired({ replicas: 1, restart: { condition: 'none', delayMs: 0 } }), [failed], [], 0),
    [{ kind: 'mark-exited', instance: failed.id, exitCode: 1 }]);
});

test('max_attempts used up: the instance stays exited', () => {
  const failed = inst({ observed: 'exited', exitCode: 1 });
  const acts = planService(desired({ replicas: 1, failures: 2, restart: { condition: 'any', maxAttempts: 2, delayMs: 0 } }), [failed], [], 0);
  assert.deepEqual(kinds(acts), ['mark-exited']);
});

test('rolling release, start-first: one new instance first, no old stopped before it is healthy', () => {
  const old = [inst({ releaseId: 'r1' }), inst({ releaseId: 'r1' }), inst({ releaseId: 'r1' })];
  assert.deepEqual(planService(desired(), old, [], 0), [{ kind: 'create', count: 1 }]);
  const starting = inst({ health: 'starting' });
  assert.deepEqual(planService(desired(), [...old, starting], [], 0), []);
  const healthy = inst();
  const acts = planService(desired(), [...old, healthy], [], 0);
  assert.deepEqual(kinds(acts), ['create', 'stop']);
  const stop = acts.find((a) => a.kind === 'stop');
  assert.equal(stop?.kind === 'stop' && stop.instance, old[0]!.id, 'the oldest goes first');
});

test('rolling release never exceeds replicas + surge live instances', () => {
  // Simulate a whole rollout where new instances become healthy one round after creation.
  let live: InstanceView[] = [inst({ releaseId: 'r1' }), inst({ releaseId: 'r1' }), inst({ releaseId: 'r1' })];
  for (let round = 0; round < 20; round++) {
    live = live.map((i) => (i.health === 'starting' ? { ...i, health: 'healthy' } : i));
    const acts = planService(desired(), live, [], 0);
    for (const a of acts) {
      if (a.kind === 'stop') live = live.filter((i) => i.id !== a.instance);
      if (a.kind === 'create') for (let k = 0; k < a.count; k++) live.push(inst({ health: 'starting' }));
    }
    assert.ok(live.length <= 4, `round ${round}: ${live.length} live`);
    assert.ok(live.filter((i) => i.health === 'healthy').length >= 3 || round === 0, `round ${round}: fewer than 3 serving`);
    if (acts.length === 0) break;
  }
  assert.deepEqual(live.map((i) => i.releaseId), ['r2', 'r2', 'r2']);
});

test('old instances that are not serving are stopped at once', () => {
  const sick = inst({ releaseId: 'r1', health: 'unhealthy' });
  const acts = planService(desired({ replicas: 1 }), [sick], [], 0);
  assert.deepEqual(kinds(acts), ['create', 'stop']);
});

test('pending instances resume where a crash left them', () => {
  const a = inst({ state: 'pending', observed: 'missing' });
  const b = inst({ state: 'pending', observed: 'created' });
  const c = inst({ state: 'pending', observed: 'running' });
  assert.deepEqual(kinds(planService(desired(), [a, b, c], [], 0)), ['mark-running', 'start', 'start-existing']);
});

test('orphans are removed and a removed service stops everything', () => {
  const a = inst();
  assert.deepEqual(planService(undefined, [a], [{ id: 'c9', instance: 'x' }], 0), [
    { kind: 'remove-orphan', containerId: 'c9' },
    { kind: 'stop', instance: a.id, reason: 'service removed' },
  ]);
});

test('crash-loop delay grows exponentially and is capped', () => {
  assert.deepEqual([1, 2, 3, 4, 10].map((f) => crashLoopDelayMs(f, 1000)), [1000, 2000, 4000, 8000, 60000]);
  assert.equal(crashLoopDelayMs(0, 1000), 0);
});

test('rolling with max_unavailable 1 and max_surge 0: stops one old first, creates one in its place', () => {
  const old = [inst({ releaseId: 'r1' }), inst({ releaseId: 'r1' }), inst({ releaseId: 'r1' })];
  const acts = planService(desired({ maxSurge: 0, maxUnavailable: 1 }), old, [], 0);
  assert.deepEqual(kinds(acts), ['create', 'stop']);
  assert.deepEqual(acts.find((a) => a.kind === 'create'), { kind: 'create', count: 1 });
});

test('blue-green: whole green set first, switch only when all healthy, blue idles for the keep window', () => {
  const bg = (o: Partial<DesiredView>) => desired({ strategy: 'blue-green', routedReleaseId: 'r1', keepPreviousMs: 60_000, ...o });
  const blue = [inst({ releaseId: 'r1' }), inst({ releaseId: 'r1' }), inst({ releaseId: 'r1' })];
  assert.deepEqual(planService(bg({}), blue, [], 0), [{ kind: 'create', count: 3 }]);
  const green = [inst(), inst(), inst({ health: 'starting' })];
  assert.deepEqual(planService(bg({}), [...blue, ...green], [], 0), [], 'no switch while one green is starting');
  green[2] = { ...green[2]!, health: 'healthy' };
  assert.deepEqual(planService(bg({}), [...blue, ...green], [], 0), [{ kind: 'switch', releaseId: 'r2' }]);
  // Switched at t=1000: blue idles until 61000, then goes.
  assert.deepEqual(planService(bg({ routedReleaseId: 'r2', switchedAt: 1000 }), [...blue, ...green], [], 30_000),
    [{ kind: 'wait', untilMs: 61_000, reason: 'previous set kept idle for a fast rollback' }]);
  assert.deepEqual(kinds(planService(bg({ routedReleaseId: 'r2', switchedAt: 1000 }), [...blue, ...green], [], 61_000)), ['stop', 'stop', 'stop']);
});

test('blue-green rollback inside the keep window is one switch back', () => {
  const blue = [inst({ releaseId: 'r1' }), inst({ releaseId: 'r1' }), inst({ releaseId: 'r1' })];
  const green = [inst(), inst(), inst()];
  // Desired goes back to r1 while r2 is routed: r1 is complete and healthy, so switch at once, create nothing.
  assert.deepEqual(planService(desired({ strategy: 'blue-green', releaseId: 'r1', routedReleaseId: 'r2', switchedAt: 0, keepPreviousMs: 60_000 }), [...blue, ...green], [], 1000),
    [{ kind: 'switch', releaseId: 'r1' }]);
});

test('blue-green pins routing to what serves before the first green joins', () => {
  const blue = [inst({ releaseId: 'r1' })];
  const acts = planService(desired({ strategy: 'blue-green', replicas: 1 }), blue, [], 0);
  assert.deepEqual(acts[0], { kind: 'switch', releaseId: 'r1' }, 'the pin is applied before anything is created');
  assert.deepEqual(kinds(acts), ['create', 'switch']);
});

test('recreate: old set stops first, new set starts only once it is gone', () => {
  const old = [inst({ releaseId: 'r1' }), inst({ releaseId: 'r1' })];
  assert.deepEqual(kinds(planService(desired({ strategy: 'recreate', replicas: 2 }), old, [], 0)), ['stop', 'stop']);
  assert.deepEqual(planService(desired({ strategy: 'recreate', replicas: 2 }), [], [], 0), [{ kind: 'create', count: 2 }]);
});

test('dependencyWait: depends_on conditions gate a service\'s first start, in order', () => {
  const running = { state: 'running', health: 'starting' };
  const healthy = { state: 'running', health: 'healthy' };
  const completed = { state: 'exited', health: 'unhealthy', reason: COMPLETED_REASON };
  const failed = { state: 'exited', health: 'unhealthy', reason: 'exited with code 1' };
  const views: Record<string, DependencyView> = {
    db: { replicas: 1, instances: [running] },
    cache: { replicas: 1, instances: [healthy] },
    migrate: { replicas: 1, instances: [failed] },
    idle: { replicas: 0, instances: [] },
  };
  const lookup = (s: string): DependencyView | undefined => views[s];
  assert.equal(dependencyWait(['db', 'cache'], undefined, lookup), undefined, 'service_started: running is enough');
  assert.deepEqual(dependencyWait(['db'], { db: 'service_healthy' }, lookup), { service: 'db', condition: 'service_healthy' });
  assert.equal(dependencyWait(['cache'], { cache: 'service_healthy' }, lookup), undefined);
  assert.deepEqual(dependencyWait(['migrate'], { migrate: 'service_completed_successfully' }, lookup), { service: 'migrate', condition: 'service_completed_successfully' }, 'exit 1 is not completed');
  views.migrate = { replicas: 1, instances: [failed, completed] };
  assert.equal(dependencyWait(['migrate'], { migrate: 'service_completed_successfully' }, lookup), undefined);
  assert.equal(dependencyWait(['idle', 'gone'], { idle: 'service_healthy' }, lookup), undefined, 'scaled to 0 or not deployed: nothing to wait for');
  views.db = { replicas: 1, instances: [] };
  assert.deepEqual(dependencyWait(['cache', 'db'], undefined, lookup), { service: 'db', condition: 'service_started' });
});

test('dependencyWaitText / dependencyTimeoutText: what a held service says while it waits and when it gives up', () => {
  const healthy = { service: 'db', condition: 'service_healthy' };
  assert.equal(dependencyWaitText(healthy), 'waiting for db (healthy)');
  assert.equal(dependencyWaitText({ service: 'migrate', condition: 'service_completed_successfully' }), 'waiting for migrate (completed successfully)');
  assert.equal(dependencyWaitText({ service: 'cache', condition: 'service_started' }), 'waiting for cache (started)');
  const check = (ok: boolean, text: string, since: number) => ({ ok, text, since });
  // The newest failing check of a running instance is the dependency's last word.
  assert.equal(dependencyTimeoutText(healthy, 60_000, { replicas: 2, instances: [
    { state: 'running', health: 'unhealthy', check: check(false, 'healthcheck exit 1: old', 1) },
    { state: 'running', health: 'unhealthy', check: check(false, 'healthcheck exit 2: pg_isready: no response', 5) },
  ] }), 'db did not become healthy in 60s: healthcheck exit 2: pg_isready: no response');
  assert.equal(dependencyTimeoutText(healthy, 60_000, { replicas: 1, instances: [{ state: 'running', health: 'starting' }] }),
    'db did not become healthy in 60s: its health check has not passed yet (1 instance starting)');
  assert.equal(dependencyTimeoutText(healthy, 90_400, { replicas: 1, instances: [{ state: 'exited', health: 'unhealthy', reason: 'exited with code 1' }] }),
    'db did not become healthy in 90s: no instance is running (the last one exited with code 1)');
  assert.equal(dependencyTimeoutText({ service: 'migrate', condition: 'service_completed_successfully' }, 30_000,
    { replicas: 1, instances: [{ state: 'exited', health: 'unhealthy', reason: 'exited with code 3' }] }), 'migrate did not complete successfully in 30s: exited with code 3');
  assert.equal(dependencyTimeoutText({ service: 'migrate', condition: 'service_completed_successfully' }, 30_000,
    { replicas: 1, instances: [{ state: 'running', health: 'none' }] }), 'migrate did not complete successfully in 30s: it is still running');
  assert.equal(dependencyTimeoutText({ service: 'cache', condition: 'service_started' }, 30_000, undefined), 'cache did not start in 30s: no instance is running');
});

test('restart of one instance: a new one serves before the restarted one goes (rolling and blue-green); the others are untouched', () => {
  for (const d of [desired(), desired({ strategy: 'blue-green', routedReleaseId: 'r2', switchedAt: 0, keepPreviousMs: 60_000 })]) {
    const [a, b, c] = [inst(), inst({ replace: true }), inst()];
    assert.deepEqual(planService(d, [a!, b!, c!], [], 0), [{ kind: 'create', count: 1 }], `${d.strategy ?? 'rolling'}: start first`);
    assert.deepEqual(planService(d, [a!, b!, c!, inst({ health: 'starting' })], [], 0), [], 'the restarted one keeps serving until its replacement does');
    assert.deepEqual(planService(d, [a!, b!, c!, inst()], [], 0), [{ kind: 'stop', instance: b!.id, reason: 'replaced by new release' }]);
  }
  // One replica: the same, never zero serving.
  const only = inst({ replace: true });
  assert.deepEqual(planService(desired({ replicas: 1 }), [only], [], 0), [{ kind: 'create', count: 1 }]);
});

test('restart of one instance under recreate stops it first (the strategy of services that hold a volume)', () => {
  const [a, b] = [inst(), inst({ replace: true })];
  assert.deepEqual(planService(desired({ strategy: 'recreate', replicas: 2 }), [a!, b!], [], 0), [{ kind: 'stop', instance: b!.id, reason: 'recreate: old set stops first' }]);
  assert.deepEqual(planService(desired({ strategy: 'recreate', replicas: 2 }), [a!], [], 0), [{ kind: 'create', count: 1 }]);
});
