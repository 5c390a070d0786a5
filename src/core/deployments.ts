/**
 * The one way a deployment is made: the API's deploy route, promotion and the push pipeline all call
 * this port in-process (deploy/deployments.ts implements it). Errors keep their kind: a refused host
 * path is InvalidInput, a route already served by another app is Conflict, a spec that does not hold
 * is InvalidSpec.
 */
import type { AppSpec, SpecWarning } from './spec/types.ts';
import type { SpecSource } from './spec/source.ts';
import type { DeploymentRecord, DeploymentStatus, ReleaseRecord, ServiceKey } from './store.ts';

export interface DeployRequest {
  app: string;
  env: string;
  spec: AppSpec;
  warnings: SpecWarning[];
  /** The Compose text and variables the spec was made from, kept (by content id) for promote. */
  source?: SpecSource;
  /**
   * The build that already made the images of the services with a `build:` section (a push build,
   * whose contexts are directories of a commit, not of this host: they are not checked as host paths).
   * Without it such a deployment gets a build of its own from the host directories it names.
   */
  buildId?: string;
  /** Who asks (`user:ID`, `token:ID`, `admin`): pool grants are checked for them (owners bypass). Absent: Berth itself. */
  actor?: string;
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

/** What the deployment controller reads of a build record (build/BuildController implements the port). */
export interface BuildState {
  id: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  /** The stage running now, or where it ended. */
  stage?: string;
  /** One short line: why it failed or was cancelled. */
  message: string;
  /** Service → the image reference built (and pushed) for it. */
  images: Record<string, string>;
}

/**
 * The one build path as the deployment controller sees it: a deployment with `build:` sections does
 * not build; it submits a build record (host-context variant of the build pipeline, run by the build
 * controller: same stages, progress, cancel) and reads its state on every round until its images exist.
 */
export interface DeploymentBuildsPort {
  /** The build's record, live while it runs; undefined when there is none. */
  get(id: string): BuildState | undefined;
  /**
   * Submits the host-context build of deployment `dep` as build `dep.id`, queued behind the app's
   * other builds. Idempotent: an existing build of that id is returned as it is.
   */
  submitForDeployment(dep: { id: string; app: string; env: string }): Promise<BuildState>;
}

/**
 * Whether a build's images are final: it succeeded, or it is a push build that reached its deploy
 * stage (its images were built, checked, tested and pushed; the deployment is what it deploys).
 */
export function buildImagesReady(b: BuildState): boolean {
  return b.status === 'succeeded' || b.stage === 'deploy';
}

/**
 * Going back to an earlier release of a service (`POST /v1/apps/:app/rollback`): deploy/rollback.ts
 * implements it over the store; the API gets it injected.
 */
export interface RollbackPort {
  /** The release `to` names (a seq or an id), or the previous release that was healthy; NotFound otherwise. */
  target(k: ServiceKey, to?: string): ReleaseRecord;
  /** Makes `target` the desired release again (desired state only); Conflict when it already is. */
  rollback(k: ServiceKey, target: ReleaseRecord, why: string): void;
}
