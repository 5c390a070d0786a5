import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { InvalidInput } from '../core/errors.ts';
import { parseEdgeToken } from '../core/edge.ts';
import type { Logger } from '../core/ports.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { runCommand } from '../lib/exec.ts';
import { raiseProcessNice } from '../lib/priority.ts';
import { niceness } from './config.ts';
import { EdgeAgent, NginxIngress, httpEdgeFetch } from '../ingress/index.ts';

/** `berth edge` flags, parsed once here (like the server's config). */
export interface EdgeFlags {
  control?: string;
  token?: string;
  tokenFile?: string;
  dataDir?: string;
  port?: string;
  httpsPort?: string;
  tlsDir?: string;
  adminPort?: string;
  listen?: string;
  waitSeconds?: string;
}

export interface EdgeConfigParsed {
  control: string;
  token: string;
  host: string;
  dataDir: string;
  port: number;
  httpsPort: number;
  /** Where certificate keys go: a tmpfs the agent mounts (never the disk). */
  tlsDir: string;
  adminPort: number;
  listenAddress: string;
  waitSeconds: number;
  nginxBin: string;
  /** BERTH_NICE (default -5): the agent and the nginx it starts run ahead of the host's other work, as the server does. */
  nice: number;
}

function port(name: string, v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new InvalidInput(`${name} "${v}" is not a port (1-65535)`);
  return n;
}

export async function loadEdgeConfig(f: EdgeFlags, env: NodeJS.ProcessEnv): Promise<EdgeConfigParsed> {
  const control = f.control ?? env.BERTH_EDGE_CONTROL;
  if (!control) throw new InvalidInput('--control is missing: the control plane\'s URL as this host reaches it, e.g. --control https://10.0.0.5:7070');
  let url: URL | undefined;
  try {
    url = new URL(control);
  } catch {
    url = undefined;
  }
  if (!url || !/^https?:$/.test(url.protocol) || url.search || url.username) throw new InvalidInput(`--control "${control}" is not the control plane's URL: write it like https://10.0.0.5:7070`);
  let token = f.token ?? env.BERTH_EDGE_TOKEN;
  if (token === undefined && f.tokenFile) {
    token = (await readFile(f.tokenFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new InvalidInput(`--token-file ${f.tokenFile}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
    })).trim();
  }
  if (!token) throw new InvalidInput('--token or --token-file is missing: `berth host add --pool edge --name HOST` on the control host prints this host\'s token');
  const parsed = parseEdgeToken(token);
  if (!parsed) throw new InvalidInput('the edge token is not one Berth made (berth-edge.HOST.SECRET): copy it whole from `berth host add --pool edge --name HOST`');
  const listenAddress = f.listen ?? '0.0.0.0';
  if (!/^[0-9A-Fa-f.:]+$/.test(listenAddress)) throw new InvalidInput(`--listen "${listenAddress}" is not an IP address`);
  const ports = [['--port', f.port ?? '80'], ['--https-port', f.httpsPort ?? '443'], ['--admin-port', f.adminPort ?? '7071']];
  for (const [i, [name, v]] of ports.entries()) {
    const other = ports.slice(i + 1).find(([, w]) => w === v);
    if (other) throw new InvalidInput(`${name} and ${other[0]} are both ${v}: each needs a port of its own`);
  }
  const wait = Number(f.waitSeconds ?? '25');
  if (!Number.isInteger(wait) || wait < 0 || wait > 60) throw new InvalidInput(`--wait-seconds "${f.waitSeconds}" must be a whole number of seconds 0-60`);
  return {
    control: url.href.replace(/\/+$/, ''), token, host: parsed.host,
    dataDir: resolve(f.dataDir ?? env.BERTH_EDGE_DATA_DIR ?? '/var/lib/berth-edge'),
    port: port('--port', f.port ?? '80'), httpsPort: port('--https-port', f.httpsPort ?? '443'), adminPort: port('--admin-port', f.adminPort ?? '7071'),
    tlsDir: resolve(f.tlsDir ?? env.BERTH_EDGE_TLS_DIR ?? '/run/berth-edge/tls'), listenAddress, waitSeconds: wait,
    nginxBin: env.BERTH_NGINX ?? 'nginx',
    nice: niceness(env.BERTH_NICE ?? '-5'),
  };
}

/**
 * `berth edge`: this host's nginx (own prefix DATA/nginx, started or adopted) fed by the control
 * plane's edge table through the edge agent. Stopping the agent leaves nginx serving.
 */
export async function startEdgeAgent(cfg: EdgeConfigParsed, logger: Logger): Promise<{ agent: EdgeAgent; ingress: NginxIngress; stop(): Promise<void> }> {
  process.umask(0o077);
  raiseProcessNice(cfg.nice, logger, 'agent');
  // The admin token of this nginx's Lua endpoint: kept so that a restarted agent updates the adopted nginx without a reload.
  const tokenFile = join(cfg.dataDir, 'ingress-admin.token');
  let adminToken = (await readFile(tokenFile, 'utf8').catch(() => '')).trim();
  if (!adminToken) {
    adminToken = randomBytes(32).toString('hex');
    await writeFileAtomic(tokenFile, adminToken + '\n', { mode: 0o600 });
  }
  // Certificate keys only ever over TLS, and only to a tmpfs: else routes with certificates stay HTTP here.
  let certsRefused: string | undefined;
  if (!cfg.control.startsWith('https:')) {
    certsRefused = `--control ${cfg.control} is plain HTTP, over which the control plane sends no certificate keys; use --control https://… (the API with BERTH_API_TLS_CERT/KEY)`;
  } else {
    certsRefused = await mountTmpfs(cfg.tlsDir);
  }
  const ingress = new NginxIngress({
    prefix: join(cfg.dataDir, 'nginx'), listenPort: cfg.port, listenAddress: cfg.listenAddress, adminPort: cfg.adminPort,
    httpsPort: cfg.httpsPort, acmeChallengeDir: join(cfg.dataDir, 'nginx', 'acme'),
    nginxBin: cfg.nginxBin, adminToken, logger,
    onRoutesRefused: (problems) => {
      for (const p of problems) logger.warn({ upstream: p.upstream, host: p.host, path: p.path }, `route not served here: ${p.message}`);
    },
  });
  const agent = new EdgeAgent({
    ingress, fetchConfig: httpEdgeFetch(cfg.control, cfg.token), stateDir: cfg.dataDir, logger, waitSeconds: cfg.waitSeconds,
    ...(certsRefused ? { certsRefused } : { certDir: cfg.tlsDir }), challengeDir: join(cfg.dataDir, 'nginx', 'acme'),
  });
  await agent.start();
  logger.info({ host: cfg.host, control: cfg.control, port: cfg.port, httpsPort: cfg.httpsPort, tlsDir: certsRefused ? undefined : cfg.tlsDir, nginx: ingress.masterPid }, 'edge agent running');
  return {
    agent, ingress,
    async stop() {
      await agent.stop();
      await ingress.close();
    },
  };
}

/**
 * A tmpfs at `dir` (0700) for certificate keys, unless one is there: what is written there is in
 * memory only. Returns why there is none (not root, no mount permission): keys are then refused.
 */
export async function mountTmpfs(dir: string): Promise<string | undefined> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  if (await isTmpfs(dir)) return undefined;
  try {
    await runCommand('mount', ['-t', 'tmpfs', '-o', 'mode=0700,size=16m,nosuid,nodev,noexec', 'berth-edge-tls', dir], { timeoutMs: 10_000 });
  } catch (err) {
    return `cannot mount a tmpfs at ${dir} for certificate keys (${(err as Error).message.slice(0, 200)}): run berth edge as root`;
  }
  return (await isTmpfs(dir)) ? undefined : `${dir} is no tmpfs after mounting one there`;
}

/** Whether `dir` is a tmpfs mount point (in this process's mount namespace). */
async function isTmpfs(dir: string): Promise<boolean> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  // Fields: … 5 mount point … " - " fstype source options; the last mount at a point is the visible one.
  const at = text.split('\n').filter((l) => l.split(' ')[4]?.replace(/\\040/g, ' ') === dir);
  const last = at[at.length - 1];
  return last !== undefined && last.split(' - ')[1]?.split(' ')[0] === 'tmpfs';
}
