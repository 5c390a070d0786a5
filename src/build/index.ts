/**
 * Builds from git: one bare repository per app served over smart HTTP, a pre-receive hook that hands
 * each push to the server, and the push pipeline (git archive of the exact commit → image build →
 * optional tests in a container → deployment through the API's own path), whose progress goes back
 * into `git push` and into stored build logs.
 */
export { BuildLog, type BuildRecord, type BuildStatus } from './build-log.ts';
export { GitRepos, checkAppName, hookScript } from './git-repos.ts';
export { serveGitHttp, parseCgiHeaders } from './git-http.ts';
export { PushPipeline, defaultEnvOf, parseRefLines, TEST_LABEL, type DeployFn, type PipelineDeps, type PushedRef, type WaitDeploymentFn } from './pipeline.ts';
