/**
 * What every normalization step needs: where to report, the caller's options, and app-wide facts
 * (app name, declared volumes, service names). Plus the small value helpers they share.
 */
import type { Diagnostics } from './diagnostics.ts';
import type { FileDefinition } from './secrets.ts';
import type { ParseOptions } from './types.ts';
import type { Parsed } from './units.ts';
import { formatPath, type SpecPath } from './yaml-source.ts';

export interface SpecContext {
  readonly diag: Diagnostics;
  readonly opts: ParseOptions;
  readonly appName: string;
  /** Names under the top-level `volumes:`. */
  readonly declaredVolumes: ReadonlySet<string>;
  /** Names under the top-level `networks:`. */
  readonly declaredNetworks: ReadonlySet<string>;
  /** Names under `services:`, for depends_on checks and suggestions. */
  readonly serviceNames: readonly string[];
  /** Top-level `secrets:` and `configs:`, values read for those some service mounts. */
  readonly fileDefinitions: { readonly secrets: ReadonlyMap<string, FileDefinition>; readonly configs: ReadonlyMap<string, FileDefinition> };
  /** Services left out because none of their profiles is active: name → profiles. */
  readonly inactiveServices: ReadonlyMap<string, string[]>;
  /** Where each host path of the spec was written (see ParseResult.hostPathSources). */
  readonly hostPathSources: Record<string, { file?: string; line: number; col: number; path: string }>;
}

/** Records that the spec's `specPath` (a bind source, a build context) was written at `composePath`. */
export function noteHostPath(ctx: SpecContext, specPath: string, composePath: SpecPath): void {
  ctx.hostPathSources[specPath] = { ...ctx.diag.position(composePath), path: formatPath(composePath) };
}

export type Json = Record<string, unknown>;

export function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reports a parse error at `path` and returns undefined, or returns the parsed value. */
export function take<T>(ctx: SpecContext, path: SpecPath, parsed: Parsed<T>): T | undefined {
  if (parsed.error !== undefined) {
    ctx.diag.error(path, parsed.error);
    return undefined;
  }
  return parsed.value;
}

/** Scalars of `environment`, `labels`, `args` maps as strings (YAML may have typed them). */
export function scalarToString(v: unknown): string {
  return typeof v === 'string' ? v : String(v);
}

/**
 * Compose's "list or dict" (`environment`, `labels`, `build.args`): `[KEY=VAL, KEY]` or `{KEY: VAL}`.
 * A key without a value (`KEY` or `KEY:`) is returned with `undefined`, for the caller to resolve.
 */
export function listOrDict(v: unknown): Array<{ key: string; value: string | undefined; index: number | string }> {
  if (Array.isArray(v)) {
    return v.map((item, index) => {
      const s = scalarToString(item);
      const eq = s.indexOf('=');
      return eq < 0 ? { key: s, value: undefined, index } : { key: s.slice(0, eq), value: s.slice(eq + 1), index };
    });
  }
  if (isRecord(v)) {
    return Object.entries(v).map(([key, value]) => ({
      key,
      value: value === null || value === undefined ? undefined : scalarToString(value),
      index: key,
    }));
  }
  return [];
}
