import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { InvalidInput } from '../core/errors.ts';

/**
 * Password hashes: scrypt from node:crypto (no native add-on), N=2^15, r=8, p=1 (~32 MiB, ~60 ms
 * here), a 16-byte salt, a 32-byte key, stored as `scrypt$N$r$p$SALT$HASH` (base64url) so the cost can
 * be raised later without invalidating stored hashes.
 */
const N = 1 << 15;
const R = 8;
const P = 1;
const KEYLEN = 32;
const MAXMEM = 64 * 1024 * 1024;

/** What a password must be: long enough to resist guessing at scrypt's speed, short enough to bound work. */
export function checkPassword(password: string): void {
  if (password.length < 10) throw new InvalidInput('password: at least 10 characters (a passphrase of a few words is best)');
  if (Buffer.byteLength(password) > 1024) throw new InvalidInput('password: at most 1024 bytes');
}

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((res, rej) => scrypt(password, salt, KEYLEN, { N: n, r, p, maxmem: MAXMEM }, (err, key) => (err ? rej(err) : res(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, N, R, P);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** A hash to verify against when the user does not exist, so that an unknown name costs as long as a wrong password. */
let dummy: Promise<string> | undefined;

/** True if `password` matches `stored`; an empty or malformed `stored` never matches (but costs the same time). */
export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const parts = (stored ?? '').split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') {
    await verifyPassword(password, await (dummy ??= hashPassword(randomBytes(16).toString('hex'))));
    return false;
  }
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const want = Buffer.from(hash, 'base64url');
  const got = await derive(password.slice(0, 1024), Buffer.from(salt, 'base64url'), Number(n), Number(r), Number(p));
  return got.length === want.length && timingSafeEqual(got, want);
}
