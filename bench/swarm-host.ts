/**
 * A throwaway single-node Docker Swarm for benchmarks, on a Docker Engine of its own: a network
 * namespace joined to the machine by a veth pair on a private /30 that this module assigns itself,
 * and a second `dockerd` started inside it with `nsenter --net=...` (not `ip netns exec`, which
 * remounts /sys and hides the cgroup hierarchy, so dockerd refuses to start; ARCHITECTURE.md §4).
 * The machine's own Docker Engine (/var/run/docker.sock) is never touched, except to `docker save`
 * an image from it.
 *
 * Traffic rule: the namespace has no default route, so nothing in it can reach any other address
 * (and dockerd runs with DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 and services are created with
 * --no-resolve-image, so it does not even try a registry). The host talks to it only at NS_ADDR.
 *
 * Everything is named after fixed, benchmark-only names, so `down()` is idempotent and also cleans up
 * after a run that was killed hard: `node --import tsx bench/swarm-host.ts down`.
 */
import { spawn, execFile } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { loadImageInto } from './common.ts';

const execP = promisify(execFile);

export const NETNS = 'berthbench-rel';
const VETH_HOST = 'bbrel0';
const VETH_NS = 'bbrel1';
/** Host side and namespace side of the private /30 this module creates. */
export const HOST_ADDR = '10.231.77.1';
export const NS_ADDR = '10.231.77.2';
const DATA_ROOT = '/var/lib/berth-bench-docker';
const EXEC_ROOT = '/run/berth-bench-docker';
const SOCK = '/run/berth-bench-docker.sock';
const PIDFILE = '/run/berth-bench-docker.pid';

type Log = (msg: string) => void;

async function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<string> {
  try {
    const { stdout } = await execP(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return stdout.trim();
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

const quiet = (p: Promise<unknown>) => p.then(() => true, () => false);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** argv of a live process, or '' (gone, or not readable). */
function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 1 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** SIGTERM one process of ours, wait, SIGKILL as a last resort. */
async function stopPid(pid: number, waitMs: number, log: Log, what: string): Promise<void> {
  if (!alive(pid)) return;
  log(`stopping ${what} (pid ${pid})`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + waitMs;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  if (alive(pid)) {
    log(`${what} (pid ${pid}) still running after ${waitMs} ms: SIGKILL`);
    process.kill(pid, 'SIGKILL');
    while (alive(pid)) await sleep(50);
  }
}

export class SwarmHost {
  private pid?: number;
  private logDir?: string;

  constructor(private readonly log: Log = (m) => process.stderr.write(`[swarm-host] ${m}\n`)) {}

  /** `docker` against this benchmark's own daemon, never the machine's. */
  docker(args: string[], timeoutMs = 120_000): Promise<string> {
    return run('docker', ['-H', `unix://${SOCK}`, ...args], timeoutMs);
  }

  /** Namespace + veth + dockerd (ready) + `docker swarm init` on the namespace address. */
  async up(): Promise<void> {
    await this.down(); // leftovers of an earlier run that was killed hard
    const inUse = await run('ip', ['-o', '-4', 'addr', 'show']);
    if (/\binet 10\.231\.77\./.test(inUse)) throw new Error(`10.231.77.0/30 is already assigned on this machine; not reusing it`);
    this.log(`network namespace ${NETNS}: veth ${VETH_HOST} ${HOST_ADDR}/30 <-> ${VETH_NS} ${NS_ADDR}/30`);
    await run('ip', ['netns', 'add', NETNS]);
    await run('ip', ['link', 'add', VETH_HOST, 'type', 'veth', 'peer', 'name', VETH_NS]);
    await run('ip', ['link', 'set', VETH_NS, 'netns', NETNS]);
    await run('ip', ['addr', 'add', `${HOST_ADDR}/30`, 'dev', VETH_HOST]);
    await run('ip', ['link', 'set', VETH_HOST, 'up']);
    await run('ip', ['-n', NETNS, 'addr', 'add', `${NS_ADDR}/30`, 'dev', VETH_NS]);
    await run('ip', ['-n', NETNS, 'link', 'set', VETH_NS, 'up']);
    await run('ip', ['-n', NETNS, 'link', 'set', 'lo', 'up']);

    this.logDir = await mkdtemp(join(tmpdir(), 'berth-bench-swarm-'));
    let started = false;
    for (const driver of ['overlay2', 'vfs']) {
      if (await this.startDaemon(driver)) {
        started = true;
        break;
      }
    }
    if (!started) throw new Error(`the benchmark's dockerd did not start; its log:\n${await this.logTail()}`);
    await this.docker(['swarm', 'init', '--advertise-addr', NS_ADDR, '--listen-addr', `${NS_ADDR}:2377`]);
    this.log(`single-node swarm initialised on ${NS_ADDR}`);
  }

  private async startDaemon(driver: string): Promise<boolean> {
    await mkdir(DATA_ROOT, { recursive: true });
    await mkdir(EXEC_ROOT, { recursive: true });
    const logFile = join(this.logDir!, 'dockerd.log');
    const fd = openSync(logFile, 'a');
    const args = [`--net=/var/run/netns/${NETNS}`, 'dockerd',
      '--data-root', DATA_ROOT, '--exec-root', EXEC_ROOT, '-H', `unix://${SOCK}`, '--pidfile', PIDFILE,
      '--bridge=none', '--iptables=false', '--ip6tables=false', `--storage-driver=${driver}`];
    // nsenter execs dockerd, so the child's pid is dockerd's. Own process group: a Ctrl-C on the
    // terminal reaches the benchmark, which then stops this daemon in order.
    const child = spawn('nsenter', args, {
      detached: true, stdio: ['ignore', fd, fd],
      env: { ...process.env, DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: '1' },
    });
    closeSync(fd);
    child.unref();
    const pid = child.pid;
    if (!pid) return false;
    this.pid = pid;
    this.log(`dockerd (storage driver ${driver}) started in ${NETNS}, pid ${pid}, socket ${SOCK}`);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (!alive(pid) || child.exitCode !== null) {
        this.log(`dockerd exited during startup (driver ${driver}):\n${await this.logTail()}`);
        this.pid = undefined;
        await rm(PIDFILE, { force: true });
        return false;
      }
      if (await quiet(this.docker(['info', '--format', '{{.ServerVersion}}'], 5000))) return true;
      await sleep(200);
    }
    await this.stopDaemon();
    return false;
  }

  private async logTail(): Promise<string> {
    if (!this.logDir) return '';
    const text = await readFile(join(this.logDir, 'dockerd.log'), 'utf8').catch(() => '');
    return text.split('\n').slice(-20).join('\n');
  }

  /** Copies an image from the machine's Engine into this daemon (`docker save | docker load`). */
  async loadImage(image: string): Promise<void> {
    await loadImageInto([SOCK], image);
    this.log(`image ${image} loaded into the swarm's daemon`);
  }

  private async stopDaemon(): Promise<void> {
    const pid = this.pid ?? readPid(PIDFILE);
    // Only a dockerd with our own data root: never the machine's Engine.
    if (pid && alive(pid) && cmdline(pid).includes(`--data-root ${DATA_ROOT}`)) await stopPid(pid, 40_000, this.log, 'the benchmark dockerd');
    this.pid = undefined;
    // Its managed containerd normally exits with it; not after a SIGKILL.
    const cpid = readPid(join(EXEC_ROOT, 'containerd/containerd.pid'));
    if (cpid && alive(cpid) && cmdline(cpid).includes(EXEC_ROOT)) await stopPid(cpid, 10_000, this.log, 'its containerd');
  }

  /**
   * Removes services and the swarm, stops the daemon (SIGTERM by pid, wait), unmounts what it left,
   * deletes its data, the namespace and the veth pair. Safe to call at any point, and twice.
   */
  async down(): Promise<void> {
    const daemonUp = existsSync(SOCK) && await quiet(this.docker(['info', '--format', '{{.ServerVersion}}'], 5000));
    if (daemonUp) {
      const services = (await this.docker(['service', 'ls', '-q']).catch(() => '')).split('\n').filter(Boolean);
      if (services.length) {
        await quiet(this.docker(['service', 'rm', ...services]));
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline && (await this.docker(['ps', '-q']).catch(() => '')) !== '') await sleep(200);
      }
      await quiet(this.docker(['swarm', 'leave', '--force'], 30_000));
    }
    await this.stopDaemon();
    // Mounts the daemon may leave (network namespace handles, overlay layers after a hard kill).
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(EXEC_ROOT + '/') || m.startsWith(DATA_ROOT + '/')).reverse();
    for (const m of mounts) {
      if (!(await quiet(run('umount', [m])))) await quiet(run('umount', ['-l', m]));
    }
    for (const p of [EXEC_ROOT, DATA_ROOT, SOCK, PIDFILE]) await rm(p, { recursive: true, force: true });
    if ((await run('ip', ['netns', 'list'])).split('\n').some((l) => l.split(' ')[0] === NETNS)) {
      await run('ip', ['netns', 'del', NETNS]);
      this.log(`network namespace ${NETNS} deleted`);
    }
    // Deleting the namespace destroys the veth pair; make sure (the namespace may linger while held).
    if (await quiet(run('ip', ['link', 'show', VETH_HOST]))) await quiet(run('ip', ['link', 'del', VETH_HOST]));
    if (this.logDir) await rm(this.logDir, { recursive: true, force: true });
    this.logDir = undefined;
  }
}

// `node --import tsx bench/swarm-host.ts down`: clean up after a benchmark that was killed hard.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === 'down') await new SwarmHost().down();
  else {
    console.error('usage: node --import tsx bench/swarm-host.ts down');
    process.exit(2);
  }
}
