import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../core/ports.ts';
import { waitFor } from '../lib/backoff.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';

/** The v2 schema2 manifest (what dockerd pushes for a single-platform image) and the OCI one. */
export const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

export interface LocalRegistryOptions {
  dataDir: string;
  port: number;
  logger: Logger;
  /** The distribution binary (Debian's package `docker-registry`). */
  binary?: string;
}

/**
 * Docker distribution (Debian's `docker-registry`) as a managed process on 127.0.0.1:PORT, storing
 * under DATA/registry. Like nginx it outlives the Berth server: it is started detached (own session,
 * output to DATA/registry/registry.log) and a restarted server adopts it by its pid file
 * (DATA/registry/registry.pid, checked against /proc/PID/cmdline) once `GET /v2/` answers.
 * Docker pushes to it without TLS: dockerd allows 127.0.0.0/8 registries as insecure by default.
 */
export class LocalRegistry {
  readonly dir: string;
  readonly configPath: string;
  readonly pidPath: string;
  readonly logPath: string;
  private readonly binary: string;
  private readonly log: Logger;
  /** Pushes and GC exclude each other (GC runs with the registry stopped). */
  private lock: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: LocalRegistryOptions) {
    this.dir = join(o.dataDir, 'registry');
    this.configPath = join(this.dir, 'config.yml');
    this.pidPath = join(this.dir, 'registry.pid');
    this.logPath = join(this.dir, 'registry.log');
    this.binary = o.binary ?? 'docker-registry';
    this.log = o.logger.child({ component: 'image-registry' });
  }

  /** `127.0.0.1:PORT`: the registry part of image references. */
  get host(): string {
    return `127.0.0.1:${this.o.port}`;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  renderConfig(): string {
    return [
      'version: 0.1',
      'log:',
      '  level: info',
      '  fields:',
      '    service: berth-registry',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${JSON.stringify(this.dir)}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${this.o.port}`,
      '  headers:',
      '    X-Content-Type-Options: [nosniff]',
      '',
    ].join('\n');
  }

  /** Starts the registry, or adopts the one already running from our data dir. */
  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const changed = await writeFileAtomic(this.configPath, this.renderConfig(), { onlyIfChanged: true });
    const pid = await this.runningPid();
    if (pid !== undefined) {
      if (!changed && (await this.answers())) {
        this.log.info({ pid, addr: this.host }, 'adopted running registry');
        return;
      }
      // Config changed (e.g. another port) or it does not answer: replace it.
      this.log.warn({ pid, configChanged: changed }, 'restarting registry');
      await this.stop();
    }
    if (await this.answers()) {
      throw new Error(`something else already answers on ${this.url}/v2/: pick another BERTH_REGISTRY_PORT`);
    }
    const out = openSync(this.logPath, 'a');
    try {
      const child = spawn(this.binary, ['serve', this.configPath], { detached: true, stdio: ['ignore', out, out] });
      await new Promise<void>((res, rej) => {
        child.once('spawn', () => res());
        child.once('error', (e) => rej(new Error(`cannot start ${this.binary} (apt-get install docker-registry): ${e.message}`)));
      });
      child.unref();
      await writeFileAtomic(this.pidPath, `${child.pid}\n`);
      this.log.info({ pid: child.pid, addr: this.host }, 'registry started');
    } finally {
      closeSync(out);
    }
    await waitFor(async () => {
      const p = await this.runningPid();
      if (p === undefined) throw new Error(`registry exited at start; see ${this.logPath}:\n${await this.logTail()}`);
      return this.answers();
    }, { timeoutMs: 20_000, intervalMs: 100, what: `registry on ${this.url}/v2/` });
  }

  /** Stops the registry process (SIGTERM, then SIGKILL). False when none was running. */
  async stop(): Promise<boolean> {
    const pid = await this.runningPid();
    if (pid === undefined) return false;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return false;
    }
    try {
      await waitFor(async () => !(await isAlive(pid)), { timeoutMs: 10_000, intervalMs: 50, what: `registry ${pid} to exit` });
    } catch {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    return true;
  }

  /** The pid from our pid file when that process is a `docker-registry serve OUR-CONFIG`. */
  async runningPid(): Promise<number | undefined> {
    const text = await readFile(this.pidPath, 'utf8').catch(() => undefined);
    const pid = Number(text?.trim());
    if (!Number.isInteger(pid) || pid <= 0 || !(await isAlive(pid))) return undefined;
    const cmd = await readFile(`/proc/${pid}/cmdline`).then((b) => b.toString().split('\0')).catch(() => [] as string[]);
    return cmd.includes('serve') && cmd.includes(this.configPath) ? pid : undefined;
  }

  async answers(): Promise<boolean> {
    try {
      const r = await fetch(`${this.url}/v2/`, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      return r.status === 200;
    } catch {
      return false;
    }
  }

  /** Runs fn while no other exclusive section (push or GC) runs. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.catch(() => undefined).then(fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  async catalog(): Promise<string[]> {
    const out: string[] = [];
    let next: string | undefined = '/v2/_catalog?n=1000';
    while (next) {
      const r = await this.request('GET', next);
      out.push(...(((await r.json()) as { repositories?: string[] }).repositories ?? []));
      next = nextLink(r.headers.get('link'));
    }
    return out;
  }

  /** Tags of a repository ([] when it does not exist). */
  async tags(repo: string): Promise<string[]> {
    const r = await this.request('GET', `/v2/${repo}/tags/list`, [200, 404]);
    if (r.status === 404) {
      await r.arrayBuffer();
      return [];
    }
    return ((await r.json()) as { tags?: string[] | null }).tags ?? [];
  }

  /** The manifest digest (`sha256:…`) a tag points to, or undefined. */
  async manifestDigest(repo: string, tag: string): Promise<string | undefined> {
    const r = await this.request('HEAD', `/v2/${repo}/manifests/${tag}`, [200, 404], { accept: MANIFEST_TYPES });
    return r.status === 200 ? r.headers.get('docker-content-digest') ?? undefined : undefined;
  }

  /** The manifest (parsed) of a tag or digest. */
  async manifest(repo: string, ref: string): Promise<{ mediaType?: string; config?: { digest: string }; layers?: { digest: string }[] } | undefined> {
    const r = await this.request('GET', `/v2/${repo}/manifests/${ref}`, [200, 404], { accept: MANIFEST_TYPES });
    if (r.status === 404) {
      await r.arrayBuffer();
      return undefined;
    }
    return (await r.json()) as { mediaType?: string; config?: { digest: string } };
  }

  /** The image config's `created` time (ms) of a manifest, or 0 when unknown. */
  async createdAt(repo: string, digest: string): Promise<number> {
    const m = await this.manifest(repo, digest);
    if (!m?.config?.digest) return 0;
    const r = await this.request('GET', `/v2/${repo}/blobs/${m.config.digest}`, [200, 404]);
    if (r.status !== 200) {
      await r.arrayBuffer();
      return 0;
    }
    const t = Date.parse(((await r.json()) as { created?: string }).created ?? '');
    return Number.isFinite(t) ? t : 0;
  }

  /** `DELETE /v2/REPO/manifests/DIGEST` (tags pointing at it go with it). False when it was not there. */
  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    const r = await this.request('DELETE', `/v2/${repo}/manifests/${digest}`, [202, 404]);
    await r.arrayBuffer();
    return r.status === 202;
  }

  /**
   * `docker-registry garbage-collect CONFIG`: removes blobs no manifest references. Distribution
   * requires that nothing writes meanwhile, so the registry is STOPPED for the run (pushes wait on
   * the exclusive lock) and started again afterwards. Returns the command's output.
   */
  async garbageCollect(opts: { deleteUntagged?: boolean } = {}): Promise<string> {
    return this.exclusive(async () => {
      const wasRunning = await this.stop();
      try {
        const args = ['garbage-collect', ...(opts.deleteUntagged ? ['--delete-untagged'] : []), this.configPath];
        const r = spawnSync(this.binary, args, { encoding: 'utf8', timeout: 10 * 60_000 });
        const text = `${r.stdout ?? ''}${r.stderr ?? ''}`;
        if (r.status !== 0) throw new Error(`${this.binary} garbage-collect failed (exit ${r.status}): ${text.slice(-2000)}`);
        return text;
      } finally {
        if (wasRunning) await this.start();
      }
    });
  }

  private async request(method: string, path: string, ok: number[] = [200], headers: Record<string, string> = {}): Promise<Response> {
    const r = await fetch(`${this.url}${path}`, { method, headers, signal: AbortSignal.timeout(30_000) });
    if (!ok.includes(r.status)) {
      const body = await r.text().catch(() => '');
      throw new Error(`registry ${method} ${path}: HTTP ${r.status} ${body.slice(0, 300)}`);
    }
    return r;
  }

  private async logTail(): Promise<string> {
    const t = await readFile(this.logPath, 'utf8').catch(() => '');
    return t.split('\n').slice(-20).join('\n');
  }
}

async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  return state !== 'Z' && state !== 'X';
}

function nextLink(link: string | null): string | undefined {
  const m = link ? /<([^>]+)>;\s*rel="next"/.exec(link) : null;
  return m ? m[1] : undefined;
}

/** Stops the registry a Berth data dir runs (tests' cleanup, uninstall); false when none ran. */
export async function stopLocalRegistry(dataDir: string): Promise<boolean> {
  const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };
  return new LocalRegistry({ dataDir, port: 0, logger: silent }).stop();
}
