import type { EngineContainers, Logger } from '../core/ports.ts';
import type { DeploymentStore, DesiredStateStore, InstanceStore, PurgeStore, ServiceKey } from '../core/store.ts';
import { serviceOfContainer } from './engine-events.ts';

export interface ResyncDeps {
  store: Pick<DesiredStateStore, 'listServices'> & Pick<InstanceStore, 'listInstances'> & Pick<DeploymentStore, 'listDeployments'> & Pick<PurgeStore, 'listPurges'>;
  /** Already scoped to this installation's cluster label. */
  engine: Pick<EngineContainers, 'list'>;
  logger: Logger;
  wakeService(k: ServiceKey): void;
  wakeDeployment(id: string): void;
  wakePurge(app: string): void;
  intervalMs: number;
  /** Also run on every period, before the keys: the loops that follow the instance set (health, log collection, config files). */
  periodic?: () => void;
}

/**
 * The safety net under the level-driven controllers: every key there is reason to look at —
 * desired services, instance rows, containers of ours, unfinished deployments and purges — is woken
 * at start, on every engine reconnect and every `intervalMs`, so a missed event only delays.
 */
export class Resync {
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly d: ResyncDeps) {}

  async all(): Promise<void> {
    const { store, wakeService } = this.d;
    for (const s of store.listServices()) wakeService({ app: s.app, env: s.env, service: s.name });
    for (const i of store.listInstances()) wakeService({ app: i.app, env: i.env, service: i.service });
    for (const dep of store.listDeployments({ status: ['pending', 'building', 'rolling'] })) this.d.wakeDeployment(dep.id);
    for (const p of store.listPurges()) if (p.state === 'purging') this.d.wakePurge(p.app);
    try {
      for (const c of await this.d.engine.list({})) {
        const k = serviceOfContainer(c.labels);
        if (k) wakeService(k);
      }
    } catch (err) {
      this.d.logger.warn({ err: String(err) }, 'engine not reachable during resync; will retry');
    }
  }

  start(): void {
    this.timer ??= setInterval(() => {
      this.d.periodic?.();
      void this.all();
    }, this.d.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
