import type { Clock } from '../core/ports.ts';
import type { AppSpec, ServiceSpec } from '../core/spec/types.ts';
import type { DeploymentRecord, DeploymentStore, DesiredStateStore, EventStore } from '../core/store.ts';
import type { ConfigChange } from './config-store.ts';

/**
 * The spec an app/env runs now, for re-deploying it with new configuration: each service's current
 * release spec (so a rollback sticks) with its current replicas (so `berth scale` sticks). Undefined
 * when the app/env has no services yet: its first deploy will pick the configuration up.
 */
export function currentAppSpec(store: DesiredStateStore, app: string, env: string): AppSpec | undefined {
  const services: Record<string, ServiceSpec> = {};
  for (const s of store.listServices({ app, env })) {
    const rel = store.getRelease(s.releaseId);
    if (!rel) continue;
    // The deployment controller stamps the config version on release specs; it sets it anew.
    const { configVersion: _v, ...spec } = rel.spec as ServiceSpec & { configVersion?: number };
    services[s.name] = { ...spec, replicas: s.replicas };
  }
  return Object.keys(services).length > 0 ? { name: app, services } : undefined;
}

/** Key names and kinds only: what an event or a log line may say about a configuration change. */
export function describeChanges(changes: ConfigChange[]): string {
  return changes.map((c) => `${c.op === 'unset' ? 'unset' : 'set'} ${c.key}${c.kind === 'secret' ? ' (secret)' : ''}`).join(', ');
}

export interface ConfigRolloutDeps {
  store: DeploymentStore & DesiredStateStore & EventStore;
  clock: Clock;
  newId: () => string;
  enqueueDeployment: (id: string) => void;
}

/**
 * After a configuration change: records a `config.changed` event (keys, never values) and, when the
 * app/env runs, creates a deployment of its current spec; the deployment controller then makes new
 * releases (the config version is part of the release hash) and they roll out by each service's
 * update strategy. Returns the deployment id, or undefined when nothing runs yet.
 */
export function startConfigRollout(d: ConfigRolloutDeps, app: string, env: string,
  change: { version: number; who: string; changes: ConfigChange[] }): string | undefined {
  const spec = currentAppSpec(d.store, app, env);
  const dep: DeploymentRecord | undefined = spec && {
    id: d.newId(), app, env, spec, warnings: [], status: 'pending', message: '', createdAt: d.clock.now(), createdBy: change.who, releases: {},
  };
  d.store.addEvent({ app, env, service: '', instance: '', kind: 'config.changed',
    message: `config version ${change.version} of ${app}/${env} by ${change.who}: ${describeChanges(change.changes)}` +
      (dep ? `; rolling out in deployment ${dep.id}` : '; nothing runs yet, the next deploy uses it') });
  if (!dep) return undefined;
  d.store.createDeployment(dep);
  d.enqueueDeployment(dep.id);
  return dep.id;
}
