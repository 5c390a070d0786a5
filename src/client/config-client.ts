/**
 * Typed calls of the configuration API (config values and secrets per app and environment).
 * A secret's value is only ever returned by `getConfig(..., { reveal: true })`. The types are the API
 * document's (api-types.ts).
 */
import type { BerthClient } from './client.ts';

import type { ConfigChangeView, ConfigEntryView, ConfigKind, ConfigVersionView, ConfigWriteView } from '../core/views.ts';

export type { ConfigChangeView, ConfigEntryView, ConfigKind, ConfigVersionView, ConfigWriteView };

export interface ConfigSetEntry {
  key: string;
  value: string;
  secret?: boolean;
}

export function listConfig(c: BerthClient, app: string, env: string) {
  return c.call('get', '/v1/apps/{app}/config', { path: { app }, query: { env } });
}

/** `create`: configure an app/env that has no record yet (else an unknown app is a 404 with a did-you-mean). */
export function setConfig(c: BerthClient, app: string, env: string, entries: ConfigSetEntry[], o: { create?: boolean } = {}) {
  return c.call('put', '/v1/apps/{app}/config', { path: { app }, body: { env, entries, ...(o.create ? { create: true } : {}) } });
}

export function unsetConfig(c: BerthClient, app: string, env: string, keys: string[]) {
  return c.call('delete', '/v1/apps/{app}/config', { path: { app }, body: { env, keys } });
}

export function getConfig(c: BerthClient, app: string, env: string, key: string, opts: { reveal?: boolean } = {}) {
  return c.call('get', '/v1/apps/{app}/config/{key}', { path: { app, key }, query: { env, ...(opts.reveal ? { reveal: 'true' } : {}) } });
}

export function configHistory(c: BerthClient, app: string, env: string) {
  return c.call('get', '/v1/apps/{app}/config-history', { path: { app }, query: { env } });
}
