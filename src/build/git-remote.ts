export { ACCEPTED_REMOTES, branchProblem, checkGitRemote, gitRemoteProblem } from '../core/builds.ts';


/** The transports a webhook build's `git fetch` may use; every other one (file, git, ext, fd, ...) is refused by git itself. */
export const ALLOWED_GIT_PROTOCOLS = ['https', 'http', 'ssh'] as const;


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

