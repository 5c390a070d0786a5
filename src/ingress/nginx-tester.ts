import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ExternalCommandFailed } from '../core/errors.ts';

/**
 * `nginx -t` of the writer's candidate config, run by one long-lived shell instead of a new child of
 * the server each time. Forking the server copies its page tables on the event loop's thread: at a
 * few hundred MB that blocked the loop 13-37 ms per route change (seen in a CPU profile of the deploy
 * benchmark; 50-260 ms at 400 MB on a loaded machine), during which health flips, API requests and
 * the containers being started waited. A small shell forks in well under a millisecond, off that
 * thread. The shell runs the same fixed command for every newline it reads (no command text crosses
 * the pipe) and ends when the server does (its stdin closes).
 */
export class NginxTester {
  private sh: ChildProcess | undefined;
  private out = '';
  private current: { resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;
  private readonly marker = `berth-nginx-test-exit-${randomBytes(6).toString('hex')}`;
  private readonly argv: string;

  constructor(private readonly bin: string, private readonly prefix: string, private readonly candidate: string, private readonly timeoutMs = 30_000) {
    this.argv = `${bin} -t -q -p ${prefix} -c ${candidate} -e stderr`;
  }

  /** Resolves when nginx accepts the candidate; rejects with ExternalCommandFailed (nginx's words in `details.stderr`) when not. One at a time. */
  test(): Promise<void> {
    if (this.current) return Promise.reject(new Error('nginx -t is already running for this candidate'));
    let sh: ChildProcess;
    try {
      sh = this.shell();
    } catch (e) {
      return Promise.reject(new ExternalCommandFailed(`\`${this.argv}\` could not start: ${String(e)}`, { cause: e }));
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.finish(new ExternalCommandFailed(`\`${this.argv}\` failed (no answer within ${this.timeoutMs} ms)`, { details: { stderr: this.out } }));
        this.stopShell();
      }, this.timeoutMs);
      this.current = { resolve, reject, timer };
      this.out = '';
      sh.stdin!.write('\n');
    });
  }

  /** Ends the shell (and fails a test in progress). */
  close(): void {
    this.finish(new ExternalCommandFailed(`\`${this.argv}\` cancelled: the ingress writer closed`));
    this.stopShell();
  }

  private shell(): ChildProcess {
    if (this.sh) return this.sh;
    // $1..$4: nginx, prefix, candidate, marker. stdin of nginx is /dev/null (it must not eat the next newline).
    const script = 'while IFS= read -r _; do "$1" -t -q -p "$2" -c "$3" -e stderr </dev/null 2>&1; echo "$4 $?"; done';
    // Its own process group: a stuck test is ended with the nginx it started.
    const sh = spawn('/bin/sh', ['-c', script, 'berth-nginx-test', this.bin, this.prefix, this.candidate, this.marker], { stdio: ['pipe', 'pipe', 'ignore'], detached: true });
    this.sh = sh;
    sh.stdout!.setEncoding('utf8');
    sh.stdout!.on('data', (c: string) => this.onData(c));
    // A shell that died: 'exit' fails the test in progress, the next test starts another.
    sh.stdin!.on('error', () => undefined);
    sh.on('error', (err) => {
      if (this.sh === sh) this.sh = undefined;
      this.finish(new ExternalCommandFailed(`\`${this.argv}\` could not run: ${err.message}`, { cause: err }));
    });
    sh.on('exit', (code, signal) => {
      if (this.sh === sh) this.sh = undefined;
      this.finish(new ExternalCommandFailed(`\`${this.argv}\` failed (its shell ended: ${signal ?? `exit code ${code}`})`, { details: { stderr: this.out } }));
    });
    // The server's lifetime is not held by it (closed with the writer; it ends with the server's stdin).
    sh.unref();
    for (const s of [sh.stdin, sh.stdout] as const) (s as unknown as { unref?: () => void } | null)?.unref?.();
    return sh;
  }

  private onData(chunk: string): void {
    if (!this.current) return;
    this.out += chunk;
    const m = new RegExp(`(?:^|\\n)${this.marker} (\\d+)\\n$`).exec(this.out);
    if (!m) return;
    const text = this.out.slice(0, m.index);
    const rc = Number(m[1]);
    this.finish(rc === 0 ? undefined : new ExternalCommandFailed(`\`${this.argv}\` failed (exit code ${rc})${text.trim() ? `:\n${text.trim()}` : ''}`,
      { details: { cmd: this.bin, exitCode: rc, stderr: text } }));
  }

  private finish(err?: Error): void {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    clearTimeout(c.timer);
    if (err) c.reject(err);
    else c.resolve();
  }

  private stopShell(): void {
    const sh = this.sh;
    this.sh = undefined;
    if (!sh || sh.exitCode !== null || sh.signalCode !== null || sh.pid === undefined) return;
    try {
      process.kill(-sh.pid, 'SIGKILL');
    } catch {
      sh.kill('SIGKILL');
    }
  }
}
