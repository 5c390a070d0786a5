import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../core/ports.ts';
import type { ReleaseRecord, Store } from '../core/store.ts';
import { FileMountRoot, type ConfigStore, SpecFiles, externalKeys, mountsOf, sweepConfigFiles, writeConfigFiles } from '../config/index.ts';
import type { ServerConfig } from './config.ts';

// What containers read of the configuration centre: environment values, configuration files under
// the run directory, and Compose secrets/configs as files on a tmpfs of Berth's own.

export interface ContainerFiles {
  specFiles: SpecFiles;
  fileRoot: FileMountRoot;
  /** Decrypted configuration files of the containers: `configRoot/APP/ENV`. */
  configRoot: string;
  /** The group containers read configuration files through (undefined when not root: the server's own). */
  configGid: number | undefined;
  /** Writes the secret and config files a release mounts; returns the bind mounts (host file, container path). */
  writeReleaseFiles(rel: ReleaseRecord): ReturnType<FileMountRoot['write']>;
  /** The environment of an app/env's containers at a configuration version (mounted keys left out). */
  containerConfig(app: string, env: string, version: number): Record<string, string>;
  /** Writes an app/env's configuration files; returns their directory. */
  configFiles(app: string, env: string, version: number): string;
  /** Removes the files of environments and releases nothing runs any more. */
  sweep(): void;
}

export async function prepareContainerFiles(cfg: ServerConfig, cluster: string, store: Store, config: ConfigStore, logger: Logger): Promise<ContainerFiles> {
  // Decrypted configuration files for containers: only root may look in; each app/env's directory is
  // mounted into its containers, which read it through the config group (configGid).
  await mkdir(join(cfg.runDir, cluster), { recursive: true, mode: 0o700 });
  await chmod(join(cfg.runDir, cluster), 0o700);
  const configRoot = join(cfg.runDir, cluster, 'config');
  const configGid = process.getuid?.() === 0 ? cfg.configGid : process.getgid?.();
  // Compose secrets and configs: values sealed in config.db, files written on a tmpfs of Berth's own.
  const specFiles = new SpecFiles(config);
  const fileRoot = new FileMountRoot(join(cfg.runDir, cluster, 'secrets'));
  const fileRootProblem = await fileRoot.prepare();
  if (fileRootProblem) logger.warn(fileRootProblem);
  const writeReleaseFiles = (rel: ReleaseRecord) => fileRoot.write(rel.app, rel.env, rel.id,
    mountsOf(rel.spec).map((f) => ({ ...f, value: specFiles.valueOf(rel.app, rel.env, f.mount, rel.spec.configVersion ?? 0) })));
  /** Configuration keys the app/env mounts as external secrets or configs: not also environment variables. */
  const mountedKeys = (app: string, env: string) =>
    externalKeys(store.listServices({ app, env }).map((s) => store.getRelease(s.releaseId)?.spec).filter((x) => x !== undefined));
  const containerConfig = (app: string, env: string, version: number) => {
    const values = config.resolved(app, env, version).env;
    for (const k of mountedKeys(app, env)) delete values[k];
    return values;
  };
  /** Configuration files of environments with nothing left in them (no service, no instance) go; so do secret files of releases nothing runs. */
  const sweep = () => {
    const live = new Set([...store.listServices(), ...store.listInstances()].map((x) => `${x.app}/${x.env}`));
    try {
      for (const gone of sweepConfigFiles(configRoot, live)) logger.info({ appEnv: gone }, 'configuration files removed: nothing runs there any more');
      const liveReleases = new Set([...store.listServices().map((x) => ({ ...x, r: x.releaseId })), ...store.listInstances().map((x) => ({ ...x, r: x.releaseId }))]
        .map((x) => `${x.app}/${x.env}/${x.r}`));
      fileRoot.sweep(liveReleases);
    } catch (err) {
      logger.warn({ err: String(err) }, 'could not remove configuration files of removed apps');
    }
  };
  // After a reboot the tmpfs is empty: the files of every release with instances are written again
  // before any container needs them (running containers keep the files they mounted).
  for (const relId of new Set(store.listInstances().map((i) => i.releaseId))) {
    const rel = store.getRelease(relId);
    if (!rel || mountsOf(rel.spec).length === 0) continue;
    try {
      writeReleaseFiles(rel);
    } catch (err) {
      logger.warn({ app: rel.app, env: rel.env, release: rel.id, err: (err as Error).message }, 'could not write the secret files of a release');
    }
  }
  return {
    specFiles, fileRoot, configRoot, configGid, writeReleaseFiles, containerConfig, sweep,
    configFiles: (app, env, version) => {
      const dir = join(configRoot, app, env);
      writeConfigFiles(dir, containerConfig(app, env, version), configGid !== undefined ? { gid: configGid } : {});
      return dir;
    },
  };
}
