import { InvalidInput } from '../core/errors.ts';

/** What `PUT /v1/apps/APP/source` accepts as `remote`, for messages. */
export const ACCEPTED_REMOTES = 'https://HOST/PATH, http://HOST/PATH, ssh://[USER@]HOST[:PORT]/PATH or scp-style [USER@]HOST:PATH';

/** The transports a webhook build's `git fetch` may use; every other one (file, git, ext, fd, ...) is refused by git itself. */
export const ALLOWED_GIT_PROTOCOLS = ['https', 'http', 'ssh'] as const;

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
 * The argv of the `git fetch` that brings `branch` of `remote` into `gitDir` as
 * refs/berth/incoming/BRANCH. Safe even for a remote that was never checked (e.g. stored by an older
 * Berth): `--` ends the options before it, and git may only use the network transports (file, ext,
 * fd and the rest are refused by git's protocol policy).
 */
export function fetchArgv(gitDir: string, remote: string, branch: string): string[] {
  return [
    '-c', 'protocol.allow=never',
    ...ALLOWED_GIT_PROTOCOLS.flatMap((p) => ['-c', `protocol.${p}.allow=always`]),
    '--git-dir', gitDir, 'fetch', '--no-tags', '--quiet', '--no-write-fetch-head', '--',
    remote, `+refs/heads/${branch}:refs/berth/incoming/${branch}`,
  ];
}

/** The environment of that fetch: never a prompt for credentials (nobody is there to answer it). */
export function fetchEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...base, GIT_TERMINAL_PROMPT: '0', GIT_PROTOCOL_FROM_USER: '0' };
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
