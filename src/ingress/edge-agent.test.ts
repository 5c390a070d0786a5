/**
 * The edge agent's sync logic (edge-agent.ts) with a recording ingress and a scripted control plane:
 * applies a new generation and saves it, skips what it has, keeps serving when the control plane is
 * away (and says why at the next poll), adopts a new epoch with the same table without applying, starts
 * from the saved table without any control plane, and refuses a malformed answer before nginx sees it.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IngressRoute } from '../core/ports.ts';
import { CUT_REPORT_RE, edgeAnswer, edgeCutTargets, formatCutReport, parseCutReport, type EdgeCert, type EdgeConfig } from '../core/edge.ts';
import { silentLogger } from '../lib/logger.ts';
import { waitFor } from '../lib/backoff.ts';
import { EdgeAgent, EdgeHttpError, checkEdgeConfig, type EdgePoll } from './edge-agent.ts';
import { EdgeFeed } from './edge-feed.ts';

/**
 * Every agent a test starts is stopped after it, passed or failed: an agent left polling after a failed
 * assertion keeps the event loop alive and the test file never ends (the unit stage hung on it).
 */
const live = new Set<EdgeAgent>();
class TestAgent extends EdgeAgent {
  constructor(o: ConstructorParameters<typeof EdgeAgent>[0]) {
    super(o);
    live.add(this);
  }
}
afterEach(async () => {
  const agents = [...live];
  live.clear();
  await Promise.all(agents.map((a) => a.stop()));
});

const route = (port: number): IngressRoute => ({ upstream: 'shop.prod.web.0', path: '/', backends: [{ address: '10.0.0.7', port, instance: `i${port}` }] });

class RecordingIngress {
  applied: IngressRoute[][] = [];
  starts = 0;
  flushes = 0;
  failFlush: Error | undefined;
  async start(): Promise<void> {
    this.starts++;
  }
  apply(routes: IngressRoute[]): void {
    this.applied.push(routes);
  }
  async flush(): Promise<void> {
    this.flushes++;
    if (this.failFlush) throw this.failFlush;
  }
}

/** A control plane backed by a real EdgeFeed (the same long-poll rule as the API), that can be "down". */
function control(feed: EdgeFeed) {
  const polls: EdgePoll[] = [];
  const c = {
    down: false as false | Error,
    polls,
    fetch: async (p: EdgePoll, signal: AbortSignal): Promise<EdgeConfig> => {
      polls.push(p);
      const down = c.down;
      if (down) {
        await new Promise((r) => setTimeout(r, 5));
        throw down;
      }
      feed.contact('edge-1', { address: '10.0.0.9', ...(p.generation !== undefined ? { applied: p.generation } : {}), ...(p.epoch ? { appliedEpoch: p.epoch } : {}), ...(p.error ? { error: p.error } : {}) });
      return JSON.parse(JSON.stringify(await feed.wait({ ...(p.epoch ? { epoch: p.epoch } : {}), ...(p.generation !== undefined ? { generation: p.generation } : {}) }, 200, signal))) as EdgeConfig;
    },
  };
  return c;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-edge-agent-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('applies each new generation once, saves it, and waits (long poll) while nothing changes', () => withDir(async (dir) => {
  const feed = new EdgeFeed({ now: () => 1000 }, 'aa');
  feed.publish([route(20001)]);
  const cp = control(feed);
  const ingress = new RecordingIngress();
  const agent = new TestAgent({ ingress, fetchConfig: cp.fetch, stateDir: dir, logger: silentLogger, waitSeconds: 1, retryMinMs: 5, retryMaxMs: 20 });
  await agent.start();
  assert.equal(ingress.starts, 1);
  await waitFor(async () => agent.state?.generation === 1, { timeoutMs: 5000, intervalMs: 5, what: 'generation 1 applied' });
  assert.deepEqual(ingress.applied, [[route(20001)]]);
  assert.equal(ingress.flushes, 1, 'flushed: live before it counts as applied');
  const saved = JSON.parse(await readFile(join(dir, 'edge-state.json'), 'utf8'));
  assert.deepEqual([saved.epoch, saved.generation, saved.routes], ['aa', 1, [route(20001)]]);
  // Idle polls (the feed holds each for 200 ms) apply nothing.
  await waitFor(async () => cp.polls.length >= 3, { timeoutMs: 5000, intervalMs: 5, what: 'idle polls' });
  assert.equal(ingress.applied.length, 1);
  assert.deepEqual(cp.polls.at(-1), { epoch: 'aa', generation: 1, waitSeconds: 1 }, 'each poll says what this host serves');
  assert.deepEqual(feed.hosts().map((h) => [h.host, h.inSync]), [['edge-1', true]]);
  feed.publish([route(20001), { ...route(20002), upstream: 'shop.prod.api.0', path: '/api' }]);
  await waitFor(async () => agent.state?.generation === 2, { timeoutMs: 5000, intervalMs: 5, what: 'generation 2 applied' });
  assert.equal(ingress.applied.length, 2);
  await agent.stop();
}));

test('control plane away: nginx keeps what it has, the agent retries with backoff and reports why once back', () => withDir(async (dir) => {
  const feed = new EdgeFeed({ now: () => 1000 }, 'aa');
  feed.publish([route(20001)]);
  const cp = control(feed);
  const ingress = new RecordingIngress();
  const agent = new TestAgent({ ingress, fetchConfig: cp.fetch, stateDir: dir, logger: silentLogger, waitSeconds: 1, retryMinMs: 5, retryMaxMs: 40 });
  await agent.start();
  await waitFor(async () => agent.state?.generation === 1, { timeoutMs: 5000, intervalMs: 5, what: 'generation 1 applied' });
  cp.down = new Error('connect ECONNREFUSED 10.0.0.5:7070');
  const before = cp.polls.length;
  await waitFor(async () => cp.polls.length >= before + 4, { timeoutMs: 5000, intervalMs: 5, what: 'retries' });
  assert.equal(ingress.applied.length, 1, 'nothing applied (nothing emptied) while the control plane is away');
  assert.equal(agent.state?.generation, 1);
  assert.match(agent.lastError ?? '', /ECONNREFUSED/);
  // The control plane returns with a new epoch and the same table: no apply, just its numbering.
  const feed2 = new EdgeFeed({ now: () => 2000 }, 'bb');
  feed2.publish([route(20001)]);
  const cp2 = control(feed2);
  (agent as unknown as { o: { fetchConfig: unknown } }).o.fetchConfig = cp2.fetch;
  await waitFor(async () => agent.state?.epoch === 'bb', { timeoutMs: 5000, intervalMs: 5, what: 'new epoch adopted' });
  assert.equal(ingress.applied.length, 1, 'the same table under a new epoch is not applied again');
  assert.match(cp2.polls[0]?.error ?? '', /ECONNREFUSED/, `the first poll after the outage says what failed: ${JSON.stringify(cp2.polls)}`);
  await waitFor(async () => feed2.hosts()[0]?.inSync === true, { timeoutMs: 5000, intervalMs: 5, what: 'in sync with the new epoch' });
  await agent.stop();
}));

test('a failed apply is not saved or reported as applied; the next poll retries it', () => withDir(async (dir) => {
  const feed = new EdgeFeed({ now: () => 1000 }, 'aa');
  feed.publish([route(20001)]);
  const cp = control(feed);
  const ingress = new RecordingIngress();
  ingress.failFlush = new Error('nginx -t refused the candidate');
  const agent = new TestAgent({ ingress, fetchConfig: cp.fetch, stateDir: dir, logger: silentLogger, waitSeconds: 1, retryMinMs: 5, retryMaxMs: 20 });
  await agent.start();
  await waitFor(async () => ingress.flushes >= 2, { timeoutMs: 5000, intervalMs: 5, what: 'retried apply' });
  assert.equal(agent.state, undefined);
  await assert.rejects(readFile(join(dir, 'edge-state.json')), /ENOENT/);
  await waitFor(async () => /nginx -t refused/.test(feed.hosts()[0]?.error ?? ''), { timeoutMs: 5000, intervalMs: 5, what: 'error reported' });
  ingress.failFlush = undefined;
  await waitFor(async () => agent.state?.generation === 1, { timeoutMs: 5000, intervalMs: 5, what: 'applied after the fix' });
  await agent.stop();
}));

test('a restarted agent serves the saved table before (and without) any answer of the control plane', () => withDir(async (dir) => {
  await writeFile(join(dir, 'edge-state.json'), JSON.stringify({ epoch: 'aa', generation: 7, routes: [route(20003)], appliedAt: 1 }));
  const ingress = new RecordingIngress();
  const polls: EdgePoll[] = [];
  const agent = new TestAgent({
    ingress, stateDir: dir, logger: silentLogger, retryMinMs: 5, retryMaxMs: 20,
    fetchConfig: async (p) => {
      polls.push(p);
      throw new EdgeHttpError(503, 'control plane answered 503');
    },
  });
  await agent.start();
  assert.deepEqual(ingress.applied, [[route(20003)]], 'applied before start(): a fresh nginx starts with it, an adopted one keeps it');
  assert.equal(ingress.flushes, 1);
  assert.equal(agent.state?.generation, 7);
  await waitFor(async () => polls.length >= 2, { timeoutMs: 5000, intervalMs: 5, what: 'polls' });
  assert.deepEqual([polls[0]?.epoch, polls[0]?.generation], ['aa', 7]);
  await agent.stop();
  // An unreadable state file is ignored (the agent waits for the control plane), not a crash.
  await writeFile(join(dir, 'edge-state.json'), '{"epoch": 1');
  const ingress2 = new RecordingIngress();
  const agent2 = new TestAgent({ ingress: ingress2, stateDir: dir, logger: silentLogger, retryMinMs: 5, fetchConfig: async () => { throw new Error('down'); } });
  await agent2.start();
  assert.deepEqual(ingress2.applied, []);
  await agent2.stop();
}));

test('a malformed answer never reaches nginx', () => {
  assert.throws(() => checkEdgeConfig(null), /not an edge config/);
  assert.throws(() => checkEdgeConfig({ epoch: 'a', generation: 1 }), /not an edge config/);
  assert.throws(() => checkEdgeConfig({ epoch: 'a', generation: 1.5, routes: [] }), /not an edge config/);
  assert.throws(() => checkEdgeConfig({ epoch: 'a', generation: 1, routes: [{ upstream: 'x', path: '/' }] }), /malformed route/);
  assert.throws(() => checkEdgeConfig({ epoch: 'a', generation: 1, routes: [{ upstream: 'x', path: '/', backends: [{ address: '1.2.3.4', port: '80' }] }] }), /x has a malformed backend/);
  assert.equal(checkEdgeConfig({ epoch: 'a', generation: 1, routes: [route(1)] }).generation, 1);
});

const CERT = (host: string, fp: string, key = 'KEY'): EdgeCert => ({
  host, fingerprint: fp.repeat(64 / fp.length), certPem: `-----BEGIN CERTIFICATE-----\n${host}\n-----END CERTIFICATE-----\n`,
  keyPem: `-----BEGIN PRIVATE KEY-----\n${key}\n-----END PRIVATE KEY-----\n`,
});

/** A control plane answering as the API does (edgeAnswer): keys only when `overTls`. */
function tlsControl(feed: EdgeFeed, certs: Map<string, EdgeCert>, overTls: boolean) {
  const polls: EdgePoll[] = [];
  return {
    polls,
    fetch: async (p: EdgePoll, signal: AbortSignal): Promise<EdgeConfig> => {
      polls.push(p);
      feed.contact('edge-1', { address: '10.0.0.9', ...(p.generation !== undefined ? { applied: p.generation } : {}), ...(p.epoch ? { appliedEpoch: p.epoch } : {}) });
      const t = await feed.wait({ ...(p.epoch ? { epoch: p.epoch } : {}), ...(p.generation !== undefined ? { generation: p.generation } : {}) }, 200, signal);
      return checkEdgeConfig(JSON.parse(JSON.stringify(edgeAnswer(t, overTls, (refs) => refs.map((r) => certs.get(r.host)!)))));
    },
  };
}

test('certificates: written 0600 to the key directory, routes rendered with them (redirect/HSTS options kept), a new one swapped in and the old files removed; the state file holds no key', () => withDir(async (dir) => {
  const certDir = join(dir, 'tls');
  const acme = join(dir, 'acme');
  const feed = new EdgeFeed({ now: () => 1000 }, 'aa');
  const certs = new Map([['shop.example', CERT('shop.example', 'a1')]]);
  const r = { ...route(20001), host: 'shop.example', https: { wantsCert: true, redirect: true, hstsSeconds: 60 } };
  const plain = { ...route(20002), upstream: 'other.prod.web.0', host: 'other.example' };
  feed.publish([r, plain], [{ host: 'shop.example', fingerprint: certs.get('shop.example')!.fingerprint }]);
  const cp = tlsControl(feed, certs, true);
  const ingress = new RecordingIngress();
  const agent = new TestAgent({ ingress, fetchConfig: cp.fetch, stateDir: dir, certDir, challengeDir: acme, logger: silentLogger, waitSeconds: 1, retryMinMs: 5, retryMaxMs: 20 });
  await agent.start();
  await waitFor(async () => agent.state?.generation === 1, { timeoutMs: 5000, intervalMs: 5, what: 'generation 1 applied' });
  const base1 = join(certDir, `shop.example.${'a1'.repeat(8)}`);
  assert.deepEqual(ingress.applied.at(-1), [{ ...r, tls: { certFile: `${base1}.crt`, keyFile: `${base1}.key` } }, plain]);
  assert.equal((await stat(certDir)).mode & 0o777, 0o700);
  assert.equal((await stat(`${base1}.key`)).mode & 0o777, 0o600);
  assert.match(await readFile(`${base1}.key`, 'utf8'), /PRIVATE KEY-----\nKEY\n/);
  const saved = await readFile(join(dir, 'edge-state.json'), 'utf8');
  assert.doesNotMatch(saved, /PRIVATE KEY|BEGIN CERTIFICATE/, 'the state file on disk names certificates by fingerprint only');
  assert.deepEqual(JSON.parse(saved).certs, [{ host: 'shop.example', fingerprint: 'a1'.repeat(32) }]);

  // A challenge alone: its file is written for nginx, no apply (no reload).
  const applies = ingress.applied.length;
  feed.setChallenges([{ token: 'tok-1', keyAuthorization: 'tok-1.thumb' }]);
  await waitFor(async () => agent.state?.generation === 2, { timeoutMs: 5000, intervalMs: 5, what: 'generation 2' });
  assert.equal(await readFile(join(acme, 'tok-1'), 'utf8'), 'tok-1.thumb');
  assert.equal((await stat(join(acme, 'tok-1'))).mode & 0o777, 0o644);
  assert.equal(ingress.applied.length, applies, 'a challenge is no nginx change');
  // The control plane waits until the edge host serves it (its next poll says generation 2).
  assert.deepEqual(await feed.waitApplied(5000), { behind: [] });
  feed.setChallenges([]);
  await waitFor(async () => readFile(join(acme, 'tok-1')).then(() => false, () => true), { timeoutMs: 5000, intervalMs: 5, what: 'the challenge file removed' });

  // Renewal: a new fingerprint is new files and one apply; the old files go after it.
  certs.set('shop.example', CERT('shop.example', 'b2', 'NEWKEY'));
  feed.publish([r, plain], [{ host: 'shop.example', fingerprint: 'b2'.repeat(32) }]);
  const base2 = join(certDir, `shop.example.${'b2'.repeat(8)}`);
  await waitFor(async () => agent.state?.certs?.[0]?.fingerprint === 'b2'.repeat(32), { timeoutMs: 5000, intervalMs: 5, what: 'the new certificate applied' });
  assert.deepEqual(ingress.applied.at(-1)?.[0]?.tls, { certFile: `${base2}.crt`, keyFile: `${base2}.key` });
  // The old files go after the apply is saved (the agent's state says b2 a moment before the sweep ends).
  const only2 = [`shop.example.${'b2'.repeat(8)}.crt`, `shop.example.${'b2'.repeat(8)}.key`];
  await waitFor(async () => JSON.stringify((await readdir(certDir)).sort()) === JSON.stringify(only2), { timeoutMs: 5000, intervalMs: 5, what: 'the old certificate files removed' });
  assert.deepEqual((await readdir(certDir)).sort(), only2);
  await agent.stop();

  // A restart with the key files still on the tmpfs serves HTTPS at once; with them gone (a reboot), that route is HTTP until the control plane answers.
  const again = new RecordingIngress();
  const down = async (): Promise<EdgeConfig> => { throw new Error('down'); };
  const a2 = new TestAgent({ ingress: again, fetchConfig: down, stateDir: dir, certDir, logger: silentLogger, retryMinMs: 5 });
  await a2.start();
  assert.equal(again.applied[0]?.[0]?.tls?.keyFile, `${base2}.key`);
  await a2.stop();
  await rm(certDir, { recursive: true });
  const rebooted = new RecordingIngress();
  const a3 = new TestAgent({ ingress: rebooted, fetchConfig: down, stateDir: dir, certDir, logger: silentLogger, retryMinMs: 5 });
  await a3.start();
  assert.equal(rebooted.applied[0]?.[0]?.tls, undefined);
  await a3.stop();
}));

test('certificates over plain HTTP: the control plane withholds the keys, the agent says why (log and report) and serves those routes over HTTP; an agent without a key directory never writes keys', () => withDir(async (dir) => {
  const feed = new EdgeFeed({ now: () => 1000 }, 'aa');
  const certs = new Map([['shop.example', CERT('shop.example', 'a1')]]);
  const r = { ...route(20001), host: 'shop.example', https: { wantsCert: true, redirect: true } };
  feed.publish([r], [{ host: 'shop.example', fingerprint: 'a1'.repeat(32) }]);
  const cp = tlsControl(feed, certs, false);
  const ingress = new RecordingIngress();
  const agent = new TestAgent({ ingress, fetchConfig: cp.fetch, stateDir: dir, certDir: join(dir, 'tls'), logger: silentLogger, waitSeconds: 1, retryMinMs: 5 });
  await agent.start();
  await waitFor(async () => agent.state?.generation === 1, { timeoutMs: 5000, intervalMs: 5, what: 'applied' });
  assert.deepEqual(ingress.applied.at(-1), [r], 'no certificate: plain HTTP');
  assert.match(agent.certsNotServed ?? '', /never sent over plain HTTP/);
  await waitFor(async () => /never sent over plain HTTP/.test(cp.polls.at(-1)?.error ?? ''), { timeoutMs: 5000, intervalMs: 5, what: 'reported' });
  assert.deepEqual(await readdir(join(dir, 'tls')), []);
  await agent.stop();

  // Over TLS but no tmpfs (certDir undefined): keys sent are not written anywhere.
  const dir2 = join(dir, 'b');
  const cp2 = tlsControl(feed, certs, true);
  const ingress2 = new RecordingIngress();
  const agent2 = new TestAgent({ ingress: ingress2, fetchConfig: cp2.fetch, stateDir: dir2, certsRefused: 'cannot mount a tmpfs', logger: silentLogger, waitSeconds: 1, retryMinMs: 5 });
  await agent2.start();
  await waitFor(async () => agent2.state?.generation === 1, { timeoutMs: 5000, intervalMs: 5, what: 'applied' });
  assert.deepEqual(ingress2.applied.at(-1), [r]);
  assert.equal(agent2.certsNotServed, 'cannot mount a tmpfs');
  assert.deepEqual(await readdir(dir2), ['edge-state.json']);
  await agent2.stop();
}));

test('the feed: waitApplied waits for the edge hosts that asked lately, not for ones long gone; a malformed certificate or challenge never reaches the disk', async () => {
  let now = 1000;
  const feed = new EdgeFeed({ now: () => now }, 'aa');
  feed.publish([route(1)]);
  assert.deepEqual(await feed.waitApplied(10), { behind: [] }, 'no edge host: nothing to wait for');
  feed.contact('gone', { address: 'x', applied: 1, appliedEpoch: 'aa' });
  now += 120_000;
  feed.contact('edge-1', { address: 'x', applied: 1, appliedEpoch: 'aa' });
  feed.setChallenges([{ token: 't', keyAuthorization: 't.k' }]);
  const waiting = feed.waitApplied(5000);
  setTimeout(() => feed.contact('edge-1', { address: 'x', applied: 2, appliedEpoch: 'aa' }), 20);
  assert.deepEqual(await waiting, { behind: [] });
  feed.setChallenges([]);
  assert.deepEqual(await feed.waitApplied(30), { behind: ['edge-1'] }, 'bounded: says who is behind');

  const ok = { epoch: 'a', generation: 1, routes: [] };
  assert.throws(() => checkEdgeConfig({ ...ok, certs: [{ ...CERT('../etc', 'a1') }] }), /malformed host/);
  assert.throws(() => checkEdgeConfig({ ...ok, certs: [{ ...CERT('a.example', 'a1'), fingerprint: '../x' }] }), /malformed fingerprint/);
  assert.throws(() => checkEdgeConfig({ ...ok, certs: [{ ...CERT('a.example', 'a1'), keyPem: 'x' }] }), /not PEM/);
  assert.throws(() => checkEdgeConfig({ ...ok, challenges: [{ token: '../x', keyAuthorization: 'a' }] }), /malformed ACME challenge/);
  assert.equal(checkEdgeConfig({ ...ok, certs: [CERT('*.a.example', 'a1')], challenges: [{ token: 'a_b-c', keyAuthorization: 'a_b-c.X' }] }).generation, 1);
});

test('a dead host: the agent cuts its nginx\'s connections to the backends named unreachable once they are out of its table; never a served one, a drained one, its own or loopback', () => withDir(async (dir) => {
  let now = 1000;
  const feed = new EdgeFeed({ now: () => now }, 'aa');
  const two = (ports: number[], address = '10.0.0.7'): IngressRoute[] => [{ upstream: 'shop.prod.web.0', path: '/', backends: ports.map((port) => ({ address, port, instance: `i${port}` })) }];
  feed.publish(two([20001, 20002, 20003]));
  const cp = tlsControl(feed, new Map(), false);
  const ingress = new RecordingIngress();
  const calls: { targets: string[]; afterApplies: number }[] = [];
  const cut = async (targets: readonly { address: string; port: number }[]): Promise<number> => {
    calls.push({ targets: targets.map((t) => `${t.address}:${t.port}`), afterApplies: ingress.applied.length });
    return 2;
  };
  const agent = new TestAgent({ ingress, fetchConfig: cp.fetch, stateDir: dir, logger: silentLogger, waitSeconds: 1, retryMinMs: 5, retryMaxMs: 20, cut, localAddresses: () => ['10.0.0.9', 'fe80::1%eth0'] });
  await agent.start();
  await waitFor(async () => agent.state?.generation === 1, { timeoutMs: 5000, intervalMs: 5, what: 'generation 1 applied' });

  // A rolling update's old instance leaves the table for an ordinary reason: it drains, nothing is cut.
  feed.publish(two([20001, 20002]));
  await waitFor(async () => agent.state?.generation === 2, { timeoutMs: 5000, intervalMs: 5, what: 'generation 2 applied' });
  // Found unreachable while still in the table (the route removal comes next): not cut yet, nginx still routes there.
  feed.unreachable('10.0.0.7', 20002);
  // The poll after generation 3 starts once that round (and any cut of it) is done.
  await waitFor(async () => cp.polls.some((p) => p.generation === 3), { timeoutMs: 5000, intervalMs: 5, what: 'generation 3 seen' });
  assert.equal(calls.length, 0, 'nothing cut while it is served, nor the drained one');
  // Out of the table: cut once, after nginx got the table without it.
  feed.publish(two([20001]));
  await waitFor(async () => calls.length === 1, { timeoutMs: 5000, intervalMs: 5, what: 'the cut' });
  assert.deepEqual(calls[0], { targets: ['10.0.0.7:20002'], afterApplies: 3 });
  assert.deepEqual(agent.cuts, [{ address: '10.0.0.7', port: 20002, connections: 2 }]);
  // Later changes do not cut it again; the old instance (20003) was never named.
  feed.publish(two([20001, 20004]));
  await waitFor(async () => cp.polls.some((p) => p.generation === 5), { timeoutMs: 5000, intervalMs: 5, what: 'generation 5 applied' });
  assert.equal(calls.length, 1);
  // Its own addresses and loopback are never cut, even when named (a bug or a forged feed); a second find of the same backend is cut again.
  now += 1000;
  feed.unreachable('10.0.0.9', 20010);
  feed.unreachable('127.0.0.1', 20011);
  feed.unreachable('fe80::1', 20012);
  feed.unreachable('0.0.0.0', 20013);
  feed.unreachable('10.0.0.7', 20002);
  await waitFor(async () => calls.length === 2, { timeoutMs: 5000, intervalMs: 5, what: 'the second cut' });
  const g = feed.current().generation;
  await waitFor(async () => cp.polls.some((p) => p.generation === g), { timeoutMs: 5000, intervalMs: 5, what: 'in sync' });
  assert.deepEqual(calls.map((c) => c.targets), [['10.0.0.7:20002'], ['10.0.0.7:20002']]);
  // The feed forgets them after a minute (at its next change): the agent forgets its keys too.
  now += 61_000;
  feed.publish(two([20001]));
  const g2 = feed.current().generation;
  await waitFor(async () => cp.polls.some((p) => p.generation === g2), { timeoutMs: 5000, intervalMs: 5, what: 'in sync' });
  assert.deepEqual(feed.current().unreachable, []);
  assert.equal(calls.length, 2);
  // Each cut was reported once, with the poll after it (the server records it as an event naming this host).
  assert.deepEqual(cp.polls.filter((p) => p.cut).map((p) => p.cut), ['10.0.0.7:20002=2', '10.0.0.7:20002=2']);
  await agent.stop();
}));

test('a failed cut is logged and changes nothing else; the feed keeps at most 256 unreachable backends, the newest', () => withDir(async (dir) => {
  const feed = new EdgeFeed({ now: () => 1000 }, 'aa');
  feed.publish([route(20001)]);
  const cp = control(feed);
  const ingress = new RecordingIngress();
  const warnings: string[] = [];
  const logger = { ...silentLogger, child: () => logger, warn: (o: unknown, m?: string) => void warnings.push(`${m ?? ''} ${JSON.stringify(o)}`) } as unknown as typeof silentLogger;
  const agent = new TestAgent({ ingress, fetchConfig: cp.fetch, stateDir: dir, logger, waitSeconds: 1, retryMinMs: 5, retryMaxMs: 20,
    cut: async () => { throw new Error('ss: Operation not permitted'); }, localAddresses: () => [] });
  await agent.start();
  await waitFor(async () => agent.state?.generation === 1, { timeoutMs: 5000, intervalMs: 5, what: 'generation 1 applied' });
  feed.unreachable('10.0.0.8', 30000);
  await waitFor(async () => warnings.some((w) => w.includes('not cut') && w.includes('10.0.0.8:30000') && w.includes('Operation not permitted')), { timeoutMs: 5000, intervalMs: 5, what: 'the warning' });
  assert.equal(agent.lastError, undefined, 'the poll loop is not in error');
  assert.deepEqual(agent.cuts, []);
  assert.ok(cp.polls.every((p) => p.cut === undefined), 'nothing cut, nothing reported');
  for (let p = 1; p <= 300; p++) feed.unreachable('10.0.1.1', p);
  const list = feed.current().unreachable;
  assert.equal(list.length, 256);
  assert.deepEqual([list[0]!.port, list.at(-1)!.port], [45, 300]);
  await agent.stop();
}));

test('edgeCutTargets and the answer check: only IP addresses and ports reach `ss`', () => {
  const routes: IngressRoute[] = [route(20001)];
  const u = (address: string, port: number, at = 1) => ({ address, port, at });
  const r = edgeCutTargets([u('10.0.0.7', 20001), u('10.0.0.7', 20002), u('10.0.0.7', 20002), u('::1', 1), u('::ffff:127.0.0.1', 2), u('127.8.0.1', 3),
    u('10.0.0.9', 4), u('1.2.3.4; reboot', 5), u('-K', 6), u('10.0.0.8', 0), u('10.0.0.8', 70000), u('10.0.0.8', 1.5), u('300.0.0.1', 7), u('fd00::7', 8), u('10.0.0.6', 9)],
  routes, new Set(['10.0.0.9']), new Set(['10.0.0.6:9@1']));
  assert.deepEqual(r.cut.map((t) => `${t.address}:${t.port}`), ['10.0.0.7:20002', 'fd00::7:8']);
  assert.deepEqual(r.keys, ['10.0.0.7:20002@1', 'fd00::7:8@1']);
  const base = { epoch: 'a', generation: 1, routes: [] };
  for (const bad of [{ address: '1.2.3.4 -K', port: 1, at: 1 }, { address: '1.2.3.4', port: 0, at: 1 }, { address: '1.2.3.4', port: 80 }, { address: 'evil.example', port: 80, at: 1 }, null]) {
    assert.throws(() => checkEdgeConfig({ ...base, unreachable: [bad] }), /malformed unreachable backend/);
  }
  assert.throws(() => checkEdgeConfig({ ...base, unreachable: 'x' }), /unreachable is not a list/);
  assert.equal(checkEdgeConfig({ ...base, unreachable: [{ address: '10.0.0.7', port: 80, at: 5 }] }).unreachable?.length, 1);
  // The report of cuts: ADDRESS:PORT=N, IPv6 too; entries with a bad address are left out.
  const rep = [{ address: '10.0.0.7', port: 20002, connections: 2 }, { address: 'fd00::7', port: 8, connections: 1 }];
  assert.equal(formatCutReport(rep), '10.0.0.7:20002=2,fd00::7:8=1');
  assert.match(formatCutReport(rep), CUT_REPORT_RE);
  assert.deepEqual(parseCutReport(formatCutReport(rep)), rep);
  assert.deepEqual(parseCutReport('300.1.1.1:80=1,10.0.0.7:0=1,10.0.0.7:80=1'), [{ address: '10.0.0.7', port: 80, connections: 1 }]);
  assert.doesNotMatch('10.0.0.7:80=1;reboot', CUT_REPORT_RE);
  // The API's answer carries them only when there are some.
  const feed = new EdgeFeed({ now: () => 7 }, 'aa');
  feed.publish([]);
  assert.equal(edgeAnswer(feed.current(), false, undefined).unreachable, undefined);
  feed.unreachable('10.0.0.7', 80);
  assert.deepEqual(edgeAnswer(feed.current(), false, undefined).unreachable, [{ address: '10.0.0.7', port: 80, at: 7 }]);
});
