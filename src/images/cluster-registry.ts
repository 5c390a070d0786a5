import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import type { Logger } from '../core/ports.ts';
import { waitFor } from '../lib/backoff.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { configIdentity, isAlive, terminate, type LocalRegistry } from './registry-process.ts';

export interface ClusterRegistryOptions {
  /** Berth's registry: its storage, its htpasswd (the same account) and its repositories. */
  local: LocalRegistry;
  /** The control host's address on the cluster network (hosts pull from `ADDRESS:PORT`). */
  address: string;
  port: number;
  /** Where the certificate and key files live: a tmpfs (the key is never on disk in clear). */
  tlsDir: string;
  /** The cluster CA (PEM): what probes trust, and what hosts put in /etc/docker/certs.d/ADDRESS:PORT/ca.crt. */
  caPem: string;
  /** A server certificate (leaf first) and key for `address`. */
  issue: () => Promise<{ certPem: string; keyPem: string }>;
  /** Whether a certificate on the tmpfs is still good for `address` (issued by the CA, valid well beyond now). */
  stillGood: (certPem: string) => boolean;
  logger: Logger;
  binary?: string;
}

/**
 * Berth's image registry as every host of a cluster sees it (issue 13 item 4): a second
 * distribution process over the same storage, **read-only** (hosts pull, nothing but the control
 * plane pushes: that stays on 127.0.0.1), on the control host's cluster address with TLS from the
 * cluster CA and the same htpasswd account. Engines trust it through
 * /etc/docker/certs.d/ADDRESS:PORT/ca.crt (the join step), never `insecure-registries`. Like the
 * local registry it outlives the server and is adopted by its pid file when it runs the same
 * configuration and certificate. Release images are named here by digest
 * (`ADDRESS:PORT/APP/SERVICE@sha256:…`), so every host pulls the same bytes.
 */
export class ClusterRegistry {
  readonly configPath: string;
  readonly pidPath: string;
  readonly logPath: string;
  private readonly log: Logger;

  constructor(private readonly o: ClusterRegistryOptions) {
    this.configPath = join(o.local.dir, 'cluster.yml');
    this.pidPath = join(o.local.dir, 'cluster.pid');
    this.logPath = join(o.local.dir, 'cluster.log');
    this.log = o.logger.child({ component: 'cluster-registry' });
  }

  /** `ADDRESS:PORT`: the registry part of the references hosts pull. */
  get host(): string {
    return `${this.o.address.includes(':') ? `[${this.o.address}]` : this.o.address}:${this.o.port}`;
  }

  get caPem(): string {
    return this.o.caPem;
  }

  /**
   * The reference hosts pull for an image of Berth's registry (`127.0.0.1:5000/app/web@sha256:…` →
   * `ADDRESS:PORT/app/web@sha256:…`); undefined for any other reference.
   */
  refFor(localRef: string): string | undefined {
    return clusterRef(localRef, this.o.local.host, this.host);
  }

  async start(): Promise<void> {
    mkdirSync(this.o.local.dir, { recursive: true, mode: 0o700 });
    const certPath = join(this.o.tlsDir, 'registry.crt');
    const keyPath = join(this.o.tlsDir, 'registry.key');
    const cur = await readFile(certPath, 'utf8').catch(() => '');
    if (!cur || !this.o.stillGood(cur) || !(await readFile(keyPath, 'utf8').catch(() => ''))) {
      const pair = await this.o.issue();
      await writeFileAtomic(keyPath, pair.keyPem, { mode: 0o600 });
      await writeFileAtomic(certPath, pair.certPem, { mode: 0o600 });
      this.log.info({ addr: this.host }, 'registry certificate issued');
    }
    const config = renderClusterRegistryConfig({
      dir: this.o.local.dir, addr: this.host, htpasswdPath: this.o.local.htpasswdPath, certPath, keyPath,
    });
    await writeFileAtomic(this.configPath, config, { onlyIfChanged: true });
    const identity = configIdentity(config, `${await readFile(this.o.local.htpasswdPath, 'utf8')}\0${await readFile(certPath, 'utf8')}`);
    const running = await this.running();
    if (running) {
      if (running.identity === identity && (await this.status()) !== undefined) {
        this.log.info({ pid: running.pid, addr: this.host }, 'adopted running cluster registry');
        return;
      }
      await this.stop();
    }
    const out = openSync(this.logPath, 'a', 0o600);
    try {
      const child = spawn(this.o.binary ?? 'docker-registry', ['serve', this.configPath], { detached: true, stdio: ['ignore', out, out] });
      await new Promise<void>((res, rej) => {
        child.once('spawn', () => res());
        child.once('error', (e) => rej(new Error(`cannot start docker-registry for the cluster: ${e.message}`)));
      });
      child.unref();
      await writeFileAtomic(this.pidPath, `${child.pid}\n${identity}\n`);
      this.log.info({ pid: child.pid, addr: this.host }, 'cluster registry started');
    } finally {
      closeSync(out);
    }
    await waitFor(async () => {
      if (!(await this.running())) {
        const tail = (await readFile(this.logPath, 'utf8').catch(() => '')).split('\n').slice(-8).join('\n');
        throw new Error(`the cluster registry on ${this.host} exited at start (is ${this.o.address} an address of this host?); see ${this.logPath}:\n${tail}`);
      }
      return (await this.status()) !== undefined;
    }, { timeoutMs: 20_000, intervalMs: 50, what: `cluster registry on https://${this.host}/v2/` });
  }

  /** The status of `GET /v2/` over TLS trusting only the cluster CA (with Berth's account when `auth`); undefined when nothing answers. */
  status(auth = false): Promise<number | undefined> {
    const c = this.o.local.credentials;
    return new Promise((resolve) => {
      const req = request({
        host: this.o.address, port: this.o.port, path: '/v2/', ca: this.o.caPem, timeout: 2000,
        headers: auth && c ? { authorization: `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` } : {},
      }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(undefined));
      req.end();
    });
  }

  async stop(): Promise<boolean> {
    const pid = (await this.running())?.pid;
    return pid !== undefined && terminate(pid, 'cluster registry');
  }

  private async running(): Promise<{ pid: number; identity: string } | undefined> {
    const [first, identity = ''] = (await readFile(this.pidPath, 'utf8').catch(() => '')).split('\n');
    const pid = Number(first?.trim());
    if (!Number.isInteger(pid) || pid <= 0 || !(await isAlive(pid))) return undefined;
    const cmd = await readFile(`/proc/${pid}/cmdline`).then((b) => b.toString().split('\0')).catch(() => [] as string[]);
    return cmd.includes('serve') && cmd.includes(this.configPath) ? { pid, identity: identity.trim() } : undefined;
  }
}

/** `LOCALHOST/repo@sha256:…` → `CLUSTERHOST/repo@sha256:…`; undefined unless it is a digest reference of the local registry. */
export function clusterRef(ref: string, localHost: string, clusterHost: string): string | undefined {
  if (!ref.startsWith(`${localHost}/`)) return undefined;
  const rest = ref.slice(localHost.length + 1);
  return /^[a-z0-9]+(?:[._/-][a-z0-9]+)*@sha256:[0-9a-f]{64}$/.test(rest) ? `${clusterHost}/${rest}` : undefined;
}

/**
 * The cluster registry's configuration: the local registry's storage, read-only (no pushes, no
 * deletes, no upload purging: the local registry owns writes), TLS, the same htpasswd account.
 */
export function renderClusterRegistryConfig(o: { dir: string; addr: string; htpasswdPath: string; certPath: string; keyPath: string }): string {
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    '  fields:',
    '    service: berth-cluster-registry',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(o.dir)}`,
    '  delete:',
    '    enabled: false',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    '    readonly:',
    '      enabled: true',
    'auth:',
    '  htpasswd:',
    '    realm: berth-registry',
    `    path: ${JSON.stringify(o.htpasswdPath)}`,
    'http:',
    `  addr: ${o.addr}`,
    '  tls:',
    `    certificate: ${JSON.stringify(o.certPath)}`,
    `    key: ${JSON.stringify(o.keyPath)}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    '',
  ].join('\n');
}

/** Stops the cluster registry a Berth data dir runs (tests' cleanup, uninstall); false when none ran. */
export async function stopClusterRegistry(dataDir: string): Promise<boolean> {
  const dir = join(dataDir, 'registry');
  const [first] = (await readFile(join(dir, 'cluster.pid'), 'utf8').catch(() => '')).split('\n');
  const pid = Number(first?.trim());
  if (!Number.isInteger(pid) || pid <= 0 || !(await isAlive(pid))) return false;
  const cmd = await readFile(`/proc/${pid}/cmdline`).then((b) => b.toString().split('\0')).catch(() => [] as string[]);
  if (!cmd.includes(join(dir, 'cluster.yml'))) return false;
  return terminate(pid, 'cluster registry');
}
