/**
 * The edge agent's sync logic (edge-agent.ts) with a recording ingress and a scripted control plane:
 * applies a new generation and saves it, skips what it has, keeps serving when the control plane is
 * away (and says why at the next poll), adopts a new epoch with the same table without applying, starts
 * from the saved table without any control plane, and refuses a malformed answer before nginx sees it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IngressRoute } from '../core/ports.ts';
import type { EdgeConfig } from '../core/edge.ts';
import { silentLogger } from '../lib/logger.ts';
import { waitFor } from '../lib/backoff.ts';
import { EdgeAgent, EdgeHttpError, checkEdgeConfig, type EdgePoll } from './edge-agent.ts';
import { EdgeFeed } from './edge-feed.ts';

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
  const agent = new EdgeAgent({ ingress, fetchConfig: cp.fetch, stateDir: dir, logger: silentLogger, waitSeconds: 1, retryMinMs: 5, retryMaxMs: 20 });
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
  const agent = new EdgeAgent({ ingress, fetchConfig: cp.fetch, stateDir: dir, logger: silentLogger, waitSeconds: 1, retryMinMs: 5, retryMaxMs: 40 });
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
  const agent = new EdgeAgent({ ingress, fetchConfig: cp.fetch, stateDir: dir, logger: silentLogger, waitSeconds: 1, retryMinMs: 5, retryMaxMs: 20 });
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
  const agent = new EdgeAgent({
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
  const agent2 = new EdgeAgent({ ingress: ingress2, stateDir: dir, logger: silentLogger, retryMinMs: 5, fetchConfig: async () => { throw new Error('down'); } });
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
