/**
 * Image references as Docker reads them, and what a pull failure means: pure helpers shared by the
 * deployment controller (which decides when to pull and words a failure), the Docker engine (which
 * picks the credentials of a reference's registry) and the registry-login routes.
 */
import { parseDuration } from './spec/units.ts';

/** Docker Hub, as Docker names it when a reference has no registry part (`postgres:16`, `library/redis`). */
export const DOCKER_HUB = 'docker.io';

/**
 * The registry host of a reference: its first path component when that looks like a host (has a
 * `.` or a `:`, or is `localhost`), else Docker Hub — Docker's own rule (`127.0.0.1:5000/x/y:1` →
 * `127.0.0.1:5000`, `ghcr.io/o/r` → `ghcr.io`, `postgres:16` and `berth/node:20` → `docker.io`).
 */
export function registryOf(ref: string): string {
  const slash = ref.indexOf('/');
  if (slash < 0) return DOCKER_HUB;
  const first = ref.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first.toLowerCase() : DOCKER_HUB;
}

/** Whether a reference pins a digest (`repo@sha256:…`): the bytes cannot change, so it is never pulled again once present. */
export function isDigestRef(ref: string): boolean {
  return /@sha256:[0-9a-f]{64}$/.test(ref);
}

/** A registry host as `berth registry login` takes it: `host[:port]`, no scheme or path. Returns the problem, or undefined. */
export function registryHostProblem(host: string): string | undefined {
  if (host.length === 0 || host.length > 253) return 'a registry host such as registry.example.com or 127.0.0.1:5000';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(host)) return `write the host without a scheme: ${host.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/.*$/, '')}`;
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/i.test(host)) {
    return 'a registry host such as registry.example.com or 127.0.0.1:5000 (letters, digits, dots, dashes, an optional :port)';
  }
  const port = host.includes(':') ? Number(host.slice(host.lastIndexOf(':') + 1)) : 1;
  if (port < 1 || port > 65535) return `port ${port} is not a port (1-65535)`;
  return undefined;
}

/** Why a pull failed, from the engine's message: what the user must fix differs for each. */
export type PullFailure = 'auth' | 'not_found' | 'unreachable' | 'other';

export function classifyPullError(message: string): PullFailure {
  const m = message.toLowerCase();
  if (/unauthorized|authentication required|no basic auth credentials|denied|incorrect username or password|401/.test(m)) return 'auth';
  if (/manifest unknown|not found|does not exist|no such image|name unknown|404/.test(m)) return 'not_found';
  if (/connection refused|no such host|i\/o timeout|timeout|network is unreachable|server misbehaving|tls|dial tcp|eof|connection reset/.test(m)) return 'unreachable';
  return 'other';
}

/**
 * A pull failure as the deployment reports it: which image, which registry, what failed, what to do.
 * `loggedIn` says whether Berth has credentials for the registry.
 */
export function pullFailureMessage(service: string, ref: string, message: string, loggedIn: boolean): string {
  const registry = registryOf(ref);
  const kind = classifyPullError(message);
  const why = summary(message);
  switch (kind) {
    case 'auth':
      return `pull of ${ref} (service ${service}) from registry ${registry} failed: authentication: ${why}: ` +
        (loggedIn ? `the credentials Berth has for ${registry} were refused: run \`berth registry login ${registry}\` again`
          : `Berth has no credentials for ${registry}: run \`berth registry login ${registry}\``);
    case 'not_found':
      return `pull of ${ref} (service ${service}) from registry ${registry} failed: not found: ${why}: check the image name and tag`;
    case 'unreachable':
      return `pull of ${ref} (service ${service}) failed: registry ${registry} unreachable: ${why}`;
    default:
      return `pull of ${ref} (service ${service}) from registry ${registry} failed: ${why}`;
  }
}

function summary(message: string): string {
  const first = message.split('\n')[0]!.replace(/^pulling \S+ failed: /, '').trim();
  return first.length > 300 ? `${first.slice(0, 300)}…` : first;
}

/** When a service's image is pulled, from Compose's `pull_policy` (`if_not_present` is `missing`). */
export type PullDecision = { pull: 'always' | 'if-missing' | 'never' } | { pull: 'if-older'; maxAgeMs: number };

const DAY_MS = 86_400_000;

export function pullDecision(policy: string | undefined): PullDecision {
  switch (policy) {
    case undefined:
    case '':
    case 'missing':
    case 'if_not_present':
    case 'build':
      return { pull: 'if-missing' };
    case 'always':
    case 'refresh':
      return { pull: 'always' };
    case 'never':
      return { pull: 'never' };
    case 'daily':
      return { pull: 'if-older', maxAgeMs: DAY_MS };
    case 'weekly':
      return { pull: 'if-older', maxAgeMs: 7 * DAY_MS };
    default: {
      // every_<duration> (Compose: every_12h, every_1h30m); a bare number is seconds.
      const body = /^every_(.+)$/.exec(policy)?.[1];
      if (body && /^\d+$/.test(body)) return { pull: 'if-older', maxAgeMs: Number(body) * 1000 };
      const ms = body === undefined ? undefined : parseDuration(body, { weeks: true }).value;
      if (ms !== undefined) return { pull: 'if-older', maxAgeMs: ms };
      return { pull: 'if-missing' };
    }
  }
}
