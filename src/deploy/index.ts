/**
 * deploy: controllers that turn desired state into running instances. The deployment controller
 * builds images and creates releases; the service reconciler converges instances on a release.
 */
export { DeploymentController, deploymentKey, releaseHash } from './deployment-controller.ts';
export { ServiceReconciler, serviceKey, parseServiceKey } from './service-reconciler.ts';
export { containerSpecFor, containerName, volumeName } from './container-spec.ts';
export { DeploymentService, type DeploymentServiceDeps } from './deployments.ts';
export { watchEngineEvents, serviceOfContainer, type EngineEventDeps } from './engine-events.ts';
export { HostMonitor, type HostMonitorDeps } from './host-monitor.ts';
export { Resync, type ResyncDeps } from './resync.ts';
export { rollbacks } from './rollback.ts';
