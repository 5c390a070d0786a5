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
