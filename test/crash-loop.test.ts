/**
 * A crash-looping service backs off (restart intervals grow) and its status says so; the release is
 * marked failed and `berth deploy` exits 1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Harness, ROOT } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

describe('crash loop', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.create({ portRange: '32100-32199' });
    await h.startServer();
  });
  after(async () => h.cleanup());

  test('restart intervals grow, status says crash-looping, deploy fails with exit 1', async () => {
    const d = await h.cli(['deploy', '-f', join(ROOT, 'test/fixtures/apps/crashloop/compose.yaml'), '--timeout', '60']);
    assert.equal(d.code, 1, d.stderr);
    assert.match(d.stderr, /failed: .*crash/);
    const starts = await waitFor(async () => {
      const ev = await h.api('GET', '/v1/events?app=crashy&limit=500');
      const s = ev.json.events.filter((e: { kind: string }) => e.kind === 'instance.started').map((e: { ts: number }) => e.ts) as number[];
      return s.length >= 5 ? s : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250, what: '5 starts' });
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    // Each gap = run time (~1 s) + backoff (1, 2, 4, 8 s): strictly growing.
    for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i]! > gaps[i - 1]! + 500, `gaps grow: ${gaps.join(', ')}`);
    const st = await h.status('crashy');
    const w = st.services[0];
    assert.equal(w.status, 'crash-looping');
    assert.match(w.detail, /crashes in a row/);
    assert.equal(w.release.status, 'failed');
    const cli = await h.cli(['status', 'crashy']);
    assert.match(cli.stdout, /crash-looping/);
    assert.ok((await h.containers('crashy')).length <= 1, 'never more than one container at a time');
  });
});
