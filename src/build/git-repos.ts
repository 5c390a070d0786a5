import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { InvalidInput } from '../core/errors.ts';
import { checkAppName, type AppSource, type GitReposPort } from '../core/builds.ts';
import { runCommand } from '../lib/exec.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';

export { checkAppName, type AppSource } from '../core/builds.ts';

/**
 * One bare git repository per app under DATA/git/APP.git, created on the first push. Each carries a
 * pre-receive hook that hands the pushed refs to the Berth server and prints the pipeline's progress,
 * so that it shows up as `remote: ...` lines in the pusher's `git push`. pre-receive, not post-receive:
 * its exit status decides the push, so a failed build or test rejects it (as on Heroku) and the
 * branch keeps pointing at what runs.
 */
export class GitRepos implements GitReposPort {
  readonly root: string;
  private hookToken?: string;

  /** `env`: the environment git runs with where Berth adds variables (server/config's `childEnv`). */
  constructor(dataDir: string, readonly env: Readonly<NodeJS.ProcessEnv>) {
    this.root = join(dataDir, 'git');
  }

  pathOf(app: string): string {
    checkAppName(app);
    return join(this.root, `${app}.git`);
  }

  exists(app: string): boolean {
    return existsSync(join(this.pathOf(app), 'HEAD'));
  }

  /**
   * The directory where receive-pack holds a push's objects until pre-receive accepts it, checked to
   * be inside the app's repository; undefined when none was given (objects are then in the repo).
   */
  quarantine(app: string, given: string): string | undefined {
    if (!given) return undefined;
    const objects = join(this.pathOf(app), 'objects');
    const p = resolve(given);
    if (dirname(p) !== objects || !basename(p).startsWith('tmp_objdir-incoming-') || !existsSync(p)) {
      throw new InvalidInput(`quarantine directory ${given} is not one of ${app}'s incoming object directories`);
    }
    return p;
  }

  /** Apps with a repository or a webhook source here (`APP.git`, `APP.source.json`): they exist for the API's name checks. */
  apps(): { app: string; env: string }[] {
    try {
      return readdirSync(this.root).flatMap((f) => {
        const m = /^([a-z0-9][a-z0-9-]*)\.(git|source\.json)$/.exec(f);
        return m ? [{ app: m[1]!, env: '' }] : [];
      });
    } catch {
      return [];
    }
  }

  /** What the app has here: its repository, its webhook source (remote + secret), its webhook deliveries. */
  inventory(app: string): { repository: boolean; source: boolean } {
    return { repository: this.exists(app), source: existsSync(join(this.root, `${app}.source.json`)) };
  }

  /**
   * Deletes everything of the app under DATA/git (`APP.git`, `APP.source.json`, `APP.deliveries.json`:
   * every `APP.*`, app names have no dots): `berth rm --purge`. Returns the names removed.
   */
  async purge(app: string): Promise<string[]> {
    checkAppName(app);
    const names = (await readdir(this.root).catch(() => [] as string[])).filter((n) => n.startsWith(`${app}.`));
    for (const n of names) await rm(join(this.root, n), { recursive: true, force: true });
    return names;
  }

  /** The app's source for webhook builds: the remote Berth fetches from and the webhook secret. */
  async source(app: string): Promise<AppSource | undefined> {
    try {
      return JSON.parse(await readFile(join(this.root, `${app}.source.json`), 'utf8')) as AppSource;
    } catch {
      return undefined;
    }
  }

  async setSource(app: string, src: AppSource): Promise<void> {
    checkAppName(app);
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(this.root, `${app}.source.json`), JSON.stringify(src), { mode: 0o600 });
  }

  /** The per-server secret the hook presents to POST /v1/git/hooks/pre-receive (DATA/git/hook.token, mode 0600). */
  async token(): Promise<string> {
    if (this.hookToken) return this.hookToken;
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    const p = join(this.root, 'hook.token');
    let t = (await readFile(p, 'utf8').catch(() => '')).trim();
    if (!t) {
      t = randomBytes(24).toString('base64url');
      await writeFile(p, t + '\n', { mode: 0o600, flag: 'wx' }).catch(async (e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
        t = (await readFile(p, 'utf8')).trim();
      });
    }
    this.hookToken = t;
    return t;
  }

  /**
   * Creates the bare repository if needed and (re)writes its hook for the server's current address:
   * the API port may change between restarts.
   */
  async ensure(app: string, serverUrl: string): Promise<string> {
    const dir = this.pathOf(app);
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    if (!existsSync(join(dir, 'HEAD'))) {
      await runCommand('git', ['init', '--bare', '--quiet', '--initial-branch=main', dir]);
      // http-backend refuses pushes from an unauthenticated REMOTE_USER unless enabled; Berth authenticates.
      await runCommand('git', ['--git-dir', dir, 'config', 'http.receivepack', 'true']);
    }
    await this.token();
    const hook = hookScript(app, serverUrl, join(this.root, 'hook.token'));
    const hookPath = join(dir, 'hooks', 'pre-receive');
    const cur = await readFile(hookPath, 'utf8').catch(() => '');
    if (cur !== hook) {
      await mkdir(join(dir, 'hooks'), { recursive: true });
      await writeFileAtomic(hookPath, hook);
      // Only git, run by the server (root), executes it.
      await chmod(hookPath, 0o700);
    }
    return dir;
  }
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The pre-receive hook: POSTs the ref lines (stdin) and the quarantine directory holding the pushed
 * objects to Berth and prints the streamed progress line by line. The last line, `berth-exit: N`, is
 * the pipeline's result and becomes the hook's exit status: non-zero rejects the push. The lines are
 * relayed with the shell's `read`, which takes a pipe byte by byte: awk (mawk, Debian's default)
 * reads its input in blocks and held every line back until the build had finished.
 */
export function hookScript(app: string, serverUrl: string, tokenFile: string): string {
  return `#!/bin/sh
# Written by Berth: runs the build/deploy pipeline for this push and shows its progress.
curl -sS -N -X POST \\
  -H "x-berth-hook-token: $(cat ${shQuote(tokenFile)})" \\
  -H "x-berth-quarantine: \${GIT_QUARANTINE_PATH:-}" \\
  -H "x-berth-pusher: \${REMOTE_USER:-}" \\
  -H 'content-type: text/plain' \\
  --data-binary @- \\
  ${shQuote(`${serverUrl}/v1/git/hooks/pre-receive?app=${app}`)} 2>&1 | {
  code=''
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in
      'berth-exit: '[0-9]*) code=\${line#berth-exit: } ;;
      *) printf '%s\\n' "$line" ;;
    esac
  done
  if [ -z "$code" ]; then echo 'berth: no result from the server'; exit 1; fi
  exit "$code"
}
`;
}
