/**
 * A configuration change to a service with the reload strategy: the files under /run/berth/config
 * are rewritten and the signal sent; the new value is served by the same containers (same ids and
 * start times), with no failed request under load.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Harness, ROOT, get, hey } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

describe('configuration + reload strategy', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.create({ portRange: '17000-17999' });
    await h.startServer();
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-5000));
    await h.cleanup();
  });
  const message = async () => (JSON.parse((await get(h.ingressPort, '/api/whoami')).body) as { message: string }).message;

  test('config set reloads in place: new value served, same containers, 0 failed', async () => {
    const d = await h.cli(['deploy', '-f', join(ROOT, 'test/fixtures/apps/reload-config/compose.yaml')], { timeoutMs: 180_000 });
    assert.equal(d.code, 0, d.stderr);
    assert.equal(await message(), '');
    const before = (await h.containers('rc')).map((c) => [c.id, c.startedAt]).sort();
    const traffic = hey(h.ingressPort, '/api/whoami', { seconds: 8, concurrency: 4, qps: 80 });
    await new Promise((r) => setTimeout(r, 1000));
    const set = await h.cli(['config', 'set', 'rc', 'MESSAGE=from-config']);
    assert.equal(set.code, 0, set.stderr);
    await waitFor(async () => {
      for (let i = 0; i < 6; i++) if ((await message()) !== 'from-config') return false;
      return true;
    }, { timeoutMs: 30_000, what: 'the new value served by every instance' });
    // The change is served everywhere: the load runs on for a 2 s tail (at least 4 s in all), not to its 8 s.
    const r = await traffic.finish({ tailMs: 2000, minSeconds: 4 });
    assert.equal(r.failed, 0, `${r.failed} failed: ${r.errors.join('; ')}`);
    const afterC = (await h.containers('rc')).map((c) => [c.id, c.startedAt]).sort();
    assert.deepEqual(afterC, before, 'no container recreated or restarted');
    const ev = await h.api('GET', '/v1/events?app=rc&limit=200');
    assert.ok(ev.json.events.some((e: { kind: string }) => e.kind === 'instance.reloaded'));
    const st = await h.status('rc');
    assert.equal(st.services[0].release.status, 'healthy');
  });
});
