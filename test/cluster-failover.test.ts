/**
 * Failover through the real server on a real Swarm (issue 13 item 3): three test hosts
 * (test/helpers/swarm-hosts.ts), six replicas of an app, bounded load through the ingress while a
 * host dies (link cut, every process of it killed), while it returns and while another is drained.
 * An edge agent (`berth edge`) and its nginx run in the first test host's namespace, fed by the server
 * over the test bridge: GETs in flight through it to the host that dies are cut there and answered by
 * another instance. Ports 20200-20299 (test/port-ranges.test.ts); the edge nginx listens on 20290 (admin
 * 20291, HTTPS 20292) inside that namespace only. Run with a slot of your own: BERTH_TESTHOSTS_SLOT=N.
 */
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { waitFor } from '../src/lib/backoff.ts';
import { request } from 'node:http';
import { Harness, ROOT, get, load } from './helpers/harness.ts';
import { startTestHosts, type TestHosts } from './helpers/swarm-hosts.ts';
import { stopNginx } from '../src/ingress/index.ts';

let th: TestHosts;
let h: Harness;
let dir: string;
const hn = (i: number): string => th.hosts[i - 1]!.name;
const APP = 'fo';
const HOST = { host: `${APP}.test` };
const EDGE_PORT = 20290;
/** The edge agent on the first test host: its process, data dir and log (stderr). */
const edge = { proc: undefined as ChildProcess | undefined, dir: '', log: '' };

before(async () => {
  th = await startTestHosts(3);
  dir = await mkdtemp(join(tmpdir(), 'berth-cluster-failover-'));
  const env: Record<string, string> = { BERTH_DOCKER_SOCKET: th.manager };
  h = await Harness.create({ portRange: '20200-20289', env });
  // The edge agent on the first test host reaches the API at this namespace's address on the test bridge.
  const route = (await promisify(execFile)('ip', ['-4', '-o', 'route', 'get', th.hosts[0]!.address])).stdout;
  const bridge = /\bsrc (\S+)/.exec(route)?.[1] ?? '';
  assert.match(bridge, /^\d+\.\d+\.\d+\.\d+$/, route);
  env.BERTH_LISTEN = `0.0.0.0:${h.apiPort}`;
  await h.startServer();
  // An edge host (started before the deploy: its start overlaps it): the agent and its nginx in the first test host's network namespace (plain HTTP: no certificates).
  const tok = await h.cli(['--json', 'host', 'add', '--pool', 'edge', '--name', hn(1), '--port', String(EDGE_PORT), '--https-port', String(EDGE_PORT + 2)]);
  assert.equal(tok.code, 0, tok.stderr);
  edge.dir = join(dir, 'edge');
  const te = Date.now();
  edge.proc = spawn('ip', ['netns', 'exec', hn(1), join(ROOT, 'bin/berth'), 'edge', '--control', `http://${bridge}:${h.apiPort}`, '--token', (JSON.parse(tok.stdout) as { token: string }).token,
    '--data-dir', edge.dir, '--port', String(EDGE_PORT), '--https-port', String(EDGE_PORT + 2), '--admin-port', String(EDGE_PORT + 1), '--tls-dir', join(dir, 'edge-tls'), '--wait-seconds', '10'],
  { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BERTH_LOG_LEVEL: 'info' } });
  edge.proc.stderr!.setEncoding('utf8');
  edge.proc.stderr!.on('data', (c: string) => (edge.log = (edge.log + c).slice(-40_000)));
  const file = join(dir, `${APP}.yaml`);
  await writeFile(file, `name: ${APP}
services:
  web:
    image: berth/node:20
    # /cgi-bin/p: a POST is written down (its query) and answered after 15 s, so it is in flight when a
    # host dies; a GET lists the POSTs this instance received; ?slow answers after 6 s. Every answer is
    # one write (status, headers and body in one segment), as most servers send a small answer: an
    # answer split over two writes can lose its second part with the link, after nginx has begun it
    # (busybox httpd wrote headers and file apart; one GET in CI lost its body that way).
    command:
      - node
      - -e
      - |
        const posts = [];
        require('http').createServer((req, res) => {
          const [path, query = ''] = req.url.split('?');
          if (path === '/cgi-bin/p' && req.method === 'POST') { posts.push(query); return void setTimeout(() => res.end(''), 15000); }
          if (path === '/cgi-bin/p' && query === 'slow') return void setTimeout(() => res.end(process.env.BERTH_INSTANCE + '\\n'), 6000);
          if (path === '/cgi-bin/p') return void res.end(posts.map((p) => p + '\\n').join(''));
          res.end(process.env.BERTH_INSTANCE + '\\n');
        }).listen(Number(process.env.PORT));
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
  const td = Date.now();
  await waitFor(async () => {
    const s = new Set<string>();
    for (let i = 0; i < 12; i++) s.add(await getVia(th.hosts[0]!.address, EDGE_PORT, '/', 3000).then((r) => (r.status === 200 ? r.body.trim() : ''), () => ''));
    return s.size === 6 || undefined;
  }, { timeoutMs: 60_000, intervalMs: 300, what: `the edge host ${hn(1)} to route to the six instances` }).catch((err: Error) => {
    throw new Error(`${err.message}\nagent log:\n${edge.log.slice(-3000)}`);
  });
  console.log(`# figures: edge host ${hn(1)} routes to the six instances ${Date.now() - te} ms after its agent started, ${Date.now() - td} ms after the deploy`);
});

after(async () => {
  if (process.exitCode) console.error(`${h?.serverLog.slice(-6000)}\nedge agent:\n${edge.log.slice(-3000)}`);
  if (edge.proc && edge.proc.exitCode === null && edge.proc.signalCode === null) edge.proc.kill('SIGTERM');
  if (edge.dir) await stopNginx(join(edge.dir, 'nginx'), { timeoutMs: 5000 }).catch(() => undefined);
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
  return getVia(address, port, path, 5000, {});
}

/** A GET to address:port (the fo.test route unless `headers` say otherwise). */
function getVia(address: string, port: number, path: string, timeoutMs: number, headers: Record<string, string> = HOST): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = request({ host: address, port, path, agent: false, timeout: timeoutMs, headers }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
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
  // Slow GETs (answered after 6 s) through the edge host on the first test host, spread over the six
  // instances by its balancer: those on the host that dies wait there until the edge agent cuts them.
  const slow = Array.from({ length: 12 }, () => {
    const t = Date.now();
    return getVia(th.hosts[0]!.address, EDGE_PORT, '/cgi-bin/p?slow', 45_000).then(
      (r) => ({ status: r.status, body: r.body.trim(), ms: Date.now() - t }), (err: unknown) => ({ status: 0, body: String(err), ms: Date.now() - t }));
  });
  await new Promise((r) => setTimeout(r, 500));
  const t0 = Date.now();
  await th.kill(3);
  const killedAt = Date.now();
  await sixHealthyAwayFrom([hn(3)], `six healthy on ${hn(1)}/${hn(2)} after ${hn(3)} died`, 90_000);
  const restoredMs = Date.now() - t0;
  const res = await l.stop();
  console.log(`# figures: load stopped ${Date.now() - t0 - restoredMs} ms after restoration`);
  console.log(`# figures: host killed → six healthy and routed elsewhere in ${restoredMs} ms; ${res.ok} ok, ${res.failed} failed (${res.errors.slice(0, 3).join('; ')})`);
  assert.ok(res.ok > 100, `load ran (${res.ok} ok)`);
  // Requests already sent to the dying host's instances get no answer (the link is cut, no reset): the
  // ingress cuts its connections there once Berth's check finds the instance unreachable, and nginx
  // retries the GETs on a live instance before the client's 5 s run out.
  if (res.failed !== 0) {
    const ev = (await h.api('GET', `/v1/events?app=${APP}&limit=500`)).json as { events?: Array<{ kind: string; message: string }> };
    const seen = (ev.events ?? []).filter((e) => /^(ingress\.cut|health\.|instance\.)/.test(e.kind)).map((e) => `${e.kind}: ${e.message}`);
    assert.fail(`failed GETs: ${res.failed} (${res.partial.length} cut after their headers came, at ${JSON.stringify(res.partial.map((p) => p.headersAt - killedAt))} ms from the kill's end): ` +
      `${res.errors.join('; ')}\nevents:\n${seen.join('\n')}`);
  }
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
  const cuts = events.filter((e) => e.kind === 'ingress.cut' && !e.message.startsWith('edge host '));
  assert.ok(cuts.length >= 1, 'the ingress says it cut connections to an unreachable instance');
  for (const e of cuts) assert.ok(lost.some((id) => e.message.startsWith(`instance ${id} is unreachable`)), e.message);
  // The edge host: every slow GET answered 200 by a live instance, long before nginx's 60 s read
  // timeout (without the cut, those sent to the dead host wait for it); the agent logged its cuts there.
  const slowDone = await Promise.all(slow);
  console.log(`# figures: slow GETs through the edge host: ${slowDone.map((r) => `${r.status}/${r.ms}ms`).join(' ')}`);
  for (const r of slowDone) {
    assert.equal(r.status, 200, `slow GET through the edge host: ${r.status} ${r.body.slice(0, 200)}`);
    assert.ok(!lost.includes(r.body), `answered by ${r.body}, not by an instance of the dead host`);
    assert.ok(r.ms < 40_000, `answered in ${r.ms} ms`);
  }
  const lostAddrs = new Set(before.filter((i) => i.host === hn(3)).map((i) => `${i.address}:${i.port}`));
  const cutLines = edge.log.split('\n').filter((l) => l.includes('connections to an unreachable backend cut'));
  const counted = cutLines.map((l) => JSON.parse(l) as { where: string; cut: number });
  assert.ok(counted.length >= 1 && counted.every((c) => lostAddrs.has(c.where)), `the edge agent cut connections to the dead host's instances only: ${cutLines.join('\n')}\n${edge.log.slice(-2000)}`);
  assert.ok(counted.some((c) => c.cut >= 1), `at least one slow GET was in flight there when it died: ${cutLines.join('\n')}`);
  // The agent reported them with its next poll: `ingress.cut` events naming the edge host and the lost instances.
  const edgeCuts = await waitFor(async () => {
    const evs = ((await h.api('GET', `/v1/events?app=${APP}&limit=500`)).json as { events: Array<{ kind: string; message: string }> }).events;
    const x = evs.filter((e) => e.kind === 'ingress.cut' && e.message.startsWith(`edge host ${hn(1)}: `));
    return x.length > 0 ? x : undefined;
  }, { timeoutMs: 15_000, intervalMs: 200, what: 'the edge host\'s ingress.cut event' });
  for (const e of edgeCuts) assert.ok(lost.some((id) => e.message.startsWith(`edge host ${hn(1)}: instance ${id} is unreachable`)), e.message);
  assert.ok(slowDone.some((r) => r.ms > 6500), 'a slow GET was retried after the cut (answered after the kill, the detection and another 6 s)');
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
