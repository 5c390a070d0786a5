/**
 * Collects every issue and warning found while reading a spec, each with file, line, column and
 * path, so one run reports all problems at once instead of the first one only. A spec may come from
 * several files (`-f a -f b`, `include`, `extends: {file}`): each file is read with a view of the same
 * collection that locates paths in that file, and the merged model is located through the origins the
 * merge recorded (see compose-model.ts).
 */
import type { SpecIssue } from '../errors.ts';
import type { SpecWarning } from './types.ts';
import { formatPath, type Position, type SpecPath, type YamlSource } from './yaml-source.ts';

/** Where a path of the (merged) model was written. */
export type Locator = (path: SpecPath, at: 'key' | 'value') => Position & { file: string };

interface Shared {
  issues: SpecIssue[];
  warnings: SpecWarning[];
  /** Paths (formatted) with an error, so later stages can skip what is already known to be broken. */
  brokenPaths: string[];
  /** Files in the order they were read: issues sort by it, then by line and column. */
  files: string[];
}

export class Diagnostics {
  private readonly shared: Shared;
  private locator: Locator;

  constructor(
    readonly file: string,
    source?: YamlSource,
    shared?: Shared,
  ) {
    this.shared = shared ?? { issues: [], warnings: [], brokenPaths: [], files: [] };
    if (!this.shared.files.includes(file)) this.shared.files.push(file);
    this.locator = (path, at) => ({ file, ...(source ? source.locate(path, at) : { line: 1, col: 1 }) });
  }

  get issues(): readonly SpecIssue[] {
    return this.shared.issues;
  }

  get warnings(): readonly SpecWarning[] {
    return this.shared.warnings;
  }

  /** A view of the same collection that reports into `file` (another Compose file of the spec). */
  forFile(file: string, source: YamlSource): Diagnostics {
    return new Diagnostics(file, source, this.shared);
  }

  /** From now on, paths are located by `locator` (the merged model's origins). */
  useLocator(locator: Locator): void {
    this.locator = locator;
  }

  /** An error at `path`; `at: 'key'` points at the key itself (unknown or misnamed keys). */
  error(path: SpecPath, message: string, at: 'key' | 'value' = 'value'): void {
    const { file, ...pos } = this.locator(path, at);
    this.errorAt(pos, formatPath(path), message, file);
  }

  warn(path: SpecPath, message: string, at: 'key' | 'value' = 'value'): void {
    const { file, ...pos } = this.locator(path, at);
    this.shared.warnings.push({ file, ...pos, path: formatPath(path), message });
  }

  /** A warning at an explicit position (YAML-level warnings have no path). */
  warnAt(pos: Position, path: string, message: string): void {
    this.shared.warnings.push({ file: this.file, line: pos.line, col: pos.col, path, message });
  }

  /** An error at an explicit position, optionally in another file (an env_file). */
  errorAt(pos: Position, path: string, message: string, file = this.file): void {
    this.shared.issues.push({ file, line: pos.line, col: pos.col, path, message });
    this.shared.brokenPaths.push(path);
  }

  /** True when an error was reported at `path` or anywhere below it. */
  hasErrorsUnder(path: SpecPath): boolean {
    const p = formatPath(path);
    const broken = this.shared.brokenPaths;
    if (p === '') return broken.length > 0;
    return broken.some((b) => b === p || b.startsWith(p + '.') || b.startsWith(p + '['));
  }

  /** By file (in reading order; other files such as env files after), then line and column. */
  sortedIssues(): SpecIssue[] {
    return [...this.shared.issues].sort((a, b) => this.byPosition(a, b));
  }

  sortedWarnings(): SpecWarning[] {
    return [...this.shared.warnings].sort((a, b) => this.byPosition(a, b));
  }

  private byPosition(a: Located, b: Located): number {
    if (a.file !== b.file) {
      const order = (x: Located): number => {
        const i = this.shared.files.indexOf(x.file);
        return i < 0 ? this.shared.files.length : i;
      };
      return order(a) - order(b) || (a.file < b.file ? -1 : 1);
    }
    return a.line - b.line || a.col - b.col;
  }

  /** File, line and column of `path`. */
  position(path: SpecPath, at: 'key' | 'value' = 'value'): Position & { file: string } {
    return this.locator(path, at);
  }
}

interface Located {
  file: string;
  line: number;
  col: number;
}
