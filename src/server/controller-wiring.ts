import type { Logger } from '../core/ports.ts';
import type { InstanceRecord, ServiceKey, Store } from '../core/store.ts';
import { ControllerManager, type Controller, type Wake } from '../reconcile/index.ts';
import { deploymentKey, parseServiceKey, serviceKey, type DeploymentController, type DeploymentService, type ServiceReconciler } from '../deploy/index.ts';
import { parsePurgeKey, purgeKey, type AppPurger } from '../purge/index.ts';
import type { BuildRecord } from '../build/index.ts';

/** The signals between the control plane's parts (ControllerManager events). */
export type ServerEvents = {
  /** The health monitor saw an instance's health change. */
  'instance.health': [inst: InstanceRecord];
  /** A release of app/env/service finished rolling out (healthy, failed or superseded). */
  'release.finished': [k: ServiceKey];
  /** A build ended (succeeded, failed or cancelled). */
  'build.finished': [rec: BuildRecord];
};

/** The reconcilers the queue runs, made after it (they are given its wake functions). */
export interface ControlTargets {
  services: ServiceReconciler;
  deployments: DeploymentController;
  /** Followers of a deployment (the push pipeline) wake on each write of its record. */
  deploymentService: DeploymentService;
  purger: AppPurger;
}

export interface ControlLoop {
  manager: ControllerManager<ServerEvents>;
  wakeService: Wake<ServiceKey>;
  wakeDeployment: Wake<string>;
  wakePurge: Wake<string>;
  enqueueService(app: string, env: string, service: string): void;
  /** Hands over reconcilers as they are made; purge keys are served once the purger is there. */
  attach(t: Partial<ControlTargets>): void;
  /** Stops following the store's deployment writes. */
  unwatchDeployments(): void;
}

/**
 * The controllers on one work queue, with typed keys; the signals between them are typed events,
 * connected here in one place (who wakes whom).
 */
export function wireControllers(store: Store, applyRoutes: () => void, logger: Logger): ControlLoop {
  const t: Partial<ControlTargets> = {};
  const manager = new ControllerManager<ServerEvents>(logger.child({ component: 'queue' }), 8);
  const serviceController: Controller<ServiceKey> = { name: 'services', key: serviceKey, parse: parseServiceKey, reconcile: (k) => t.services!.reconcile(k) };
  const deploymentController: Controller<string> = {
    name: 'deployments', key: deploymentKey, parse: (q) => (q.startsWith('deploy/') ? q.slice('deploy/'.length) : undefined), reconcile: (id) => t.deployments!.reconcile(id),
  };
  const wakeService = manager.register(serviceController);
  const wakeDeployment = manager.register(deploymentController);
  const wakePurge = manager.register<string>({ name: 'purges', key: purgeKey, parse: parsePurgeKey, reconcile: async (app) => t.purger?.reconcile(app) });
  const enqueueService = (app: string, env: string, service: string) => wakeService({ app, env, service });
  // A health flip: the routes follow, and the service's reconciler looks again.
  manager.on('instance.health', (inst) => {
    applyRoutes();
    enqueueService(inst.app, inst.env, inst.service);
  });
  // A build ended: the deployment waiting for its images looks again.
  manager.on('build.finished', (rec) => {
    if (rec.deploymentId) wakeDeployment(rec.deploymentId);
  });
  // A release finished: the deployments rolling out in that environment look again.
  manager.on('release.finished', (k) => {
    for (const dep of store.listDeployments({ status: ['rolling'] })) if (dep.app === k.app && dep.env === k.env) wakeDeployment(dep.id);
  });
  // Followers of a deployment (the push pipeline) wake on each write of its record, not on a timer.
  const unwatchDeployments = store.watch((c) => {
    if (c.kind === 'deployment') t.deploymentService?.changed(c.id);
  });
  return {
    manager, wakeService, wakeDeployment, wakePurge, enqueueService, unwatchDeployments,
    attach: (part) => void Object.assign(t, part),
  };
}
