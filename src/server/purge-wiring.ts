import type { Clock, Engine, Logger, NetworkInfo } from '../core/ports.ts';
import type { Store } from '../core/store.ts';
import { AppPurger, appRemains, type RemainsSources } from '../purge/index.ts';
import { volumeName } from '../deploy/index.ts';
import { isFinished, type BuildRecord } from '../build/index.ts';
import type { ConfigStore } from '../config/index.ts';
import type { Observability } from './observability-wiring.ts';
import type { BuildParts } from './build-wiring.ts';
import type { ContainerFiles } from './secrets-wiring.ts';
import { purgeSteps } from './purge-steps.ts';

// `berth rm` says what it leaves; `berth rm --purge` removes it, step by step (purge/).

export interface PurgeParts {
  purger: AppPurger;
  /** What an app leaves behind after `berth rm` (without --purge). */
  remains(app: string): ReturnType<typeof appRemains>;
  /** The app's builds still queued or running (a purge waits for them, or refuses). */
  unfinishedBuilds(app: string): BuildRecord[];
}

export function wirePurge(d: {
  store: Store; engine: Engine; clock: Clock; logger: Logger; config: ConfigStore;
  builds: BuildParts; obs: Observability; files: ContainerFiles;
  dns: { removeResolvConfs(app: string): Promise<number>; syncNetworks?(networks: NetworkInfo[]): Promise<void> };
  enqueueService(app: string, env: string, service: string): void;
}): PurgeParts {
  const { store, engine, config, builds: b, obs, files } = d;
  const images = b.imageJanitor;
  const sources: RemainsSources = {
    store, config, builds: b.buildLog, git: b.repos, logs: obs.logStore, metrics: obs.metrics, volumeName, ...(images ? { images } : {}),
  };
  const unfinishedBuilds = (app: string) => b.builds.list(app).filter((x) => !isFinished(x.status));
  const purger = new AppPurger({
    store, engine, clock: d.clock, logger: d.logger.child({ component: 'purge' }), enqueueService: d.enqueueService,
    steps: purgeSteps({
      builds: b.builds, buildLog: b.buildLog, repos: b.repos, config, logStore: obs.logStore, metrics: obs.metrics, engine, store,
      configRoot: files.configRoot, fileRoot: files.fileRoot, dns: d.dns, unfinishedBuilds, ...(images ? { imageJanitor: images } : {}),
    }),
  });
  return { purger, remains: (app) => appRemains(sources, app), unfinishedBuilds };
}
