/**
 * Typed calls of the configuration API (config values and secrets per app and environment).
 * A secret's value is only ever returned by `getConfig(..., { reveal: true })`.
 */
import type { BerthClient } from './client.ts';

import type { ConfigChangeView, ConfigEntryView, ConfigKind, ConfigVersionView, ConfigWriteView } from '../core/views.ts';

export type { ConfigChangeView, ConfigEntryView, ConfigKind, ConfigVersionView, ConfigWriteView };

export interface ConfigSetEntry {
  key: string;
  value: string;
  secret?: boolean;
}

const base = (app: string) => `/v1/apps/${encodeURIComponent(app)}`;

export function listConfig(c: BerthClient, app: string, env: string) {
  return c.request<{ app: string; env: string; version: number; entries: ConfigEntryView[] }>('GET', `${base(app)}/config?${new URLSearchParams({ env })}`);
}

/** `create`: configure an app/env that has no record yet (else an unknown app is a 404 with a did-you-mean). */
export function setConfig(c: BerthClient, app: string, env: string, entries: ConfigSetEntry[], o: { create?: boolean } = {}) {
  return c.request<ConfigWriteView>('PUT', `${base(app)}/config`, { env, entries, ...(o.create ? { create: true } : {}) });
}

export function unsetConfig(c: BerthClient, app: string, env: string, keys: string[]) {
  return c.request<ConfigWriteView>('DELETE', `${base(app)}/config`, { env, keys });
}

export function getConfig(c: BerthClient, app: string, env: string, key: string, opts: { reveal?: boolean } = {}) {
  const q = new URLSearchParams({ env, ...(opts.reveal ? { reveal: 'true' } : {}) });
  return c.request<{ app: string; env: string; entry: ConfigEntryView }>('GET', `${base(app)}/config/${encodeURIComponent(key)}?${q}`);
}

export function configHistory(c: BerthClient, app: string, env: string) {
  return c.request<{ app: string; env: string; versions: ConfigVersionView[] }>('GET', `${base(app)}/config-history?${new URLSearchParams({ env })}`);
}
