/**
 * Alerts end to end: a crash-looping container fires a `restarts` alert to a local webhook receiver
 * (delivered again after the receiver fails once, accepted once), and it resolves when fixed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { Harness, ROOT, freePort } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

interface Note { id: string; state: string; alert: string; value: number; labels: { app?: string } }

describe('alerts', () => {
  let h: Harness;
  let receiver: Server;
  let port: number;
  const accepted: Note[] = [];
  let attempts = 0;
  before(async () => {
    port = await freePort();
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        attempts++;
        // The very first delivery fails: Berth must retry it.
        if (attempts === 1) {
          res.statusCode = 503;
          return void res.end('try again');
        }
        accepted.push(JSON.parse(body) as Note);
        res.end('ok');
      });
    }).listen(port, '127.0.0.1');
    h = await Harness.create({ portRange: '32300-32399', env: { BERTH_ALERT_INTERVAL_MS: '500' } });
    await h.startServer();
  });
  after(async () => {
    receiver.close();
    await h.cleanup();
  });

  test('bad rules are refused and change nothing', async () => {
    const r = await h.cli(['alert', 'set', 'x', '--metric', 'restartz', '--threshold', '1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /metric/);
    assert.deepEqual((await h.api('GET', '/v1/alerts')).json.alerts, []);
  });

  test('a crash loop fires to the webhook (with a retry) and resolves when fixed', async () => {
    const set = await h.cli(['alert', 'set', 'crashes', '--metric', 'restarts', '--threshold', '2', '--window', '15s', '--app', 'crashy',
      '--webhook', `http://127.0.0.1:${port}/hook`]);
    assert.equal(set.code, 0, set.stderr);
    const d = await h.cli(['deploy', '-f', join(ROOT, 'test/fixtures/apps/crashloop/compose.yaml'), '--no-wait']);
    assert.equal(d.code, 0, d.stderr);
    await waitFor(() => accepted.find((n) => n.state === 'firing'), { timeoutMs: 60_000, intervalMs: 200, what: 'firing notification' });
    assert.ok(attempts >= 2, 'the failed first delivery was retried');
    const firing = accepted.find((n) => n.state === 'firing')!;
    assert.equal(firing.alert, 'crashes');
    assert.equal(firing.labels.app, 'crashy');
    assert.ok(firing.value > 2);
    // Fix it: the crashing app goes away; once the window has no crash, the alert resolves.
    assert.equal((await h.cli(['rm', 'crashy'])).code, 0);
    await waitFor(() => accepted.find((n) => n.state === 'resolved'), { timeoutMs: 60_000, intervalMs: 200, what: 'resolved notification' });
    assert.equal(accepted.filter((n) => n.state === 'firing').length, 1, 'firing delivered once');
    assert.equal(new Set(accepted.map((n) => n.id)).size, accepted.length, 'no duplicate ids');
    const ls = await h.cli(['--json', 'alert', 'ls']);
    assert.equal(JSON.parse(ls.stdout)[0].state, 'ok');
    const ev = (await h.api('GET', '/v1/events?limit=500')).json.events.map((e: { kind: string }) => e.kind);
    assert.ok(ev.includes('alert.firing') && ev.includes('alert.resolved'));
  });
});
