/**
 * portal: the web portal measured in Debian's Chromium (playwright-core, headless).
 *   - initial_bundle_gzip_kb: what the first page load fetches (index.html, the entry script and
 *     stylesheet; the charts' uPlot chunk loads only with the metrics page), gzip -9;
 *   - home_tti_ms: from navigation to the home page until its apps table lists all 50 apps
 *     (50 apps × 3 services in the store);
 *   - log_search_ms: from pressing Search on the logs page until the first matching line shows,
 *     over BENCH_PORTAL_LOG_LINES (1,000,000) lines in the real log store (FTS5);
 * each the median of BENCH_PORTAL_RUNS (7) runs in a fresh page. The API is the real route table
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
    for (let r = 0; r < RUNS; r++) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
      const page = await ctx.newPage();
      const { code } = (await t.req('POST', '/v1/portal/codes')).json() as { code: string };
      await page.goto(`${url}/login#code=${code}`);
      await page.getByRole('heading', { name: 'Home' }).waitFor({ timeout: 30_000 });
      // A fresh load of home with the session in place: navigation start → 50 apps listed.
      await page.goto('about:blank');
      const h0 = performance.now();
      await page.goto(`${url}/`);
      await page.locator('#apps-h ~ table tbody tr').nth(50).waitFor({ timeout: 30_000 });
      home.push(performance.now() - h0);

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
      home_apps: 50,
      home_services: 151,
      log_search_ms: Math.round(median(search)),
      log_lines: LINES,
      runs: RUNS,
    };
  } finally {
    await browser.close();
    await t.close();
    logs.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
