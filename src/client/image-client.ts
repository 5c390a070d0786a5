/**
 * Typed calls of the image API: Berth's registry, what the retention rule keeps and why, and
 * garbage collection on demand.
 */
import type { BerthClient } from './client.ts';
import type { GcReportView, ImageListView } from '../core/image-retention.ts';

export type { GcReportView, ImageListView, ImageView, KeepReason, ManifestUse } from '../core/image-retention.ts';

export function listImages(c: BerthClient, app?: string) {
  return c.request<ImageListView>('GET', `/v1/images${app ? `?${new URLSearchParams({ app })}` : ''}`);
}

export function collectImages(c: BerthClient, o: { keep?: number; dryRun?: boolean } = {}) {
  return c.request<GcReportView>('POST', '/v1/images/gc', o);
}

/** A private registry Berth has credentials for (`berth registry logins`): never the password. */
export interface RegistryLoginView {
  host: string;
  username: string;
  updatedAt: number;
}

export function registryLogins(c: BerthClient) {
  return c.request<{ logins: RegistryLoginView[] }>('GET', '/v1/registry-logins');
}

export function registryLogin(c: BerthClient, host: string, username: string, password: string) {
  return c.request<{ login: RegistryLoginView }>('PUT', `/v1/registry-logins/${encodeURIComponent(host)}`, { username, password });
}

export function registryLogout(c: BerthClient, host: string) {
  return c.request<Record<string, never>>('DELETE', `/v1/registry-logins/${encodeURIComponent(host)}`);
}
