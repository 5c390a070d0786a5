/** git for tests: a runner that never throws (exit code + output), and a committed copy of the example app. */
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, ROOT } from './harness.ts';
import { serveGitHttp } from '../../src/build/git-http.ts';
import { waitFor } from '../../src/lib/backoff.ts';

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

/**
 * compose.yaml of the example app for push tests: one `web` replica on port 3000 with an HTTP health
 * check, APP_VERSION set to `version`; optionally routed at `/`, with a test command (`berth-test`
 * label or `x-berth.test`), more environment lines, a release deadline, top-level YAML after it all.
 */
export function helloCompose(app: string, version: string, o: { route?: boolean; testCmd?: string; xTest?: string; extraEnv?: string; stopGrace?: string; deadline?: string; top?: string } = {}): string {
  return `name: ${app}
services:
  web:
    build: .
    environment:
      APP_VERSION: ${version}
${o.extraEnv ?? ''}${o.testCmd ? `    labels:\n      berth-test: "${o.testCmd}"\n` : ''}    deploy:
      replicas: 1
    stop_grace_period: ${o.stopGrace ?? '2s'}
    x-berth:
      port: 3000
${o.route === false ? '' : '      routes:\n        - path: /\n'}      health:
        http: /healthz
${o.deadline ? `      update:\n        deadline: ${o.deadline}\n` : ''}${o.xTest ? `      test: ${o.xTest}\n` : ''}${o.top ?? ''}`;
}

/** A server to push to and a committed example repo: what the git push suites share. */
export interface PushSetup {
  h: Harness;
  token: string;
  work: string;
  /** `http://127.0.0.1:PORT` of Berth's image registry. */
  registry: string;
  /**
   * A request to Berth's image registry with Berth's credentials (DATA/registry/password). Retried
   * while the registry is briefly down (garbage collection restarts it for its deletion window).
   */
  registryFetch(path: string, init?: RequestInit): Promise<Response>;
  /** The app's git remote on Berth, with the admin token (or the one given) as the password. */
  remote(app: string, token?: string): string;
  cleanup(): Promise<void>;
}

export async function pushSetup(o: { portRange: string; prefix: string; compose: string; env?: Record<string, string> }): Promise<PushSetup> {
  const h = await Harness.create({ portRange: o.portRange, ...(o.env ? { env: o.env } : {}) });
  await h.startServer();
  const token = await h.token();
  const work = await exampleRepo(o.prefix, o.compose);
  return {
    h, token, work, registry: `http://127.0.0.1:${h.registryPort}`,
    registryFetch: (path, init) => registryFetch(h, path, init),
    remote: (app, t = token) => `http://x:${t}@127.0.0.1:${h.apiPort}/git/${app}.git`,
    async cleanup() {
      if (process.exitCode) console.error(h.serverLog.slice(-5000));
      await h.cleanup();
      await rm(work, { recursive: true, force: true });
    },
  };
}

/** Berth's registry credentials as a Basic authorization header value. */
export async function registryAuthorization(h: Harness): Promise<string> {
  const password = (await readFile(join(h.dataDir, 'registry', 'password'), 'utf8')).trim();
  return `Basic ${Buffer.from(`berth:${password}`).toString('base64')}`;
}

/** See PushSetup.registryFetch. */
export async function registryFetch(h: Harness, path: string, init: RequestInit = {}): Promise<Response> {
  const authorization = await registryAuthorization(h);
  return waitFor(async () => {
    try {
      return await fetch(`http://127.0.0.1:${h.registryPort}${path}`, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), authorization } });
    } catch (err) {
      throw new Error(`registry ${path}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`, { cause: err });
    }
  }, { timeoutMs: 15_000, intervalMs: 50, what: `Berth's registry to answer ${path}` });
}

/**
 * A git host for webhook tests: the bare repositories under `root`, fetchable over smart HTTP at
 * `url/NAME.git` on 127.0.0.1 (pushes refused). What an app's source remote points at.
 */
export async function serveGitRemotes(root: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const [path = '/', query = ''] = (req.url ?? '/').split('?', 2);
    if (path.endsWith('/git-receive-pack') || query.includes('git-receive-pack')) {
      res.writeHead(403).end('read-only\n');
      return;
    }
    void serveGitHttp({ projectRoot: root, pathInfo: path, query, method: req.method ?? 'GET', remoteUser: '', req, res, path: process.env.PATH });
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => res());
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((res) => {
      server.closeAllConnections();
      server.close(() => res());
    }),
  };
}
