/**
 * What a deployment was made from: the Compose text and the variables it was interpolated with, so
 * that the same file can be interpolated again for another environment (`promote` keeps the image
 * digests but takes the target's host names: `host: shop-${BERTH_ENV}.example.com`). Only the
 * variables the file referenced are kept, never the rest of the caller's environment.
 */
import { parseAppSpec } from './parse.ts';
import type { ParseOptions, ParseResult } from './types.ts';

export interface SpecSource {
  /** The Compose file's name as the user gave it (for messages). */
  file: string;
  text: string;
  /** Its directory, absolute (for a pushed commit, the virtual root the pipeline parsed it under). */
  baseDir: string;
  /** Other files the parse read (env_files, included and extended Compose files), by absolute path. */
  files: Record<string, string>;
  /** Files merged over `text`, in order (`-f a -f b`, compose.override.yaml): shown name and text. */
  moreFiles?: Array<{ file: string; text: string }>;
  /** The profiles that were active. */
  profiles?: string[];
  /** The caller's variables the file referenced, with their values (BERTH_ENV and BERTH_APP are set anew per environment). */
  variables: Record<string, string>;
  /** Pushed builds: the target environment's non-secret configuration values are variables too, over `variables`. */
  environmentConfig?: boolean;
}

export interface SourceParse extends ParseResult {
  source: SpecSource;
}

/**
 * Parses like parseAppSpec (for `environment`) and returns the source alongside: `variables` are the
 * caller's own (the CLI's environment and .env; a commit's .env), `config` the environment's
 * configuration values (pushed builds), which win over `variables` and are not kept in the source.
 */
export function parseWithSource(text: string, opts: Omit<ParseOptions, 'env'> & { environment: string },
  layers: { variables: Record<string, string>; config?: Record<string, string> }): SourceParse {
  const files: Record<string, string> = {};
  const result = parseAppSpec(text, {
    ...opts,
    env: { ...layers.variables, ...layers.config },
    // Secret and config files are read but never kept with the source (it is stored in plain text).
    readSecretFile: opts.readSecretFile ?? opts.readFile,
    readFile: (p) => {
      const t = opts.readFile(p);
      if (t !== undefined) files[p] = t;
      return t;
    },
  });
  const variables: Record<string, string> = {};
  for (const name of result.variablesUsed) if (Object.hasOwn(layers.variables, name)) variables[name] = layers.variables[name]!;
  const source: SpecSource = { file: opts.file, text, baseDir: opts.baseDir, files, variables, ...(layers.config ? { environmentConfig: true } : {}),
    ...(opts.moreFiles?.length ? { moreFiles: opts.moreFiles } : {}), ...(opts.profiles?.length ? { profiles: opts.profiles } : {}) };
  return { ...result, source };
}

/**
 * The source interpolated again for app `app` in `environment` (with that environment's
 * configuration values when the source asks for them). Its host paths are judged by the server
 * again when the result is deployed, like any deployment's.
 * @throws InvalidSpec when the file does not hold for that environment (e.g. `${X:?}` unset there).
 */
export function parseSource(src: SpecSource, app: string, environment: string, config: Record<string, string> = {}): ParseResult {
  return parseAppSpec(src.text, {
    file: src.file, baseDir: src.baseDir, appName: app, environment,
    ...(src.moreFiles ? { moreFiles: src.moreFiles } : {}), ...(src.profiles ? { profiles: src.profiles } : {}),
    env: { ...src.variables, ...(src.environmentConfig ? config : {}) },
    readFile: (p) => (Object.hasOwn(src.files, p) ? src.files[p] : undefined),
    // The source never holds secret files: a promotion that needs one is refused, naming it.
    readSecretFile: () => undefined,
  });
}
