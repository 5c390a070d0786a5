/**
 * spec: the app spec room. Turns a Compose file (a practical subset of the Compose Specification)
 * plus Berth's `x-berth` extensions into a typed, normalized AppSpec — durations in milliseconds,
 * sizes in bytes, argv arrays, resolved paths, defaults filled in — or an InvalidSpec that lists
 * every problem with file, line and column. Pure: no I/O except the injected `readFile` for env
 * files, so the CLI, the server and the web portal can all run it. Keys Berth does not act on come
 * back as warnings, never silently dropped.
 */
export { parseAppSpec, BERTH_VARIABLES } from './parse.ts';
export { parseSource, parseWithSource, type SourceParse, type SpecSource } from './source.ts';
export { parseDuration, parseSize, type DurationOptions } from './units.ts';
export { parseEnvFile, type EnvFileResult } from './env-file.ts';
export { NAME_PATTERN } from './names.ts';
export { warmComposeSchema } from './schema-check.ts';
export type {
  AppSpec,
  BuildSpec,
  CommandHealth,
  HealthSpec,
  HttpHealth,
  NoHealth,
  ParseOptions,
  ParseResult,
  RestartPolicy,
  RouteSpec,
  ServiceSpec,
  SpecWarning,
  TcpHealth,
  VolumeMount,
} from './types.ts';
