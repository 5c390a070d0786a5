import { readFile } from 'node:fs/promises';
import { Conflict, NotFound } from '../core/errors.ts';
import { checkKeep, imageView, planRetention, type GcReportView, type ImageListView, type StoredManifest } from '../core/image-retention.ts';
import type { Clock, EngineImages, Logger } from '../core/ports.ts';
import type { DeploymentStore, DesiredStateStore, EventStore, InstanceStore } from '../core/store.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { collectGarbage, reposOf, type CollectResult, type ManifestRegistry, type RetentionFacts } from './gc.ts';

/** The registry as the janitor drives it (LocalRegistry). */
export interface JanitorRegistry extends ManifestRegistry {
  /** Stops the registry, runs `docker-registry garbage-collect`, starts it again (pushes wait). */
  garbageCollect(): Promise<string>;
  storageBytes(): Promise<number>;
}

export interface ImageJanitorOptions {
  registry: JanitorRegistry;
  engine: Pick<EngineImages, 'imageId' | 'imageInfo' | 'removeImage'>;
  store: DeploymentStore & DesiredStateStore & InstanceStore & EventStore;
  clock: Clock;
  logger: Logger;
  /** BERTH_REGISTRY_KEEP */
  keep: number;
  /** BERTH_REGISTRY_GC_INTERVAL_MS; 0: no periodic collection (API and afterBuild still work). */
  intervalMs: number;
  /** Where pending/last-run state survives restarts (e.g. DATA/registry/gc-state.json). */
  statePath: string;
  /** Images named by builds that have not finished (pushed, not yet in a release). */
  inFlightImages?: () => Iterable<string>;
  /** Delay of the first periodic run after start() when one is overdue (default 60 s). */
  startDelayMs?: number;
}

interface JanitorState {
  /** Manifests were deleted since the last blob collection. */
  pending: boolean;
  /** Last blob collection (or periodic pass), ms. */
  lastRunAt: number;
}

/** The tags in a view are short commits: enough to recognise a build in a message. */
function short(m: Pick<StoredManifest, 'digest' | 'tags'>): string {
  return m.tags[0] ?? m.digest.slice(7, 19);
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * Keeps Berth's registry (and the engine's copies of its images) from filling the disk, by the rule
 * in core/image-retention.ts.
 *
 * - `afterBuild(app)`: after each successful build, that app's manifests the rule lets go are
 *   deleted through the registry API and their local tags removed. Queued off the build's path, and
 *   it never fails a build: errors are logged and recorded as `registry.gc` events. The registry
 *   refuses deletes except in a deletion window (`withDeletes`: two restarts, ~0.1 s each, pushes
 *   wait), opened only when the rule deletes something.
 * - A periodic pass (every `intervalMs`, persisted across restarts) does the same for every app and
 *   then, only if manifests were deleted since the last time, frees their blobs with
 *   `docker-registry garbage-collect`. That needs the registry stopped: pushes wait on the registry's
 *   lock meanwhile; deploys do not need the registry (images are local to the engine).
 * - `collect()` (the API's `POST /v1/images/gc`) runs both now; `list()` shows each image's fate.
 * All work is serialized: one pass at a time, so a blob collection never overlaps a delete.
 */
export class ImageJanitor {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly queuedApps = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  /** stop() was called: the server is closing (its store with it), so later afterBuild calls do nothing. */
  private closed = false;
  private blobsRunning = false;
  private state: JanitorState | undefined;
  private readonly log: Logger;

  constructor(private readonly o: ImageJanitorOptions) {
    checkKeep(o.keep, 'BERTH_REGISTRY_KEEP');
    this.log = o.logger.child({ component: 'image-janitor' });
  }

  /** Starts the periodic loop: the first run when the last one is `intervalMs` old (not before startDelayMs). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.o.intervalMs <= 0) return;
    void this.loadState().then((st) => {
      const due = st.lastRunAt + this.o.intervalMs - this.o.clock.now();
      this.schedule(Math.max(due, this.o.startDelayMs ?? 60_000));
    });
  }

  /** Stops the loop and waits for a running pass (a blob collection restarts the registry before it ends). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.chain.catch(() => undefined);
  }

  /**
   * Call after a build succeeded (deployed). Queues the app's manifest cleanup and returns at once;
   * the promise resolves when that cleanup ended and never rejects. Calls for an app already
   * queued share its run.
   */
  afterBuild(app: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.queuedApps.has(app)) return this.chain.then(() => undefined, () => undefined);
    this.queuedApps.add(app);
    return this.enqueue(async () => {
      this.queuedApps.delete(app);
      try {
        await this.prune({ app, keep: this.o.keep });
      } catch (err) {
        this.failed(app, 'after a build', err);
      }
    }).then(() => undefined, () => undefined);
  }

  /** How many images of the app Berth's registry holds (every manifest of `APP/*`, tagged or not). */
  async appImageCount(app: string): Promise<number> {
    let n = 0;
    for (const repo of reposOf(await this.o.registry.catalog(), app)) n += (await this.o.registry.inventory(repo)).length;
    return n;
  }

  /**
   * `berth rm --purge`: the app's releases, services and instances are gone by now, so the rule keeps
   * none of its images; deletes them all (and their local tags) at once. Throws when one is left
   * (the purge retries). Resolves with how many were deleted. Their storage is freed by the next
   * blob collection.
   */
  purgeApp(app: string): Promise<number> {
    return this.enqueue(async () => {
      const res = await this.prune({ app, keep: this.o.keep });
      if (res.errors.length > 0) throw new Conflict(`images of ${app} not deleted: ${res.errors[0]}`);
      if (res.kept.length > 0) {
        const k = res.kept[0]!;
        throw new Conflict(`${res.kept.length} image(s) of ${app} still needed (e.g. ${k.repo}:${short(k)}, ${k.reasons.join(', ')})`);
      }
      return res.deleted.length;
    });
  }

  /** Every image of Berth's registry (or one app's) with the rule's verdict under the configured keep. */
  async list(app?: string): Promise<ImageListView> {
    if (this.blobsRunning) {
      throw new Conflict('registry garbage collection is freeing storage right now (the registry is stopped meanwhile); try again in a minute');
    }
    // After any pass already queued: a deletion window restarts the registry, so it is not read meanwhile.
    return this.enqueue(async () => {
      const repos = reposOf(await this.o.registry.catalog(), app);
      if (app !== undefined && repos.length === 0 && !this.knownApp(app)) {
        throw new NotFound(`no app "${app}": it has no images in Berth's registry and nothing deployed (see \`berth status\`)`);
      }
      const manifests: StoredManifest[] = [];
      for (const repo of repos) manifests.push(...(await this.o.registry.inventory(repo)));
      const apps = [...new Set(manifests.map((m) => m.repo.split('/')[0]!))];
      const plan = planRetention({ registryHost: this.o.registry.host, keep: this.o.keep, manifests, ...this.facts(apps) });
      return { keep: this.o.keep, images: plan.decisions.map(imageView) };
    });
  }

  /**
   * Runs a collection now, over every app: deletes what the rule lets go (with `keep` instead of the
   * configured value when given) and then frees blobs if anything was deleted (now or since the last
   * collection). A dry run changes nothing and reports what would go.
   */
  async collect(o: { keep?: number; dryRun?: boolean } = {}): Promise<GcReportView> {
    const keep = checkKeep(o.keep ?? this.o.keep);
    const dryRun = o.dryRun === true;
    return this.enqueue(async () => {
      const res = await this.prune({ keep, dryRun });
      const blobs = dryRun ? { collected: false, reclaimedBytes: 0 } : await this.collectBlobs();
      return {
        dryRun, keep, deleted: res.deleted.map(imageView), kept: res.kept.map(imageView), localRemoved: res.localRemoved, blobs, errors: res.errors,
      };
    });
  }

  /** One periodic pass: every app's manifests, then blobs if needed. Errors become events. */
  async runPeriodic(): Promise<void> {
    await this.enqueue(async () => {
      try {
        await this.prune({ keep: this.o.keep });
        await this.collectBlobs();
      } catch (err) {
        this.failed('', 'in the periodic collection', err);
      }
      await this.saveState({ ...(await this.loadState()), lastRunAt: this.o.clock.now() });
    }).catch(() => undefined);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    // setTimeout fires at once beyond 2^31-1 ms (~24.8 days): a huge interval must not become a busy loop.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runPeriodic().finally(() => this.schedule(this.o.intervalMs));
    }, Math.min(ms, 2 ** 31 - 1));
    this.timer.unref();
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.catch(() => undefined).then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Deletes manifests (and local images) the rule lets go; records what went. */
  private async prune(o: { app?: string; keep: number; dryRun?: boolean }): Promise<CollectResult> {
    const res = await collectGarbage({
      registry: this.o.registry, engine: this.o.engine, keep: o.keep, facts: (apps) => this.facts(apps),
      ...(o.app !== undefined ? { app: o.app } : {}), ...(o.dryRun ? { dryRun: true } : {}), logger: this.log,
    });
    if (o.dryRun) return res;
    if (res.deleted.length > 0) {
      await this.saveState({ ...(await this.loadState()), pending: true });
      const byApp = new Map<string, string[]>();
      for (const d of res.deleted) {
        const app = d.repo.split('/')[0]!;
        byApp.set(app, [...(byApp.get(app) ?? []), `${d.repo.slice(app.length + 1)}:${short(d)}`]);
      }
      for (const [app, what] of byApp) {
        this.o.store.addEvent({
          app, env: '', service: '', instance: '', kind: 'registry.gc',
          message: `deleted ${what.length} image${what.length === 1 ? '' : 's'} no release needs (keep ${o.keep}): ${what.join(', ')}`,
        });
      }
    }
    for (const e of res.errors) this.log.warn({ err: e }, 'registry garbage collection: partial failure');
    if (res.errors.length > 0) {
      this.o.store.addEvent({ app: o.app ?? '', env: '', service: '', instance: '', kind: 'registry.gc', message: `garbage collection: ${res.errors.length} problem(s), e.g. ${res.errors[0]}` });
    }
    return res;
  }

  /** `docker-registry garbage-collect` when manifests were deleted since the last one. */
  private async collectBlobs(): Promise<{ collected: boolean; reclaimedBytes: number }> {
    const st = await this.loadState();
    if (!st.pending) return { collected: false, reclaimedBytes: 0 };
    this.blobsRunning = true;
    try {
      const before = await this.o.registry.storageBytes();
      const started = this.o.clock.now();
      await this.o.registry.garbageCollect();
      const after = await this.o.registry.storageBytes();
      const reclaimedBytes = Math.max(0, before - after);
      await this.saveState({ pending: false, lastRunAt: this.o.clock.now() });
      this.log.info({ reclaimedBytes, storageBytes: after, ms: this.o.clock.now() - started }, 'registry blobs collected');
      this.o.store.addEvent({
        app: '', env: '', service: '', instance: '', kind: 'registry.gc',
        message: `registry storage: freed ${mb(reclaimedBytes)} (${mb(after)} in use; the registry was stopped for ${Math.round((this.o.clock.now() - started) / 100) / 10} s)`,
      });
      return { collected: true, reclaimedBytes };
    } finally {
      this.blobsRunning = false;
    }
  }

  /** Releases of the given apps (those with images), every service, instance and unfinished deployment. */
  private facts(apps: string[]): RetentionFacts {
    const { store } = this.o;
    const services = store.listServices();
    const inFlight: string[] = [...(this.o.inFlightImages?.() ?? [])];
    for (const dep of store.listDeployments({ status: ['pending', 'building', 'rolling'] })) {
      for (const svc of Object.values(dep.spec.services)) if (svc.image) inFlight.push(svc.image);
    }
    return {
      releases: apps.flatMap((app) => store.listReleases({ app })),
      services: services.map((s) => ({
        app: s.app, env: s.env, service: s.name, releaseId: s.releaseId, ...(s.routedReleaseId ? { routedReleaseId: s.routedReleaseId } : {}),
      })),
      runningReleaseIds: store.listInstances().map((i) => i.releaseId),
      inFlightImages: inFlight,
    };
  }

  private knownApp(app: string): boolean {
    return this.o.store.listServices({ app }).length > 0 || this.o.store.listReleases({ app }).length > 0;
  }

  private failed(app: string, when: string, err: unknown): void {
    const message = (err as Error)?.message ?? String(err);
    this.log.error({ err: message, app }, `registry garbage collection failed ${when}`);
    this.o.store.addEvent({ app, env: '', service: '', instance: '', kind: 'registry.gc', message: `garbage collection failed ${when}: ${message}` });
  }

  private async loadState(): Promise<JanitorState> {
    if (this.state) return this.state;
    const text = await readFile(this.o.statePath, 'utf8').catch(() => '');
    let st: JanitorState = { pending: false, lastRunAt: 0 };
    try {
      if (text) st = { ...st, ...(JSON.parse(text) as Partial<JanitorState>) };
    } catch {
      // A torn file cannot happen (atomic writes); an edited one is treated as "collect soon".
      st = { pending: true, lastRunAt: 0 };
    }
    this.state = st;
    return st;
  }

  private async saveState(st: JanitorState): Promise<void> {
    this.state = st;
    await writeFileAtomic(this.o.statePath, JSON.stringify(st) + '\n');
  }
}
