import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import type { Logger } from '../core/ports.ts';

/**
 * Sets this process's CPU priority (nice) on every thread it has. On Linux a nice value belongs to a
 * thread, and `os.setPriority` sets the calling one only: the threads already running (libuv's pool,
 * V8's workers) are set through /proc/self/task; threads started later inherit from their creator,
 * child processes (nginx) from this one. A negative value already reached (started under `nice -n
 * -10`) is kept. Returns what was done, for the log; throws when the system refuses (not root).
 */
export function setProcessNice(nice: number): { before: number; after: number; threads: number } {
  const before = getPriority();
  if (nice === 0 || (nice < 0 && before <= nice)) return { before, after: before, threads: 0 };
  let tids: number[];
  try {
    tids = readdirSync('/proc/self/task').map(Number).filter((t) => Number.isInteger(t) && t > 0);
  } catch {
    tids = [0]; // no /proc: the calling thread
  }
  for (const tid of tids) {
    try {
      setPriority(tid, nice);
    } catch (err) {
      // A thread that ended meanwhile is gone, not a refusal; the main thread's refusal is.
      if (tid === process.pid || tid === 0) throw err;
    }
  }
  return { before, after: getPriority(), threads: tids.length };
}

/**
 * BERTH_NICE at startup (the server's, the edge agent's): logs what changed; a refusal (not root, no
 * CAP_SYS_NICE) is a warning, and `who` goes on at the priority it was started with.
 */
export function raiseProcessNice(nice: number, logger: Logger, who: 'server' | 'agent'): void {
  try {
    const r = setProcessNice(nice);
    if (r.after !== r.before) logger.info({ nice: r.after, was: r.before, threads: r.threads }, 'CPU priority set (BERTH_NICE)');
  } catch (err) {
    logger.warn({ nice, err: String(err) }, `could not set the CPU priority (BERTH_NICE needs root or CAP_SYS_NICE to go below 0): on a busy host DNS answers and health checks may come late; BERTH_NICE=0 keeps the priority the ${who} was started with`);
  }
}
