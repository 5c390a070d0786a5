/** Typed call of the volume API: the named volumes of apps, their size and who mounts them. */
import type { BerthClient } from './client.ts';
import type { VolumeView } from '../core/views.ts';

export type { VolumeView } from '../core/views.ts';

export function listVolumes(c: BerthClient, o: { app?: string; env?: string } = {}) {
  const q = new URLSearchParams({ ...(o.app ? { app: o.app } : {}), ...(o.env ? { env: o.env } : {}) }).toString();
  return c.request<{ volumes: VolumeView[] }>('GET', `/v1/volumes${q ? `?${q}` : ''}`);
}
