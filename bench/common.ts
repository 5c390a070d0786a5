import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { ROOT } from '../test/helpers/harness.ts';

export const exec = promisify(execFile);

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The Docker Engine and the base images, as `npm test` prepares them. */
export async function prepare(): Promise<void> {
  await exec('bash', [join(ROOT, 'scripts/dockerd.sh'), 'start'], { timeout: 120_000 });
  await exec('bash', [join(ROOT, 'scripts/images.sh')], { timeout: 300_000 });
}

/** Resident set size of a process in MB, from /proc. */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}
