import { LABEL, type EngineEvent, type EngineTelemetry, type Logger } from '../core/ports.ts';
import type { EventStore, ServiceKey } from '../core/store.ts';

export interface EngineEventDeps {
  engine: Pick<EngineTelemetry, 'watch'>;
  /** This installation's `io.berth.cluster`: containers of other installations sharing the engine are not ours. */
  cluster: string;
  events: Pick<EventStore, 'addEvent'>;
  logger: Logger;
  /** A container of this service changed (`action`: start, die, destroy, health_status, ...). */
  serviceChanged(k: ServiceKey, action: string): void;
  /** The engine is reachable (at start and again after a disconnect): every key deserves a look. */
  reachable(): void;
  /** A host changed state (many hosts). */
  hostChanged?(): void;
  /**
   * The process of an instance is gone or going: its container died, ran out of memory or was sent
   * SIGKILL (`why` in words). It may serve nothing from now on, whatever the reconciler's next round
   * makes of it (restart policy, removal).
   */
  instanceDown?(instance: string, why: string): void;
}

/**
 * Why an instance's process no longer serves, from a container event (undefined: the event says
 * nothing of the kind). SIGKILL cannot be caught: its `kill` event comes from the engine at once, where
 * the `die` that follows waits for the runtime to report the exit (0.2-0.6 s under load). Other
 * signals may be a reload (SIGHUP) or start a graceful stop, so only their `die` counts.
 */
export function downReason(action: string, attrs: Record<string, string>): string | undefined {
  if (action === 'die') return `its container exited${attrs.exitCode !== undefined ? ` with code ${attrs.exitCode}` : ''}`;
  if (action === 'oom') return 'its container ran out of memory';
  if (action === 'kill' && (attrs.signal === '9' || attrs.signal === 'SIGKILL' || attrs.signal === 'KILL')) return 'its container was sent SIGKILL';
  return undefined;
}

/**
 * The engine's events as keys: a container event of one of this installation's services wakes that
 * service (the event carries no logic; its reconciler re-reads everything); a lost and regained engine
 * is recorded once on the timeline and regaining it resyncs. Returns the unwatch function.
 */
export function watchEngineEvents(d: EngineEventDeps): () => void {
  let down = false;
  return d.engine.watch((e: EngineEvent) => {
    if (e.kind === 'container') {
      const k = serviceOfContainer(e.labels, d.cluster);
      if (k) {
        const instance = e.labels[LABEL.instance];
        d.logger.debug({ ...k, instance, action: e.action }, 'engine event');
        const why = instance && d.instanceDown ? downReason(e.action, e.labels) : undefined;
        // Out of the upstreams first (one store write), then the service's round looks at the engine.
        if (why) d.instanceDown!(instance!, why);
        d.serviceChanged(k, e.action);
      }
      return;
    }
    if (e.kind === 'host') {
      d.hostChanged?.();
      return;
    }
    if (e.kind === 'disconnected' && !down) {
      down = true;
      d.events.addEvent({ app: '', env: '', service: '', instance: '', kind: 'engine.disconnected', message: `Docker Engine unreachable: ${e.error}` });
      d.logger.warn({ err: e.error }, 'Docker Engine unreachable; desired state is kept, will resync when it is back');
    }
    if (e.kind === 'connected') {
      if (down) {
        d.events.addEvent({ app: '', env: '', service: '', instance: '', kind: 'engine.connected', message: 'Docker Engine reachable again; resyncing' });
        d.logger.info('Docker Engine reachable again; resyncing');
      }
      down = false;
      d.reachable();
    }
  });
}

/** The service a container belongs to, from its labels (undefined: not a service container, or another cluster's when `cluster` is given). */
export function serviceOfContainer(labels: Record<string, string>, cluster?: string): ServiceKey | undefined {
  const app = labels[LABEL.app];
  const env = labels[LABEL.env];
  const service = labels[LABEL.service];
  if (!app || !env || !service) return undefined;
  if (cluster !== undefined && labels[LABEL.cluster] !== cluster) return undefined;
  return { app, env, service };
}
