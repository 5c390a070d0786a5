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
    h = await Harness.create({ portRange: '19600-19699', env: { BERTH_ALERT_INTERVAL_MS: '500' } });
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
    const t = await h.cli(['alert', 'set', 'x', '--metric', 'restarts', '--threshold', 'many']);
    assert.equal(t.code, 2);
    assert.match(t.stderr, /--threshold "many" is not a number: write e\.g\. 3/);
    assert.deepEqual((await h.api('GET', '/v1/alerts')).json.alerts, []);
  });

  test('durations: every API field and parameter takes the one grammar (Go-style, days in time ranges)', async () => {
    // Alert windows: 1m30s and 1.5s were refused when alerts had their own `\d+(ms|s|m|h)`.
    const set = await h.cli(['alert', 'set', 'durations', '--metric', 'restarts', '--threshold', '99', '--window', '1m30s', '--for', '1.5s']);
    assert.equal(set.code, 0, set.stderr);
    const rule = (await h.api('GET', '/v1/alerts')).json.alerts.find((a: any) => a.name === 'durations').rule;
    assert.deepEqual([rule.windowMs, rule.forMs], [90_000, 1500]);
    assert.equal((await h.api('DELETE', '/v1/alerts/durations')).status, 204);
    const bad = await h.api('PUT', '/v1/alerts/durations', { metric: 'restarts', threshold: 1, window: '5 min' });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /^window: "5 min" is not a duration: write a duration such as 10s, 1m30s, 500ms or 1h/);
    assert.deepEqual((await h.api('GET', '/v1/alerts')).json.alerts, []);
    // Registry TTLs took only ms, s and m.
    const reg = await h.api('POST', '/v1/registry/prod/durations-db', { address: '127.0.0.1', port: 5999, ttl: '1h' });
    assert.ok(reg.status < 300, JSON.stringify(reg.json));
    assert.equal((await h.api('DELETE', `/v1/registry/external/${reg.json.id}`)).status, 204);
    // Time ranges: a number and one unit only, each route with its own table.
    assert.equal((await h.api('GET', '/v1/events?since=1h30m')).status, 200);
    assert.equal((await h.api('GET', '/v1/metrics/query?kind=cpu&from=-1d12h')).status, 200);
    const q = await h.api('GET', '/v1/metrics/query?kind=cpu&from=-1w');
    assert.equal(q.status, 400);
    assert.match(q.json.error.message, /^from: "-1w" is not a time/);
    const ev = await h.api('GET', '/v1/events?since=2x');
    assert.equal(ev.status, 400);
    assert.match(ev.json.error.message, /^since: "2x" is not a duration: .*\(or days: 2d\)/);
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
