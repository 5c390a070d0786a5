/**
 * The one way a deployment is made: the API's deploy route, promotion and the push pipeline all call
 * this port in-process (deploy/deployments.ts implements it). Errors keep their kind: a refused host
 * path is InvalidInput, a route already served by another app is Conflict, a spec that does not hold
 * is InvalidSpec.
 */
import type { AppSpec, SpecWarning } from './spec/types.ts';
import type { SpecSource } from './spec/source.ts';
import type { DeploymentRecord, DeploymentStatus } from './store.ts';

export interface DeployRequest {
  app: string;
  env: string;
  spec: AppSpec;
  warnings: SpecWarning[];
  /** The Compose text and variables the spec was made from, kept (by content id) for promote. */
  source?: SpecSource;
}

/** How a deployment ended. */
export interface DeploymentOutcome {
  status: 'succeeded' | 'failed';
  message: string;
}

export interface DeploymentsPort {
  /** The checks of `create` without writing anything (a dry run); resolves with the spec as it would be stored. */
  validate(req: DeployRequest): Promise<AppSpec>;
  /** Validates, records the deployment (and its source) and hands it to the deployment controller. */
  create(req: DeployRequest): Promise<DeploymentRecord>;
  /**
   * Resolves when deployment `id` has finished, woken by the controller's changes (not polled); `onStatus`
   * sees each status it passes through.
   */
  follow(id: string, opts?: { timeoutMs?: number; onStatus?: (s: DeploymentStatus, message: string) => void }): Promise<DeploymentOutcome>;
}
