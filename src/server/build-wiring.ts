import { join } from 'node:path';
import type { Clock, Engine, Logger } from '../core/ports.ts';
import type { Store } from '../core/store.ts';
import { allows } from '../core/auth.ts';
import type { Authenticator } from '../auth/index.ts';
import type { SqliteAuthStore } from '../store/index.ts';
import type { ConfigStore } from '../config/index.ts';
import type { FileMountSpec } from '../core/spec/types.ts';
import type { DeploymentService } from '../deploy/index.ts';
import { BuildController, BuildLog, GitRepos, PushPipeline, isFinished, type BuildRecord } from '../build/index.ts';
import { ImageJanitor } from '../images/image-janitor.ts';
import type { LocalRegistry } from '../images/registry-process.ts';
import { shortId } from '../lib/ids.ts';
import type { HostPathGuard } from './host-paths.ts';
import type { ServerConfig } from './config.ts';

// Builds: git repositories, build records, the push pipeline (checks, tests, registry push, deploy)
// and the controller that runs it off any request; the registry's garbage collector follows them.

export interface BuildParts {
  buildLog: BuildLog;
  repos: GitRepos;
  builds: BuildController;
  /** Non-secret configuration values: variables for pushed Compose files and promotions (secrets never are). */
  configValues(app: string, env: string): Record<string, string>;
  /** Registry garbage collection (images/image-janitor.ts), when Berth's registry runs; started by the caller. */
  imageJanitor: ImageJanitor | undefined;
}

export function wireBuilds(cfg: ServerConfig, d: {
  store: Store; engine: Engine; clock: Clock; logger: Logger;
  authStore: SqliteAuthStore; authenticator: Authenticator; config: ConfigStore;
  deployments: DeploymentService; hostPaths: HostPathGuard;
  /** The value of a sealed secret or config (build secrets are read through it, at the environment's current config version). */
  secretValue?: (app: string, env: string, mount: FileMountSpec, configVersion: number) => string;
  /** Berth's image registry, when it runs. */
  imageRegistry: LocalRegistry | undefined;
  /** A build ended (the deployment it made images for looks again). */
  finished(rec: BuildRecord): void;
}): BuildParts {
  const { store, engine, clock, logger, authStore, authenticator, config, imageRegistry } = d;
  const buildLog = new BuildLog(join(cfg.dataDir, 'builds'));
  // Builds: the routes submit and follow; the controller runs the pipeline off any request.
  const repos = new GitRepos(cfg.dataDir, cfg.childEnv);
  const configValues = (app: string, env: string): Record<string, string> =>
    Object.fromEntries(config.list(app, env).filter((e) => e.kind === 'value' && e.value !== undefined).map((e) => [e.key, e.value!]));
  const pipeline = new PushPipeline({
    mayDeploy: (subject, app, env) => {
      const team = authStore.appTeam(app);
      if (!allows(authenticator.grantsOf(subject), 'app.deploy', { app, team, env })) return `the pusher may not deploy ${app} to ${env}: it needs the deployer role there (nothing was built)`;
      if (team !== undefined && authStore.requiresApproval(team, env)) {
        return `${env} of team ${team} requires a second person's approval: push to another environment's branch, then \`berth promote ${app} --to ${env}\` and have it approved (nothing was built)`;
      }
      return undefined;
    },
    repos, builds: buildLog, engine, clock, logger: logger.child({ component: 'build' }), deployments: d.deployments, configValues,
    buildConcurrency: cfg.buildConcurrency, buildMemoryBytes: cfg.buildMemoryBytes, ...(imageRegistry ? { registry: imageRegistry } : {}),
    // `berth deploy` builds: the deployment's spec, its host contexts checked again right before the build.
    deploymentSpec: (id) => store.getDeployment(id)?.spec, hostPaths: d.hostPaths,
    ...(d.secretValue ? { buildSecretValue: (app: string, env: string, m: FileMountSpec) => d.secretValue!(app, env, m, config.version(app, env)) } : {}),
  });
  const late: { imageJanitor?: ImageJanitor | undefined } = {};
  const builds = new BuildController({
    builds: buildLog, repos, pipeline, clock, logger: logger.child({ component: 'builds' }), newId: () => shortId(10),
    remoteOf: async (a) => (await repos.source(a))?.remote,
    // A failed or cancelled build leaves no image behind on the engine: what it built and tagged
    // locally is removed (removeImage refuses images a container uses; pushed ones go with the registry's GC).
    afterFailure: (rec) => {
      for (const ref of Object.values(rec.images)) {
        if (ref.includes('@')) continue;
        void engine.removeImage(ref).then((gone) => {
          if (gone) logger.info({ build: rec.id, image: ref }, 'image of a failed build removed');
        }, (err: Error) => logger.warn({ build: rec.id, image: ref, err: err.message }, 'could not remove the image of a failed build'));
      }
    },
    // The deployment a build made images for looks again (a deploy build's, or a push's once deployed).
    finished: (rec) => d.finished(rec),
    // Registry retention for the app, off the build's path (the janitor never throws into it).
    afterSuccess: (rec) => {
      void late.imageJanitor?.afterBuild(rec.app);
      void engine.pruneBuildCache(cfg.buildCacheKeepBytes).then((freed) => {
        if (freed > 0) logger.info({ freedBytes: freed }, 'build cache trimmed');
      }, (err: Error) => logger.warn({ err: err.message }, 'build cache prune failed'));
    },
  });
  // Registry garbage collection: after each build, periodically, on demand.
  // Images of builds still running are pinned: pushed, but in no release yet.
  const imageJanitor = late.imageJanitor = imageRegistry ? new ImageJanitor({
    registry: imageRegistry, engine, store, clock, logger, keep: cfg.registryKeep, intervalMs: cfg.registryGcIntervalMs,
    statePath: join(imageRegistry.dir, 'gc-state.json'),
    // A deploy build's images are in no release until its deployment has made them: pinned till then too.
    inFlightImages: () => [...builds.list().filter((b) => !isFinished(b.status)).flatMap((b) => Object.values(b.images)),
      ...store.listDeployments({ status: ['pending', 'building'] }).flatMap((d) => Object.values((d.buildId && builds.get(d.buildId)?.images) || {}))],
  }) : undefined;
  return { buildLog, repos, builds, configValues, imageJanitor };
}
