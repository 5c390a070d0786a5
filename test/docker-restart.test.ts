/**
 * Restart the Docker Engine under Berth: Berth notices, reconnects, resyncs and brings the app back
 * to its desired replicas, and records the outage as events. (Uses scripts/dockerd.sh, which only
 * restarts an engine that the project's scripts started.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { Harness, ROOT, get } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const exec = promisify(execFile);

describe('Docker Engine restart', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.create({ portRange: '32200-32299' });
    await h.startServer();
  });
  after(async () => h.cleanup());

  test('the app comes back to its desired replicas', async () => {
    const d = await h.cli(['deploy', '-f', join(ROOT, 'test/fixtures/apps/web/compose.yaml'), '--app', 'dr'], { timeoutMs: 120_000 });
    assert.equal(d.code, 0, d.stderr);
    const before = (await h.containers('dr')).map((c) => c.id);
    assert.equal(before.length, 3);
    await exec('bash', [join(ROOT, 'scripts/dockerd.sh'), 'restart'], { timeout: 120_000 });
    await waitFor(async () => {
      const st = await h.status('dr');
      const running = (await h.containers('dr')).filter((c) => c.running);
      return st.services[0].healthy === 3 && running.length === 3;
    }, { timeoutMs: 90_000, intervalMs: 500, what: '3 healthy instances after the engine restart' });
    // The ingress follows the registry within a second.
    await waitFor(async () => (await get(h.ingressPort, '/healthz')).status === 200, { timeoutMs: 5000, intervalMs: 50, what: 'routed again' });
    const ev = await h.api('GET', '/v1/events?limit=1000');
    const kinds = ev.json.events.map((e: { kind: string }) => e.kind);
    assert.ok(kinds.includes('engine.disconnected'), `events: ${kinds.join(',')}`);
    assert.ok(kinds.includes('engine.connected'));
  });
});
