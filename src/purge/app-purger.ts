import { LABEL, type Clock, type EngineContainers, type Logger } from '../core/ports.ts';
import type { PurgeRecord, DesiredStateStore, EventStore, InstanceStore, PurgeStore } from '../core/store.ts';
import type { Result } from '../reconcile/index.ts';

/** One kind of data of an app that a purge removes. */
export interface PurgeStep {
  /** Shown in progress and in the report: `builds`, `configuration`, ... */
  name: string;
  /**
   * Removes what this step owns of the app. Must be idempotent (a crash may run it twice).
   * Resolves with what it removed, in words ('' for nothing); throws to be retried with backoff.
   */
  run(app: string, rec: PurgeRecord): Promise<string>;
}

export interface AppPurgerDeps {
  store: DesiredStateStore & InstanceStore & EventStore & PurgeStore;
  engine: Pick<EngineContainers, 'list'>;
  clock: Clock;
  logger: Logger;
  /** In order: each step runs once the previous one succeeded. */
  steps: PurgeStep[];
  /** A service of the app that reappeared is removed again through its reconciler. */
  enqueueService: (app: string, env: string, service: string) => void;
  /** How soon to look again while containers are still stopping. */
  pollMs?: number;
}

const PREFIX = 'purge/';

export function purgeKey(app: string): string {
  return `${PREFIX}${app}`;
}

export function parsePurgeKey(key: string): string | undefined {
  return key.startsWith(PREFIX) ? key.slice(PREFIX.length) : undefined;
}

/**
 * Carries out a requested purge (a `purging` PurgeRecord), level-driven like every reconciler: it
 * waits until no instance record and no container of the app is left (the service reconcilers stop
 * them gracefully, as for a plain `rm`), then runs the steps in order, writing after each what it
 * removed. A failed step records why (`waiting`) and is retried by the queue with backoff; a step
 * already recorded is not run again. Last, the record becomes `done` and a global `app.purged` event
 * (no app: the app has no timeline any more) says what went.
 */
export class AppPurger {
  constructor(private readonly d: AppPurgerDeps) {}

  async reconcile(app: string): Promise<Result> {
    const { store } = this.d;
    const rec = store.getPurge(app);
    if (!rec || rec.state !== 'purging') return;
    // Nothing may deploy the app while it is purged (the API refuses); a service found anyway goes again.
    for (const s of store.listServices({ app })) {
      store.deleteService({ app, env: s.env, service: s.name });
      this.d.enqueueService(app, s.env, s.name);
    }
    const instances = store.listInstances({ app }).length;
    const containers = (await this.d.engine.list({ [LABEL.app]: app })).length;
    if (instances > 0 || containers > 0) {
      this.waiting(rec, `waiting for ${Math.max(instances, containers)} container(s) of ${app} to stop`);
      return { requeueAfterMs: this.d.pollMs ?? 500 };
    }
    for (const step of this.d.steps) {
      if (step.name in rec.removed) continue;
      this.waiting(rec, `removing ${step.name}`);
      let what: string;
      try {
        what = await step.run(app, rec);
      } catch (err) {
        const message = (err as Error)?.message ?? String(err);
        this.waiting(rec, `${step.name}: ${message} (retrying)`);
        this.d.logger.warn({ app, step: step.name, err: message }, 'purge step failed; retrying');
        throw err;
      }
      rec.removed = { ...rec.removed, [step.name]: what };
      store.putPurge(rec);
    }
    delete rec.waiting;
    rec.state = 'done';
    rec.finishedAt = this.d.clock.now();
    store.putPurge(rec);
    const summary = Object.entries(rec.removed).filter(([, w]) => w).map(([, w]) => w).join('; ') || 'nothing was left';
    store.addEvent({ app: '', env: '', service: '', instance: '', kind: 'app.purged', message: `app ${app} purged: ${summary}` });
    this.d.logger.info({ app, removed: rec.removed }, 'app purged');
    return undefined;
  }

  private waiting(rec: PurgeRecord, why: string): void {
    if (rec.waiting === why) return;
    rec.waiting = why;
    this.d.store.putPurge(rec);
  }
}
