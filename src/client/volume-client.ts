/** Typed call of the volume API: the named volumes of apps, their size and who mounts them. */
import type { BerthClient } from './client.ts';

export type { VolumeView } from '../core/views.ts';

export function listVolumes(c: BerthClient, o: { app?: string; env?: string } = {}) {
  return c.call('get', '/v1/volumes', { query: o });
}
