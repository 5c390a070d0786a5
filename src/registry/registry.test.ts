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
