import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../store/index.ts';
import { silentLogger } from '../lib/logger.ts';
import { Registry } from './registry.ts';

test('Registry.refresh: the index moves with the healthy set (instances and externals), not without a write; entries read sorted by key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-registry-'));
  let now = 1000;
  const clock = { now: () => now };
  const store = new SqliteStore(join(dir, 'berth.db'), clock);
  try {
    const registry = new Registry(store, clock, silentLogger);
    const range = { min: 20010, max: 20020, isFree: () => true };
    const inst = (id: string, service: string) => ({ id, app: 'a', env: 'prod', service, releaseId: 'r1', host: 'h', address: '127.0.0.1', state: 'running' as const, health: 'healthy' as const, createdAt: 1 });
    store.createInstance(inst('i2', 'web'), range);
    store.createInstance(inst('i1', 'api'), range);
    const i0 = registry.currentIndex;
    registry.refresh();
    const i1 = registry.currentIndex;
    assert.ok(i1 > i0, 'two healthy instances appeared');
    registry.refresh();
    assert.equal(registry.currentIndex, i1, 'nothing written: the same index');
    assert.deepEqual(registry.entries().map((e) => e.key), ['/api_prod/127.0.0.1-20011', '/web_prod/127.0.0.1-20010']);
    store.updateInstance('i2', { health: 'unhealthy' });
    registry.refresh();
    const i2 = registry.currentIndex;
    assert.ok(i2 > i1, 'one left the healthy set');
    assert.deepEqual(registry.healthy('prod', 'web', 'a'), []);
    store.updateInstance('i2', { reason: 'still unhealthy' });
    registry.refresh();
    assert.equal(registry.currentIndex, i2, 'a write that leaves the healthy set as it was moves nothing');
    now = 2000;
    store.putExternal({ id: 'x1', env: 'prod', service: 'db', address: '10.0.0.9', port: 5432, check: { type: 'none' }, lastHeartbeatAt: now, health: 'healthy', registeredAt: now });
    registry.refresh();
    assert.ok(registry.currentIndex > i2, 'an external service registered');
    assert.deepEqual(registry.healthy('prod', 'db').map((e) => e.id), ['x1']);
    registry.close();
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Registry.refresh after each of 300 random writes: the same entries as a registry built afresh, and the index moves exactly when the healthy set or a service\'s count changes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-registry-'));
  let now = 1000;
  const clock = { now: () => now };
  const store = new SqliteStore(join(dir, 'berth.db'), clock);
  try {
    const registry = new Registry(store, clock, silentLogger);
    const range = { min: 21000, max: 21999, isFree: () => true };
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor(seed / 65536) % n;
    };
    const services = ['web', 'api', 'db'];
    const healths = ['healthy', 'unhealthy', 'starting'] as const;
    const states = ['running', 'running', 'running', 'stopping', 'exited'] as const;
    const ids: string[] = [];
    // What the healthy set and the counts were: the index must move exactly when this changes.
    const shape = (entries: readonly { key: string; id: string; health: string; env: string; service: string }[]) =>
      JSON.stringify([entries.filter((e) => e.health === 'healthy').map((e) => `${e.key}#${e.id}`).sort(), entries.map((e) => `${e.env}/${e.service}`).sort()]);
    let lastShape = shape(registry.entries());
    for (let step = 0; step < 300; step++) {
      now += 10;
      const op = rnd(10);
      if (op < 3 || ids.length === 0) {
        const id = `i${step}`;
        store.createInstance({ id, app: rnd(2) ? 'a' : 'b', env: 'prod', service: services[rnd(3)]!, releaseId: 'r1', host: 'h', address: `10.0.0.${rnd(3)}`,
          state: states[rnd(states.length)]!, health: healths[rnd(3)]!, createdAt: now }, range);
        ids.push(id);
      } else if (op < 9) {
        const id = ids[rnd(ids.length)]!;
        const what = rnd(4);
        store.updateInstance(id, what === 0 ? { state: states[rnd(states.length)]! } : what === 1 ? { address: `10.0.0.${rnd(3)}` } : what === 2 ? { reason: `r${step}` } : { health: healths[rnd(3)]! });
      } else {
        const id = ids.splice(rnd(ids.length), 1)[0]!;
        store.deleteInstance(id);
      }
      if (rnd(5) === 0) {
        store.putExternal({ id: `x${rnd(2)}`, env: 'prod', service: 'web', address: '10.9.9.9', port: 80 + rnd(2), check: { type: 'none' }, lastHeartbeatAt: now, health: healths[rnd(2)]!, registeredAt: now });
      }
      const before = registry.currentIndex;
      registry.refresh();
      const fresh = new Registry(store, clock, silentLogger);
      assert.deepEqual(registry.entries(), fresh.entries(), `step ${step}: the entries as a fresh registry reads them`);
      fresh.close();
      const s = shape(registry.entries());
      assert.equal(registry.currentIndex > before, s !== lastShape, `step ${step}: the index moves iff the healthy set or the counts changed`);
      lastShape = s;
    }
    registry.close();
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
