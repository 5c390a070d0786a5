/**
 * Failover through the real server on a real Swarm (issue 13 item 3): three test hosts
 * (test/helpers/swarm-hosts.ts), six replicas of an app, bounded load through the ingress while a
 * host dies (link cut, every process of it killed), while it returns and while another is drained.
 * Ports 20200-20299 (test/port-ranges.test.ts). Run with a slot of your own: BERTH_TESTHOSTS_SLOT=N.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { waitFor } from '../src/lib/backoff.ts';
import { request } from 'node:http';
import { Harness, get, load } from './helpers/harness.ts';
import { startTestHosts, type TestHosts } from './helpers/swarm-hosts.ts';

let th: TestHosts;
let h: Harness;
let dir: string;
const hn = (i: number): string => th.hosts[i - 1]!.name;
const APP = 'fo';
const HOST = { host: `${APP}.test` };

before(async () => {
  th = await startTestHosts(3);
  dir = await mkdtemp(join(tmpdir(), 'berth-cluster-failover-'));
  h = await Harness.create({ portRange: '20200-20299', env: { BERTH_DOCKER_SOCKET: th.manager } });
  await h.startServer();
  const file = join(dir, `${APP}.yaml`);
  await writeFile(file, `name: ${APP}
services:
  web:
    image: berth/busybox:latest
    # /cgi-bin/p: a POST is written down (its query) and answered after 15 s, so it is in flight when a
    # host dies; a GET lists the POSTs this instance received.
    command:
      - sh
      - -c
      - |
        mkdir -p /tmp/w/cgi-bin
        echo "$$BERTH_INSTANCE" > /tmp/w/index.html
        cat > /tmp/w/cgi-bin/p <<'CGI'
        #!/bin/sh
        if [ "$$REQUEST_METHOD" = POST ]; then echo "$$QUERY_STRING" >> /tmp/posts; sleep 15; fi
        printf 'Content-Type: text/plain\\r\\n\\r\\n'
        cat /tmp/posts 2>/dev/null
        CGI
        chmod +x /tmp/w/cgi-bin/p
        exec httpd -f -p $$PORT -h /tmp/w
    deploy:
      replicas: 6
    stop_grace_period: 2s
    x-berth:
      port: 8080
      routes:
        - ${APP}.test/
      health:
        http: {path: /, interval: 500ms}
      update:
        deadline: 90s
`);
  const d = await h.cli(['deploy', '-f', file], { timeoutMs: 150_000 });
  assert.equal(d.code, 0, d.stderr + d.stdout);
});

after(async () => {
  if (process.exitCode) console.error(h?.serverLog.slice(-6000));
  await h?.cleanup();
  await th?.down();
  await rm(dir, { recursive: true, force: true });
});

interface Inst { id: string; host: string; address: string; port: number; health: string; state: string }

async function instances(): Promise<Inst[]> {
  return (await h.status(APP)).services.flatMap((s: { instances: Inst[] }) => s.instances);
}

/** Six instances running and healthy, none on these hosts. */
async function sixHealthyAwayFrom(hosts: string[], what: string, timeoutMs = 60_000): Promise<Inst[]> {
  return waitFor(async () => {
    const all = await instances();
    const ok = all.filter((i) => i.state === 'running' && i.health === 'healthy' && !hosts.includes(i.host));
    return ok.length === 6 && all.length === 6 ? all : undefined;
  }, { timeoutMs, intervalMs: 250, what });
}

/** Bounded load through the ingress (GETs, 4 at a time) until `stop` is called; counts failures. */
function underLoad(): { stop(): Promise<Awaited<ReturnType<typeof load>>> } {
  let done = false;
  const run = load(h.ingressPort, '/', { total: 40_000, concurrency: 4, maxMs: 120_000, host: HOST.host, stop: () => done });
  return {
    async stop() {
      done = true;
      return run;
    },
  };
}

/** A POST through the ingress (empty body): status and body; rejects on a socket error or the timeout. */
function post(port: number, path: string, timeoutMs: number, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, timeout: timeoutMs, headers: { ...headers, 'content-length': '0' } }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
      r.on('error', rej);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', rej);
    req.end();
  });
}

/** A GET straight to an instance on a test host (its address and port). */
function getAt(address: string, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = request({ host: address, port, path, agent: false, timeout: 5000 }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

function tally(xs: string[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const x of xs) t[x] = (t[x] ?? 0) + 1;
  return t;
}

test('a host dies under load: its instances are unrouted and replaced on the other hosts; no GET fails, a POST in flight there is not retried', async () => {
  const before = await sixHealthyAwayFrom([], 'six healthy before the loss');
  assert.deepEqual(tally(before.map((i) => i.host)), { [hn(1)]: 2, [hn(2)]: 2, [hn(3)]: 2 });
  const lost = before.filter((i) => i.host === hn(3)).map((i) => i.id);
  const l = underLoad();
  await new Promise((r) => setTimeout(r, 1000));
  // Slow POSTs (answered after 15 s) spread over the six instances: those on the host that dies are in
  // flight when it does.
  const posts = Array.from({ length: 18 }, (_, i) => post(h.ingressPort, `/cgi-bin/p?post-${i}`, 45_000, HOST).then(
    (r) => ({ id: `post-${i}`, status: r.status, body: r.body }), (err: unknown) => ({ id: `post-${i}`, status: 0, body: String(err) })));
  await new Promise((r) => setTimeout(r, 500));
  const t0 = Date.now();
  await th.kill(3);
  await sixHealthyAwayFrom([hn(3)], `six healthy on ${hn(1)}/${hn(2)} after ${hn(3)} died`, 90_000);
  const restoredMs = Date.now() - t0;
  const res = await l.stop();
  console.log(`# figures: load stopped ${Date.now() - t0 - restoredMs} ms after restoration`);
  console.log(`# figures: host killed → six healthy and routed elsewhere in ${restoredMs} ms; ${res.ok} ok, ${res.failed} failed (${res.errors.slice(0, 3).join('; ')})`);
  assert.ok(res.ok > 100, `load ran (${res.ok} ok)`);
  // Requests already sent to the dying host's instances get no answer (the link is cut, no reset): the
  // ingress cuts its connections there once Berth's check finds the instance unreachable, and nginx
  // retries the GETs on a live instance before the client's 5 s run out.
  assert.equal(res.failed, 0, `failed GETs: ${res.errors.join('; ')}`);
  const done = await Promise.all(posts);
  const cut = done.filter((p) => p.status !== 200);
  console.log(`# figures: POSTs: ${done.length - cut.length} answered 200, ${cut.length} cut (${JSON.stringify(tally(cut.map((p) => String(p.status))))})`);
  // Non-idempotent: a POST that reached the dying instance may have taken effect there; it fails (502),
  // it is never sent again. What the live instances received is exactly what answered 200.
  for (const p of cut) assert.equal(p.status, 502, `${p.id}: ${p.status} ${p.body.slice(0, 200)}`);
  const received: string[] = [];
  for (const i of before.filter((x) => x.host !== hn(3))) {
    const r = await getAt(i.address, i.port, '/cgi-bin/p');
    assert.equal(r.status, 200, `${i.id} lists its POSTs`);
    received.push(...r.body.split('\n').filter(Boolean));
  }
  assert.deepEqual(received.sort(), done.filter((p) => p.status === 200).map((p) => p.id).sort(), 'every POST answered 200 ran once on a live instance, no cut one ran there');
  assert.ok(cut.length >= 1, 'at least one POST was in flight on the host that died (18 spread over 6 instances)');
  const t1 = Date.now();
  const seen = await waitFor(async () => {
    const s = new Set<string>();
    for (let i = 0; i < 24; i++) s.add((await get(h.ingressPort, '/', 5000, HOST)).body.trim());
    return s.size === 6 ? s : undefined;
  }, { timeoutMs: 20_000, intervalMs: 200, what: 'six distinct instances answering' });
  for (const id of lost) assert.ok(!seen.has(id), `${id} (lost) is not routed`);
  console.log(`# figures: six distinct answering ${Date.now() - t1} ms after the load stopped`);
  const ev = (await h.api('GET', `/v1/events?app=${APP}&limit=500`)).json as { events?: Array<{ kind: string; message: string }> } | Array<{ kind: string; message: string }>;
  const events = Array.isArray(ev) ? ev : ev.events ?? [];
  const failovers = events.filter((e) => e.kind === 'instance.failover');
  assert.equal(failovers.length, 2, `two failovers: ${failovers.map((e) => e.message).join(' | ')}`);
  for (const e of failovers) assert.match(e.message, new RegExp(`on host ${hn(3)} is lost`));
  const cuts = events.filter((e) => e.kind === 'ingress.cut');
  assert.ok(cuts.length >= 1, 'the ingress says it cut connections to an unreachable instance');
  for (const e of cuts) assert.ok(lost.some((id) => e.message.startsWith(`instance ${id} is unreachable`)), e.message);
});

test('the dead host returns: its old tasks are removed there, never served as duplicates', async () => {
  await th.revive(3);
  await waitFor(async () => (await th.docker(1, 'node', 'ls', '--format', '{{.Hostname}} {{.Status}}')).includes(`${hn(3)} Ready`) || undefined,
    { timeoutMs: 60_000, intervalMs: 500, what: `${hn(3)} ready again` });
  // The host's agent removes the containers of services Berth removed.
  await waitFor(async () => (await th.docker(3, 'ps', '-aq', '--filter', `label=io.berth.app=${APP}`)).trim() === '' || undefined,
    { timeoutMs: 60_000, intervalMs: 500, what: `no container of ${APP} left on ${hn(3)}` });
  const services = (await th.docker(1, 'service', 'ls', '--filter', `label=io.berth.app=${APP}`, '--format', '{{.Name}}')).trim().split('\n').filter(Boolean);
  assert.equal(services.length, 6, `six Swarm services: ${services.join(', ')}`);
  const insts = await sixHealthyAwayFrom([hn(3)], 'still six, none on the returned host');
  const answered = new Set<string>();
  for (let i = 0; i < 24; i++) answered.add((await get(h.ingressPort, '/', 5000, HOST)).body.trim());
  for (const a of answered) assert.ok(insts.some((i) => i.id === a), `${a} answers and is one of the six`);
});

test('a host drained under load: its instances move (replacement first), no request fails', async () => {
  const before = await sixHealthyAwayFrom([hn(3)], 'six healthy before the drain');
  assert.ok(before.some((i) => i.host === hn(2)));
  const l = underLoad();
  await new Promise((r) => setTimeout(r, 500));
  const t0 = Date.now();
  const d = await h.cli(['host', 'drain', hn(2)]);
  assert.equal(d.code, 0, d.stderr + d.stdout);
  // Host 3 is back and ready: the moved instances may land there or on host 1.
  await sixHealthyAwayFrom([hn(2)], `six healthy off ${hn(2)}`, 90_000);
  const movedMs = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 500));
  const res = await l.stop();
  console.log(`# figures: drain moved ${before.filter((i) => i.host === hn(2)).length} instances in ${movedMs} ms; ${res.ok} ok, ${res.failed} failed`);
  assert.ok(res.ok > 100);
  assert.equal(res.failed, 0, `failed requests: ${res.errors.join('; ')}`);
});
