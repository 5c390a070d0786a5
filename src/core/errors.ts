/**
 * Domain errors with stable codes. Only api/ maps them to HTTP statuses and only cli/ to exit codes.
 * A message says what is wrong and what would be right; `details` carries structured specifics
 * (e.g. file/line/column issues of a spec) that clients may render.
 */
export interface SpecIssue {
  file: string;
  line: number;
  col: number;
  /** Dotted path of the offending key, e.g. `services.web.deploy.replicas`. */
  path: string;
  message: string;
}

export class BerthError extends Error {
  readonly code: string = 'internal';
  readonly details?: unknown;
  constructor(message: string, options?: { cause?: unknown; details?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options?.details;
  }
}

/**
 * The app spec (Compose file) is invalid; `issues` name file, line, column. `warnings` are the
 * warnings of the same parse, shown after the errors: one of them often names the cause (an unset
 * variable behind an empty value).
 */
export class InvalidSpec extends BerthError {
  override readonly code = 'invalid_spec';
  readonly issues: SpecIssue[];
  readonly warnings: SpecIssue[];
  constructor(issues: SpecIssue[], warnings: SpecIssue[] = []) {
    super([...issues.map(formatIssue), ...warnings.map((w) => `warning: ${formatIssue(w)}`)].join('\n'),
      { details: warnings.length > 0 ? { issues, warnings } : { issues } });
    this.issues = issues;
    this.warnings = warnings;
  }
}

/** A request field is invalid (API body, CLI argument). */
export class InvalidInput extends BerthError {
  override readonly code = 'invalid_input';
}
export class NotFound extends BerthError {
  override readonly code = 'not_found';
}
export class Conflict extends BerthError {
  override readonly code = 'conflict';
}
export class Unauthorized extends BerthError {
  override readonly code = 'unauthorized';
}
export class Forbidden extends BerthError {
  override readonly code = 'forbidden';
}
/** The container engine cannot be reached or refused an operation. */
export class EngineUnavailable extends BerthError {
  override readonly code = 'engine_unavailable';
}
/** An external program (nginx, git) failed; the message keeps its stderr. */
export class ExternalCommandFailed extends BerthError {
  override readonly code = 'external_command_failed';
}

export function formatIssue(i: SpecIssue): string {
  return `${i.file}:${i.line}:${i.col}: ${i.path ? i.path + ': ' : ''}${i.message}`;
}

/** Too many attempts (logins, bad credentials) from one address or for one user: try again after `retryAfterS`. */
export class RateLimited extends BerthError {
  override readonly code = 'rate_limited';
  readonly retryAfterS: number;
  constructor(message: string, retryAfterS: number) {
    super(message, { details: { retryAfterS } });
    this.retryAfterS = retryAfterS;
  }
}
