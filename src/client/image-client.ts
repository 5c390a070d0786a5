/**
 * Typed calls of the image API: Berth's registry, what the retention rule keeps and why, and
 * garbage collection on demand.
 */
import type { BerthClient, Ok } from './client.ts';

export type { GcReportView, ImageListView, ImageView, KeepReason, ManifestUse } from '../core/image-retention.ts';

export function listImages(c: BerthClient, app?: string) {
  return c.call('get', '/v1/images', { query: { app } });
}

export function collectImages(c: BerthClient, o: { keep?: number; dryRun?: boolean } = {}) {
  return c.call('post', '/v1/images/gc', { body: o });
}

/** A private registry Berth has credentials for (`berth registry logins`): never the password. */
export type RegistryLoginView = Ok<'/v1/registry-logins', 'get'>['logins'][number];

export function registryLogins(c: BerthClient) {
  return c.call('get', '/v1/registry-logins', {});
}

export function registryLogin(c: BerthClient, host: string, username: string, password: string) {
  return c.call('put', '/v1/registry-logins/{host}', { path: { host }, body: { username, password } });
}

export function registryLogout(c: BerthClient, host: string) {
  return c.call('delete', '/v1/registry-logins/{host}', { path: { host } });
}
