import { NotFound } from '../core/errors.ts';
import { unknownName } from '../core/spec/suggest.ts';
import type { DesiredStateStore } from '../core/store.ts';

export interface AppEnv {
  app: string;
  /** '' for records of the app as a whole (a git repository, an app-wide event). */
  env: string;
}

/** One place apps are recorded (the store, configuration, builds, git repositories). */
export interface AppSource {
  /** Whether the app (in `env`, when given) is recorded here: called on every request, so cheap (an index lookup). */
  has(app: string, env?: string): boolean;
  /** Everything recorded here: only read for a name that does not exist, to suggest one. */
  all(): Iterable<AppEnv>;
}

/** A source from a plain listing (fine where the listing is cheap or only consulted after the others missed). */
export function listedSource(all: () => Iterable<AppEnv>): AppSource {
  return {
    has: (app, env) => {
      for (const r of all()) if (r.app === app && (env === undefined || r.env === env)) return true;
      return false;
    },
    all,
  };
}

export interface KnownAppsSources {
  /** Where apps and their environments are recorded, cheapest first: a lookup stops at the first that knows. */
  sources: AppSource[];
  /** Service names of an app in an environment (all environments when undefined): current ones and those with releases. */
  services: (app: string, env?: string) => Iterable<string>;
}

const NO_APPS = 'no apps yet: deploy one with `berth deploy -f compose.yaml` or `git push`';

/**
 * Answers "does this app / environment / service exist?" for every route that takes one, so that a
 * mistyped name is a 404 with a did-you-mean instead of an empty answer (or, for writes, a new app
 * nobody meant to create). An app exists once it has any record: a deployment, a release, a service,
 * an event, configuration, a build or a git repository — a removed app keeps its history and can
 * still be asked about.
 */
export class KnownApps {
  constructor(private readonly s: KnownAppsSources) {}

  /** The environments of an app (empty: it exists, with app-wide records only), or undefined when it does not exist. */
  envsOf(app: string): Set<string> | undefined {
    let found: Set<string> | undefined;
    for (const source of this.s.sources) {
      for (const r of source.all()) {
        if (r.app !== app) continue;
        found ??= new Set();
        if (r.env) found.add(r.env);
      }
    }
    return found;
  }

  /** Throws NotFound (with a did-you-mean) unless the app exists. */
  requireApp(app: string): void {
    if (this.s.sources.some((src) => src.has(app))) return;
    const apps = new Set<string>();
    for (const source of this.s.sources) for (const r of source.all()) apps.add(r.app);
    throw new NotFound(unknownName({ what: 'app', name: app, candidates: apps, hint: NO_APPS }));
  }

  /** The app exists and has something in this environment. */
  requireEnv(app: string, env: string): void {
    if (this.s.sources.some((src) => src.has(app, env))) return;
    this.requireApp(app);
    throw new NotFound(unknownName({ what: 'environment', name: env, where: `for app "${app}"`, candidates: this.envsOf(app) ?? [],
      plural: 'its environments', hint: 'it has nothing in any environment yet' }));
  }

  /** The app exists (in `env`, when given) and has (or had) this service there. */
  requireService(app: string, env: string | undefined, service: string): void {
    if (env === undefined) this.requireApp(app);
    else this.requireEnv(app, env);
    const names = new Set(this.s.services(app, env));
    if (names.has(service)) return;
    throw new NotFound(unknownName({ what: 'service', name: service, where: `in ${app}${env ? `/${env}` : ''}`, candidates: names,
      plural: 'its services' }));
  }
}

/** Where the server records apps, each as it is asked (the store and configuration have indexed lookups; the rest are listings). */
export interface AppRecords {
  store: Pick<DesiredStateStore, 'hasApp' | 'appEnvs' | 'listServices' | 'listReleases'>;
  config: { hasApp(app: string, env?: string): boolean; appEnvs(): Iterable<AppEnv> };
  /** Cheap-enough listings consulted after the store and configuration missed (builds, git repositories). */
  listings: (() => Iterable<AppEnv>)[];
}

/** KnownApps over the server's records: store first, then configuration, then the listings. */
export function knownApps(r: AppRecords): KnownApps {
  return new KnownApps({
    sources: [
      { has: (app, env) => r.store.hasApp(app, env), all: () => r.store.appEnvs() },
      { has: (app, env) => r.config.hasApp(app, env), all: () => r.config.appEnvs() },
      ...r.listings.map(listedSource),
    ],
    services: (app, env) => [...r.store.listServices({ app, ...(env ? { env } : {}) }).map((s) => s.name),
      ...r.store.listReleases({ app, ...(env ? { env } : {}) }).map((rel) => rel.service)],
  });
}
