import { BerthError, Conflict, EngineUnavailable, InvalidInput, NotFound } from '../../core/errors.ts';

/** Error codes of node's socket layer that mean "nobody is answering on the Docker socket". */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'EACCES', 'ENOTSOCK', 'ETIMEDOUT', 'EHOSTUNREACH']);

interface DockerishError {
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
  json?: unknown;
  name?: unknown;
}

export function statusOf(err: unknown): number | undefined {
  const s = (err as DockerishError | undefined)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

export function isConnectionError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as DockerishError;
  if (typeof e.code === 'string' && CONNECTION_CODES.has(e.code)) return true;
  return typeof e.message === 'string' && /socket hang up|connect ECONNREFUSED|connect ENOENT/.test(e.message);
}

export function isAbortError(err: unknown): boolean {
  const e = err as DockerishError | undefined;
  return e?.name === 'AbortError' || e?.code === 'ABORT_ERR';
}

/** Docker's own message (`{"message": ...}` body) without docker-modem's "(HTTP code N) reason -" prefix. */
export function dockerMessage(err: unknown): string {
  const e = err as DockerishError | undefined;
  const json = e?.json as { message?: unknown } | undefined;
  if (json && typeof json === 'object' && typeof json.message === 'string') return json.message.trim();
  return String(e?.message ?? err).trim();
}

/**
 * `socketPath` is a unix socket (this machine's engine) or a `tcp://HOST:PORT` endpoint (another
 * host's engine, cluster mode): the hint says what to check for each.
 */
export function engineUnreachable(socketPath: string, cause: unknown): EngineUnavailable {
  const code = (cause as DockerishError | undefined)?.code;
  const hint = /^tcp:\/\//.test(socketPath)
    ? 'check that the host is up, that its dockerd listens there with Berth\'s TLS material and that the port is open from this machine.'
    : 'start it with `bash scripts/dockerd.sh start` (or check that this user may open the socket).';
  return new EngineUnavailable(`The Docker Engine at ${socketPath} is not reachable${typeof code === 'string' ? ` (${code})` : ''}: ${hint}`, { cause });
}

/**
 * Maps a dockerode failure onto a BerthError: connection problems become EngineUnavailable naming the
 * socket; 404 → NotFound, 409 → Conflict, 400 → InvalidInput; other API errors become EngineUnavailable keeping Docker's
 * message (the engine refused the operation). BerthErrors pass through.
 */
export function toBerthError(err: unknown, socketPath: string, what: string): BerthError {
  if (err instanceof BerthError) return err;
  if (isConnectionError(err)) return engineUnreachable(socketPath, err);
  const status = statusOf(err);
  const msg = `${what}: ${dockerMessage(err)}`;
  if (status === 404) return new NotFound(msg, { cause: err });
  if (status === 409) return new Conflict(msg, { cause: err });
  // 400: Docker rejected what we asked for (bind source missing, executable not found in the image...).
  if (status === 400) return new InvalidInput(msg, { cause: err });
  return new EngineUnavailable(status ? `${msg} (Docker API status ${status})` : msg, { cause: err });
}
