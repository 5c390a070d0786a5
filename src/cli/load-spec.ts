import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseEnvFile, parseWithSource, type SourceParse } from '../core/spec/index.ts';
import type { ParseResult } from '../core/spec/types.ts';
import { InvalidInput, InvalidSpec, type SpecIssue } from '../core/errors.ts';
import { ApiError } from '../client/index.ts';

/**
 * Reads a Compose file as `docker compose` would: variables from the environment and a `.env` file
 * beside it, env_files, bind sources and build contexts relative to its directory; BERTH_ENV is `env`
 * and BERTH_APP the app's name. Which host paths may be used is the server's decision (see
 * hostPathIssues). The result carries the source (the text, the env_files and the variables the file
 * used) that the server keeps for `promote`.
 */
export function loadSpecFile(file: string, appName: string | undefined, env: string): SourceParse {
  const abs = resolve(file);
  if (!existsSync(abs)) throw new InvalidInput(`${file}: no such file: pass the Compose file with -f, e.g. -f compose.yaml`);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    throw new InvalidInput(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code})`);
  }
  const baseDir = dirname(abs);
  const dotenv = readDotEnv(join(baseDir, '.env'), join(dirname(file), '.env'));
  const variables: Record<string, string> = { ...dotenv };
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) variables[k] = v;
  return parseWithSource(text, {
    file,
    baseDir,
    environment: env,
    ...(appName ? { appName } : {}),
    readFile: (p) => {
      try {
        return readFileSync(p, 'utf8');
      } catch {
        return undefined;
      }
    },
  }, { variables });
}

/**
 * The server's refusal of bind sources or build contexts (`details.refused`, by spec path) as spec
 * issues at the file:line:col where each path was written; undefined for any other error.
 */
export function hostPathIssues(err: unknown, file: string, parsed: ParseResult): InvalidSpec | undefined {
  if (!(err instanceof ApiError) || err.code !== 'invalid_input') return undefined;
  const refused = (err.details as { refused?: Array<{ path: string; message: string }> } | undefined)?.refused;
  if (!Array.isArray(refused) || refused.length === 0) return undefined;
  const issues: SpecIssue[] = refused.map((r) => {
    const at = parsed.hostPathSources[r.path] ?? parsed.hostPathSources[r.path.replace(/\.dockerfile$/, '.context')];
    return at ? { file, line: at.line, col: at.col, path: at.path, message: r.message } : { file, line: 1, col: 1, path: r.path, message: r.message };
  });
  return new InvalidSpec(issues);
}

/**
 * The `.env` beside the Compose file, read by the same parser as `env_file:` and as a pushed
 * commit's `.env` (core/spec/env-file.ts), so a value means the same from a laptop and from a push.
 * A bad line is an error at its line and column, as for a push.
 */
function readDotEnv(path: string, shown: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return {};
    throw new InvalidInput(`${shown}: cannot read it (${code})`);
  }
  const r = parseEnvFile(text);
  if (r.problems.length > 0) throw new InvalidSpec(r.problems.map((p) => ({ file: shown, line: p.line, col: p.col, path: '', message: p.message })));
  return r.vars;
}
