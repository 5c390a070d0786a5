#!/usr/bin/env node
// `npm run build:web`: builds the portal (web/) into web/dist with Vite, unless web/dist was built
// from the same inputs (a hash of web/, the client and core sources it imports, and the lock file,
// kept in web/dist/.input-hash). The build goes to a fresh directory that replaces web/dist by
// rename, so a running server never reads half a bundle. Idempotent; scripts/install.sh calls it.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'web', 'dist');
const force = process.argv.includes('--force');

function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'dist' || e.name === 'node_modules' ? [] : files(p);
    return e.isFile() ? [p] : [];
  });
}

const inputs = [...files(join(root, 'web')), ...files(join(root, 'src', 'client')), ...files(join(root, 'src', 'core')), join(root, 'package-lock.json')]
  .filter((p) => !p.endsWith('.test.ts')).sort();
const h = createHash('sha256');
for (const p of inputs) h.update(relative(root, p)).update('\0').update(readFileSync(p)).update('\0');
const hash = h.digest('hex');
const marker = join(out, '.input-hash');
if (!force && existsSync(marker) && readFileSync(marker, 'utf8').trim() === hash && existsSync(join(out, 'index.html'))) {
  console.error('[build:web] web/dist is up to date');
  process.exit(0);
}
const tmp = join(root, 'web', `.dist.${process.pid}`);
const t0 = Date.now();
rmSync(tmp, { recursive: true, force: true });
execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', join(root, 'web', 'tsconfig.json')], { stdio: 'inherit' });
execFileSync(join(root, 'node_modules', '.bin', 'vite'), ['build', '--config', join(root, 'web', 'vite.config.ts'), '--logLevel', 'warn'], {
  stdio: 'inherit', env: { ...process.env, BERTH_WEB_OUT: tmp },
});
writeFileSync(join(tmp, '.input-hash'), hash + '\n');
const old = join(root, 'web', `.dist-old.${process.pid}`);
if (existsSync(out)) renameSync(out, old);
renameSync(tmp, out);
rmSync(old, { recursive: true, force: true });
const size = files(join(out, 'assets')).reduce((n, p) => n + statSync(p).size, 0);
console.error(`[build:web] built web/dist in ${Date.now() - t0} ms (${Math.round(size / 1024)} KiB of assets)`);
