import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '../lib/backoff.ts';

/*
 * Finding and signalling the nginx master Berth started from its own prefix. nginx daemonizes, so
 * the master is not our child: we know it by its pid file and by /proc/PID/cmdline, which nginx
 * rewrites to "nginx: master process nginx -p PREFIX/ -c ...".
 */

export function normalizePrefix(prefix: string): string {
  return prefix.length > 1 ? prefix.replace(/\/+$/, '') : prefix;
}

export function pidFilePath(prefix: string): string {
  return join(normalizePrefix(prefix), 'logs', 'nginx.pid');
}

export async function readPidFile(prefix: string): Promise<number | undefined> {
  const text = await readFile(pidFilePath(prefix), 'utf8').catch(() => undefined);
  const pid = text === undefined ? NaN : Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

interface ProcStat {
  state: string;
  ppid: number;
}

async function readStat(pid: number): Promise<ProcStat | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  // The command name is in parentheses and may itself contain spaces or parentheses.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0] ?? '?', ppid: Number(rest[1]) };
}

/** True while the process exists and is not a zombie (the master is reparented; its reaper may be slow). */
export async function isRunning(pid: number): Promise<boolean> {
  const st = await readStat(pid);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X';
}

async function readCmdline(pid: number): Promise<string | undefined> {
  const buf = await readFile(`/proc/${pid}/cmdline`).catch(() => undefined);
  if (!buf) return undefined;
  return buf.toString('utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
}

/** Whether a process title is that of an nginx master started with `-p PREFIX`. */
export function isMasterOf(cmdline: string, prefix: string): boolean {
  if (!cmdline.startsWith('nginx: master process ')) return false;
  const argv = cmdline.split(' ');
  const i = argv.indexOf('-p');
  return i >= 0 && argv[i + 1] !== undefined && normalizePrefix(argv[i + 1]!) === normalizePrefix(prefix);
}

async function isMasterPid(pid: number, prefix: string): Promise<boolean> {
  if (!(await isRunning(pid))) return false;
  const cmd = await readCmdline(pid);
  return cmd !== undefined && isMasterOf(cmd, prefix);
}

async function allPids(): Promise<number[]> {
  const names = await readdir('/proc').catch(() => [] as string[]);
  return names.filter((n) => /^\d+$/.test(n)).map(Number);
}

/**
 * The pid of the running nginx master for this prefix: from the pid file when it names one, else by
 * scanning /proc (a lost pid file must not make us start a second master that fails to bind).
 */
export async function findMaster(prefix: string): Promise<number | undefined> {
  const fromFile = await readPidFile(prefix);
  if (fromFile !== undefined && (await isMasterPid(fromFile, prefix))) return fromFile;
  for (const pid of await allPids()) {
    if (pid !== fromFile && (await isMasterPid(pid, prefix))) return pid;
  }
  return undefined;
}

/** Worker processes of a master; `shuttingDown` once they stopped accepting (old generation draining). */
export async function listWorkers(masterPid: number): Promise<{ pid: number; shuttingDown: boolean }[]> {
  const out: { pid: number; shuttingDown: boolean }[] = [];
  // The kernel's list of the master's children is one small read; scanning all of /proc took ~40 ms
  // on a busy host, on the path of every reload. The scan stays as the fallback.
  const children = await readFile(`/proc/${masterPid}/task/${masterPid}/children`, 'utf8').then(
    (t) => t.split(/\s+/).filter((n) => /^\d+$/.test(n)).map(Number),
    () => undefined,
  );
  for (const pid of children ?? (await allPids())) {
    const st = await readStat(pid);
    if (!st || st.ppid !== masterPid || st.state === 'Z') continue;
    const cmd = (await readCmdline(pid)) ?? '';
    if (!cmd.startsWith('nginx: worker process')) continue;
    out.push({ pid, shuttingDown: cmd.includes('shutting down') });
  }
  return out;
}

/**
 * Gracefully stops the nginx master of this prefix (SIGQUIT: finish in-flight requests, then exit)
 * and waits until it is gone; SIGTERM after `timeoutMs`. Returns false when none was running.
 * For tests, cleanup and stopping the data plane on purpose — Berth itself never stops nginx.
 */
export async function stopNginx(prefix: string, opts: { timeoutMs?: number } = {}): Promise<boolean> {
  const pid = await findMaster(prefix);
  if (pid === undefined) return false;
  const timeoutMs = opts.timeoutMs ?? 35_000;
  try {
    process.kill(pid, 'SIGQUIT');
  } catch {
    return false;
  }
  try {
    await waitFor(async () => !(await isRunning(pid)), { timeoutMs, intervalMs: 50, what: `nginx master ${pid} to exit` });
  } catch {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    await waitFor(async () => !(await isRunning(pid)), { timeoutMs: 5_000, intervalMs: 50, what: `nginx master ${pid} to exit after SIGTERM` });
  }
  return true;
}
