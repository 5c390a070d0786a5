/**
 * The web portal end to end: a real server with a deployed app, Debian's Chromium driven by
 * playwright-core. Logs in with `berth portal`'s one-time link, sees the app healthy, scales it from
 * the UI and watches instances appear live, rolls back from the releases page and sees traffic answer
 * the old version, finds a log line by search, sees charts with data points, sees an API refusal in
 * the page; axe-core finds no serious or critical violation on any page. Screenshots: tmp/artifacts/portal.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Harness, ROOT, get } from './helpers/harness.ts';
import { axe, launch, shot } from './helpers/browser.ts';
import { waitFor } from '../src/lib/backoff.ts';

const WEB = join(ROOT, 'test/fixtures/apps/web/compose.yaml');
const T = 30_000;

describe('web portal', () => {
  let h: Harness;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let base: string;
  const pageErrors: string[] = [];

  before(async () => {
    execFileSync('node', [join(ROOT, 'scripts/build-web.mjs')], { stdio: 'inherit' });
    h = await Harness.create({ portRange: '19100-19199', env: { BERTH_METRICS_INTERVAL_MS: '1000' } });
    await h.startServer();
    base = `http://127.0.0.1:${h.apiPort}`;
    // The browser starts while the app deploys.
    const [d, b] = await Promise.all([h.cli(['deploy', '-f', WEB], { env: { APP_VERSION: 'v1', REPLICAS: '1' }, timeoutMs: 180_000 }), launch()]);
    browser = b;
    assert.equal(d.code, 0, d.stderr);
    ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    // The API's 4xx answers are refusals the pages show (a test provokes some); anything else that fails to load is a defect.
    page.on('console', (m) => {
      if (m.type() === 'error' && !(/status of 4\d\d/.test(m.text()) && new URL(m.location().url || base).pathname.startsWith('/v1/'))) pageErrors.push(`${m.text()} ${m.location().url}`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400 && !new URL(r.url()).pathname.startsWith('/v1/')) pageErrors.push(`${r.status()} ${r.url()}`);
    });
  });
  after(async () => {
    if (process.exitCode) console.error(h?.serverLog.slice(-6000));
    await browser?.close();
    await h?.cleanup();
  });

  const accessible = async (name: string) => {
    assert.deepEqual(await axe(page), [], `${name}: axe-core violations`);
    await shot(page, name);
  };
  const link = async () => {
    const r = await h.cli(['portal', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { url: string; expiresAt: string };
  };

  test('a page without a session shows how to log in; the login link works once and leaves the address bar', async () => {
    await page.goto(`${base}/apps/e2e`);
    await page.getByRole('heading', { name: 'Log in to Berth' }).waitFor({ timeout: T });
    assert.match(await page.textContent('main') ?? '', /berth portal/);
    await accessible('login');
    const { url } = await link();
    assert.match(url, new RegExp(`^${base}/login#code=[A-Za-z0-9_-]{20,}$`));
    await page.goto(url);
    await page.getByRole('heading', { name: 'Home' }).waitFor({ timeout: T });
    assert.doesNotMatch(page.url(), /code=/);
    assert.equal(await page.locator('.nav .who').textContent(), 'admin');
    // The session is an HttpOnly cookie: the page's script cannot read it, only its CSRF token.
    const cookies = await ctx.cookies();
    assert.equal(cookies.find((c) => c.name === 'berth_session')?.httpOnly, true);
    assert.equal(cookies.find((c) => c.name === 'berth_session')?.sameSite, 'Strict');
    assert.doesNotMatch(String(await page.evaluate('document.cookie')), /berth_session/);
    // Spent: another browser with the same link is refused with the API's message.
    const other = await browser.newContext();
    const p2 = await other.newPage();
    await p2.goto(url);
    await p2.getByRole('alert').filter({ hasText: 'already used' }).waitFor({ timeout: T });
    await other.close();
  });

  test('a user logs in with a password and sees only what their grants allow', async () => {
    assert.equal((await h.api('POST', '/v1/users', { name: 'ann', password: 'portal test password 1' })).status, 201);
    const other = await browser.newContext();
    const p2 = await other.newPage();
    await p2.goto(`${base}/`);
    await p2.getByLabel('User').fill('ann');
    await p2.getByLabel('Password').fill('wrong password here');
    await p2.getByRole('button', { name: 'Log in' }).click();
    await p2.getByRole('alert').filter({ hasText: 'wrong user name or password' }).waitFor({ timeout: T });
    await p2.getByLabel('Password').fill('portal test password 1');
    await p2.getByRole('button', { name: 'Log in' }).click();
    await p2.getByRole('heading', { name: 'Home' }).waitFor({ timeout: T });
    assert.equal(await p2.locator('.nav .who').textContent(), 'ann');
    // ann has no grant yet: e2e is not hers to see.
    await p2.getByText('No apps yet').waitFor({ timeout: T });
    await p2.getByRole('button', { name: 'Log out' }).click();
    await p2.getByRole('heading', { name: 'Log in to Berth' }).waitFor({ timeout: T });
    await other.close();
  });

  test('home shows the app healthy and nothing needing attention', async () => {
    await page.goto(`${base}/`);
    await page.getByRole('link', { name: 'e2e', exact: true }).first().waitFor({ timeout: T });
    await page.getByText('Nothing needs attention').waitFor({ timeout: T });
    assert.equal(await page.locator('.tile').filter({ hasText: 'services running' }).locator('.tile-v').textContent(), '1/1');
    await accessible('home');
  });

  test('a refused action shows the API message', async () => {
    await page.goto(`${base}/apps/e2e`);
    const card = page.locator('section.service').filter({ has: page.getByRole('heading', { name: 'web' }) });
    await card.getByRole('button', { name: 'Roll back…' }).click();
    await card.getByRole('button', { name: 'Confirm roll back' }).click();
    const alert = card.getByRole('alert');
    await alert.waitFor({ timeout: T });
    assert.match(await alert.textContent() ?? '', /web has no earlier healthy release to roll back to/);
  });

  test('scale from the UI: the new instances appear live, without reloading', async () => {
    await page.goto(`${base}/apps/e2e`);
    const card = page.locator('section.service').filter({ has: page.getByRole('heading', { name: 'web' }) });
    await card.locator('tr[data-instance]').first().waitFor({ timeout: T });
    assert.equal(await card.locator('tr[data-instance]').count(), 1);
    let navigations = 0;
    page.on('framenavigated', () => navigations++);
    await card.getByLabel('Replicas').fill('3');
    await card.getByRole('button', { name: 'Scale' }).click();
    await card.getByRole('status').filter({ hasText: 'Scaling web from 1 to 3' }).waitFor({ timeout: T });
    await waitFor(async () => (await card.locator('tr[data-instance]').filter({ hasText: 'healthy' }).count()) === 3, { timeoutMs: 60_000, intervalMs: 200, what: '3 healthy instances on the page' });
    assert.equal(navigations, 0, 'the page was not reloaded');
    await accessible('app');
  });

  test('roll back from the releases page: traffic answers the old version', async () => {
    const d = await h.cli(['deploy', '-f', WEB], { env: { APP_VERSION: 'v2', REPLICAS: '3' }, timeoutMs: 180_000 });
    assert.equal(d.code, 0, d.stderr);
    const version = async () => (JSON.parse((await get(h.ingressPort, '/api/whoami')).body) as { version: string }).version;
    assert.equal(await version(), 'v2');
    await page.goto(`${base}/apps/e2e/releases`);
    const first = page.locator('tr[data-release="1"]');
    await first.waitFor({ timeout: T });
    // The diff of release 2 against 1 names what changed.
    await page.locator('tr[data-release="2"]').getByRole('button', { name: 'Diff & events' }).click();
    await page.locator('table.diff').getByText('spec.environment.APP_VERSION').waitFor({ timeout: T });
    await accessible('releases');
    // Each record: image digest, config version, who; its logs and events are those of its own time
    // (from its creation until release 2 replaced it).
    const rels = (await h.api('GET', '/v1/apps/e2e/releases?env=prod')).json.releases as { seq: number; imageId: string; configVersion: number; createdAt: number }[];
    const [r1, r2] = [rels.find((r) => r.seq === 1)!, rels.find((r) => r.seq === 2)!];
    assert.equal(await first.locator('[data-digest]').getAttribute('data-digest'), r1.imageId);
    assert.equal(await first.locator('[data-config]').getAttribute('data-config'), String(r1.configVersion));
    assert.match(await first.textContent() ?? '', /admin/);
    const window = new URLSearchParams({ env: 'prod', service: 'web', since: new Date(r1.createdAt).toISOString(), until: new Date(r2.createdAt).toISOString() }).toString();
    assert.equal(await first.getByRole('link', { name: 'Logs of release #1' }).getAttribute('href'), `/apps/e2e/logs?${window}`);
    const inWindow = (await h.api('GET', `/v1/events?app=e2e&${window}&limit=1000`)).json.events.length as number;
    assert.ok(inWindow > 0 && inWindow < (await h.api('GET', '/v1/events?app=e2e&env=prod&service=web&limit=1000')).json.events.length, 'the window holds some events, not all');
    await first.getByRole('link', { name: 'Events of release #1' }).click();
    await page.getByRole('heading', { name: 'e2e: events', exact: true }).waitFor({ timeout: T });
    await waitFor(async () => (await page.locator('table.events tbody tr').count()) === inWindow, { timeoutMs: T, intervalMs: 200, what: `the ${inWindow} events of release 1` });
    await page.goBack();
    await first.getByRole('button', { name: 'Roll back to #1' }).click();
    await page.getByRole('status').filter({ hasText: 'Rolling web back to release #1' }).waitFor({ timeout: T });
    await waitFor(async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 12; i++) seen.add(await version());
      return seen.size === 1 && seen.has('v1');
    }, { timeoutMs: 90_000, intervalMs: 300, what: 'traffic answering v1 only' });
    // The page follows: release 1 becomes current without a reload.
    await page.locator('tr[data-release="1"].current').waitFor({ timeout: T });
  });

  test('find a log line by search', async () => {
    await page.goto(`${base}/apps/e2e/logs`);
    await page.getByRole('searchbox', { name: 'Text' }).fill('listening');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/grep=listening/, { timeout: T });
    const line = page.getByRole('log').locator('td.text').filter({ hasText: /hello v1 \(instance .*\) listening on/ }).first();
    await line.waitFor({ timeout: T });
    await accessible('logs');
    // A hand-edited address with a level the API does not know: said in words, nothing searched.
    await page.goto(`${base}/apps/e2e/logs?level=loud`);
    await page.getByRole('alert').filter({ hasText: 'level "loud" is not one of trace, debug, info, warn, error, fatal' }).waitFor({ timeout: T });
  });

  test('metrics: charts with data points', async () => {
    await waitFor(async () => {
      const r = await h.api('GET', '/v1/metrics/query?kind=cpu&app=e2e&env=prod&from=-15m&group=service');
      return r.json.series.some((s: { points: unknown[] }) => s.points.length >= 2);
    }, { timeoutMs: 60_000, intervalMs: 500, what: 'cpu samples' });
    await page.goto(`${base}/apps/e2e/metrics?range=-15m`);
    const cpu = page.locator('figure.chart').filter({ hasText: 'CPU' });
    await cpu.locator('canvas').waitFor({ timeout: T });
    assert.ok(Number(await cpu.getAttribute('data-points')) >= 2);
    await accessible('metrics');
    // Per instance, over a range of one's own: a CPU line per instance.
    await page.getByLabel('Lines').selectOption('instance');
    const range = page.getByRole('form', { name: 'Custom time range' });
    await range.getByLabel('From').fill('-20m');
    await range.getByRole('button', { name: 'Show' }).click();
    await page.waitForURL(/by=instance.*range=-20m|range=-20m.*by=instance/, { timeout: T });
    const instances = ((await h.api('GET', '/v1/apps/e2e?env=prod')).json.services as { instances: unknown[] }[])[0]!.instances.length;
    await waitFor(async () => Number(await cpu.getAttribute('data-series')) >= Math.min(2, instances), { timeoutMs: T, intervalMs: 200, what: 'a CPU line per instance' });
    // Requests per instance that answered them (the ingress's access log names the backend): traffic
    // through the ingress, then the Requests, status and latency charts have a line for a current instance.
    const ids = ((await h.api('GET', '/v1/apps/e2e?env=prod')).json.services as { name: string; instances: { id: string }[] }[]).find((x) => x.name === 'web')!.instances.map((i) => i.id);
    for (let i = 0; i < 30; i++) assert.equal((await get(h.ingressPort, '/api/whoami')).status, 200);
    const served = await waitFor(async () => {
      const r = await h.api('GET', '/v1/metrics/query?kind=http_instance&app=e2e&env=prod&service=web&from=-20m');
      return (r.json.series as { key: { target: string }; points: { n: number }[] }[]).find((s) => ids.includes(s.key.target) && s.points.some((p) => p.n > 0))?.key.target;
    }, { timeoutMs: 60_000, intervalMs: 500, what: 'requests counted per instance' });
    await page.reload();
    for (const title of ['Requests', 'Status classes', 'Latency percentiles']) {
      const chart = page.locator('figure.chart').filter({ has: page.locator('figcaption', { hasText: new RegExp(`^${title}$`) }) });
      await chart.locator('canvas').waitFor({ timeout: T });
      assert.ok(Number(await chart.getAttribute('data-points')) >= 1, `${title}: data points`);
      assert.match(await chart.locator('[role="img"]').getAttribute('aria-label') ?? '', new RegExp(`web/${served}`), `${title}: a line of instance ${served}`);
    }
    await accessible('metrics-instances');
  });

  test('every other page loads, keyboard-reachable and without serious accessibility violations', async () => {
    for (const [path, heading, name] of [
      ['/apps/e2e/graph', 'e2e: dependency graph', 'graph'], ['/apps/e2e/config', 'e2e: configuration', 'config'], ['/apps/e2e/events', 'e2e: events', 'app-events'],
      ['/events', 'Events', 'events'], ['/alerts', 'Alerts', 'alerts'], ['/builds', 'Builds', 'builds'], ['/images', 'Images', 'images'],
    ] as const) {
      await page.goto(`${base}${path}`);
      await page.getByRole('heading', { name: heading, exact: true }).waitFor({ timeout: T });
      await page.locator('.loading').first().waitFor({ state: 'detached', timeout: T });
      await accessible(name);
    }
    // Tablet width: the navigation folds above the page, nothing overflows sideways.
    await page.setViewportSize({ width: 800, height: 1000 });
    await page.goto(`${base}/apps/e2e`);
    await page.locator('tr[data-instance]').first().waitFor({ timeout: T });
    assert.ok(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth + 1'), 'no horizontal scroll at 800 px');
    await shot(page, 'app-tablet');
    // Keyboard: the skip link comes first and leads to the page.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate('document.activeElement?.textContent'), 'Skip to content');
    assert.deepEqual(pageErrors, []);
  });

  test('the pages of people, audit, approvals, certificates and volumes load without serious accessibility violations', async () => {
    await page.setViewportSize({ width: 1280, height: 860 });
    for (const [path, heading, name] of [
      ['/people', 'People & teams', 'people'], ['/audit', 'Audit log', 'audit'], ['/approvals', 'Approvals', 'approvals'], ['/certs', 'Certificates', 'certs'],
      ['/volumes', 'Volumes', 'volumes'], ['/apps/e2e/volumes', 'e2e: volumes', 'app-volumes'],
    ] as const) {
      await page.goto(`${base}${path}`);
      await page.getByRole('heading', { name: heading, exact: true }).waitFor({ timeout: T });
      await page.locator('.loading').first().waitFor({ state: 'detached', timeout: T });
      await accessible(name);
    }
    // The audit log holds what this run did (the scale from the UI), and its chain verifies.
    await page.goto(`${base}/audit?action=${encodeURIComponent('POST /v1/apps/:app/scale')}`);
    await page.getByRole('table', { name: 'Audit entries' }).getByText('POST /v1/apps/:app/scale').first().waitFor({ timeout: T });
    await page.getByRole('button', { name: 'Verify chain' }).click();
    await page.locator('[data-verify="ok"]').filter({ hasText: /Chain intact: \d+ entries checked/ }).waitFor({ timeout: T });
    const href = await page.getByRole('link', { name: 'Export JSON lines' }).getAttribute('href');
    assert.match(href ?? '', /^\/v1\/audit\?.*format=jsonl/);
    // The export link works with the browser's session (a GET: no CSRF token needed), one JSON entry a line.
    const exported = await page.evaluate(async (u) => (await fetch(u)).text(), href!);
    assert.ok(exported.trim().split('\n').every((l) => (JSON.parse(l) as { action: string }).action === 'POST /v1/apps/:app/scale'));
    // At tablet width (768 px) the new pages do not scroll sideways.
    await page.setViewportSize({ width: 768, height: 1000 });
    for (const path of ['/people', '/certs', '/approvals']) {
      await page.goto(`${base}${path}`);
      await page.locator('.loading').first().waitFor({ state: 'detached', timeout: T });
      assert.ok(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth + 1'), `no horizontal scroll at 768 px on ${path}`);
    }
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  test('restart one instance from the app page: a new instance replaces it live, the others keep serving', async () => {
    // Settled first (the rollback's old set gone): a rollout in progress refuses single restarts.
    type Svc = { name: string; release: { seq: number }; instances: { id: string; release: number; health: string }[] };
    await waitFor(async () => {
      const web = ((await h.api('GET', '/v1/apps/e2e?env=prod')).json.services as Svc[]).find((x) => x.name === 'web')!;
      return web.instances.length === 3 && web.instances.every((i) => i.release === web.release.seq && i.health === 'healthy');
    }, { timeoutMs: 60_000, intervalMs: 300, what: 'web settled on 3 healthy instances' });
    await page.goto(`${base}/apps/e2e`);
    const card = page.locator('section.service').filter({ has: page.getByRole('heading', { name: 'web' }) });
    const rows = card.locator('tr[data-instance]');
    await waitFor(async () => (await rows.count()) === 3, { timeoutMs: T, intervalMs: 200, what: '3 instance rows' });
    const before = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-instance')!));
    const victim = before[0]!;
    // Each instance shows its host.
    assert.ok((await card.locator(`tr[data-instance="${victim}"] td`).nth(2).textContent())?.trim(), 'the instance names its host');
    await card.getByRole('button', { name: `Restart instance ${victim}` }).click();
    await card.getByRole('button', { name: `Confirm restart of ${victim}` }).click();
    await card.getByRole('status').filter({ hasText: `Restarting ${victim}` }).waitFor({ timeout: T });
    await waitFor(async () => {
      const ids = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-instance')!));
      return !ids.includes(victim) && ids.length === 3 && (await rows.filter({ hasText: 'healthy' }).count()) === 3;
    }, { timeoutMs: 90_000, intervalMs: 250, what: `${victim} replaced by a new healthy instance on the page` });
    const after = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-instance')!));
    assert.deepEqual(after.filter((id) => before.includes(id)).sort(), before.slice(1).sort(), 'the other two instances are untouched');
    await accessible('app-restarted');
  });

  test('an API token: its secret is shown once, then only its name; revoked from the page it stops working', async () => {
    assert.equal((await h.api('POST', '/v1/teams', { name: 'web' })).status, 201);
    assert.equal((await h.api('PUT', '/v1/teams/web/apps/e2e')).status, 200);
    await page.goto(`${base}/people`);
    const form = page.getByRole('form', { name: 'Create a token' });
    await form.getByLabel('Name').fill('portal ci');
    await form.getByLabel('Role').selectOption('viewer');
    await form.getByLabel('Team').fill('web');
    await form.getByRole('button', { name: 'Create token' }).click();
    const secret = (await page.locator('[data-token-secret]').textContent({ timeout: T }))!.trim();
    assert.match(secret, /^\S{20,}$/);
    assert.equal((await h.api('GET', '/v1/apps', undefined, secret)).status, 200, 'the shown secret is the working token');
    const row = page.locator('tr[data-token="portal ci"]');
    await row.waitFor({ timeout: T });
    await shot(page, 'people-token');
    // Once: a reload shows the token's name, never its secret again.
    await page.reload();
    await row.waitFor({ timeout: T });
    assert.doesNotMatch(await page.textContent('main') ?? '', new RegExp(secret));
    await row.getByRole('button', { name: 'Revoke portal ci' }).click();
    await row.getByText('revoked').waitFor({ timeout: T });
    assert.equal((await h.api('GET', '/v1/apps', undefined, secret)).status, 401);
  });

  test('approvals: approving your own request shows the API refusal; a second person approves the pending deploy from the page', async () => {
    assert.equal((await h.api('POST', '/v1/grants', { user: 'ann', role: 'deployer', team: 'web' })).status, 201);
    assert.equal((await h.api('PUT', '/v1/teams/web/policies/prod', { requireApproval: true })).status, 200);
    const d = await h.cli(['deploy', '-f', WEB, '--json'], { env: { APP_VERSION: 'v1', REPLICAS: '3' }, timeoutMs: 60_000 });
    assert.equal(d.code, 0, d.stderr);
    const id = (JSON.parse(d.stdout) as { approval: { id: string } }).approval.id;
    await page.goto(`${base}/approvals`);
    const row = page.locator(`tr[data-approval="${id}"]`);
    await row.getByRole('button', { name: 'Approve' }).click();
    await page.getByRole('alert').filter({ hasText: 'a second person must approve it' }).waitFor({ timeout: T });
    // ann, who deploys to web's prod, approves it: it is carried out (as admin, who asked).
    const other = await browser.newContext();
    const p2 = await other.newPage();
    await p2.goto(`${base}/approvals`);
    await p2.getByLabel('User').fill('ann');
    await p2.getByLabel('Password').fill('portal test password 1');
    await p2.getByRole('button', { name: 'Log in' }).click();
    const row2 = p2.locator(`tr[data-approval="${id}"]`);
    await row2.getByRole('button', { name: 'Approve' }).click();
    await p2.getByRole('status').filter({ hasText: `Approved ${id}: carried out as admin (HTTP 202)` }).waitFor({ timeout: T });
    await row2.waitFor({ state: 'detached', timeout: T });
    await other.close();
    const a = await h.api('GET', '/v1/approvals?status=approved');
    assert.equal(a.json.approvals.find((x: { id: string }) => x.id === id)?.decidedBy, 'ann');
    // The first page follows: the request leaves the pending list without a reload.
    await row.waitFor({ state: 'detached', timeout: T });
  });

  /**
   * A second browser logged in as `user` (for what a person without a grant sees and may force): one
   * context per user for the whole file, logged in once (its `close` leaves it open for the next test).
   */
  const sessions = new Map<string, Promise<{ c: { close: () => Promise<void> }; p: Page }>>();
  const loggedIn = (user: string, password: string) => {
    let s = sessions.get(user);
    if (!s) {
      s = (async () => {
        const ctx2 = await browser.newContext();
        const p = await ctx2.newPage();
        await p.goto(`${base}/`);
        await p.getByLabel('User').fill(user);
        await p.getByLabel('Password').fill(password);
        await p.getByRole('button', { name: 'Log in' }).click();
        await p.getByRole('heading', { name: 'Home' }).waitFor({ timeout: T });
        return { c: { close: async () => undefined }, p };
      })();
      sessions.set(user, s);
    }
    return s;
  };
  /** A request the page's own session makes (cookie + CSRF token), bypassing the buttons: what the server answers. */
  const forced = (p: Page, method: string, path: string, body?: unknown) => p.evaluate(async ([m, u, b]) => {
    const t = /(?:^|;\s*)berth_csrf=([^;]*)/.exec((globalThis as unknown as { document: { cookie: string } }).document.cookie)?.[1] ?? '';
    const r = await fetch(u as string, { method: m as string, headers: { ...(b === undefined ? {} : { 'content-type': 'application/json' }), 'x-berth-csrf': decodeURIComponent(t) }, body: b === undefined ? undefined : JSON.stringify(b) });
    return { status: r.status, body: await r.text() };
  }, [method, path, body] as const);

  test('guardrails: the policy that applies and from where; an owner edits a layer (bad input refused in words) and exempts a key; without the grant no button, and a forced call is 403', async () => {
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.goto(`${base}/policies`);
    await page.getByRole('heading', { name: 'Guardrails', exact: true }).waitFor({ timeout: T });
    const applies = page.getByRole('table', { name: 'Policy that applies' });
    await applies.locator('tr[data-field="pidsLimit"]').getByText('4096').waitFor({ timeout: T });
    assert.match(await applies.locator('tr[data-field="pidsLimit"]').textContent() ?? '', /built-in/);
    const editor = page.getByRole('form', { name: /Layer of the installation/ });
    // A value the page can judge is refused before any request; one the server judges shows its words.
    await editor.getByLabel('pidsLimit').fill('lots');
    await editor.getByRole('button', { name: 'Save layer' }).click();
    await editor.getByRole('alert').filter({ hasText: 'pidsLimit: "lots" is not a whole number' }).waitFor({ timeout: T });
    await editor.getByLabel('pidsLimit').fill('2048');
    await editor.getByLabel('capabilities').fill('NET_ADMIN, FOO');
    await editor.getByRole('button', { name: 'Save layer' }).click();
    await editor.getByRole('alert').filter({ hasText: '"FOO" is not a Linux capability' }).waitFor({ timeout: T });
    assert.deepEqual((await h.api('GET', '/v1/policies')).json.layers, [], 'a refused layer stores nothing');
    await editor.getByLabel('capabilities').fill('');
    await editor.getByLabel('readOnly').selectOption('true');
    await editor.getByRole('button', { name: 'Save layer' }).click();
    await page.getByRole('status').filter({ hasText: 'The policy of the installation is now version 1' }).waitFor({ timeout: T });
    await applies.locator('tr[data-field="pidsLimit"]').getByText('2048').waitFor({ timeout: T });
    assert.match(await applies.locator('tr[data-field="readOnly"]').textContent() ?? '', /true.*policy of the installation/);
    assert.deepEqual((await h.api('GET', '/v1/policies')).json.layers.map((l: { scope: string; version: number; policy: unknown }) => [l.scope, l.version, l.policy]),
      [['the installation', 1, { pidsLimit: 2048, readOnly: true }]]);
    // Versions, then cleared again (every field inherits; later deploys of this file are not refused).
    await page.getByRole('link', { name: 'History' }).click();
    await page.getByRole('table', { name: 'Versions' }).locator('tr').nth(1).waitFor({ timeout: T });
    await page.getByRole('button', { name: 'Clear layer' }).click();
    await page.getByRole('status').filter({ hasText: 'is cleared (version 2)' }).waitFor({ timeout: T });
    await applies.locator('tr[data-field="pidsLimit"]').getByText('4096').waitFor({ timeout: T });

    // Exemptions: the API's refusal of a short reason, then one made and revoked from the page.
    const ex = page.getByRole('form', { name: 'Exempt a key' });
    await ex.getByLabel('App').selectOption('e2e');
    await ex.getByLabel('Key').selectOption('privileged');
    await ex.getByLabel('Reason').fill('hw');
    await ex.getByLabel('Reason').evaluate((el) => el.removeAttribute('minlength'));
    await ex.getByRole('button', { name: 'Exempt' }).click();
    await page.getByRole('alert').filter({ hasText: 'say why' }).waitFor({ timeout: T });
    await ex.getByLabel('Reason').fill('needs the GPU device for the test');
    await ex.getByRole('button', { name: 'Exempt' }).click();
    await page.getByRole('status').filter({ hasText: 'Exempted e2e from privileged in prod' }).waitFor({ timeout: T });
    const exs = (await h.api('GET', '/v1/exemptions?app=e2e')).json.exemptions as { id: string; status: string; createdBy: string; expiresAt: number; createdAt: number }[];
    assert.equal(exs.length, 1);
    assert.deepEqual([exs[0]!.status, exs[0]!.createdBy, exs[0]!.expiresAt - exs[0]!.createdAt], ['active', 'admin', 7 * 86_400_000]);
    const exRow = page.locator(`tr[data-exemption="${exs[0]!.id}"]`);
    await exRow.waitFor({ timeout: T });
    await accessible('policies');

    // ann deploys to team web's apps but administers nothing: she sees the policy and the exemption, no button; forced calls are 403.
    const { c, p } = await loggedIn('ann', 'portal test password 1');
    await p.goto(`${base}/policies`);
    await p.locator(`tr[data-exemption="${exs[0]!.id}"]`).waitFor({ timeout: T });
    await p.getByRole('table', { name: 'Policy that applies' }).waitFor({ timeout: T });
    assert.equal(await p.getByRole('button', { name: 'Save layer' }).count(), 0);
    assert.equal(await p.getByRole('form', { name: 'Exempt a key' }).count(), 0);
    assert.equal(await p.getByRole('button', { name: /^Revoke/ }).count(), 0);
    assert.equal((await forced(p, 'PUT', '/v1/policies', { policy: { privileged: true } })).status, 403);
    assert.equal((await forced(p, 'PUT', '/v1/policies', { team: 'web', policy: { pidsLimit: 100 } })).status, 403);
    assert.equal((await forced(p, 'POST', '/v1/exemptions', { app: 'e2e', env: 'prod', key: 'devices', reason: 'forced by ann', expires: '1d' })).status, 403);
    assert.equal((await forced(p, 'DELETE', `/v1/exemptions/${exs[0]!.id}`)).status, 403);
    await c.close();
    assert.equal((await h.api('GET', '/v1/exemptions?app=e2e')).json.exemptions.length, 1, 'nothing forced was kept');

    await exRow.getByRole('button', { name: /^Revoke the exemption of e2e privileged/ }).click();
    await exRow.waitFor({ state: 'detached', timeout: T });
    assert.equal((await h.api('GET', '/v1/exemptions?app=e2e')).json.exemptions[0].status, 'revoked');
  });

  test('hosts: the one host of a plain engine with address, pool, state, capacity and its instances, following instance changes live; no host action without the grant, forced ones 403', async () => {
    const hosts = (await h.api('GET', '/v1/hosts')).json as { mode: string; hosts: { name: string; address: string; instances: number }[] };
    assert.equal(hosts.mode, 'single');
    assert.equal(hosts.hosts.length, 1);
    const me = hosts.hosts[0]!;
    await page.goto(`${base}/hosts`);
    await page.getByRole('heading', { name: 'Hosts', exact: true }).waitFor({ timeout: T });
    const row = page.locator(`tr[data-host="${me.name}"]`);
    await row.waitFor({ timeout: T });
    assert.equal(await row.getAttribute('data-state'), 'ready');
    const cells = await row.locator('td').allTextContents();
    assert.equal(cells[0], me.address);
    assert.equal(cells[1], 'default');
    assert.match(cells[3] ?? '', /\d+ CPU/);
    assert.match(await page.locator('[data-mode="single"]').textContent() ?? '', /berth cluster init/);
    // One-host mode: no label, drain or removal to offer (the engine refuses them).
    assert.equal(await row.getByRole('button').count(), 0);
    await row.getByText(/of your instances/).click();
    const web = ((await h.api('GET', '/v1/apps/e2e?env=prod')).json.services as { name: string; instances: { id: string }[] }[]).find((x) => x.name === 'web')!;
    for (const i of web.instances) await row.locator(`li[data-instance="${i.id}"]`).waitFor({ timeout: T });
    await accessible('hosts');
    // Live: the new instance appears in the host's list of your instances without a reload. (Not the
    // host's count: on a plain engine it counts every Berth container of the engine, and other test
    // servers on this engine come and go meanwhile.)
    const known = new Set(web.instances.map((i) => i.id));
    let navigations = 0;
    page.on('framenavigated', () => navigations++);
    assert.equal((await h.api('POST', '/v1/apps/e2e/scale', { env: 'prod', service: 'web', replicas: web.instances.length + 1 })).status, 202);
    const added = await waitFor(async () => {
      const svc = ((await h.api('GET', '/v1/apps/e2e?env=prod')).json.services as { name: string; instances: { id: string }[] }[]).find((x) => x.name === 'web')!;
      return svc.instances.map((i) => i.id).find((id) => !known.has(id));
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'the scaled-up instance' });
    await row.locator(`li[data-instance="${added}"]`).waitFor({ timeout: 60_000 });
    assert.equal(navigations, 0);
    // Tablet width: neither new page scrolls sideways.
    await page.setViewportSize({ width: 768, height: 1000 });
    for (const path of ['/hosts', '/policies', '/pools']) {
      await page.goto(`${base}${path}`);
      await page.locator('.loading').first().waitFor({ state: 'detached', timeout: T });
      assert.ok(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth + 1'), `no horizontal scroll at 768 px on ${path}`);
    }
    await page.setViewportSize({ width: 1280, height: 860 });

    // Edge hosts: none has polled; an owner makes a new one's token (bad input refused in words), shown once.
    await page.goto(`${base}/hosts`);
    const edge = page.locator('section[aria-labelledby="edge-h"]');
    await edge.getByText('No edge host has polled yet').waitFor({ timeout: T });
    const add = page.getByRole('form', { name: 'Add an edge host' });
    await add.getByLabel('Edge host name').fill('edge one');
    await add.getByRole('button', { name: 'Make token' }).click();
    await edge.getByRole('alert').filter({ hasText: /host: / }).waitFor({ timeout: T });
    await add.getByLabel('Edge host name').fill('edge1');
    await add.getByLabel('Port').fill('99999');
    await add.getByRole('button', { name: 'Make token' }).click();
    await edge.getByRole('alert').filter({ hasText: 'port: "99999" is not a port (1-65535)' }).waitFor({ timeout: T });
    await add.getByLabel('Port').fill('8080');
    await add.getByRole('button', { name: 'Make token' }).click();
    const token = (await page.locator('[data-edge-token="edge1"] [data-edge-token-secret]').textContent({ timeout: T }))!.trim();
    assert.match(token, /^\S{20,}$/);
    assert.match(await page.locator('[data-edge-token="edge1"]').textContent() ?? '', /--port 8080/);
    await accessible('hosts-edge');
    // The token is edge1's credential for its edge config: the agent's poll with it is answered, and
    // the page lists edge1 (its nginx serves nothing yet: behind); a reload no longer shows the token.
    const cfg = await fetch(`${base}/v1/edge/config?wait=0`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(cfg.status, 200);
    await cfg.body?.cancel();
    await page.reload();
    await page.locator('tr[data-edge="edge1"][data-in-sync="false"]').waitFor({ timeout: T });
    assert.doesNotMatch(await page.textContent('main') ?? '', new RegExp(token));

    const { c, p } = await loggedIn('ann', 'portal test password 1');
    await p.goto(`${base}/hosts`);
    await p.locator(`tr[data-host="${me.name}"]`).waitFor({ timeout: T });
    assert.equal(await p.locator(`tr[data-host="${me.name}"]`).getByRole('button').count(), 0);
    assert.equal((await forced(p, 'PUT', `/v1/hosts/${me.name}/labels`, { set: { zone: 'a' } })).status, 403);
    assert.equal((await forced(p, 'POST', `/v1/hosts/${me.name}/drain`, { drain: true })).status, 403);
    assert.equal((await forced(p, 'DELETE', `/v1/hosts/${me.name}`)).status, 403);
    // No edge section for her; a forced token is 403.
    assert.equal(await p.getByRole('heading', { name: 'Edge hosts' }).count(), 0);
    assert.equal((await forced(p, 'POST', '/v1/edge/tokens', { host: 'edge2' })).status, 403);
    await c.close();
    assert.deepEqual(pageErrors, []);
  });
  test('pools: capacity, placed instances, quota and grants; an owner sets a quota (bad input refused in words) and opens a pool to a team; without the grant no form, and forced calls are 403', async () => {
    const me = ((await h.api('GET', '/v1/hosts')).json.hosts as { name: string }[])[0]!.name;
    await page.goto(`${base}/pools`);
    await page.getByRole('heading', { name: 'Pools', exact: true }).waitFor({ timeout: T });
    const def = page.locator('tr[data-pool="default"]');
    await def.getByRole('link', { name: me }).waitFor({ timeout: T });
    assert.ok(Number(await def.locator('[data-used]').getAttribute('data-used')) >= 3, 'the e2e instances are placed in default');
    await def.locator('[data-team="*"]').waitFor({ timeout: T });
    // A pool no host carries yet, opened to team web from the page.
    const open = page.getByRole('form', { name: 'Open a pool to a team' });
    await open.getByLabel('Pool').fill('gpu');
    await open.getByLabel('Team').fill('nosuchteam');
    await open.getByRole('button', { name: 'Grant' }).click();
    await page.getByRole('alert').filter({ hasText: 'no team "nosuchteam"' }).waitFor({ timeout: T });
    await open.getByLabel('Team').fill('web');
    await open.getByRole('button', { name: 'Grant' }).click();
    await page.getByRole('status').filter({ hasText: 'Team web may deploy into gpu' }).waitFor({ timeout: T });
    const gpu = page.locator('tr[data-pool="gpu"]');
    await gpu.locator('[data-team="web"]').waitFor({ timeout: T });
    const quota = page.getByRole('form', { name: 'Quota of gpu' });
    await quota.getByLabel('Instances').fill('many');
    await quota.getByRole('button', { name: 'Set quota' }).click();
    await page.getByRole('alert').filter({ hasText: 'instances: "many" is not a whole number' }).waitFor({ timeout: T });
    await quota.getByLabel('Instances').fill('');
    await quota.getByLabel('Memory').fill('16x');
    await quota.getByRole('button', { name: 'Set quota' }).click();
    await page.getByRole('alert').filter({ hasText: /memory: "16x" is not a size/ }).waitFor({ timeout: T });
    await quota.getByLabel('Memory').fill('2g');
    await quota.getByLabel('Instances').fill('10');
    await quota.getByRole('button', { name: 'Set quota' }).click();
    await page.getByRole('status').filter({ hasText: 'Quota of gpu:' }).waitFor({ timeout: T });
    await gpu.locator('[data-quota]').filter({ hasText: /10 instances/ }).waitFor({ timeout: T });
    const stored = ((await h.api('GET', '/v1/pools')).json.pools as { name: string; quota: unknown; teams: string[] }[]).find((p) => p.name === 'gpu')!;
    assert.deepEqual([stored.quota, stored.teams], [{ memoryBytes: 2 * 1024 ** 3, instances: 10 }, ['web']]);
    await accessible('pools');

    // ann (team web) sees gpu, opened to her team, and default; no form, no revoke; forced calls are 403 and change nothing.
    const { c, p } = await loggedIn('ann', 'portal test password 1');
    await p.goto(`${base}/pools`);
    await p.locator('tr[data-pool="gpu"] [data-team="web"]').waitFor({ timeout: T });
    await p.locator('tr[data-pool="default"]').waitFor({ timeout: T });
    assert.equal(await p.getByRole('button', { name: /Set quota|Grant|Revoke/ }).count(), 0);
    assert.equal((await forced(p, 'PUT', '/v1/pools/gpu/quota', { instances: 1000 })).status, 403);
    assert.equal((await forced(p, 'POST', '/v1/pools/gpu/grants/*')).status, 403);
    assert.equal((await forced(p, 'DELETE', '/v1/pools/gpu/grants/web')).status, 403);
    await c.close();
    const after = ((await h.api('GET', '/v1/pools')).json.pools as { name: string; quota: unknown; teams: string[] }[]).find((p) => p.name === 'gpu')!;
    assert.deepEqual([after.quota, after.teams], [{ memoryBytes: 2 * 1024 ** 3, instances: 10 }, ['web']], 'nothing forced was kept');

    await gpu.getByRole('button', { name: 'Revoke team web from gpu' }).click();
    await page.getByRole('status').filter({ hasText: 'Team web may no longer deploy into gpu' }).waitFor({ timeout: T });
    await gpu.getByText('no team (owners only)').waitFor({ timeout: T });
    assert.deepEqual(pageErrors, []);
  });

  test('one host: a stateful service has nowhere to fail over to, so no pin and no failover form; its secret is masked, and revealing it is audited', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-portal-'));
    const file = join(dir, 'compose.yaml');
    writeFileSync(file, ['name: keep', 'services:', '  db:', '    image: berth/busybox:latest', '    command: ["sleep", "3600"]', '    stop_grace_period: 1s',
      '    volumes: [data:/data]', 'volumes:', '  data: {}', ''].join('\n'));
    const d = await h.cli(['deploy', '-f', file], { timeoutMs: 120_000 });
    rmSync(dir, { recursive: true, force: true });
    assert.equal(d.code, 0, d.stderr);
    await page.goto(`${base}/apps/keep`);
    const card = page.locator('section.service').filter({ has: page.getByRole('heading', { name: 'db' }) });
    await card.locator('tr[data-instance]').first().waitFor({ timeout: T });
    assert.equal(await card.locator('[data-pinned]').count() + await card.getByRole('group', { name: 'Failover of db' }).count(), 0);
    // A secret of keep: masked on the config page; revealing it is a request of its own, in the audit log.
    assert.equal((await h.api('PUT', '/v1/apps/keep/config', { env: 'prod', entries: [{ key: 'DB_PASSWORD', value: 'hunter2-portal', secret: true }] })).status, 200);
    await page.goto(`${base}/apps/keep/config`);
    const row = page.locator('tr').filter({ hasText: 'DB_PASSWORD' });
    await row.getByLabel('hidden secret').waitFor({ timeout: T });
    assert.doesNotMatch(await page.textContent('main') ?? '', /hunter2-portal/);
    await row.getByRole('button', { name: 'Reveal' }).click();
    await row.locator('code.secret').filter({ hasText: 'hunter2-portal' }).waitFor({ timeout: T });
    const audited = (await h.api('GET', `/v1/audit?action=${encodeURIComponent('GET /v1/apps/:app/config/:key')}`)).json.entries as { app: string; actorName: string }[];
    assert.deepEqual(audited.filter((e) => e.app === 'keep').map((e) => e.actorName), ['admin'], 'the reveal is in the audit log, by who');
    assert.doesNotMatch(JSON.stringify(audited), /hunter2-portal/, 'never the value');
    await accessible('config-revealed');
    assert.deepEqual(pageErrors, []);
  });
});
