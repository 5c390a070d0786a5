/**
 * dns: Berth's DNS server (bench/dns-server-child.ts, its own process, bundled by esbuild as the
 * server is) against dnsmasq serving the
 * same names from a hosts file (A) and --srv-host (SRV), same run, same query file. dnsperf runs
 * 10 s against each, alternating, 2× each (UDP, at most 150 000 qps asked); qps are the means.
 * dnsperf 2.10 prints no percentiles, so p99 comes from a separate bounded run from this process:
 * 20 000 queries, 4 in flight, over node:dgram, against each server.
 * Needs `dnsperf` and `dnsmasq` (Debian: dnsperf, dnsmasq-base); installs nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import dnsPacket from 'dns-packet';
import type { RecordType } from 'dns-packet';
import { ROOT, freePort } from '../test/helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { exec, log } from './common.ts';

const SERVICES = 20;
const INSTANCES = 3;
const SECONDS = Number(process.env.BENCH_DNS_SECONDS ?? 10);
const MAX_QPS = 150_000;
const ROUNDS = 2;
const P99_QUERIES = 20_000;
const P99_INFLIGHT = 4;

interface Query {
  name: string;
  type: RecordType;
}

/** The names both servers serve, and the query mix: every service's A, one instance A each, SRV for every 5th service. */
function workload(): { queries: Query[]; hosts: string; srvArgs: string[] } {
  const queries: Query[] = [];
  const hosts: string[] = [];
  const srvArgs: string[] = [];
  for (let s = 0; s < SERVICES; s++) {
    const svc = `svc${s}.prod.berth`;
    hosts.push(`127.0.0.1 ${svc}`);
    for (let k = 0; k < INSTANCES; k++) {
      const target = `s${s}i${k}.${svc}`;
      hosts.push(`127.0.0.1 ${target}`);
      srvArgs.push(`--srv-host=_svc${s}._tcp.prod.berth,${target},${20000 + s * INSTANCES + k},0,10`);
    }
    queries.push({ name: svc, type: 'A' }, { name: `s${s}i${s % INSTANCES}.${svc}`, type: 'A' });
    if (s % 5 === 0) queries.push({ name: `_svc${s}._tcp.prod.berth`, type: 'SRV' });
  }
  return { queries, hosts: `${hosts.join('\n')}\n`, srvArgs };
}

function requireBinary(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  throw new Error(`${name} not found: install it (Debian: apt-get install -y dnsperf dnsmasq-base); scripts/install.sh should`);
}

/** One UDP query; resolves with the decoded answer's rcode and answer count, rejects on timeout. */
function probe(port: number, q: Query, timeoutMs = 500): Promise<{ rcode: string; answers: number }> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`no answer from 127.0.0.1:${port}`));
    }, timeoutMs);
    sock.on('message', (m) => {
      clearTimeout(timer);
      sock.close();
      const p = dnsPacket.decode(m) as unknown as { rcode: string; answers: unknown[] };
      resolve({ rcode: p.rcode, answers: p.answers.length });
    });
    sock.send(dnsPacket.encode({ type: 'query', id: 1, questions: [q] }), port, '127.0.0.1');
  });
}

/** Both servers must give a non-empty NOERROR answer to every query of the file, or the comparison is void. */
async function checkServes(what: string, port: number, queries: Query[]): Promise<void> {
  for (const q of queries) {
    const r = await probe(port, q, 2000);
    if (r.rcode !== 'NOERROR' || r.answers === 0) throw new Error(`${what} answered ${q.name} ${q.type} with ${r.rcode}, ${r.answers} answers`);
  }
}

interface PerfResult {
  qps: number;
  avgMs: number;
  lostPct: number;
}

async function dnsperf(port: number, file: string): Promise<PerfResult> {
  const { stdout } = await exec('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', file, '-l', String(SECONDS), '-Q', String(MAX_QPS)],
    { timeout: (SECONDS + 30) * 1000 });
  const num = (re: RegExp) => {
    const m = re.exec(stdout);
    if (!m) throw new Error(`unexpected dnsperf output:\n${stdout}`);
    return Number(m[1]);
  };
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    lostPct: num(/Queries lost:\s+\d+ \(([\d.]+)%\)/),
  };
}

/** Latency percentiles of P99_QUERIES queries with P99_INFLIGHT in flight (bounded: 1 s timeout each, 60 s overall). */
export function latency(port: number, queries: Query[]): Promise<{ p50: number; p99: number; lost: number }> {
  const packets = queries.map((q) => dnsPacket.encode({ type: 'query', id: 0, flags: dnsPacket.RECURSION_DESIRED, questions: [q] }));
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    const inflight = new Map<number, bigint>();
    const samples: number[] = [];
    let sent = 0;
    let lost = 0;
    let nextId = 0;
    const deadline = Date.now() + 60_000;
    const finish = (err?: Error) => {
      clearInterval(sweeper);
      sock.close();
      if (err) return reject(err);
      samples.sort((a, b) => a - b);
      const pct = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))] ?? NaN;
      resolve({ p50: pct(0.5), p99: pct(0.99), lost });
    };
    const sendNext = () => {
      if (sent >= P99_QUERIES) {
        if (inflight.size === 0) finish();
        return;
      }
      const pkt = Buffer.from(packets[sent % packets.length]!);
      const id = (nextId = (nextId + 1) & 0xffff);
      pkt.writeUInt16BE(id, 0);
      sent++;
      inflight.set(id, process.hrtime.bigint());
      sock.send(pkt, port, '127.0.0.1');
    };
    const sweeper = setInterval(() => {
      const now = process.hrtime.bigint();
      for (const [id, t0] of inflight) {
        if (now - t0 > 1_000_000_000n) {
          inflight.delete(id);
          lost++;
          sendNext();
        }
      }
      if (Date.now() > deadline) finish(new Error(`latency run against port ${port} exceeded 60 s`));
    }, 100);
    sock.on('message', (m) => {
      const t0 = inflight.get(m.readUInt16BE(0));
      if (t0 === undefined) return;
      inflight.delete(m.readUInt16BE(0));
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
      sendNext();
    });
    sock.on('error', (e) => finish(e));
    sock.bind(0, '127.0.0.1', () => {
      for (let k = 0; k < P99_INFLIGHT; k++) sendNext();
    });
  });
}

async function stop(child: ChildProcess | undefined, what: string): Promise<void> {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  process.kill(child.pid, 'SIGTERM');
  const t = setTimeout(() => child.pid && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
  log(`${what} (pid ${child.pid}) stopped`);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

export async function run(): Promise<Record<string, number>> {
  requireBinary('dnsperf');
  const dnsmasqBin = requireBinary('dnsmasq');
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-dns-'));
  let berth: ChildProcess | undefined;
  let dnsmasq: ChildProcess | undefined;
  try {
    const { queries, hosts, srvArgs } = workload();
    const queryFile = join(dir, 'queries.txt');
    await writeFile(queryFile, queries.map((q) => `${q.name} ${q.type}`).join('\n') + '\n');
    await writeFile(join(dir, 'hosts'), hosts);
    log(`${SERVICES} services × ${INSTANCES} instances; query file: ${queries.length} names (${queries.filter((q) => q.type === 'SRV').length} SRV)`);

    // Bundled like bin/berth bundles the server (dns-packet included, CJS so its require() calls work).
    const bundle = join(dir, 'dns-server-child.cjs');
    await exec(join(ROOT, 'node_modules/.bin/esbuild'), [join(ROOT, 'bench/dns-server-child.ts'), '--bundle', '--platform=node', '--format=cjs',
      '--target=node20', `--outfile=${bundle}`, '--log-level=warning'], { timeout: 60_000 });
    berth = spawn(process.execPath, [bundle], {
      cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, DNS_BENCH_SERVICES: String(SERVICES), DNS_BENCH_INSTANCES: String(INSTANCES) },
    });
    const berthPort = await new Promise<number>((resolve, reject) => {
      const rl = createInterface({ input: berth!.stdout! });
      rl.once('line', (l) => resolve((JSON.parse(l) as { port: number }).port));
      berth!.once('exit', (code) => reject(new Error(`berth dns child exited (${code}) before listening`)));
    });
    log(`berth dns: pid ${berth.pid}, port ${berthPort}`);

    const dnsmasqPort = await freePort();
    dnsmasq = spawn(dnsmasqBin, ['--no-daemon', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--addn-hosts=${join(dir, 'hosts')}`,
      `--port=${dnsmasqPort}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--user=root', '--pid-file=', '--local-ttl=5', ...srvArgs],
    { stdio: ['ignore', 'ignore', 'inherit'] });
    log(`dnsmasq: pid ${dnsmasq.pid}, port ${dnsmasqPort}`);
    await waitFor(async () => (await probe(dnsmasqPort, queries[0]!)).answers > 0, { timeoutMs: 10_000, what: 'dnsmasq answering' });
    await checkServes('berth', berthPort, queries);
    await checkServes('dnsmasq', dnsmasqPort, queries);

    const results: { berth: PerfResult[]; dnsmasq: PerfResult[] } = { berth: [], dnsmasq: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, port] of [['berth', berthPort], ['dnsmasq', dnsmasqPort]] as const) {
        const res = await dnsperf(port, queryFile);
        results[name].push(res);
        log(`round ${r + 1} ${name}: ${round(res.qps, 0)} qps, avg ${round(res.avgMs, 2)} ms, lost ${res.lostPct}%`);
      }
    }
    const berthLat = await latency(berthPort, queries);
    log(`berth latency: p50 ${round(berthLat.p50, 3)} ms, p99 ${round(berthLat.p99, 3)} ms, lost ${berthLat.lost}`);
    const dnsmasqLat = await latency(dnsmasqPort, queries);
    log(`dnsmasq latency: p50 ${round(dnsmasqLat.p50, 3)} ms, p99 ${round(dnsmasqLat.p99, 3)} ms, lost ${dnsmasqLat.lost}`);

    const berthQps = mean(results.berth.map((x) => x.qps));
    const dnsmasqQps = mean(results.dnsmasq.map((x) => x.qps));
    return {
      berth_qps: round(berthQps, 0),
      dnsmasq_qps: round(dnsmasqQps, 0),
      ratio: round(berthQps / dnsmasqQps, 3),
      berth_p99_ms: round(berthLat.p99, 3),
      dnsmasq_p99_ms: round(dnsmasqLat.p99, 3),
      berth_lost_pct: round(mean(results.berth.map((x) => x.lostPct)), 2),
      dnsmasq_lost_pct: round(mean(results.dnsmasq.map((x) => x.lostPct)), 2),
    };
  } finally {
    await stop(berth, 'berth dns');
    await stop(dnsmasq, 'dnsmasq');
    await rm(dir, { recursive: true, force: true });
  }
}
