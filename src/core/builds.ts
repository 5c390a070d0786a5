/**
 * Builds as the rest of Berth sees them: the build record (the wire's BuildView is its public part),
 * the pure checks of what a push or a webhook names (app, branch, git remote, the hook's ref lines),
 * and the roles the API reaches the build room through (BuildsPort, GitReposPort, WebhooksPort).
 * build/ implements the roles; server/ passes them to api/, which never imports build/.
 */
import { InvalidInput } from './errors.ts';

export type BuildStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** The pipeline's stages, in order (fetch only for webhook builds). */
export const BUILD_STAGES = ['fetch', 'archive', 'build', 'checks', 'test', 'push', 'deploy'] as const;
export type BuildStage = (typeof BUILD_STAGES)[number];

/**
 * Where a build came from: a `git push` to Berth (its pre-receive hook waits for it), a webhook, or a
 * `berth deploy` whose services have `build:` sections (contexts are host directories; the
 * deployment, whose id the build shares, waits for it and deploys its images).
 */
export type BuildSource = 'push' | 'webhook' | 'deploy';

/**
 * One run of the build pipeline: build, test, deploy of one pushed branch at one commit; or, for a
 * `deploy` build, build, check, test and push of a deployment's host build contexts (branch and commit
 * empty).
 */
export interface BuildRecord {
  id: string;
  app: string;
  branch: string;
  env: string;
  commit: string;
  status: BuildStatus;
  /** One short line (core/text summaryLine); the whole message is in the log. */
  message: string;
  /** Service → image built for it. */
  images: Record<string, string>;
  deploymentId?: string;
  createdAt: number;
  /** When it left the queue. */
  startedAt?: number;
  finishedAt?: number;
  /** Absent in records written before sources existed: those were pushes. */
  source?: BuildSource;
  /** Who pushed (a push's build): the environment it deploys to must be one they may deploy to. */
  pushedBy?: string;
  /** The stage running now (or where it ended). */
  stage?: BuildStage;
  /** Milliseconds spent per finished stage. */
  timings?: Partial<Record<BuildStage, number>>;
  /** Who cancelled it (token name), when it was cancelled. */
  cancelledBy?: string;
  /** The image standards report per service (pass/warn/fail per check). */
  checks?: Record<string, { id: string; level: 'pass' | 'warn' | 'fail'; message: string }[]>;
}

export function isFinished(status: BuildStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'cancelled';
}

export interface BuildRequest {
  app: string;
  branch: string;
  commit: string;
  source: BuildSource;
  /** pre-receive: where the pushed objects wait until the push is accepted. */
  quarantine?: string;
  /** Who pushed (`user:ID`, `token:ID`, `admin`): the pipeline deploys only where they may. */
  pushedBy?: string;
}

export interface AppSource {
  remote: string;
  secret: string;
}

const APP_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Throws InvalidInput unless `app` is a valid app name (it becomes a directory name). */
export function checkAppName(app: string): void {
  if (!APP_NAME.test(app)) throw new InvalidInput(`"${app}" is not an app name: use lower-case letters, digits and dashes (e.g. git push .../git/myapp.git)`);
}

/** What `PUT /v1/apps/APP/source` accepts as `remote`, for messages. */
export const ACCEPTED_REMOTES = 'https://HOST/PATH, http://HOST/PATH, ssh://[USER@]HOST[:PORT]/PATH or scp-style [USER@]HOST:PATH';

// A host name or an IP literal; never starts with '-' (ssh would take it for an option).
const HOST = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])$/;
const USER = /^[A-Za-z0-9_][A-Za-z0-9._+~-]*$/;
// scp-style `[USER@]HOST:PATH`: git reads it as ssh when no '/' comes before the first ':'.
const SCP = /^(?:([^@/:]+)@)?([^@/:[\]]+|\[[^\]]+\]):(.*)$/;

/**
 * Why `remote` is not a git remote Berth fetches from, or undefined when it is one. Only network
 * remotes are accepted: a local path or `file://` would let an app's source read any repository on
 * the server (another app's Berth repository among them), and anything starting with `-` could be
 * taken for an option of git or ssh (`--upload-pack=CMD` runs CMD).
 */
export function gitRemoteProblem(remote: string): string | undefined {
  if (remote === '') return 'it is empty';
  if (hasSpaceOrControl(remote)) return 'it contains white space or control characters';
  if (remote.startsWith('-')) return 'it starts with "-", which git would read as an option';
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(remote)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    if (scheme !== 'https' && scheme !== 'http' && scheme !== 'ssh') {
      return scheme === 'file' ? 'file:// remotes (local repositories) are not accepted' : `the ${scheme}:// transport is not accepted`;
    }
    let u: URL;
    try {
      u = new URL(remote);
    } catch {
      return 'it is not a valid URL';
    }
    if (!u.hostname || !HOST.test(u.hostname)) return `"${u.hostname}" is not a host name`;
    if (scheme === 'ssh' && u.username && !USER.test(decodeURIComponent(u.username))) return `"${u.username}" is not an ssh user name`;
    return undefined;
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(remote)) return 'remote helpers (TRANSPORT::ADDRESS, e.g. ext::) are not accepted';
  const scp = SCP.exec(remote);
  if (scp) {
    const [, user, host, path] = scp as unknown as [string, string | undefined, string, string];
    if (user !== undefined && !USER.test(user)) return `"${user}" is not an ssh user name`;
    if (!HOST.test(host)) return `"${host}" is not a host name`;
    if (path === '' || path.startsWith('-')) return `"${path}" is not a repository path on ${host}`;
    return undefined;
  }
  return 'local paths are not accepted (a webhook build fetches over the network; push to Berth directly for a local repository)';
}

/** Throws InvalidInput naming `field`, what is wrong and the accepted forms, unless `remote` is accepted. */
export function checkGitRemote(remote: string, field = 'remote'): void {
  const why = gitRemoteProblem(remote);
  if (why) throw new InvalidInput(`${field}: ${JSON.stringify(remote.length > 200 ? remote.slice(0, 200) + '…' : remote)} is not an accepted git remote (${why}): use ${ACCEPTED_REMOTES}`);
}

/**
 * Why `branch` (the part after refs/heads/) is not a branch name git would accept, or undefined:
 * git's check-ref-format rules, so that a name from a webhook can only ever be one ref.
 */
export function branchProblem(branch: string): string | undefined {
  if (branch === '' || branch.length > 255) return 'a branch name has 1 to 255 characters';
  if (hasSpaceOrControl(branch) || /[~^:?*[\\]/.test(branch)) return 'a branch name has no white space, control characters or any of ~ ^ : ? * [ \\';
  if (branch.startsWith('-')) return 'a branch name does not start with "-"';
  if (branch.includes('..') || branch.includes('@{') || branch === '@') return 'a branch name has no "..", "@{" and is not "@"';
  if (branch.split('/').some((c) => c === '' || c.startsWith('.') || c.endsWith('.lock')) || branch.endsWith('.')) {
    return 'each /-separated part of a branch name is non-empty, does not start with "." or end with ".lock", and the name does not end with "."';
  }
  return undefined;
}

function hasSpaceOrControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return true;
  }
  return false;
}

export interface PushedRef {
  oldSha: string;
  newSha: string;
  ref: string;
}

/** `old new ref` lines as git gives them to a pre-receive hook (on stdin). */
export function parseRefLines(text: string): PushedRef[] {
  const out: PushedRef[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{40,64}) ([0-9a-f]{40,64}) (\S+)$/.exec(line.trim());
    if (m) out.push({ oldSha: m[1]!, newSha: m[2]!, ref: m[3]! });
  }
  return out;
}

/** The build queue as the API uses it (build/BuildController implements it). */
export interface BuildsPort {
  /** Records a build as queued and schedules it; returns the record at once. */
  submit(req: BuildRequest): Promise<BuildRecord>;
  /** The record, live while the build runs. */
  get(id: string): BuildRecord | undefined;
  /** Newest first. */
  list(app?: string): BuildRecord[];
  /** The stored output so far. */
  text(id: string): string;
  /** Every line so far, then each new one until the build ends (`done`) or `stop` is called. */
  follow(id: string, onLine: (line: string) => void): { done: Promise<BuildRecord>; stop: () => void };
  /** Cancels a queued or running build (`by`: who); the record as it ended. */
  cancel(id: string, by: string): Promise<BuildRecord>;
}

/** The apps' git repositories as the API uses them (build/GitRepos implements it). */
export interface GitReposPort {
  /** Creates the app's bare repository if needed and (re)writes its hook for `serverUrl`. */
  ensure(app: string, serverUrl: string): Promise<unknown>;
  exists(app: string): boolean;
  /** The per-server secret the pre-receive hook presents. */
  token(): Promise<string>;
  /** The push's quarantine directory, checked to be the app's; undefined when none was given. */
  quarantine(app: string, given: string): string | undefined;
  /** The app's source for webhook builds. */
  source(app: string): Promise<AppSource | undefined>;
  setSource(app: string, src: AppSource): Promise<void>;
}

/**
 * One smart HTTP exchange of git with an app's repository (`git push`/`fetch` over /git/APP.git):
 * build/git-http.ts runs `git http-backend` for it. `Req`/`Res` are the HTTP server's request and response.
 */
export interface GitHttpExchange<Req, Res> {
  /** Path below the repositories' root, e.g. `/myapp.git/info/refs`. */
  pathInfo: string;
  query: string;
  method: string;
  remoteUser: string;
  req: Req;
  res: Res;
  /** Stderr of git http-backend (for the log). */
  onStderr?: (text: string) => void;
}

export type WebhookProvider = 'github' | 'gitea' | 'gitlab';

/** What a push webhook says: which branch moved to which commit. */
export interface PushEvent {
  ref: string;
  commit: string;
}

/** A webhook delivery seen before: how (the same delivery id, or the very same signed body) and when. */
export interface SeenDelivery {
  by: 'id' | 'body';
  at: number;
}

type Headers = Record<string, string | string[] | undefined>;

/** Webhooks from git hosts as the API uses them (build/webhooks.ts and WebhookDeliveries implement it). */
export interface WebhooksPort {
  /** Whether the raw body is signed with `secret` the way `provider` signs, in constant time. */
  verify(provider: WebhookProvider, headers: Headers, raw: Uint8Array, secret: string): boolean;
  /** The git host's id of this delivery, when it sent a plausible one. */
  deliveryId(provider: WebhookProvider, headers: Headers): string | undefined;
  /** The pushed ref and commit of a push event's JSON. */
  parsePushEvent(provider: WebhookProvider, body: unknown): PushEvent | undefined;
  /** Records the delivery and returns undefined, or says how it was seen before (and records nothing). */
  claim(app: string, d: { id?: string; raw: Uint8Array; at: number }): Promise<SeenDelivery | undefined>;
}
