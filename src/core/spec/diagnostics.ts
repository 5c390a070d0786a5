/**
 * Collects every issue and warning found while reading a spec, each with file, line, column and
 * path, so one run reports all problems at once instead of the first one only.
 */
import type { SpecIssue } from '../errors.ts';
import type { SpecWarning } from './types.ts';
import { formatPath, type Position, type SpecPath, type YamlSource } from './yaml-source.ts';

export class Diagnostics {
  readonly issues: SpecIssue[] = [];
  readonly warnings: SpecWarning[] = [];
  /** Paths (formatted) with an error, so later stages can skip what is already known to be broken. */
  private readonly brokenPaths: string[] = [];

  constructor(
    readonly file: string,
    private readonly source?: YamlSource,
  ) {}

  /** An error at `path`; `at: 'key'` points at the key itself (unknown or misnamed keys). */
  error(path: SpecPath, message: string, at: 'key' | 'value' = 'value'): void {
    this.errorAt(this.locate(path, at), formatPath(path), message);
  }

  warn(path: SpecPath, message: string, at: 'key' | 'value' = 'value'): void {
    const pos = this.locate(path, at);
    this.warnings.push({ file: this.file, ...pos, path: formatPath(path), message });
  }

  /** A warning at an explicit position (YAML-level warnings have no path). */
  warnAt(pos: Position, path: string, message: string): void {
    this.warnings.push({ file: this.file, line: pos.line, col: pos.col, path, message });
  }

  /** An error at an explicit position, optionally in another file (an env_file). */
  errorAt(pos: Position, path: string, message: string, file = this.file): void {
    this.issues.push({ file, line: pos.line, col: pos.col, path, message });
    this.brokenPaths.push(path);
  }

  /** True when an error was reported at `path` or anywhere below it. */
  hasErrorsUnder(path: SpecPath): boolean {
    const p = formatPath(path);
    if (p === '') return this.brokenPaths.length > 0;
    return this.brokenPaths.some((b) => b === p || b.startsWith(p + '.') || b.startsWith(p + '['));
  }

  /** By line and column; problems in other files (env files) after those in the Compose file. */
  sortedIssues(): SpecIssue[] {
    return [...this.issues].sort((a, b) => this.byPosition(a, b));
  }

  sortedWarnings(): SpecWarning[] {
    return [...this.warnings].sort((a, b) => this.byPosition(a, b));
  }

  private byPosition(a: Located, b: Located): number {
    const fileOrder = (x: Located): string => (x.file === this.file ? '' : x.file);
    if (a.file !== b.file) return fileOrder(a) < fileOrder(b) ? -1 : 1;
    return a.line - b.line || a.col - b.col;
  }

  /** Line and column of `path` in the file. */
  position(path: SpecPath, at: 'key' | 'value' = 'value'): Position {
    return this.locate(path, at);
  }

  private locate(path: SpecPath, at: 'key' | 'value'): Position {
    return this.source ? this.source.locate(path, at) : { line: 1, col: 1 };
  }
}

interface Located {
  file: string;
  line: number;
  col: number;
}
