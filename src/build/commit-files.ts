import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';

/**
 * Read access to the files of one commit of an app's repository, straight from git's object store:
 * the exact commit, never a working tree, and nothing written to disk. During pre-receive the pushed
 * objects are still in the push's quarantine directory, which git is pointed at here.
 */
export class CommitFiles {
  private readonly env: NodeJS.ProcessEnv;

  /** `env`: the environment git runs with (GitRepos.env); `quarantine`: see PushCheck. */
  constructor(private readonly gitDir: string, readonly commit: string, o: { env: Readonly<NodeJS.ProcessEnv>; quarantine?: string | undefined }) {
    this.env = o.quarantine
      ? { ...o.env, GIT_OBJECT_DIRECTORY: o.quarantine, GIT_ALTERNATE_OBJECT_DIRECTORIES: join(gitDir, 'objects') }
      : { ...o.env };
  }

  /**
   * Objects of the commit in one `git cat-file --batch` (paths repository-relative, '' for the root):
   * per path its type and, for a file, its text; undefined where the commit has nothing.
   */
  async readMany(paths: string[]): Promise<({ type: string; text?: string } | undefined)[]> {
    const out = await new Promise<Buffer>((resolve, reject) => {
      const git = spawn('git', ['--git-dir', this.gitDir, 'cat-file', '--batch'], { stdio: ['pipe', 'pipe', 'pipe'], env: this.env });
      const chunks: Buffer[] = [];
      let err = '';
      git.stdout.on('data', (c: Buffer) => chunks.push(c));
      git.stderr.on('data', (c: Buffer) => (err += c.toString()));
      git.on('error', reject);
      git.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`git cat-file --batch failed (exit ${code}): ${err.trim()}`))));
      git.stdin.end(paths.map((p) => this.spec(p) + '\n').join(''));
    });
    const res: ({ type: string; text?: string } | undefined)[] = [];
    let at = 0;
    for (let i = 0; i < paths.length; i++) {
      const nl = out.indexOf(10, at);
      const header = out.subarray(at, nl).toString('utf8');
      at = nl + 1;
      // `<oid> <type> <size>` then the content and a newline; `<spec> missing` (or ambiguous) otherwise.
      const m = /^[0-9a-f]+ (\S+) (\d+)$/.exec(header);
      if (!m) {
        res.push(undefined);
        continue;
      }
      const size = Number(m[2]);
      const body = out.subarray(at, at + size);
      at += size + 1;
      res.push(m[1] === 'blob' ? { type: 'blob', text: body.toString('utf8') } : { type: m[1]! });
    }
    return res;
  }

  /** The commit's committer time, in seconds since the epoch: what a reproducible build is dated. */
  async committedAt(): Promise<number> {
    const out = await new Promise<string>((resolve, reject) => {
      const git = spawn('git', ['--git-dir', this.gitDir, 'cat-file', 'commit', this.commit], { stdio: ['ignore', 'pipe', 'pipe'], env: this.env });
      let text = '';
      let err = '';
      git.stdout.on('data', (c: Buffer) => (text += c.toString()));
      git.stderr.on('data', (c: Buffer) => (err += c.toString()));
      git.on('error', reject);
      git.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`git cat-file commit ${this.commit} failed (exit ${code}): ${err.trim()}`))));
    });
    return committerTime(out);
  }

  /**
   * A tar stream of directory `dir` ('' for the root) as `git archive` writes it, paths relative to
   * that directory. A failure of git (or the signal) errors the stream.
   */
  archive(dir: string, signal?: AbortSignal): Readable {
    const git = spawn('git', ['--git-dir', this.gitDir, 'archive', '--format=tar', this.spec(dir)], {
      stdio: ['ignore', 'pipe', 'pipe'], env: this.env, ...(signal ? { signal } : {}),
    });
    // The stream ends only when git exits 0: a git that fails half-way must not look like a short context.
    const out = new PassThrough();
    git.stdout.pipe(out, { end: false });
    let err = '';
    git.stderr.on('data', (c: Buffer) => (err += c.toString()));
    git.on('error', (e) => out.destroy(e));
    git.on('close', (code) => {
      if (code === 0) out.end();
      else out.destroy(new Error(`git archive ${this.spec(dir)} failed (exit ${code}): ${err.trim()}`));
    });
    return out;
  }

  private spec(path: string): string {
    return path === '' || path === '.' ? `${this.commit}^{tree}` : `${this.commit}:${path}`;
  }
}

/** The committer time of a raw commit object (`committer NAME <EMAIL> SECONDS ZONE`), seconds since the epoch. */
export function committerTime(commitObject: string): number {
  const header = commitObject.split('\n\n', 1)[0]!;
  const m = /^committer .* (\d+) [+-]\d{4}$/m.exec(header);
  if (!m) throw new Error('the commit object has no committer line');
  return Number(m[1]);
}
