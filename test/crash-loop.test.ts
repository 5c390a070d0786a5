/**
 * A crash-looping service backs off (restart intervals grow) and its status says so; the release is
 * marked failed and `berth deploy` exits 1 — in both network modes, deployed side by side: the
 * fixture's service runs on the app's network (no x-berth.port), its copy with `network_mode: host`
 * on the host's network.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, ROOT, docker } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const FIXTURE = join(ROOT, 'test/fixtures/apps/crashloop/compose.yaml');

describe('crash loop', () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    h = await Harness.create({ portRange: '32100-32199' });
    await h.startServer();
    dir = await mkdtemp(join(tmpdir(), 'berth-crashloop-'));
  });
  after(async () => {
    await h.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  test('restart intervals grow, status says crash-looping, deploy fails with exit 1 (app network and host network)', async () => {
    const hostFile = join(dir, 'compose.yaml');
    await writeFile(hostFile, (await readFile(FIXTURE, 'utf8')).replace('name: crashy', 'name: crashy-host').replace('    image:', '    network_mode: host\n    image:'));
    const cases: Array<{ app: string; file: string; mode: RegExp; seen?: string }> = [
      { app: 'crashy', file: FIXTURE, mode: /^berth_/ }, { app: 'crashy-host', file: hostFile, mode: /^host$/ }];
    // Both apps at once: each deploy fails; five starts each, and the network mode of a container seen
    // between its crashes (watched from the start, while crashes are still frequent).
    const watch = Promise.all(cases.map((c) => waitFor(async () => {
      if (!c.seen) {
        const [one] = await h.containers(c.app);
        const mode = one && await docker('inspect', one.id, '--format', '{{.HostConfig.NetworkMode}}').catch(() => undefined);
        if (mode) c.seen = mode;
      }
      const ev = await h.api('GET', `/v1/events?app=${c.app}&limit=500`);
      const all = (ev.json.events as Array<{ kind: string; ts: number; message: string }>).slice().sort((a, b) => a.ts - b.ts);
      const s = all.filter((e) => e.kind === 'instance.started').map((e) => e.ts);
      const crashes = all.filter((e) => e.kind === 'instance.crashed');
      return s.length >= 5 && c.seen ? { starts: s, crashes, mode: c.seen } : undefined;
    }, { timeoutMs: 120_000, intervalMs: 100, what: `${c.app}: 5 starts and a container seen` })));
    const deploys = await Promise.all(cases.map((c) => h.cli(['deploy', '-f', c.file, '--timeout', '60'], { timeoutMs: 120_000 })));
    for (const [i, c] of cases.entries()) {
      const d = deploys[i]!;
      assert.equal(d.code, 1, `${c.app}: ${d.stderr}`);
      assert.match(d.stderr, /failed: .*crash/);
    }
    const seen = await watch;
    for (const [i, c] of cases.entries()) {
      const { starts, crashes, mode } = seen[i]!;
      // The mode really is the one this case is about.
      assert.match(mode, c.mode, c.app);
      // Each crash announces its backoff ("restart #N in Xs"): 1, 2, 4, 8 s — strictly growing — and
      // the next start never comes before it. (Start-to-start gaps also hold the container's run time,
      // which a loaded machine stretches by seconds: CI saw 7.6, 7.1, 8.2, 14.8 s.)
      const backoffs = crashes.map((e) => {
        const m = /restart #\d+ in ([\d.]+)s/.exec(e.message);
        assert.ok(m, `${c.app}: a crash event names its backoff: ${e.message}`);
        return { ts: e.ts, ms: Number(m[1]) * 1000 };
      });
      assert.ok(backoffs.length >= 4, `${c.app}: ${backoffs.length} crashes`);
      const firstFour = backoffs.slice(0, 4).map((b) => b.ms);
      for (let j = 1; j < firstFour.length; j++) assert.ok(firstFour[j]! > firstFour[j - 1]!, `${c.app}: backoffs grow: ${firstFour.join(', ')} ms`);
      for (const b of backoffs) {
        const next = starts.find((t) => t > b.ts);
        if (next !== undefined) assert.ok(next - b.ts >= b.ms - 150, `${c.app}: restarted ${next - b.ts} ms after a crash that announced ${b.ms} ms`);
      }
      const st = await h.status(c.app);
      const w = st.services[0];
      assert.equal(w.status, 'crash-looping', c.app);
      assert.match(w.detail, /crashes in a row/);
      assert.equal(w.release.status, 'failed');
      const cli = await h.cli(['status', c.app]);
      assert.match(cli.stdout, /crash-looping/);
      assert.ok((await h.containers(c.app)).length <= 1, `${c.app}: never more than one container at a time`);
    }
  });
});
