/**
 * Pools as objects against a real `berth server` on the plain engine (one host, in pool `default`):
 * grants and quotas still apply to `default`. Through the CLI: `berth pools`, `berth pool quota`,
 * `grant`, `revoke`; a member's deploy over the quota or into a pool not granted to their team is
 * refused with a clear message and exit code, nothing recorded, nothing started; owners bypass
 * grants, not quotas; a member cannot grant themselves; the audit log keeps every change.
 * Port range 20850-20899 (helper "pools": 20850-20999).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness } from './helpers/harness.ts';

describe('pools: quotas and grants on the one-host engine', () => {
  let h: Harness;
  let dir: string;
  let ann: Record<string, string>;
  const spec = (replicas: number) => `name: shop
services:
  worker:
    image: berth/busybox
    command: ["sleep", "600"]
    stop_grace_period: 1s
    deploy:
      replicas: ${replicas}
      resources:
        limits:
          cpus: "0.1"
          memory: 32m
`;
  const file = (n: number) => join(dir, `shop-${n}.yaml`);

  before(async () => {
    h = await Harness.create({ portRange: '20850-20899' });
    await h.startServer();
    dir = await mkdtemp(join(tmpdir(), 'berth-pools-'));
    for (const n of [1, 2, 3]) await writeFile(file(n), spec(n));
    // People through the API (their CLI is test/teams.test.ts's subject; each CLI run costs ~1 s here).
    for (const team of ['web', 'data']) assert.equal((await h.api('POST', '/v1/teams', { name: team })).status, 201);
    assert.equal((await h.api('POST', '/v1/users', { name: 'ann', password: 'correct horse battery' })).status, 201);
    assert.equal((await h.api('POST', '/v1/grants', { user: 'ann', role: 'deployer', team: 'web' })).status, 201);
    const s = await h.api('POST', '/v1/session', { user: 'ann', password: 'correct horse battery', client: 'cli' }, null);
    assert.equal(s.status, 201);
    ann = { BERTH_TOKEN: s.json.token as string };
  });
  after(async () => {
    await h?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('quota on default: refused over it (exit 4, quota/used/asked named, nothing recorded or started), admitted within, scale-up refused; a member cannot grant', async () => {
    // Reads and refusals that change nothing: side by side (each CLI run costs ~1 s here).
    const [pools, self, put, usage, bad] = await Promise.all([
      h.cli(['pools', '--json']),
      h.cli(['pool', 'grant', 'gpu', 'web'], { env: ann }),
      h.api('PUT', '/v1/pools/default/quota', { instances: 99 }, ann.BERTH_TOKEN),
      h.cli(['pool', 'quota', 'default']),
      h.cli(['pool', 'quota', 'default', '--memory', 'lots']),
    ]);
    assert.equal(pools.code, 0, pools.stderr);
    const def = JSON.parse(pools.stdout).pools.find((p: { name: string }) => p.name === 'default');
    assert.equal(def.hosts.length, 1, 'the plain engine is one host in default');
    assert.ok(def.capacity.nanoCpus > 0 && def.capacity.memoryBytes > 0);
    assert.deepEqual([def.teams, def.quotaShown], [['*'], 'no limit']);

    // A member may not set a quota or grant their team anything.
    assert.equal(self.code, 5, self.stderr);
    assert.match(self.stderr, /owner role/);
    assert.equal(put.status, 403);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /nothing to change: give --cpus, --memory or --instances/);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /memory: "lots" is not a size/);

    const q = await h.cli(['pool', 'quota', 'default', '--instances', '2', '--cpus', '1', '--json']);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(JSON.parse(q.stdout).pool.quotaShown, '1 CPU, 2 instances');

    const over = await h.cli(['deploy', '-f', file(3)], { env: ann, timeoutMs: 60_000 });
    assert.equal(over.code, 4, over.stderr + over.stdout);
    assert.match(over.stderr, /pool default's quota is exceeded: instances quota 2, used 0 by other apps and environments, asked 3 by shop\/prod \(worker 3\)/);
    assert.doesNotMatch(over.stderr, /at .*\.ts:\d+/, 'no stack trace');
    // Nothing recorded: no app (the team's claim released), no deployment, no container.
    const [app404, teams, none] = await Promise.all([h.api('GET', '/v1/apps/shop'), h.api('GET', '/v1/teams'), h.containers('shop')]);
    assert.equal(app404.status, 404);
    assert.deepEqual(teams.json.teams.find((t: { name: string }) => t.name === 'web').apps, []);
    assert.deepEqual(none, []);

    const ok = await h.cli(['deploy', '-f', file(2), '--json'], { env: ann, timeoutMs: 120_000 });
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    const [containers2, pools2] = await Promise.all([h.containers('shop'), h.cli(['pools', '--json'], { env: ann })]);
    assert.equal(containers2.filter((c) => c.running).length, 2);
    const after2 = JSON.parse(pools2.stdout).pools.find((p: { name: string }) => p.name === 'default');
    assert.deepEqual(after2.used, { instances: 2, nanoCpus: 2e8, memoryBytes: 2 * 32 * 1024 ** 2 });

    // Two refusals side by side: a member's scale-up, and the owner's deploy (held to quotas too).
    const [scale, owner] = await Promise.all([
      h.cli(['scale', 'shop', 'worker=3', '--force'], { env: ann }),
      h.cli(['deploy', '-f', file(3)], { timeoutMs: 60_000 }),
    ]);
    assert.equal(scale.code, 4, scale.stderr);
    assert.match(scale.stderr, /instances quota 2, used 0 by other apps and environments, asked 3/);
    assert.equal((await h.api('GET', '/v1/apps/shop')).json.services[0].desired, 2);
    assert.equal(owner.code, 4, owner.stderr);
    assert.match(owner.stderr, /instances quota 2, used 0 by other apps and environments, asked 3/);
  });

  test('grants on default: revoked from every team, web is refused (exit 5, pool and teams named); granted again, admitted; owners bypass; the audit log has every change', async () => {
    const revoke = await h.cli(['pool', 'revoke', 'default', '*', '--json']);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.deepEqual(JSON.parse(revoke.stdout).pool.teams, []);
    assert.equal((await h.cli(['pool', 'grant', 'default', 'data'])).code, 0);

    const refused = await h.cli(['deploy', '-f', file(1)], { env: ann, timeoutMs: 60_000 });
    assert.equal(refused.code, 5, refused.stderr + refused.stdout);
    assert.match(refused.stderr, /pool default is not granted to team web \(app shop belongs to team web; ann is in team web\): worker cannot be placed there — an owner grants it with `berth pool grant default web`/);
    // A member sees the pools open to them only, without other teams' names.
    const [unchanged, seenOut] = await Promise.all([h.api('GET', '/v1/apps/shop'), h.cli(['pools', '--json'], { env: ann })]);
    assert.equal(unchanged.json.services[0].desired, 2, 'nothing changed');
    const seen = JSON.parse(seenOut.stdout).pools;
    assert.deepEqual(seen.map((p: { name: string; teams: string[] }) => [p.name, p.teams]), [['default', []]], 'default shows (shop runs there), team data is not named');

    // The owner bypasses grants (not quotas): one replica fits.
    const byOwner = await h.cli(['deploy', '-f', file(1), '--json'], { timeoutMs: 120_000 });
    assert.equal(byOwner.code, 0, byOwner.stderr + byOwner.stdout);

    const grant = await h.cli(['pool', 'grant', 'default', 'web']);
    assert.equal(grant.code, 0, grant.stderr);
    assert.match(grant.stdout, /pool default: granted to team web \(teams: data, web\)/);
    const again = await h.cli(['deploy', '-f', file(2), '--json'], { env: ann, timeoutMs: 120_000 });
    assert.equal(again.code, 0, again.stderr + again.stdout);
    const [table, auditOut, verify] = await Promise.all([h.cli(['pools']), h.cli(['audit', '--json']), h.cli(['audit', 'verify'])]);
    assert.match(table.stdout, /^POOL\s+HOSTS\s+CPU/m);
    assert.match(table.stdout, /default .* 1 CPU, 2 instances\s+data,web/);

    const audit = JSON.parse(auditOut.stdout) as { entries?: { action: string; status: number; actorName: string }[] } | { action: string; status: number; actorName: string }[];
    const entries = Array.isArray(audit) ? audit : audit.entries ?? [];
    const pools = entries.filter((e) => e.action.includes('/v1/pools/')).map((e) => `${e.action} ${e.status} ${e.actorName}`);
    for (const want of ['POST /v1/pools/:pool/grants/:team 403 ann', 'PUT /v1/pools/:pool/quota 200 admin', 'DELETE /v1/pools/:pool/grants/:team 200 admin', 'POST /v1/pools/:pool/grants/:team 201 admin']) {
      assert.ok(pools.includes(want), `${want} in ${JSON.stringify(pools)}`);
    }
    assert.equal(verify.code, 0);
  });
});
