/**
 * A real browser for the portal's tests and benchmark: Debian's Chromium (`/usr/bin/chromium`,
 * headless) driven by playwright-core, never a downloaded browser. `axe` runs axe-core on a page and
 * returns its serious and critical violations; `shot` writes a screenshot to tmp/artifacts/portal.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';
import { ROOT } from './harness.ts';

export const CHROMIUM = process.env.BERTH_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = join(ROOT, 'tmp', 'artifacts', 'portal');

export async function launch(): Promise<Browser> {
  // --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
}

/** axe-core's serious and critical violations on the page as it is now, one line each. */
export async function axe(page: Page): Promise<string[]> {
  // Every rule runs; only violations are collected in detail (passes, incomplete and inapplicable
  // results are not serialized node by node, which is most of axe's time on a large page).
  const r = await new AxeBuilder({ page }).options({ resultTypes: ['violations'] }).analyze();
  return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')})`);
}

export async function shot(page: Page, name: string): Promise<void> {
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}
