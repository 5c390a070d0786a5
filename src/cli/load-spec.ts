import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseEnvFile, parseWithSource, type SourceParse } from '../core/spec/index.ts';
import type { ParseResult } from '../core/spec/types.ts';
import { InvalidInput, InvalidSpec, type SpecIssue } from '../core/errors.ts';
import { ApiError } from '../client/index.ts';

/** The files `docker compose` reads when no -f is given, in the current directory. */
const DEFAULT_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];
const OVERRIDE_FILES: Record<string, string[]> = {
  'compose.yaml': ['compose.override.yaml', 'compose.override.yml'], 'compose.yml': ['compose.override.yml', 'compose.override.yaml'],
  'docker-compose.yaml': ['docker-compose.override.yaml', 'docker-compose.override.yml'], 'docker-compose.yml': ['docker-compose.override.yml', 'docker-compose.override.yaml'],
};

/**
 * The Compose files to read, as `docker compose` picks them: the `-f` files in order; without -f,
 * compose.yaml (or compose.yml, docker-compose.yaml, docker-compose.yml) of the current directory,
 * plus its override file (compose.override.yaml) when there is one.
 */
export function composeFiles(given: readonly string[]): string[] {
  if (given.length > 0) return [...given];
  const main = DEFAULT_FILES.find((f) => existsSync(f));
  if (!main) throw new InvalidInput(`no Compose file here (looked for ${DEFAULT_FILES.join(', ')}): pass one with -f, e.g. -f compose.yaml`);
  const override = OVERRIDE_FILES[main]!.find((f) => existsSync(f));
  return override ? [main, override] : [main];
}

/** Active profiles: --profile (repeated), else COMPOSE_PROFILES (comma-separated), as docker compose does. */
export function activeProfiles(given: readonly string[]): string[] {
  if (given.length > 0) return [...new Set(given)];
  return [...new Set((process.env.COMPOSE_PROFILES ?? '').split(',').map((p) => p.trim()).filter((p) => p !== ''))];
}

/**
 * Reads Compose files as `docker compose` would: the first file's directory is the project's
 * (relative paths, the `.env` file); the others are merged over it in order; variables come from the
 * environment and that `.env`; included and extended files, env_files and build contexts are read
 * relative to the file naming them; BERTH_ENV is `env` and BERTH_APP the app's name. Which host paths
 * may be used is the server's decision (see hostPathIssues). The result carries the source (the texts,
 * the files read and the variables used) that the server keeps for `promote`.
 */
export function loadSpecFile(files: string | readonly string[], appName: string | undefined, env: string, profiles: readonly string[] = []): SourceParse {
  const [file, ...more] = typeof files === 'string' ? [files] : composeFiles(files);
  const text = readComposeFile(file!);
  const moreFiles = more.map((f) => ({ file: f, text: readComposeFile(f) }));
  const baseDir = dirname(resolve(file!));
  const dotenv = readDotEnv(join(baseDir, '.env'), join(dirname(file!), '.env'));
  const variables: Record<string, string> = { ...dotenv };
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) variables[k] = v;
  return parseWithSource(text, {
    file: file!,
    baseDir,
    environment: env,
    ...(appName ? { appName } : {}),
    ...(moreFiles.length > 0 ? { moreFiles } : {}),
    ...(profiles.length > 0 ? { profiles: [...profiles] } : {}),
    readFile: (p) => {
      try {
        return readFileSync(p, 'utf8');
      } catch {
        return undefined;
      }
    },
  }, { variables });
}

function readComposeFile(file: string): string {
  const abs = resolve(file);
  if (!existsSync(abs)) throw new InvalidInput(`${file}: no such file: pass the Compose file with -f, e.g. -f compose.yaml`);
  try {
    return readFileSync(abs, 'utf8');
  } catch (err) {
    throw new InvalidInput(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code})`);
  }
}

/**
 * A refused spec as one JSON document (for --json): the errors first, then the warnings of the same
 * parse, each with file, line, column, path and message. Undefined for errors that are not about the spec.
 */
export function specReport(err: unknown): { valid: false; errors: SpecIssue[]; warnings: SpecIssue[] } | undefined {
  if (err instanceof InvalidSpec) return { valid: false, errors: err.issues, warnings: err.warnings };
  if (err instanceof ApiError && err.code === 'invalid_spec') {
    const d = err.details as { issues?: SpecIssue[]; warnings?: SpecIssue[] } | undefined;
    if (Array.isArray(d?.issues)) return { valid: false, errors: d.issues, warnings: Array.isArray(d.warnings) ? d.warnings : [] };
  }
  return undefined;
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
    const exact = parsed.hostPathSources[r.path] ?? parsed.hostPathSources[r.path.replace(/\.dockerfile$/, '.context')];
    // Guardrail refusals of what a file lacks (read_only) are shown at the service, by the refused key's path.
    const service = parsed.hostPathSources[r.path.split('.').slice(0, 2).join('.').replace(/\[.*$/, '')];
    const at = exact ?? service;
    return at ? { file: at.file ?? file, line: at.line, col: at.col, path: exact ? at.path : r.path, message: r.message } : { file, line: 1, col: 1, path: r.path, message: r.message };
  });
  return new InvalidSpec(issues, parsed.warnings);
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
