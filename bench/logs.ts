/**
 * logs: (1) ingest: a container printing BENCH_LOG_LINES (2,000,000) realistic lines as fast as it
 * can, followed by a log collector in its own process → lines/s stored and that process's CPU%;
 * (2) search: a LogStore filled with BENCH_SEARCH_LINES (10,000,000) lines of the same kind, and
 * the same lines in a flat file → p50/p95 of 20 term queries (newest first, limit 100) against
 * `tac FILE | grep -F -m 100 TERM` (the newest-first equivalent), run alternately.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { waitFor } from '../src/lib/backoff.ts';
import { LogStore, type IngestLine } from '../src/logs/index.ts';
import { ROOT, docker } from '../test/helpers/harness.ts';
import { exec, log, prepare } from './common.ts';

const INGEST_LINES = Number(process.env.BENCH_LOG_LINES ?? 2_000_000);
const INGEST_MAX_MS = Number(process.env.BENCH_LOG_MAX_MS ?? 180_000);
const SEARCH_LINES = Number(process.env.BENCH_SEARCH_LINES ?? 10_000_000);
const CHILD = join(ROOT, 'test/helpers/log-collector-child.ts');
const LABEL_KEY = 'io.berth.bench.logs';

/**
 * The line generator, as plain JavaScript so the emitting container (node image) runs the same code:
 * a level, a request id, 3–10 words drawn from a 20,000-word vocabulary with a Zipf-like
 * distribution (so terms range from very common to very rare), a duration.
 */
const GEN_JS = `
export function makeGen(seed) {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const syl = ['ka','lo','mi','ne','ru','sa','ti','vo','ze','po','qu','da','fe','gi','ho','ju'];
  const words = [];
  for (let i = 0; i < 20000; i++) { let w = ''; let n = i; do { w += syl[n % 16]; n = Math.floor(n / 16); } while (n > 0); words.push(w + 'x' + i.toString(36)); }
  const lv = ['INFO', 'INFO', 'INFO', 'INFO', 'DEBUG', 'DEBUG', 'WARN', 'ERROR'];
  const word = () => words[Math.min(words.length - 1, Math.floor(Math.exp(rnd() * Math.log(words.length + 1))) - 1)];
  return {
    words,
    line(i) {
      const parts = [lv[Math.floor(rnd() * 8)], 'req=' + Math.floor(rnd() * 4294967296).toString(16), 'seq=' + i];
      const k = 3 + Math.floor(rnd() * 8);
      for (let j = 0; j < k; j++) parts.push(word());
      parts.push('took', Math.floor(rnd() * 900) + 'ms');
      return parts.join(' ');
    },
  };
}
`;

const EMIT_JS = `
import { makeGen } from './gen.mjs';
const n = Number(process.argv[2]);
const g = makeGen(7);
let i = 0;
function pump() {
  while (i < n) {
    let chunk = '';
    for (let k = 0; k < 500 && i < n; k++, i++) chunk += g.line(i) + '\\n';
    if (!process.stdout.write(chunk)) return process.stdout.once('drain', pump);
  }
}
pump();
`;

interface Gen {
  words: string[];
  line(i: number): string;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** utime + stime of a process, in seconds. */
/** The Docker daemon serving /var/run/docker.sock, as scripts/dockerd.sh records it. */
function dockerdPid(): number | undefined {
  try {
    const pid = Number(readFileSync('/run/berth-dockerd.pid', 'utf8').trim());
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'dockerd' ? pid : undefined;
  } catch {
    return undefined;
  }
}

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ", field 3 (state) is index 0: utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}
let CLK_TCK = 100;

/** Lines stored so far, read through one read-only connection (polling must not load the machine). */
function counter(dbPath: string): { count(): number; close(): void } {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  const stmt = db.prepare('SELECT coalesce(sum(lines), 0) AS n FROM parts');
  return { count: () => (stmt.get() as { n: number }).n, close: () => db.close() };
}

async function startChild(dbPath: string, label: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dbPath, label], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res, rej) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ready')) res();
    });
    child.once('exit', (code, sig) => rej(new Error(`collector exited early (${code ?? sig})`)));
  });
  return child;
}

async function ingest(dir: string): Promise<{ linesPerS: number; cpuPct: number; dockerdPct: number; emitS: number }> {
  const runId = randomBytes(4).toString('hex');
  const label = `${LABEL_KEY}=${runId}`;
  writeFileSync(join(dir, 'gen.mjs'), GEN_JS);
  writeFileSync(join(dir, 'emit.mjs'), EMIT_JS);
  const dbPath = join(dir, 'ingest.db');
  const child = await startChild(dbPath, label);
  const name = `berth-bench-logs-${runId}`;
  try {
    await docker('run', '-d', '--name', name, '--network', 'host', '--label', 'io.berth.managed=true', '--label', label,
      '--log-driver', 'json-file', '--log-opt', 'max-size=2g', '-v', `${dir}:/bench:ro`,
      'berth/node:20', 'node', '/bench/emit.mjs', String(INGEST_LINES));
    const pid = child.pid!;
    const stored = counter(dbPath);
    const storedCount = (_: string) => stored.count();
    // The window starts at the first stored line and ends at the last.
    await waitFor(() => storedCount(dbPath) > 0, { timeoutMs: 60_000, intervalMs: 5, what: 'first line stored' });
    const t0 = performance.now();
    const c0 = cpuSeconds(pid);
    const dpid = dockerdPid();
    const d0 = dpid ? cpuSeconds(dpid) : NaN;
    let last = 0;
    let lastLog = t0;
    await waitFor(() => {
      last = storedCount(dbPath);
      if (performance.now() - lastLog > 5000) {
        lastLog = performance.now();
        log(`ingest: ${last} lines stored`);
      }
      return last >= INGEST_LINES || performance.now() - t0 > INGEST_MAX_MS;
    }, { timeoutMs: INGEST_MAX_MS + 60_000, intervalMs: 50, what: 'all lines stored' });
    stored.close();
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(pid) - c0;
    const dcpu = dpid ? cpuSeconds(dpid) - d0 : NaN;
    const [started, finished] = (await docker('inspect', '-f', '{{.State.StartedAt}} {{.State.FinishedAt}}', name)).split(' ');
    const emitS = finished && !finished.startsWith('0001') ? (Date.parse(finished) - Date.parse(started!)) / 1000 : NaN;
    log(`ingest: ${last} lines in ${wall.toFixed(1)} s (container wrote them in ${emitS.toFixed(1)} s); collector CPU ${cpu.toFixed(1)} s, dockerd CPU ${dcpu.toFixed(1)} s`);
    return { linesPerS: Math.round(last / wall), cpuPct: round1((cpu / wall) * 100), dockerdPct: round1((dcpu / wall) * 100), emitS };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await docker('rm', '-f', name).catch(() => undefined);
    rmSync(dbPath, { force: true });
    rmSync(`${dbPath}-wal`, { force: true });
    rmSync(`${dbPath}-shm`, { force: true });
  }
}

async function search(dir: string, gen: Gen): Promise<Record<string, number>> {
  const dbPath = join(dir, 'search.db');
  const flat = join(dir, 'lines.txt');
  const store = new LogStore(dbPath);
  const fd = openSync(flat, 'w');
  const t0 = performance.now();
  const B = 50_000;
  const sources = Array.from({ length: 6 }, (_, k) => ({ containerId: `c${k}`, app: k < 4 ? 'shop' : 'blog', env: 'prod', service: k % 2 ? 'web' : 'worker', instance: `i${k}` }));
  // Lines 1 ms apart ending now: ~2.8 hours of logs.
  const start = BigInt(Date.now() - SEARCH_LINES) * 1_000_000n;
  for (let i = 0; i < SEARCH_LINES; i += B) {
    const bySrc = sources.map(() => [] as IngestLine[]);
    let text = '';
    for (let k = i; k < Math.min(SEARCH_LINES, i + B); k++) {
      const line = gen.line(k);
      bySrc[k % sources.length]!.push({ tsNs: start + BigInt(k) * 1_000_000n, stream: 'stdout', text: line });
      text += `${line}\n`;
    }
    store.append(sources.map((source, s) => ({ source, lines: bySrc[s]! })));
    writeSync(fd, text);
    if ((i / B) % 20 === 0) log(`fill: ${i + B} lines, ${Math.round((i + B) / ((performance.now() - t0) / 1000))} lines/s`);
  }
  closeSync(fd);
  const fillS = (performance.now() - t0) / 1000;
  const st = store.stats();
  log(`fill: ${st.lines} lines in ${fillS.toFixed(0)} s; db ${(st.bytes / 1e9).toFixed(2)} GB in ${st.partitions} partitions; flat file ${(statSync(flat).size / 1e9).toFixed(2)} GB`);

  // 20 terms from the most common to the rarest word, plus a level word and one line's own seq.
  const ranks = [0, 1, 3, 7, 15, 30, 60, 120, 250, 500, 1000, 2000, 4000, 7000, 10000, 14000, 18000, 19990];
  const terms = [...ranks.map((r) => gen.words[r]!), 'ERROR', `seq=${Math.floor(SEARCH_LINES / 3)}`];
  // Warm both sides once (page cache), as a person's second search would be.
  store.search({ text: terms[0]!, limit: 100 });
  await exec('bash', ['-c', `cat ${flat} > /dev/null`], { maxBuffer: 1024 });
  const sMs: number[] = [];
  const gMs: number[] = [];
  const cMs: number[] = [];
  for (const term of terms) {
    const a = performance.now();
    const page = store.search({ text: term, limit: 100 });
    const s = performance.now() - a;
    const b = performance.now();
    const { stdout } = await exec('bash', ['-c', 'tac "$1" | grep -F -m 100 -- "$2" | wc -l', 'bash', flat, term], { maxBuffer: 1 << 20 });
    const g = performance.now() - b;
    const c0 = performance.now();
    const { stdout: cnt } = await exec('bash', ['-c', 'grep -F -c -- "$2" "$1" || true', 'bash', flat, term], { maxBuffer: 1 << 20 });
    const c = performance.now() - c0;
    sMs.push(s);
    gMs.push(g);
    cMs.push(c);
    log(`search ${term.padEnd(16)} ${String(page.lines.length).padStart(3)} hits ${s.toFixed(1).padStart(7)} ms | tac|grep -m100 ${stdout.trim().padStart(3)} hits ${g.toFixed(0).padStart(6)} ms | grep -c ${cnt.trim().padStart(8)} ${c.toFixed(0).padStart(6)} ms`);
  }
  store.close();
  return {
    search_p50_ms: round1(percentile(sMs, 50)),
    search_p95_ms: round1(percentile(sMs, 95)),
    grep_p50_ms: round1(percentile(gMs, 50)),
    grep_p95_ms: round1(percentile(gMs, 95)),
    grep_count_p50_ms: round1(percentile(cMs, 50)),
    grep_count_p95_ms: round1(percentile(cMs, 95)),
    lines_stored: st.lines,
    fill_s: Math.round(fillS),
    db_bytes: st.bytes,
    flat_file_bytes: statSync(flat).size,
  };
}

export async function run(): Promise<Record<string, number>> {
  await prepare();
  CLK_TCK = Number((await exec('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  const { stdout: df } = await exec('df', ['-B1', '--output=avail', tmpdir()]);
  const avail = Number(df.trim().split('\n').pop());
  const need = SEARCH_LINES * 250 + INGEST_LINES * 600;
  if (avail < need) throw new Error(`not enough space in ${tmpdir()}: ${avail} bytes free, about ${need} needed`);
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-logs-'));
  try {
    writeFileSync(join(dir, 'gen.mjs'), GEN_JS);
    const gen = ((await import(pathToFileURL(join(dir, 'gen.mjs')).href)) as { makeGen(seed: number): Gen }).makeGen(7);
    const ing = await ingest(dir);
    const s = await search(dir, gen);
    return {
      ingest_lines_per_s: ing.linesPerS,
      server_cpu_pct: ing.cpuPct,
      dockerd_cpu_pct: ing.dockerdPct,
      ingest_lines: INGEST_LINES,
      container_emit_s: round1(ing.emitS),
      ...s,
      search_vs_grep_p95: round1(s.grep_p95_ms! / s.search_p95_ms!),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
