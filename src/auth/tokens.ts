import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile, chmod } from 'node:fs/promises';
import type { TokenStore } from '../core/store.ts';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * The admin token: created on first start in DATA/admin.token (mode 0600) so that the CLI on the same
 * machine finds it by itself; only its hash is stored in the database.
 */
export async function ensureAdminToken(store: TokenStore, path: string): Promise<string> {
  let token = (await readFile(path, 'utf8').catch(() => '')).trim();
  if (!token) {
    token = `berth_${randomBytes(24).toString('base64url')}`;
    await writeFile(path, token + '\n', { mode: 0o600, flag: 'wx' }).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
      token = (await readFile(path, 'utf8')).trim();
    });
  }
  await chmod(path, 0o600);
  store.addToken(hashToken(token), 'admin');
  return token;
}
