/**
 * purge: `berth rm APP --purge`. Once the app's containers are gone, the purger removes everything
 * Berth keeps of it, step by step (builds, git repository and webhook source, configuration and
 * secrets, logs, metrics, volumes, release records, registry images, run files, events), each step
 * idempotent and recorded, so a crash or a failed step resumes where it stopped.
 */
export { AppPurger, purgeKey, parsePurgeKey, type PurgeStep, type AppPurgerDeps } from './app-purger.ts';
export { appRemains, type RemainsSources } from './app-remains.ts';
