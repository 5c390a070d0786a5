import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

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
