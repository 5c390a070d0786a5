/**
 * The portal on a real Swarm (issue 15 for issue 13's pages): two test hosts
 * (test/helpers/swarm-hosts.ts), a stateful service (a named volume) deployed through the real server,
 * Debian's Chromium driven by playwright-core. The app page says where the service is pinned; the
 * failover form shows the API's refusal of a move off a host that is up, then makes the forced move and
 * the instance appears on the other host live; a host that dies is on Home's attention list with its
 * host events. axe-core on each page. Ports 22000-22199 (test/port-ranges.test.ts). Run with a slot of
 * your own: BERTH_TESTHOSTS_SLOT=N.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { waitFor } from '../src/lib/backoff.ts';
import { Harness, ROOT } from './helpers/harness.ts';
import { axe, launch, shot } from './helpers/browser.ts';
import { startTestHosts, type TestHosts } from './helpers/swarm-hosts.ts';

const T = 30_000;
let th: TestHosts;
let h: Harness;
let dir: string;
let browser: Browser;
let page: Page;
let base: string;
const pageErrors: string[] = [];
const hn = (i: number): string => th.hosts[i - 1]!.name;

interface Db { pinned?: { host: string; volumes: string[] }; instances: { id: string; host: string; state: string }[] }
const db = async (): Promise<Db> => ((await h.status('keep')).services as (Db & { name: string })[]).find((s) => s.name === 'db')!;

before(async () => {
  execFileSync('node', [join(ROOT, 'scripts/build-web.mjs')], { stdio: 'inherit' });
  // Hosts die here: the Swarm marks one down after ~3 heartbeats (2 s each, not 5).
  th = await startTestHosts(2, { heartbeatS: 2 });
  dir = await mkdtemp(join(tmpdir(), 'berth-portal-cluster-'));
  h = await Harness.create({ portRange: '22000-22199', env: { BERTH_DOCKER_SOCKET: th.manager } });
  await h.startServer();
  base = `http://127.0.0.1:${h.apiPort}`;
  const file = join(dir, 'keep.yaml');
  // A host-network service (x-berth.port) with a health check: it keeps its data in volume "data".
  await writeFile(file, `name: keep
services:
  db:
    image: berth/busybox:latest
    command: ["sh", "-c", "mkdir -p /data/w && echo ok > /data/w/index.html && exec httpd -f -p $$PORT -h /data/w"]
    stop_grace_period: 1s
    volumes: [data:/data]
    x-berth:
      port: 8080
      health:
        http: {path: /, interval: 500ms}
volumes:
  data: {}
`);
  const d = await h.cli(['deploy', '-f', file], { timeoutMs: 150_000 });
  assert.equal(d.code, 0, d.stderr + d.stdout);
  browser = await launch();
  page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const r = await h.cli(['portal', '--json']);
  assert.equal(r.code, 0, r.stderr);
  await page.goto((JSON.parse(r.stdout) as { url: string }).url);
  await page.getByRole('heading', { name: 'Home' }).waitFor({ timeout: T });
});

after(async () => {
  if (process.exitCode) console.error(h?.serverLog.slice(-6000));
  await browser?.close();
  // The server and its local leftovers, and the test hosts: independent, so both at once.
  await Promise.all([h?.cleanup(), th?.down()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const accessible = async (name: string) => {
  assert.deepEqual(await axe(page), [], `${name}: axe-core violations`);
  await shot(page, name);
};

test('a stateful service says where it is pinned; a move off a host that is up shows the API refusal, the forced move lands on the other host live', async () => {
  const from = (await waitFor(async () => (await db()).pinned?.host, { timeoutMs: 60_000, intervalMs: 300, what: 'db pinned to its host' }))!;
  const to = from === hn(1) ? hn(2) : hn(1);
  await page.goto(`${base}/apps/keep`);
  const card = page.locator('section.service').filter({ has: page.getByRole('heading', { name: 'db' }) });
  await card.locator(`[data-pinned="${from}"]`).filter({ hasText: `pinned to ${from}` }).waitFor({ timeout: T });
  assert.match(await card.locator('[data-pinned]').textContent() ?? '', /volume data/);
  await accessible('cluster-app-pinned');
  const form = card.getByRole('group', { name: 'Failover of db' });
  await form.getByLabel('Move to host').selectOption(to);
  await form.getByRole('button', { name: 'Fail over' }).click();
  await card.getByRole('alert').filter({ hasText: `db's host ${from} is not down` }).waitFor({ timeout: T });
  assert.equal((await db()).pinned?.host, from, 'a refused move changes nothing');
  let navigations = 0;
  page.on('framenavigated', () => navigations++);
  await form.getByRole('button', { name: `Move to ${to} anyway: its volumes start empty` }).click();
  await card.getByRole('status').filter({ hasText: `Moving db from ${from} to ${to}` }).waitFor({ timeout: T });
  // Live: the new instance shows on the other host, and the pin follows it, without a reload.
  await card.locator('tr[data-instance]').filter({ hasText: to }).filter({ hasText: 'running' }).waitFor({ timeout: 90_000 });
  await card.locator(`[data-pinned="${to}"]`).waitFor({ timeout: T });
  assert.equal(navigations, 0);
  const after = await db();
  assert.deepEqual([after.pinned?.host, after.instances.filter((i) => i.state === 'running').map((i) => i.host)], [to, [to]]);
  assert.deepEqual(pageErrors, []);
});

test('a host dies: Home lists it first, with what happened to hosts', async () => {
  // The worker dies (the manager is what the control plane talks to).
  const dead = hn(2);
  await th.kill(2);
  await page.goto(`${base}/`);
  const item = page.locator(`[data-host-attention="${dead}"]`);
  await item.filter({ hasText: `host ${dead}` }).filter({ hasText: 'is down' }).waitFor({ timeout: 90_000 });
  await page.locator('.tile').filter({ hasText: 'hosts not ready' }).waitFor({ timeout: T });
  assert.doesNotMatch(await page.textContent('main') ?? '', /Nothing needs attention/);
  await page.locator('details.host-events').getByText('host.down').first().waitFor({ timeout: T });
  await accessible('cluster-home-host-down');
  assert.deepEqual(pageErrors, []);
});
