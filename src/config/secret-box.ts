import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, InvalidInput } from '../core/errors.ts';

/** The secret key is missing, malformed, or not the key the stored secrets were sealed with. */
export class SecretKeyError extends BerthError {
  override readonly code = 'secret_key';
}

/** One sealed value: what is stored instead of the plaintext. */
export interface Sealed {
  ciphertext: Buffer;
  /** 12 random bytes, new for every value. */
  iv: Buffer;
  /** GCM authentication tag (16 bytes). */
  tag: Buffer;
}

export const SECRET_KEY_FILE = 'secret.key';
const KEY_BYTES = 32;
const IV_BYTES = 12;

/** Where the key came from, for messages that tell an operator what to fix. */
export type KeySource = { kind: 'env' } | { kind: 'file'; path: string; created: boolean };

export interface LoadedKey {
  key: Buffer;
  source: KeySource;
}

/**
 * The 32-byte key secrets are sealed with, never kept in the database: `BERTH_SECRET_KEY` (base64;
 * the caller passes the value, config is read once in server/) or else `DATA_DIR/secret.key`, created
 * on first use with mode 0600. A key file readable by others is refused rather than trusted.
 */
export function loadSecretKey(o: { dataDir: string; fromEnv?: string | undefined }): LoadedKey {
  if (o.fromEnv !== undefined && o.fromEnv.trim() !== '') {
    return { key: decodeKey(o.fromEnv, 'BERTH_SECRET_KEY'), source: { kind: 'env' } };
  }
  const path = join(o.dataDir, SECRET_KEY_FILE);
  let created = false;
  try {
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    // O_EXCL: two servers starting at once never both write a key; the loser reads the winner's.
    const fd = openSync(path, 'wx', 0o600);
    try {
      writeSync(fd, randomBytes(KEY_BYTES).toString('base64') + '\n');
    } finally {
      closeSync(fd);
    }
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new SecretKeyError(`cannot create the secret key file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'}): ` +
        'make DATA_DIR writable or set BERTH_SECRET_KEY to a base64 32-byte key (e.g. `openssl rand -base64 32`)');
    }
  }
  const st = statSync(path);
  if ((st.mode & 0o077) !== 0) {
    throw new SecretKeyError(`the secret key file ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}): run \`chmod 600 ${path}\``);
  }
  return { key: decodeKey(readFileSync(path, 'utf8'), path), source: { kind: 'file', path, created } };
}

function decodeKey(text: string, where: string): Buffer {
  const t = text.trim();
  const key = /^[A-Za-z0-9+/]+={0,2}$/.test(t) ? Buffer.from(t, 'base64') : Buffer.alloc(0);
  if (key.length !== KEY_BYTES) {
    // Never echo the text: it is (or was meant to be) a key.
    throw new InvalidInput(`${where} is not a base64-encoded ${KEY_BYTES}-byte key: generate one with \`openssl rand -base64 32\``);
  }
  return key;
}

/**
 * AES-256-GCM with a random IV per value. The additional authenticated data binds a ciphertext to
 * where it belongs (`app/env/key`): copying a sealed row to another key or app fails to open.
 */
export class SecretBox {
  private readonly key: Buffer;
  /** A one-way fingerprint of the key: lets the config store tell "wrong key" from "tampered value". */
  readonly fingerprint: string;

  constructor(key: Buffer, readonly source: KeySource = { kind: 'env' }) {
    if (key.length !== KEY_BYTES) throw new InvalidInput(`a secret key must be ${KEY_BYTES} bytes`);
    this.key = Buffer.from(key);
    this.fingerprint = createHash('sha256').update('berth-secret-key-check\0').update(this.key).digest('hex').slice(0, 32);
  }

  /**
   * HMAC-SHA256 of `data` under a key derived from the secret key: a digest that tells values apart
   * (a release hash, a lookup key) without letting anyone who lacks the key test guesses against it.
   */
  mac(data: string): string {
    const macKey = createHash('sha256').update('berth-mac-key\0').update(this.key).digest();
    return createHmac('sha256', macKey).update(data, 'utf8').digest('hex');
  }

  static fromLoaded(k: LoadedKey): SecretBox {
    return new SecretBox(k.key, k.source);
  }

  seal(plaintext: string, aad: string): Sealed {
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(aad, 'utf8'));
    const ciphertext = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    return { ciphertext, iv, tag: c.getAuthTag() };
  }

  /** Throws SecretKeyError (naming `aad`, never the value) when the value does not authenticate. */
  open(s: Sealed, aad: string): string {
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, s.iv);
      d.setAAD(Buffer.from(aad, 'utf8'));
      d.setAuthTag(s.tag);
      return Buffer.concat([d.update(s.ciphertext), d.final()]).toString('utf8');
    } catch {
      throw new SecretKeyError(`cannot decrypt the secret ${aad}: it was sealed with another key, for another key name, or altered. ` +
        `Use the key it was written with (${describeSource(this.source)}) or set the secret again`);
    }
  }
}

export function describeSource(s: KeySource): string {
  return s.kind === 'env' ? 'BERTH_SECRET_KEY' : s.path;
}
