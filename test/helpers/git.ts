/** git for tests: a runner that never throws (exit code + output), and a committed copy of the example app. */
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './harness.ts';

export function git(cwd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    execFile('git', args, {
      cwd, timeout: 300_000, maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.invalid' },
    }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      res({ code, out: stdout + stderr });
    });
  });
}

/** Like git(), also noting when each output line arrived (ms after the start): to tell live progress from a dump at the end. */
export function gitTimed(cwd: string, args: string[]): Promise<{ code: number; out: string; lines: { ms: number; text: string }[] }> {
  return new Promise((res) => {
    const t0 = performance.now();
    const lines: { ms: number; text: string }[] = [];
    let out = '';
    let partial = '';
    const p = spawn('git', args, {
      cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.invalid' },
    });
    const take = (c: Buffer) => {
      out += c.toString();
      partial += c.toString();
      const parts = partial.split(/[\r\n]/);
      partial = parts.pop()!;
      for (const text of parts) if (text.trim()) lines.push({ ms: performance.now() - t0, text });
    };
    p.stdout.on('data', take);
    p.stderr.on('data', take);
    const timer = setTimeout(() => p.kill('SIGKILL'), 300_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      res({ code: code ?? 1, out, lines });
    });
  });
}

/** A new git repository (branch main, one commit) holding the example app and the given compose.yaml. */
export async function exampleRepo(prefix: string, compose: string): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), prefix));
  for (const f of ['Dockerfile', 'server.js']) await copyFile(join(ROOT, 'examples/hello', f), join(work, f));
  await writeFile(join(work, '.dockerignore'), 'compose.yaml\n');
  await writeFile(join(work, 'compose.yaml'), compose);
  for (const args of [['init', '-q', '-b', 'main'], ['add', '.'], ['commit', '-q', '-m', 'v1']]) {
    const r = await git(work, args);
    if (r.code !== 0) throw new Error(`git ${args.join(' ')}: ${r.out}`);
  }
  return work;
}
