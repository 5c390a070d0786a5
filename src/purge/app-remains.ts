import type { AppRemains } from '../core/app-remains.ts';
import type { DesiredStateStore, PurgeStore } from '../core/store.ts';

/** Where each kind of an app's remains is kept: every part of the server that keeps something of an app answers for it. */
export interface RemainsSources {
  store: Pick<DesiredStateStore, 'listReleases'> & Pick<PurgeStore, 'appRecordCounts'>;
  /** Configuration per environment (counts, never values). */
  config: { appInventory(app: string): AppRemains['config'] };
  /** The app's build records. */
  builds: { list(app: string): unknown[] };
  git: { inventory(app: string): { repository: boolean; source: boolean } };
  logs: { appSourceCount(app: string): number };
  metrics: { appSeriesCount(app: string): number };
  /** Berth's image registry; absent when it is not running (then the app has no images there). */
  images?: { appImageCount(app: string): Promise<number> };
  /** The Docker volume name of a named volume of the app's spec in `env`. */
  volumeName(app: string, env: string, name: string): string;
}

/**
 * What Berth keeps of an app besides its running services (what `berth rm` lists and `rm --purge`
 * removes): counts and names from every part that keeps something. An image registry that cannot be
 * asked leaves `images` undefined rather than failing the answer.
 */
export async function appRemains(s: RemainsSources, app: string): Promise<AppRemains> {
  const git = s.git.inventory(app);
  const volumes = new Set<string>();
  for (const r of s.store.listReleases({ app })) for (const v of r.spec.volumes) if (v.type === 'volume') volumes.add(s.volumeName(app, r.env, v.source));
  return {
    app, config: s.config.appInventory(app), ...s.store.appRecordCounts(app), builds: s.builds.list(app).length,
    repository: git.repository, webhookSource: git.source, volumes: [...volumes].sort(),
    logSources: s.logs.appSourceCount(app), metricSeries: s.metrics.appSeriesCount(app),
    images: s.images ? await s.images.appImageCount(app).catch(() => undefined) : 0,
  };
}
