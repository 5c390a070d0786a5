/**
 * Builds from git: one bare repository per app served over smart HTTP, a pre-receive hook that hands
 * each push to the server, the build controller (a durable queue per app, cancellation, recovery) and
 * the pipeline (the commit read from git's object store → image build → checks → tests in a container
 * → push to Berth's registry → deployment through the API's own path), whose progress goes back into
 * `git push` and into stored build logs.
 */
export { BuildLog, BUILD_STAGES, isFinished, type BuildRecord, type BuildSource, type BuildStage, type BuildStatus } from './build-log.ts';
export { BuildController, type BuildControllerDeps, type BuildRequest } from './build-controller.ts';
export { GitRepos, checkAppName, hookScript, type AppSource } from './git-repos.ts';
export { ACCEPTED_REMOTES, branchProblem, checkGitRemote, fetchArgv, gitRemoteProblem } from './git-remote.ts';
export { WebhookDeliveries, webhooksPort, type SeenDelivery } from './webhook-deliveries.ts';
export { deliveryId, parsePushEvent, verifyWebhook, type PushEvent, type WebhookProvider } from './webhooks.ts';
export { serveGitHttp, parseCgiHeaders } from './git-http.ts';
export {
  BuildCancelled, PipelineFailed, PushPipeline, defaultEnvOf, parseRefLines, TEST_LABEL,
  type PipelineDeps, type PushedRef, type RunContext,
} from './pipeline.ts';
