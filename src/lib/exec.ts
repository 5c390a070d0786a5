import { execFile } from 'node:child_process';
import { ExternalCommandFailed } from '../core/errors.ts';

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs a program with an argv array (never a shell string). A non-zero exit, a signal, a timeout or a
 * missing binary rejects with ExternalCommandFailed whose message keeps the program's stderr, because
 * that is where programs like nginx and git say what is actually wrong.
 */
export function runCommand(
  cmd: string,
  args: readonly string[],
  opts: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv; maxBuffer?: number; signal?: AbortSignal } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        timeout: opts.timeoutMs ?? 30_000, cwd: opts.cwd, env: opts.env, maxBuffer: opts.maxBuffer ?? 8 * 1024 * 1024, encoding: 'utf8',
        ...(opts.signal ? { signal: opts.signal } : {}),
      },
      (err, stdout, stderr) => {
        if (!err) {
          resolve({ stdout, stderr });
          return;
        }
        const e = err as NodeJS.ErrnoException & { code?: string | number; killed?: boolean; signal?: string };
        const argv = [cmd, ...args].join(' ');
        let why: string;
        if (e.code === 'ENOENT') why = `${cmd} was not found on PATH; install it`;
        else if (e.killed && e.signal) why = `killed by ${e.signal} (timeout ${opts.timeoutMs ?? 30_000} ms?)`;
        else if (e.signal) why = `killed by ${e.signal}`;
        else why = `exit code ${String(e.code)}`;
        const detail = stderr.trim() || stdout.trim();
        reject(
          new ExternalCommandFailed(`\`${argv}\` failed (${why})${detail ? `:\n${detail}` : ''}`, {
            cause: err,
            details: { cmd, args: [...args], exitCode: typeof e.code === 'number' ? e.code : undefined, stderr },
          }),
        );
      },
    );
  });
}
