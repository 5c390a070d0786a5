/**
 * portal: the web portal measured in Debian's Chromium (playwright-core, headless).
 *   - initial_bundle_gzip_kb: what the first page load fetches (index.html, the entry script and
 *     stylesheet; the charts' uPlot chunk loads only with the metrics page), gzip -9;
 *   - home_tti_ms: from navigation to the home page until its apps table lists all 50 apps
 *     (50 apps × 3 services in the store);
 *   - log_search_ms: from pressing Search on the logs page until the first matching line shows,
 *     over BENCH_PORTAL_LOG_LINES (1,000,000) lines in the real log store (FTS5);
 * each the median of BENCH_PORTAL_RUNS (7) runs in a fresh page. Beside home_tti_ms, where its time
 * goes on the page's own clock (home_*_ms: HTML received, entry script requested, DOM interactive,
 * first and last API read, the 51st row in the DOM); with BENCH_PORTAL_COMPARE_WEB=DIR, another
 * build of the portal (e.g. main's web/dist) is loaded in the same runs, alternating (compare_*). The API is the real route table
 * in process (test/helpers/api-inject.ts) over a real SQLite store and log store, seeded directly:
 * no containers are started (the services have 0 replicas), so only the portal and the API are timed.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { ROOT } from '../test/helpers/harness.ts';
import { testApi } from '../test/helpers/api-inject.ts';
import { launch } from '../test/helpers/browser.ts';
import { LogStore, type IngestLine } from '../src/logs/index.ts';
import { log, median } from './common.ts';

const LINES = Number(process.env.BENCH_PORTAL_LOG_LINES ?? 1_000_000);
const RUNS = Number(process.env.BENCH_PORTAL_RUNS ?? 7);
const WORDS = ['GET', 'POST', 'cart', 'items', 'user', 'session', 'payment', 'search', 'render', 'cache', 'queue', 'retry', 'timeout', 'ok'];

/** When the 51st row of the apps table is in the DOM, on the page's clock (a mutation observer; bench/ has no DOM types, hence a string). */
const ROWS_OBSERVER = `new MutationObserver(() => {
  if (window.__rows === undefined && document.querySelectorAll('#apps-h ~ table tbody tr').length >= 51) window.__rows = performance.now();
}).observe(document, { subtree: true, childList: true });`;

interface Breakdown { html: number; scriptStart: number; scriptEnd: number; interactive: number; apiStart: number; apiEnd: number; rows: number }

/** Navigation and Resource Timing of the load, ms after its navigation start. */
const BREAKDOWN = `(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const script = res.find((r) => /\\/assets\\/index-[^/]*\\.js$/.test(r.name));
  const apis = res.filter((r) => new URL(r.name).pathname.startsWith('/v1/'));
  return {
    html: nav.responseEnd, scriptStart: script ? script.startTime : -1, scriptEnd: script ? script.responseEnd : -1, interactive: nav.domInteractive,
    apiStart: Math.min(...apis.map((r) => r.startTime)), apiEnd: Math.max(...apis.map((r) => r.responseEnd)),
    apis: apis.map((r) => new URL(r.name).pathname + new URL(r.name).search + ' ' + Math.round(r.startTime) + '-' + Math.round(r.responseEnd)),
    rows: window.__rows === undefined ? -1 : window.__rows,
  };
})()`;

function bundleSize(dist: string): number {
  const html = readFileSync(join(dist, 'index.html'), 'utf8');
  const files = ['index.html', ...[...html.matchAll(/(?:src|href)="\/(assets\/[^"]+)"/g)].map((m) => m[1]!)];
  let total = 0;
  for (const f of files) total += gzipSync(readFileSync(join(dist, f)), { level: 9 }).length;
  log(`initial bundle: ${files.join(', ')} (${readdirSync(join(dist, 'assets')).length} assets built in all)`);
  return total;
}

export async function run(): Promise<Record<string, number | string>> {
  execFileSync('node', [join(ROOT, 'scripts/build-web.mjs')], { stdio: 'inherit' });
  const dist = join(ROOT, 'web', 'dist');
  const gzipBytes = bundleSize(dist);
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-portal-'));
  const logs = new LogStore(join(dir, 'logs.db'));
  const t = await testApi({ webDir: dist, logs: { search: (q) => logs.search(q), tail: () => () => undefined } });
  const browser = await launch();
  let t2: Awaited<ReturnType<typeof testApi>> | undefined;
  try {
    for (let a = 0; a < 50; a++) for (const s of ['web', 'worker', 'db']) t.addService(`app${String(a).padStart(2, '0')}`, 'prod', s, { replicas: 0 });
    t.addService('shop', 'prod', 'web');
    // 1 M lines, 1 ms apart ending now, from 3 instances; "checkout" is in one line of 5,000.
    const t0 = performance.now();
    const sources = [0, 1, 2].map((k) => ({ containerId: `c${k}`, app: 'shop', env: 'prod', service: 'web', instance: `i${k}` }));
    const start = BigInt(Date.now() - LINES) * 1_000_000n;
    for (let i = 0; i < LINES; i += 50_000) {
      const by = sources.map(() => [] as IngestLine[]);
      for (let k = i; k < Math.min(LINES, i + 50_000); k++) {
        const text = `${WORDS[k % WORDS.length]} /api/${WORDS[(k * 7) % WORDS.length]}/${k % 997} status=${k % 50 ? 200 : 500} took=${k % 300}ms seq=${k}${k % 5000 === 4321 ? ' checkout completed' : ''}`;
        by[k % 3]!.push({ tsNs: start + BigInt(k) * 1_000_000n, stream: 'stdout', text });
      }
      logs.append(sources.map((source, s) => ({ source, lines: by[s]! })));
    }
    log(`log store: ${LINES} lines in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const url = await t.api.listen({ host: '127.0.0.1', port: 0 });

    const home: number[] = [];
    const search: number[] = [];
    const breakdown: Breakdown[] = [];
    // BENCH_PORTAL_COMPARE_WEB: another build of the portal (e.g. main's web/dist) served by a second,
    // identically seeded API; each run loads home from both, alternating which goes first.
    const compareDir = process.env.BENCH_PORTAL_COMPARE_WEB;
    t2 = compareDir ? await testApi({ webDir: compareDir, logs: { search: (q) => logs.search(q), tail: () => () => undefined } }) : undefined;
    if (t2) {
      for (let a = 0; a < 50; a++) for (const s of ['web', 'worker', 'db']) t2.addService(`app${String(a).padStart(2, '0')}`, 'prod', s, { replicas: 0 });
      t2.addService('shop', 'prod', 'web');
    }
    const url2 = t2 ? await t2.api.listen({ host: '127.0.0.1', port: 0 }) : undefined;
    const compare: number[] = [];
    const compareBreakdown: Breakdown[] = [];

    /** Logs a fresh context in, then times a fresh load of home with the session in place: navigation start → 50 apps listed. */
    const homeLoad = async (api: typeof t, at: string) => {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
      await ctx.addInitScript({ content: ROWS_OBSERVER });
      const page = await ctx.newPage();
      const { code } = (await api.req('POST', '/v1/portal/codes')).json() as { code: string };
      await page.goto(`${at}/login#code=${code}`);
      await page.getByRole('heading', { name: 'Home' }).waitFor({ timeout: 30_000 });
      await page.goto('about:blank');
      const h0 = performance.now();
      await page.goto(`${at}/`);
      await page.locator('#apps-h ~ table tbody tr').nth(50).waitFor({ timeout: 30_000 });
      const ms = performance.now() - h0;
      // Where the time went, on the page's own clock (ms after its navigation start): Navigation and
      // Resource Timing, and when the 51st row was in the DOM (read back right after).
      const b = await page.evaluate(BREAKDOWN) as Breakdown & { apis: string[] };
      log(`  home ${at === url ? 'this build' : 'compared build'} ${ms.toFixed(0)} ms; page clock (ms): html ${b.html.toFixed(0)}, script ${b.scriptStart.toFixed(0)}-${b.scriptEnd.toFixed(0)}, interactive ${b.interactive.toFixed(0)}, api ${b.apiStart.toFixed(0)}-${b.apiEnd.toFixed(0)} [${b.apis.join(', ')}], rows ${b.rows.toFixed(0)}`);
      return { ms, b, ctx, page };
    };

    for (let r = 0; r < RUNS; r++) {
      if (t2 && r % 2 === 1) {
        const c = await homeLoad(t2, url2!);
        compare.push(c.ms);
        compareBreakdown.push(c.b);
        await c.ctx.close();
      }
      const { ms, b, ctx, page } = await homeLoad(t, url);
      home.push(ms);
      breakdown.push(b);
      if (t2 && r % 2 === 0) {
        const c = await homeLoad(t2, url2!);
        compare.push(c.ms);
        compareBreakdown.push(c.b);
        await c.ctx.close();
      }

      await page.goto(`${url}/apps/shop/logs`);
      await page.getByRole('searchbox', { name: 'Text' }).waitFor({ timeout: 30_000 });
      await page.getByRole('log').or(page.getByText('No log lines')).first().waitFor({ timeout: 30_000 });
      await page.getByRole('searchbox', { name: 'Text' }).fill('checkout');
      const s0 = performance.now();
      await page.getByRole('button', { name: 'Search' }).click();
      await page.getByRole('log').locator('td.text').filter({ hasText: 'checkout completed' }).first().waitFor({ timeout: 30_000 });
      search.push(performance.now() - s0);
      log(`run ${r + 1}: home ${home.at(-1)!.toFixed(0)} ms, log search ${search.at(-1)!.toFixed(0)} ms`);
      await ctx.close();
    }
    return {
      initial_bundle_gzip_kb: Math.round(gzipBytes / 102.4) / 10,
      home_tti_ms: Math.round(median(home)),
      // The same loads on the page's clock: HTML received, entry script requested, DOM interactive,
      // the home page's API reads (first start, last end), the 51st row in the DOM; medians.
      home_html_ms: Math.round(median(breakdown.map((b) => b.html))),
      home_script_start_ms: Math.round(median(breakdown.map((b) => b.scriptStart))),
      home_interactive_ms: Math.round(median(breakdown.map((b) => b.interactive))),
      home_api_start_ms: Math.round(median(breakdown.map((b) => b.apiStart))),
      home_api_end_ms: Math.round(median(breakdown.map((b) => b.apiEnd))),
      home_rows_ms: Math.round(median(breakdown.map((b) => b.rows))),
      ...(compare.length ? {
        compare_home_tti_ms: Math.round(median(compare)),
        compare_home_script_start_ms: Math.round(median(compareBreakdown.map((b) => b.scriptStart))),
        compare_home_interactive_ms: Math.round(median(compareBreakdown.map((b) => b.interactive))),
        compare_home_api_start_ms: Math.round(median(compareBreakdown.map((b) => b.apiStart))),
        compare_home_rows_ms: Math.round(median(compareBreakdown.map((b) => b.rows))),
      } : {}),
      home_apps: 50,
      home_services: 151,
      log_search_ms: Math.round(median(search)),
      log_lines: LINES,
      runs: RUNS,
    };
  } finally {
    await browser.close();
    await t.close();
    await t2?.close();
    logs.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
