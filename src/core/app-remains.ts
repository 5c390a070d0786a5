/**
 * What Berth keeps of an app besides its running services: what a plain `berth rm` leaves behind and
 * `berth rm --purge` removes. Counts and names only, never values.
 */
export interface AppRemains {
  app: string;
  /** Per environment: live plain values, live secrets, versions of history. */
  config: { env: string; values: number; secrets: number; versions: number }[];
  /** Release records (their numbering continues from the last one), deployments, timeline events. */
  releases: number;
  deployments: number;
  events: number;
  /** Build records with their logs. */
  builds: number;
  /** The app's git repository under DATA/git, and its webhook source (remote + secret). */
  repository: boolean;
  webhookSource: boolean;
  /** Images of the app in Berth's registry; undefined when the registry could not be asked. */
  images?: number;
  /** Docker volumes of the app (from its releases' specs). */
  volumes: string[];
  /** Containers of the app whose log lines are stored. */
  logSources: number;
  /** Metric series of the app (per instance, route and service). */
  metricSeries: number;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** True when nothing of the app is left. */
export function remainsEmpty(r: AppRemains): boolean {
  return r.config.length === 0 && r.releases === 0 && r.deployments === 0 && r.events === 0 && r.builds === 0 &&
    !r.repository && !r.webhookSource && !r.images && r.volumes.length === 0 && r.logSources === 0 && r.metricSeries === 0;
}

/** `[what, detail]` rows for people, in the order `rm --purge` removes them; empty when nothing is left. */
export function remainsRows(r: AppRemains): [string, string][] {
  const rows: [string, string][] = [];
  for (const c of r.config) {
    const live = [c.values ? plural(c.values, 'value') : '', c.secrets ? plural(c.secrets, 'secret') : ''].filter(Boolean);
    rows.push([`config (${c.env})`, `${live.length ? live.join(', ') : 'no keys set'}; ${plural(c.versions, 'version')} of history`]);
  }
  if (r.builds) rows.push(['builds', `${plural(r.builds, 'build record')} with logs`]);
  if (r.repository || r.webhookSource) {
    rows.push(['git', [r.repository ? 'the repository' : '', r.webhookSource ? 'the webhook source and its secret' : ''].filter(Boolean).join(', ')]);
  }
  if (r.images) rows.push(['images', `${plural(r.images, 'image')} in Berth's registry`]);
  if (r.images === undefined) rows.push(['images', "unknown: Berth's registry did not answer"]);
  if (r.volumes.length) rows.push(['volumes', r.volumes.join(', ')]);
  if (r.releases || r.deployments) {
    rows.push(['releases', `${plural(r.releases, 'release')} (the next deploy continues their numbering), ${plural(r.deployments, 'deployment')}`]);
  }
  if (r.logSources) rows.push(['logs', `lines of ${plural(r.logSources, 'container')} (kept until log retention)`]);
  if (r.metricSeries) rows.push(['metrics', `${plural(r.metricSeries, 'series', 'series')}`]);
  if (r.events) rows.push(['events', `${plural(r.events, 'event')} in the timeline`]);
  return rows;
}
