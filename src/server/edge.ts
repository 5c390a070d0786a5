import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { InvalidInput } from '../core/errors.ts';
import { parseEdgeToken } from '../core/edge.ts';
import type { Logger } from '../core/ports.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { EdgeAgent, NginxIngress, httpEdgeFetch } from '../ingress/index.ts';

/** `berth edge` flags, parsed once here (like the server's config). */
export interface EdgeFlags {
  control?: string;
  token?: string;
  tokenFile?: string;
  dataDir?: string;
  port?: string;
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
  adminPort: number;
  listenAddress: string;
  waitSeconds: number;
  nginxBin: string;
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
  const wait = Number(f.waitSeconds ?? '25');
  if (!Number.isInteger(wait) || wait < 0 || wait > 60) throw new InvalidInput(`--wait-seconds "${f.waitSeconds}" must be a whole number of seconds 0-60`);
  return {
    control: url.href.replace(/\/+$/, ''), token, host: parsed.host,
    dataDir: resolve(f.dataDir ?? env.BERTH_EDGE_DATA_DIR ?? '/var/lib/berth-edge'),
    port: port('--port', f.port ?? '80'), adminPort: port('--admin-port', f.adminPort ?? '7071'), listenAddress, waitSeconds: wait,
    nginxBin: env.BERTH_NGINX ?? 'nginx',
  };
}

/**
 * `berth edge`: this host's nginx (own prefix DATA/nginx, started or adopted) fed by the control
 * plane's edge table through the edge agent. Stopping the agent leaves nginx serving.
 */
export async function startEdgeAgent(cfg: EdgeConfigParsed, logger: Logger): Promise<{ agent: EdgeAgent; ingress: NginxIngress; stop(): Promise<void> }> {
  process.umask(0o077);
  // The admin token of this nginx's Lua endpoint: kept so that a restarted agent updates the adopted nginx without a reload.
  const tokenFile = join(cfg.dataDir, 'ingress-admin.token');
  let adminToken = (await readFile(tokenFile, 'utf8').catch(() => '')).trim();
  if (!adminToken) {
    adminToken = randomBytes(32).toString('hex');
    await writeFileAtomic(tokenFile, adminToken + '\n', { mode: 0o600 });
  }
  const ingress = new NginxIngress({
    prefix: join(cfg.dataDir, 'nginx'), listenPort: cfg.port, listenAddress: cfg.listenAddress, adminPort: cfg.adminPort,
    nginxBin: cfg.nginxBin, adminToken, logger,
    onRoutesRefused: (problems) => {
      for (const p of problems) logger.warn({ upstream: p.upstream, host: p.host, path: p.path }, `route not served here: ${p.message}`);
    },
  });
  const agent = new EdgeAgent({ ingress, fetchConfig: httpEdgeFetch(cfg.control, cfg.token), stateDir: cfg.dataDir, logger, waitSeconds: cfg.waitSeconds });
  await agent.start();
  logger.info({ host: cfg.host, control: cfg.control, port: cfg.port, nginx: ingress.masterPid }, 'edge agent running');
  return {
    agent, ingress,
    async stop() {
      await agent.stop();
      await ingress.close();
    },
  };
}
