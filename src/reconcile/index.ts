/**
 * reconcile: the keyed work queue with backoff that drives level-driven reconcilers.
 */
export { WorkQueue, type Result } from './work-queue.ts';
export { ControllerManager, type Controller, type Wake } from './controller-manager.ts';
