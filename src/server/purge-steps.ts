import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LABEL, type EngineNetworks, type EngineVolumes, type NetworkInfo } from '../core/ports.ts';
import type { PurgeStore } from '../core/store.ts';
import { Conflict } from '../core/errors.ts';
import type { PurgeStep } from '../purge/index.ts';
import type { BuildController, BuildLog, BuildRecord, GitRepos } from '../build/index.ts';
import type { ConfigStore } from '../config/index.ts';
import type { LogStore } from '../logs/index.ts';
import type { MetricsStore } from '../metrics/index.ts';
import type { ImageJanitor } from '../images/image-janitor.ts';

export interface PurgeStepDeps {
  builds: BuildController;
  buildLog: BuildLog;
  repos: GitRepos;
  config: ConfigStore;
  logStore: LogStore;
  metrics: MetricsStore;
  engine: Pick<EngineVolumes, 'removeVolume'> & Pick<EngineNetworks, 'listNetworks' | 'removeNetwork'>;
  store: Pick<PurgeStore, 'purgeAppRecords' | 'deleteAppEvents'>;
  /** Decrypted configuration files of the containers: `configRoot/APP/ENV`. */
  configRoot: string;
  /** Secret and config files of releases (a tmpfs): `APP/...`. */
  fileRoot?: { removeApp(app: string): void };
  dns: { removeResolvConfs(app: string): Promise<number>; syncNetworks?(networks: NetworkInfo[]): Promise<void> };
  unfinishedBuilds: (app: string) => BuildRecord[];
  imageJanitor?: ImageJanitor;
}

/**
 * The steps of `berth rm --purge` (run in this order by purge/AppPurger, each idempotent and recorded):
 * what every part of the server keeps of an app.
 */
export function purgeSteps(d: PurgeStepDeps): PurgeStep[] {
  const { builds, buildLog, repos, config, logStore, metrics, engine, store, configRoot, fileRoot, dns, unfinishedBuilds, imageJanitor } = d;
  return [
    { name: 'builds', run: async (app) => {
      for (const b of unfinishedBuilds(app)) await builds.cancel(b.id, 'berth rm --purge').catch(() => undefined);
      const left = unfinishedBuilds(app);
      if (left.length > 0) throw new Conflict(`build ${left[0]!.id} is ${left[0]!.status} and cannot be cancelled yet`);
      const n = buildLog.purgeApp(app);
      return n ? `${n} build(s) with their logs` : '';
    } },
    { name: 'git', run: async (app) => {
      const gone = await repos.purge(app);
      return gone.length ? `git ${gone.join(', ')}` : '';
    } },
    { name: 'configuration', run: async (app) => {
      const c = config.purgeApp(app);
      return c.versions ? `configuration: ${c.values} value(s), ${c.secrets} secret(s), ${c.versions} version(s) of history` : '';
    } },
    { name: 'logs', run: async (app) => {
      const n = await logStore.purgeApp(app);
      return n ? `${n} log line(s)` : '';
    } },
    { name: 'metrics', run: async (app) => {
      const n = metrics.purgeApp(app);
      return n ? `${n} metric series` : '';
    } },
    { name: 'volumes', run: async (_app, rec) => {
      const gone: string[] = [];
      for (const v of rec.volumes) if (await engine.removeVolume(v)) gone.push(v);
      return gone.length ? `volume(s) ${gone.join(', ')}` : '';
    } },
    // The app's networks (every environment): no container of the app is left by now.
    { name: 'networks', run: async (app) => {
      const gone: string[] = [];
      for (const n of await engine.listNetworks({ [LABEL.app]: app })) if (await engine.removeNetwork(n.name)) gone.push(n.name);
      // Berth's DNS stops listening on the gateways that went.
      if (gone.length) await dns.syncNetworks?.(await engine.listNetworks({}));
      return gone.length ? `network(s) ${gone.join(', ')}` : '';
    } },
    { name: 'releases', run: async (app) => {
      const r = store.purgeAppRecords(app);
      return r.releases || r.deployments ? `${r.releases} release(s), ${r.deployments} deployment(s)` : '';
    } },
    // After the releases: with none left, the retention rule keeps none of the app's images.
    { name: 'images', run: async (app) => {
      const n = imageJanitor ? await imageJanitor.purgeApp(app) : 0;
      return n ? `${n} image(s) in the registry` : '';
    } },
    { name: 'run files', run: async (app) => {
      await rm(join(configRoot, app), { recursive: true, force: true });
      fileRoot?.removeApp(app);
      // The containers' /etc/resolv.conf files (DATA/dns/resolv-APP.ENV.conf) name the app.
      await dns.removeResolvConfs(app);
      return '';
    } },
    // Last: the steps above may still have written events (registry.gc).
    { name: 'events', run: async (app) => {
      const n = store.deleteAppEvents(app);
      return n ? `${n} event(s)` : '';
    } },
  ];
}
