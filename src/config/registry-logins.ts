import { existsSync, readFileSync } from 'node:fs';
import { InvalidInput, NotFound } from '../core/errors.ts';
import { registryHostProblem } from '../core/image-ref.ts';
import type { Clock } from '../core/ports.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import type { SecretBox } from './secret-box.ts';

/** A login as listed: never the password. */
export interface RegistryLoginView {
  host: string;
  username: string;
  updatedAt: number;
}

interface StoredLogin {
  username: string;
  /** base64 of the AES-256-GCM parts (SecretBox), bound to `registry-login/HOST/USER`. */
  iv: string;
  tag: string;
  ciphertext: string;
  updatedAt: number;
}

const MAX_FIELD = 4096;

/**
 * Credentials for private image registries (`berth registry login HOST`), sealed like configuration
 * secrets: AES-256-GCM with the server's secret key, each bound to its host and user, in one file
 * (`DATA_DIR/registry-logins.json`, 0600, written atomically). The password is decrypted only to hand
 * it to the engine as the X-Registry-Auth of one pull; it is never listed or logged.
 */
export class RegistryLogins {
  private logins: Record<string, StoredLogin>;

  constructor(private readonly path: string, private readonly box: SecretBox, private readonly clock: Clock) {
    this.logins = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as { logins: Record<string, StoredLogin> }).logins : {};
  }

  /** Stores (or replaces) the credentials of `host`. */
  async set(host: string, username: string, password: string): Promise<RegistryLoginView> {
    const h = checkHost(host);
    if (username.length === 0 || username.length > MAX_FIELD || /[\s:]/.test(username)) {
      throw new InvalidInput('username: a user name without spaces or ":" (at most 4096 characters)');
    }
    if (password.length === 0 || password.length > MAX_FIELD) throw new InvalidInput('password: must not be empty (at most 4096 characters)');
    const sealed = this.box.seal(password, aad(h, username));
    const next = {
      ...this.logins,
      [h]: { username, iv: sealed.iv.toString('base64'), tag: sealed.tag.toString('base64'), ciphertext: sealed.ciphertext.toString('base64'), updatedAt: this.clock.now() },
    };
    await this.save(next);
    return { host: h, username, updatedAt: next[h]!.updatedAt };
  }

  /** Forgets the credentials of `host`. NotFound when there are none. */
  async remove(host: string): Promise<void> {
    const h = checkHost(host);
    if (!this.logins[h]) throw new NotFound(`no login for registry ${h}: see \`berth registry logins\``);
    const { [h]: _gone, ...rest } = this.logins;
    await this.save(rest);
  }

  list(): RegistryLoginView[] {
    return Object.entries(this.logins).map(([host, l]) => ({ host, username: l.username, updatedAt: l.updatedAt }))
      .sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  }

  has(host: string): boolean {
    return this.logins[host.toLowerCase()] !== undefined;
  }

  /** The credentials of `host`, decrypted for one request to the engine; undefined when there are none. */
  credentials(host: string): { username: string; password: string } | undefined {
    const h = host.toLowerCase();
    const l = this.logins[h];
    if (!l) return undefined;
    const password = this.box.open({ iv: Buffer.from(l.iv, 'base64'), tag: Buffer.from(l.tag, 'base64'), ciphertext: Buffer.from(l.ciphertext, 'base64') }, aad(h, l.username));
    return { username: l.username, password };
  }

  private async save(next: Record<string, StoredLogin>): Promise<void> {
    await writeFileAtomic(this.path, JSON.stringify({ logins: next }) + '\n', { mode: 0o600 });
    this.logins = next;
  }
}

function checkHost(host: string): string {
  const bad = registryHostProblem(host);
  if (bad) throw new InvalidInput(`host "${host}": ${bad}`);
  return host.toLowerCase();
}

function aad(host: string, username: string): string {
  return `registry-login/${host}/${username}`;
}
