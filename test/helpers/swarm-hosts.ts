/**
 * Test hosts for many-host tests (scripts/testhosts.sh): N network namespaces with a dockerd each, on
 * one bridge, joined into a Swarm (th1 its manager). `down()` deletes everything (printing the hosts'
 * dockerd logs in short first when a test of the file failed); it also runs when the test process
 * exits, and `startTestHosts` first removes what a killed run left.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './harness.ts';

const exec = promisify(execFile);
const SCRIPT = join(ROOT, 'scripts/testhosts.sh');

export interface TestHost {
  /** th1, th2, …: also the Swarm node's hostname. */
  name: string;
  /** The host's address on the test bridge (reachable from the root namespace). */
  address: string;
  /** Its dockerd's API socket. */
  socket: string;
  /** `tcp://ADDRESS:2376` when its dockerd was started with TLS material (startTestHosts' engineTls). */
  engine?: string;
}

/** PEM material of one host's engine: its server certificate and key, and the CA its clients must be issued by. */
export interface HostTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

export interface TestHosts {
  hosts: TestHost[];
  /** The manager's socket (th1's): what the control plane talks to. */
  manager: string;
  /** Host i (1-based) dies: link cut, every process of it killed. */
  kill(i: number): Promise<void>;
  /** Host i returns: link up, its dockerd restarted on its old data. */
  revive(i: number): Promise<void>;
  /** `docker -H <host i>` … (stdout). */
  docker(i: number, ...args: string[]): Promise<string>;
  down(): Promise<void>;
  /** Seconds `up` took. */
  setupS: number;
}

async function run(env: Record<string, string>, ...args: string[]): Promise<string> {
  try {
    return (await exec('bash', [SCRIPT, ...args], { maxBuffer: 16 * 1024 * 1024, timeout: 180_000, env: { ...process.env, ...env } })).stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`scripts/testhosts.sh ${args.join(' ')} failed: ${err.stderr?.trim().split('\n').slice(-8).join('\n') ?? err.message}`);
  }
}

const parseHosts = (out: string): TestHost[] => out
  .trim()
  .split('\n')
  .map((l) => l.split(' '))
  .map(([name, address, socket]) => ({ name: name!, address: address!, socket: socket! }))
  .sort((a, b) => (a.name < b.name ? -1 : 1));

/** The hosts `startTestHosts(n)` will make (names, addresses, sockets), before they exist. */
export async function planTestHosts(n: number): Promise<TestHost[]> {
  return parseHosts(await run({}, 'plan', String(n)));
}

/**
 * `engineTls`: each host's dockerd also listens on tcp://ADDRESS:2376 with --tlsverify and the material
 * this returns for it (called before the hosts start, with the names and addresses they will have).
 * `engines: false`: the hosts are network namespaces on the bridge and nothing else (no dockerd, no
 * Swarm; `socket`, `manager` and `docker()` unusable), for tests that run their own processes there.
 * `heartbeatS`: the Swarm's heartbeat period (default Swarm's 5 s): a dead host is marked down after
 * about three periods, so a test that waits for that sets 2 (~6 s instead of ~15 s).
 */
export async function startTestHosts(n = 3, o: { engineTls?: (h: { name: string; address: string }) => Promise<HostTls>; engines?: boolean; heartbeatS?: number } = {}): Promise<TestHosts> {
  const t0 = Date.now();
  let exitHook: (() => void) | undefined;
  const env: Record<string, string> = o.engines === false ? { BERTH_TESTHOSTS_ENGINES: '0' } : {};
  if (o.heartbeatS !== undefined) env.BERTH_TESTHOSTS_HEARTBEAT = `${o.heartbeatS}s`;
  let tlsDir: string | undefined;
  if (o.engineTls) {
    tlsDir = await mkdtemp(join(tmpdir(), 'berth-testhosts-tls-'));
    env.BERTH_TESTHOSTS_TLS_DIR = tlsDir;
    for (const h of parseHosts(await run(env, 'plan', String(n)))) {
      const m = await o.engineTls(h);
      await mkdir(join(tlsDir, h.name), { mode: 0o700 });
      await writeFile(join(tlsDir, h.name, 'ca.pem'), m.caPem);
      await writeFile(join(tlsDir, h.name, 'cert.pem'), m.certPem);
      await writeFile(join(tlsDir, h.name, 'key.pem'), m.keyPem, { mode: 0o600 });
    }
  }
  const down = async (): Promise<void> => {
    if (exitHook) process.off('exit', exitHook);
    exitHook = undefined;
    // A test of this file failed (node:test has set the exit code): the hosts' dockerd logs, in short,
    // before `down` deletes them — an engine's own error (a reset connection, a panic) shows there.
    if (process.exitCode && o.engines !== false) process.stderr.write(await run(env, 'logs').catch((e: Error) => `${e.message}\n`));
    await run(env, 'down');
    if (tlsDir) await rm(tlsDir, { recursive: true, force: true });
  };
  // Whatever happens to the test (a failed assertion, an uncaught error), the hosts go with it.
  exitHook = (): void => void execFileSync('bash', [SCRIPT, 'down'], { stdio: 'ignore' });
  process.on('exit', exitHook);
  let out: string;
  try {
    out = await run(env, 'up', String(n));
  } catch (e) {
    await down().catch(() => {});
    throw e;
  }
  const hosts = parseHosts(out).map((h) => (tlsDir ? { ...h, engine: `tcp://${h.address}:2376` } : h));
  if (hosts.length !== n) throw new Error(`testhosts: expected ${n} hosts, got ${out}`);
  return {
    hosts,
    manager: hosts[0]!.socket,
    setupS: (Date.now() - t0) / 1000,
    kill: async (i) => void (await run(env, 'kill', String(i))),
    revive: async (i) => void (await run(env, 'revive', String(i))),
    docker: async (i, ...args) => (await exec('docker', ['-H', `unix://${hosts[i - 1]!.socket}`, ...args], { maxBuffer: 16 * 1024 * 1024 })).stdout,
    down,
  };
}
