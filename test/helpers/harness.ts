/**
 * End-to-end harness: a real `berth server` (the CLI, as a child process) with its own data dir,
 * API/ingress/admin ports and instance port range, on the real Docker Engine and a real nginx.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from '../../src/lib/backoff.ts';
import { stopNginx } from '../../src/ingress/index.ts';
import { stopLocalRegistry } from '../../src/images/registry-process.ts';
import { stopClusterRegistry } from '../../src/images/cluster-registry.ts';
import { SecretBox, loadSecretKey } from '../../src/config/secret-box.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
const BERTH = join(ROOT, 'bin/berth');
const exec = promisify(execFile);

/**
 * Ports this process has handed out: never twice, so five picks in a row are five ports even
 * before any of them is bound.
 */
const handedOut = new Set<number>();

/** Whether `port` on 127.0.0.1 can be bound now, over TCP and over UDP (a DNS listener takes both). */
async function bindable(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
  if (!tcp) return false;
  return new Promise<boolean>((res) => {
    const u = createSocket('udp4');
    u.once('error', () => { u.close(); res(false); });
    u.bind(port, '127.0.0.1', () => u.close(() => res(true)));
  });
}

/**
 * A port for a server a test starts (Berth's API, nginx, DNS, registry, a webhook receiver), taken
 * from a block below every test's instance range and outside the kernel's ephemeral range. A port
 * from the ephemeral range (what `listen(0)` gives) is free only until the server binds it: in
 * between, any client connection of the other test lane may take it as its source port, and the
 * server then fails to start with EADDRINUSE (the alerts and crash-loop files did, CI 2026-12-01).
 * Each test-host slot (BERTH_TESTHOSTS_SLOT, 0-9: the lanes and parallel worktrees) has its own
 * block of 500 (5000-9999), so processes running side by side never pick the same port.
 */
/**
 * Ports the Fetch standard blocks (undici's `fetch` fails with "bad port" before connecting) that lie
 * in the test servers' block: an API on 6666 started fine and `fetch` never reached it (bench
 * propagation, slot 3, 2026-12-01).
 */
const FETCH_BAD_PORTS = new Set([5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697]);

export async function freePort(): Promise<number> {
  const slot = Number(process.env.BERTH_TESTHOSTS_SLOT ?? 0);
  const base = 5000 + (Number.isInteger(slot) && slot >= 0 && slot <= 9 ? slot : 0) * 500;
  const start = Math.floor(Math.random() * 500);
  for (let round = 0; round < 2; round++) {
    for (let k = 0; k < 500; k++) {
      const port = base + ((start + k) % 500);
      if (handedOut.has(port) || FETCH_BAD_PORTS.has(port) || !(await bindable(port))) continue;
      handedOut.add(port);
      return port;
    }
    // A long process has handed out the whole block: ports of servers it stopped are free again.
    handedOut.clear();
  }
  throw new Error(`no free port in ${base}-${base + 499} for test servers: something holds them all (ss -ltnup)`);
}

/** The kernel's ephemeral (client source) port range, `[min, max]`. */
export async function ephemeralPortRange(): Promise<[number, number]> {
  const text = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768 60999');
  const [min, max] = text.trim().split(/\s+/).map(Number);
  return [min ?? 32768, max ?? 60999];
}

/**
 * A test's instance ports must lie outside the ephemeral range: a probe of a port nothing listens on
 * yet can connect to itself when the kernel picks that same port as its source port, and a client
 * connection may hold a port the allocator is about to hand to an instance. Either makes a test flaky.
 */
export async function assertOutsideEphemeral(portRange: string): Promise<void> {
  const m = /^(\d+)-(\d+)$/.exec(portRange);
  if (!m) throw new Error(`portRange ${JSON.stringify(portRange)} is not MIN-MAX`);
  const [lo, hi] = await ephemeralPortRange();
  if (Number(m[1]) <= hi && Number(m[2]) >= lo) {
    throw new Error(`portRange ${portRange} overlaps the kernel's ephemeral range ${lo}-${hi}: pick a free block below ${lo} (see test/port-ranges.test.ts)`);
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface HttpResult {
  status: number;
  body: string;
}

/** One GET through a fresh connection (no keep-alive: every request is a real new attempt), with extra `headers` if given. */
export function get(port: number, path: string, timeoutMs = 5000, headers?: Record<string, string>): Promise<HttpResult> {
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs, ...(headers ? { headers } : {}) }, (r) => {
      const headersAt = Date.now();
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
      // The answer had begun (status and headers came at `headersAt`) when its connection broke.
      r.on('error', (err) => rej(Object.assign(err, { headersAt })));
    });
    req.on('timeout', () => req.destroy(new Error(headers?.host ? `timeout asking ${headers.host}` : 'timeout')));
    req.on('error', rej);
    req.end();
  });
}

/** GET `path` through the ingress with a Host header: the body (trimmed) when 200, else `HTTP <status>`. */
export async function viaIngress(port: number, host: string, path = '/'): Promise<string> {
  const r = await get(port, path, 5000, { host });
  return r.status === 200 ? r.body.trim() : `HTTP ${r.status}`;
}

/**
 * A bounded load loop: `total` requests at `concurrency` (`host`: the Host header), returns counts of
 * failures (non-2xx or socket errors). `partial`: the failures whose answer had begun (status and
 * headers received at `headersAt`) when the connection broke — every one is also in `failed`.
 */
export async function load(port: number, path: string, opts: { total: number; concurrency: number; maxMs: number; host?: string; stop?: () => boolean }):
  Promise<{ ok: number; failed: number; errors: string[]; bodies: Map<string, number>; partial: Array<{ headersAt: number; error: string }> }> {
  const deadline = Date.now() + opts.maxMs;
  let sent = 0;
  let ok = 0;
  let failed = 0;
  const errors: string[] = [];
  const bodies = new Map<string, number>();
  const partial: Array<{ headersAt: number; error: string }> = [];
  const worker = async () => {
    while (sent < opts.total && Date.now() < deadline && !opts.stop?.()) {
      sent++;
      try {
        const r = await get(port, path, 5000, opts.host ? { host: opts.host } : undefined);
        if (r.status >= 200 && r.status < 300) {
          ok++;
          bodies.set(r.body, (bodies.get(r.body) ?? 0) + 1);
        } else {
          failed++;
          if (errors.length < 10) errors.push(`HTTP ${r.status}: ${r.body.slice(0, 100)}`);
        }
      } catch (err) {
        failed++;
        if (errors.length < 10) errors.push(String(err));
        const headersAt = (err as { headersAt?: number }).headersAt;
        if (headersAt !== undefined) partial.push({ headersAt, error: String(err) });
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return { ok, failed, errors, bodies, partial };
}

/**
 * Runs `action` while bounded traffic (`load` at concurrency 4, at most `maxMs`) goes through the
 * ingress: first waits until 50 requests were answered, then stops the traffic when `action` ends.
 * Returns the action's result with the traffic's counts (`failures`: up to 10 reasons).
 */
export async function underLoad<T>(port: number, action: () => Promise<T>, opts: { path?: string; maxMs?: number } = {}):
  Promise<{ result: T; ok: number; failures: string[] }> {
  let done = false;
  let ok = 0;
  const failures: string[] = [];
  const deadline = Date.now() + (opts.maxMs ?? 180_000);
  const traffic = (async () => {
    while (!done && Date.now() < deadline) {
      const r = await load(port, opts.path ?? '/', { total: 200, concurrency: 4, maxMs: 5000, stop: () => done });
      ok += r.ok;
      failures.push(...r.errors.slice(0, 10 - failures.length));
      if (r.failed) failures.push(`${r.failed} failed`);
    }
  })();
  try {
    await waitFor(() => ok >= 50, { timeoutMs: 10_000, what: 'traffic flowing' });
    return { result: await action(), ok, failures };
  } finally {
    done = true;
    await traffic;
  }
}

/** The nice value of each thread of a process (field 19 of /proc/PID/task/TID/stat). */
export async function threadNices(pid: number): Promise<number[]> {
  return Promise.all((await readdir(`/proc/${pid}/task`)).map(async (tid) => {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  }));
}

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await exec('docker', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

export class Harness {
  proc?: ChildProcess;
  serverLog = '';
  private constructor(
    readonly dataDir: string,
    readonly apiPort: number,
    readonly ingressPort: number,
    readonly adminPort: number,
    readonly portRange: string,
    readonly dnsPort: number,
    /** Loopback address of the DNS listener for containers (port 53), or 'off'. */
    readonly containerDns: string,
    /** Extra environment for the server (e.g. shorter intervals in tests). */
    readonly extraEnv: Record<string, string> = {},
    /** Berth's image registry (docker-registry) port. */
    readonly registryPort = 0,
    /** The API serves TLS (BERTH_API_TLS_*): `api()` speaks HTTPS trusting only this CA (PEM). */
    readonly apiCa?: string,
  ) {}

  static async create(opts: { portRange: string; containerDns?: string; env?: Record<string, string>; apiCa?: string }): Promise<Harness> {
    await assertOutsideEphemeral(opts.portRange);
    const dataDir = await mkdtemp(join(tmpdir(), 'berth-test-'));
    // Five ports at once: the kernel may hand out a port it just released again, so each must differ.
    const ports = new Set<number>();
    while (ports.size < 5) ports.add(await freePort());
    const [api, ingress, admin, dns, registry] = [...ports] as [number, number, number, number, number];
    return new Harness(dataDir, api, ingress, admin, opts.portRange, dns, opts.containerDns ?? 'off', opts.env, registry, opts.apiCa);
  }

  get env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      BERTH_DATA_DIR: this.dataDir,
      BERTH_LISTEN: `127.0.0.1:${this.apiPort}`,
      BERTH_INGRESS_PORT: String(this.ingressPort),
      BERTH_INGRESS_ADMIN_PORT: String(this.adminPort),
      BERTH_PORT_RANGE: this.portRange,
      BERTH_DNS_LISTEN: `127.0.0.1:${this.dnsPort}`,
      BERTH_DNS_CONTAINER_ADDRESS: this.containerDns,
      BERTH_REGISTRY_PORT: String(this.registryPort),
      // The server refuses host paths outside its allowed roots: tests deploy fixtures, examples and temp dirs.
      BERTH_ALLOWED_BIND_ROOTS: [join(ROOT, 'test/fixtures'), join(ROOT, 'examples'), tmpdir()].join(':'),
      ...this.extraEnv,
      BERTH_LOG_LEVEL: process.env.BERTH_LOG_LEVEL ?? 'info',
    };
  }

  async startServer(): Promise<void> {
    const t0 = Date.now();
    await rm(join(this.dataDir, 'server.json'), { force: true });
    const proc = spawn(BERTH, ['server'], { env: this.env, stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (c: string) => {
      this.serverLog += c;
      if (this.serverLog.length > 2_000_000) this.serverLog = this.serverLog.slice(-1_000_000);
    });
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}:\n${this.serverLog.slice(-3000)}`);
      await readFile(join(this.dataDir, 'server.json'));
      return (await this.api('GET', '/v1/ping')).status === 200;
    }, { timeoutMs: 90_000, intervalMs: 200, what: 'berth server to answer' }).catch((err: Error) => {
      throw new Error(`${err.message}\nserver log:\n${this.serverLog.slice(-3000)}`);
    });
    if (process.env.BERTH_TEST_TRACE) process.stderr.write(`[trace] startServer ${Date.now() - t0} ms\n`);
  }

  /** Kills the server process (SIGKILL by default: a crash). nginx and containers keep running. */
  async killServer(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await exited;
  }

  async token(): Promise<string> {
    return (await readFile(join(this.dataDir, 'admin.token'), 'utf8')).trim();
  }

  async api(method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; json: any }> {
    const headers: Record<string, string> = {};
    const t = token === undefined ? await this.token() : token;
    if (t !== null) headers.authorization = `Bearer ${t}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.apiCa !== undefined) {
      const r = await new Promise<HttpResult>((res, rej) => {
        const req = httpsRequest({ host: '127.0.0.1', port: this.apiPort, path, method, headers, ca: this.apiCa, agent: false, timeout: 30_000 }, (x) => {
          let text = '';
          x.setEncoding('utf8');
          x.on('data', (c) => (text += c));
          x.on('end', () => res({ status: x.statusCode ?? 0, body: text }));
          x.on('error', rej);
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', rej);
        req.end(body !== undefined ? JSON.stringify(body) : undefined);
      });
      return { status: r.status, json: r.body ? JSON.parse(r.body) : undefined };
    }
    const res = await fetch(`http://127.0.0.1:${this.apiPort}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  }

  /**
   * The CLI against this server; `input`: written to its stdin, which is then closed (else stdin stays open and empty).
   * BERTH_TEST_TRACE=1 prints each run's duration (and the server's start and cleanup) to stderr: where a file's time goes.
   */
  cli(args: string[], opts: { timeoutMs?: number; env?: Record<string, string>; cwd?: string; input?: string } = {}): Promise<CliResult> {
    const t0 = Date.now();
    return new Promise((res) => {
      const p = execFile(BERTH, args, { env: { ...this.env, ...opts.env }, timeout: opts.timeoutMs ?? 300_000, maxBuffer: 16 * 1024 * 1024,
        ...(opts.cwd ? { cwd: opts.cwd } : {}) }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        if (process.env.BERTH_TEST_TRACE) process.stderr.write(`[trace] cli ${args.join(' ')} -> ${code} ${Date.now() - t0} ms\n`);
        res({ code, stdout, stderr });
      });
      if (opts.input !== undefined) p.stdin?.end(opts.input);
    });
  }

  /** Containers of this installation (its cluster label), with state and start time. */
  async containers(app?: string): Promise<{ id: string; running: boolean; startedAt: string; instance: string; port: string }[]> {
    const cluster = (await readFile(join(this.dataDir, 'cluster-id'), 'utf8')).trim();
    const filters = ['--filter', `label=io.berth.cluster=${cluster}`];
    if (app) filters.push('--filter', `label=io.berth.app=${app}`);
    // A container may vanish between `ps` and `inspect` (Berth removing it): list again then.
    let out = '';
    for (let attempt = 0; ; attempt++) {
      const ids = (await docker('ps', '-aq', '--no-trunc', ...filters)).split('\n').filter(Boolean);
      if (ids.length === 0) return [];
      try {
        out = await docker('inspect', '--format',
          '{{.Id}} {{.State.Running}} {{.State.StartedAt}} {{index .Config.Labels "io.berth.instance"}} {{index .Config.Labels "io.berth.port"}}', ...ids);
        break;
      } catch (err) {
        if (attempt >= 10 || !/No such object/.test(String(err))) throw err;
      }
    }
    return out.split('\n').filter(Boolean).map((l) => {
      const [id, running, startedAt, instance, port] = l.split(' ');
      return { id: id!, running: running === 'true', startedAt: startedAt!, instance: instance!, port: port! };
    });
  }

  /** Ids of the running containers of one service of an app in an environment (this installation's). */
  async runningIds(app: string, env: string, service: string): Promise<string[]> {
    const cluster = (await readFile(join(this.dataDir, 'cluster-id'), 'utf8')).trim();
    return (await docker('ps', '-q', '--no-trunc', '--filter', `label=io.berth.cluster=${cluster}`, '--filter', `label=io.berth.app=${app}`,
      '--filter', `label=io.berth.env=${env}`, '--filter', `label=io.berth.service=${service}`)).split('\n').filter(Boolean);
  }

  /** Every file under the data dir (databases, WAL, nginx config and logs, ...) and the server's log that hold `needle`. */
  async filesWith(needle: string): Promise<string[]> {
    const hits: string[] = [];
    for (const e of await readdir(this.dataDir, { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      const p = join(e.parentPath, e.name);
      const buf = await readFile(p).catch(() => undefined);
      if (buf?.includes(needle)) hits.push(p);
    }
    if (this.serverLog.includes(needle)) hits.push('(server log)');
    return hits;
  }

  async nginxConf(): Promise<string> {
    return readFile(join(this.dataDir, 'nginx/conf/nginx.conf'), 'utf8');
  }

  /**
   * Every backend (`ADDR:PORT`) nginx routes to now: with the Lua balancer what its shared dict holds
   * (the admin endpoint, with the token Berth derives from its secret key), else nginx.conf's
   * upstream `server` lines.
   */
  async nginxBackends(): Promise<string[]> {
    const token = SecretBox.fromLoaded(loadSecretKey({ dataDir: this.dataDir })).mac('ingress admin token');
    const r = await get(this.adminPort, '/berth/backends', 5_000, { 'x-berth-token': token });
    if (r.status === 200) {
      return r.body.split('\n').flatMap((l) => l.split(' ').slice(1).join(' ').split(',')).filter((e) => e.includes(' ')).map((e) => e.replace(' ', ':'));
    }
    if (r.status !== 404) throw new Error(`nginx admin endpoint answered ${r.status}: ${r.body}`);
    return [...(await this.nginxConf()).matchAll(/^ {8}server \[?([0-9a-fA-F:.]+?)\]?:(\d+) max_fails/gm)].map((m) => `${m[1]}:${m[2]}`);
  }

  async status(app: string): Promise<any> {
    const r = await this.api('GET', `/v1/apps/${app}`);
    return r.json;
  }

  /**
   * How late the server's event loop ran over the last 30-60 s (its /metrics): printed at cleanup, so a
   * timing failure in CI can be told apart from a server that was held up.
   */
  async loopDelay(): Promise<{ p99Ms: number; maxMs: number } | undefined> {
    if (this.apiCa !== undefined || !this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return undefined;
    const res = await fetch(`http://127.0.0.1:${this.apiPort}/metrics`, { headers: { authorization: `Bearer ${await this.token()}` }, signal: AbortSignal.timeout(3000) });
    const text = await res.text();
    const q = (quantile: string) => Number(new RegExp(`^berth_event_loop_delay_seconds\\{quantile="${quantile}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000;
    const d = { p99Ms: Math.round(q('0.99')), maxMs: Math.round(q('1')) };
    return Number.isFinite(d.maxMs) ? d : undefined;
  }

  /** Removes everything this installation made: containers, nginx, the server, the data dir. */
  async cleanup(): Promise<void> {
    const t0 = Date.now();
    const loop = await this.loopDelay().catch(() => undefined);
    if (loop) process.stderr.write(`[harness] the server's event loop over its last 30-60 s: p99 ${loop.p99Ms} ms, max ${loop.maxMs} ms late\n`);
    await this.killServer('SIGKILL');
    try {
      const cluster = (await readFile(join(this.dataDir, 'cluster-id'), 'utf8')).trim();
      const ids = (await docker('ps', '-aq', '--filter', `label=io.berth.cluster=${cluster}`)).split('\n').filter(Boolean);
      if (ids.length) await docker('rm', '-f', ...ids);
      // App networks (after their containers).
      const nets = (await docker('network', 'ls', '-q', '--filter', `label=io.berth.cluster=${cluster}`)).split('\n').filter(Boolean);
      if (nets.length) await docker('network', 'rm', ...nets).catch(() => undefined);
      if (cluster) {
        // The server mounts a tmpfs for secret files there; it outlives the server (like its containers).
        await exec('umount', ['-l', join('/run/berth', cluster, 'secrets')]).catch(() => undefined);
        // ... and one for the certificate keys nginx reads.
        await exec('umount', ['-l', join('/run/berth', cluster, 'tls')]).catch(() => undefined);
        // ... and one for the cluster registry's key (BERTH_CLUSTER_ADDRESS).
        await exec('umount', ['-l', join('/run/berth', cluster, 'registry-tls')]).catch(() => undefined);
        await rm(join('/run/berth', cluster), { recursive: true, force: true });
      }
    } catch {
      // no cluster id: the server never started
    }
    await stopNginx(join(this.dataDir, 'nginx')).catch(() => undefined);
    await stopLocalRegistry(this.dataDir).catch(() => undefined);
    await stopClusterRegistry(this.dataDir).catch(() => undefined);
    await rm(this.dataDir, { recursive: true, force: true });
    if (process.env.BERTH_TEST_TRACE) process.stderr.write(`[trace] cleanup ${Date.now() - t0} ms\n`);
  }
}

export interface HeyResult {
  total: number;
  ok: number;
  failed: number;
  statuses: Record<string, number>;
  errors: string[];
  raw: string;
}

/**
 * A bounded load run with `hey` (Debian's package): `seconds` long at `concurrency` workers, each
 * limited to `qps`; `host`: the Host header (a route through the ingress). Keep-alive on, as real
 * clients do. Failed = non-2xx responses + socket errors.
 *
 * `.finish()`: the change the load is there for is done. The run goes on for a tail (`tailMs`, 2 s)
 * and at least `minSeconds` (8) in all, then stops early (SIGINT: hey lets each worker finish its
 * request and prints its report as at the end of -z) instead of idling under load until `seconds`,
 * which stays the upper bound. The window still spans the whole change plus a tail; 8 s at 4 workers
 * is ~2,000 requests with the other test lane beside it.
 */
export type HeyRun = Promise<HeyResult> & { finish(o?: { tailMs?: number; minSeconds?: number }): Promise<HeyResult> };
export function hey(port: number, path: string, o: { seconds: number; concurrency: number; qps: number; host?: string }): HeyRun {
  const t0 = Date.now();
  let child: ChildProcess | undefined;
  let exited = false;
  const run = new Promise<HeyResult>((res, rej) => {
    child = execFile('hey', ['-z', `${o.seconds}s`, '-c', String(o.concurrency), '-q', String(o.qps), '-t', '10', ...(o.host ? ['-host', o.host] : []), `http://127.0.0.1:${port}${path}`],
      { timeout: (o.seconds + 30) * 1000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => {
        if (err && !stdout) return rej(err);
        const statuses: Record<string, number> = {};
        for (const m of stdout.matchAll(/\[(\d{3})\]\s+(\d+) responses/g)) statuses[m[1]!] = Number(m[2]);
        const errors: string[] = [];
        let socketErrors = 0;
        const errBlock = stdout.split('Error distribution:')[1];
        if (errBlock) {
          for (const m of errBlock.matchAll(/\[(\d+)\]\s+(.+)/g)) {
            socketErrors += Number(m[1]);
            errors.push(`${m[1]}× ${m[2]!.trim()}`);
          }
        }
        const ok = Object.entries(statuses).filter(([c]) => c.startsWith('2')).reduce((a, [, n]) => a + n, 0);
        const non2xx = Object.entries(statuses).filter(([c]) => !c.startsWith('2')).reduce((a, [, n]) => a + n, 0);
        res({ total: ok + non2xx + socketErrors, ok, failed: non2xx + socketErrors, statuses, errors, raw: stdout });
      });
    child.once('exit', () => { exited = true; });
  });
  return Object.assign(run, {
    finish(f: { tailMs?: number; minSeconds?: number } = {}): Promise<HeyResult> {
      const wait = Math.max(f.tailMs ?? 2000, (f.minSeconds ?? 8) * 1000 - (Date.now() - t0));
      setTimeout(() => { if (!exited) child?.kill('SIGINT'); }, wait).unref();
      return run;
    },
  });
}
