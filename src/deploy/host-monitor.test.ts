import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeEngine } from '../engine/fake/index.ts';
import { silentLogger } from '../lib/logger.ts';
import { HostMonitor } from './host-monitor.ts';

test('host changes become events once each: draining, down with the reason, ready, removed; the first read records nothing', async () => {
  const engine = new FakeEngine({ hosts: [{ name: 'h1' }, { name: 'h2', pool: 'a' }, { name: 'h3' }] });
  const events: { kind: string; message: string }[] = [];
  const changed: string[] = [];
  const m = new HostMonitor({ engine, events: { addEvent: (e) => (events.push(e), { ...e, id: events.length, ts: 0 }) }, logger: silentLogger, changed: (h, from) => changed.push(`${h.name} ${from}→${h.state}`) });
  await m.check();
  assert.equal(events.length, 0);
  await engine.drainHost('h2', true);
  await Promise.all([m.check(), m.check()]);
  await m.check();
  engine.hostDown('h3');
  await m.check();
  engine.hostUp('h3');
  await m.check();
  await engine.drainHost('h2', false);
  engine.hostDown('h2');
  await m.check();
  await engine.removeHost('h2', { force: false });
  await m.check();
  assert.deepEqual(events.map((e) => `${e.kind}: ${e.message}`), [
    'host.draining: host h2 (10.99.0.3, pool a) is draining',
    'host.down: host h3 (10.99.0.4, pool default) is down: heartbeat failure',
    'host.ready: host h3 (10.99.0.4, pool default) is ready',
    'host.down: host h2 (10.99.0.3, pool a) is down: heartbeat failure',
    'host.removed: host h2 (10.99.0.3, pool a) left the cluster',
  ]);
  assert.deepEqual(changed, ['h2 ready→draining', 'h3 ready→down', 'h3 down→ready', 'h2 draining→down']);
  engine.outage();
  await m.check(); // an unreachable engine: nothing recorded here
  assert.equal(events.length, 5);
});
