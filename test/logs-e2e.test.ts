/**
 * Logs through the real server: a service prints numbered lines; the server is SIGKILLed in the
 * middle and started again; every number is then found exactly once through the API.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Harness, ROOT } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const N = 6000;

describe('log collection through the server', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.create({ portRange: '32400-32499' });
    await h.startServer();
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-5000));
    await h.cleanup();
  });

  const numbers = async () => {
    const seen = new Map<number, number>();
    let before: string | undefined;
    for (;;) {
      const r = await h.api('GET', `/v1/apps/counter/logs?grep=line&limit=10000${before ? `&before=${before}` : ''}`);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      for (const l of r.json.lines as { text: string }[]) {
        const m = /^line (\d+)$/.exec(l.text);
        if (m) seen.set(Number(m[1]), (seen.get(Number(m[1])) ?? 0) + 1);
      }
      if (!r.json.next) return seen;
      before = r.json.next;
    }
  };

  test('kill -9 the server mid-stream and restart: every line exactly once', async () => {
    const d = await h.cli(['deploy', '-f', join(ROOT, 'test/fixtures/apps/counter/compose.yaml')], { timeoutMs: 120_000 });
    assert.equal(d.code, 0, d.stderr);
    await waitFor(async () => (await numbers()).size >= 1500, { timeoutMs: 30_000, intervalMs: 200, what: 'some lines stored' });
    await h.killServer('SIGKILL');
    await new Promise((r) => setTimeout(r, 2000)); // the container keeps writing while the server is down
    await h.startServer();
    await waitFor(async () => (await numbers()).size === N, { timeoutMs: 60_000, intervalMs: 500, what: `all ${N} lines` });
    const seen = await numbers();
    const dup = [...seen].filter(([, c]) => c !== 1).map(([n]) => n);
    assert.deepEqual(dup, [], 'no line stored twice');
    for (let i = 0; i < N; i++) assert.ok(seen.has(i), `line ${i} present`);
  });
});
