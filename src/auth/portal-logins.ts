import { createHash, randomBytes } from 'node:crypto';
import { Unauthorized } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';

/** How long a login link works. */
export const LOGIN_CODE_TTL_MS = 5 * 60_000;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Whom a code logs in: a user, or the bootstrap admin (`ADMIN_SESSION`). */
export interface LoginSubject {
  id: string;
  name: string;
}

/**
 * One-time login links for the web portal (`berth portal`): someone with a credential asks for a
 * code; the code, opened in a browser within 5 minutes, is spent once and opens a cookie session for
 * that same person (Authenticator.openSession). Codes live in this process only, kept by their
 * SHA-256, so neither a heap dump nor a log line holds a usable one; a restart voids unspent codes.
 */
export class PortalLogins {
  private readonly codes = new Map<string, { expiresAt: number; who: LoginSubject }>();

  constructor(private readonly clock: Clock, private readonly ttlMs = LOGIN_CODE_TTL_MS) {}

  issue(who: LoginSubject): { code: string; expiresAt: number } {
    this.sweep();
    const code = randomBytes(24).toString('base64url');
    const expiresAt = this.clock.now() + this.ttlMs;
    this.codes.set(sha256(code), { expiresAt, who });
    return { code, expiresAt };
  }

  /** Spends the code (whatever the outcome): whom it logs in; an unknown, used or expired code is refused. */
  exchange(code: string): LoginSubject {
    this.sweep();
    const key = sha256(code);
    const c = this.codes.get(key);
    this.codes.delete(key);
    if (!c || c.expiresAt <= this.clock.now()) {
      throw new Unauthorized('this login link is unknown, already used or expired (a link works once, for 5 minutes): run `berth portal` for a new one');
    }
    return c.who;
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [k, v] of this.codes) if (v.expiresAt <= now) this.codes.delete(k);
  }
}
