import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseAppSpec } from '../core/spec/index.ts';
import type { ParseResult } from '../core/spec/types.ts';
import { InvalidInput } from '../core/errors.ts';

/**
 * Reads a Compose file as `docker compose` would: variables from the environment and a `.env` file
 * beside it, env_files and build contexts relative to its directory.
 */
export function loadSpecFile(file: string, appName?: string): ParseResult {
  const abs = resolve(file);
  if (!existsSync(abs)) throw new InvalidInput(`${file}: no such file: pass the Compose file with -f, e.g. -f compose.yaml`);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new InvalidInput(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code})`);
  }
  const baseDir = dirname(abs);
  const dotenv = readDotEnv(join(baseDir, '.env'));
  const env: Record<string, string> = { ...dotenv };
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  const roots = (process.env.BERTH_ALLOWED_BIND_ROOTS ?? '').split(':').filter(Boolean);
  return parseAppSpec(text, {
    file,
    env,
    baseDir,
    ...(appName ? { appName } : {}),
    allowedBindRoots: [baseDir, ...roots],
    readFile: (p) => {
      try {
        return readFileSync(p, 'utf8');
      } catch {
        return undefined;
      }
    },
  });
}

function readDotEnv(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return out;
  }
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    out[m[1]!] = m[2]!.replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}
