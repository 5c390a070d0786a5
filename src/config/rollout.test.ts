import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceSpec } from '../core/spec/types.ts';
import type { DeploymentRecord, NewEvent, ReleaseRecord, ServiceRecord, Store } from '../core/store.ts';
import { currentAppSpec, startConfigRollout } from './rollout.ts';

const svcSpec = (name: string, replicas: number, extra: object = {}) => ({ name, image: `img/${name}`, replicas, environment: { A: '1' }, ...extra }) as unknown as ServiceSpec;

/** Just the Store methods the rollout uses. */
function fakeStore(services: ServiceRecord[], releases: ReleaseRecord[]) {
  const deployments: DeploymentRecord[] = [];
  const events: NewEvent[] = [];
  const store = {
    listServices: (f: { app?: string; env?: string } = {}) => services.filter((s) => (!f.app || s.app === f.app) && (!f.env || s.env === f.env)),
    getRelease: (id: string) => releases.find((r) => r.id === id),
    createDeployment: (d: DeploymentRecord) => void deployments.push(d),
    addEvent: (e: NewEvent) => events.push(e),
  } as unknown as Store;
  return { store, deployments, events };
}

const svc = (name: string, releaseId: string, replicas: number): ServiceRecord =>
  ({ app: 'shop', env: 'prod', name, replicas, releaseId, failures: 0, nextStartAt: 0, updatedAt: 0 });
const rel = (id: string, spec: ServiceSpec): ReleaseRecord => ({ id, spec } as unknown as ReleaseRecord);

test('currentAppSpec: the running releases with current replicas, without the old config version', () => {
  const { store } = fakeStore([svc('web', 'r2', 5), svc('worker', 'r9', 1)],
    [rel('r2', svcSpec('web', 3, { configVersion: 4 })), rel('r9', svcSpec('worker', 2))]);
  const spec = currentAppSpec(store, 'shop', 'prod')!;
  assert.equal(spec.name, 'shop');
  assert.deepEqual(Object.keys(spec.services), ['web', 'worker']);
  assert.equal(spec.services.web!.replicas, 5, 'berth scale sticks');
  assert.equal(spec.services.worker!.replicas, 1);
  assert.ok(!('configVersion' in spec.services.web!));
  assert.equal(currentAppSpec(store, 'shop', 'dev'), undefined);
});

test('startConfigRollout: a deployment of the current spec and an event naming keys, never values', () => {
  const { store, deployments, events } = fakeStore([svc('web', 'r1', 2)], [rel('r1', svcSpec('web', 2))]);
  const queued: string[] = [];
  const d = { store, clock: { now: () => 42 }, newId: () => 'dep1', enqueueDeployment: (id: string) => void queued.push(id) };
  const id = startConfigRollout(d, 'shop', 'prod', { version: 3, who: 'admin', changes: [
    { key: 'DB_PASSWORD', kind: 'secret', op: 'set' }, { key: 'GREETING', kind: 'value', op: 'set', new: 'hello' }, { key: 'OLD', kind: 'value', op: 'unset' },
  ] });
  assert.equal(id, 'dep1');
  assert.deepEqual(queued, ['dep1']);
  assert.equal(deployments[0]!.status, 'pending');
  assert.equal(deployments[0]!.createdBy, 'admin');
  assert.equal(events[0]!.kind, 'config.changed');
  assert.equal(events[0]!.message, 'config version 3 of shop/prod by admin: set DB_PASSWORD (secret), set GREETING, unset OLD; rolling out in deployment dep1');

  const none = fakeStore([], []);
  assert.equal(startConfigRollout({ ...d, store: none.store }, 'shop', 'prod', { version: 1, who: 'admin', changes: [] }), undefined);
  assert.equal(none.deployments.length, 0);
  assert.match(none.events[0]!.message, /nothing runs yet/);
});
