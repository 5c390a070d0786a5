import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ExternalCommandFailed } from '../core/errors.ts';
import type { StoredManifest } from '../core/image-retention.ts';
import type { Logger } from '../core/ports.ts';
import { waitFor } from '../lib/backoff.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { runCommand } from '../lib/exec.ts';
import { unpackedLayerSize } from './layer-size.ts';

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
  /** Build time and sizes per `repo@digest`: content-addressed, so never stale. */
  private readonly meta = new Map<string, ManifestMeta>();
  /** Unpacked size per layer digest, persisted in DATA/registry/layer-sizes.json (reading a layer costs a gunzip). */
  private layerSizes: Map<string, number> | undefined;
  private readonly layerSizesPath: string;
  private readonly measuring = new Map<string, Promise<number | undefined>>();
  private sizesSaved: Promise<void> = Promise.resolve();

  constructor(private readonly o: LocalRegistryOptions) {
    this.dir = join(o.dataDir, 'registry');
    this.configPath = join(this.dir, 'config.yml');
    this.pidPath = join(this.dir, 'registry.pid');
    this.logPath = join(this.dir, 'registry.log');
    this.layerSizesPath = join(this.dir, 'layer-sizes.json');
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
  async manifest(repo: string, ref: string): Promise<ParsedManifest | undefined> {
    const r = await this.request('GET', `/v2/${repo}/manifests/${ref}`, [200, 404], { accept: MANIFEST_TYPES });
    if (r.status === 404) {
      await r.arrayBuffer();
      return undefined;
    }
    return (await r.json()) as ParsedManifest;
  }

  /** The image config's `created` time (ms) of a manifest, or 0 when unknown. */
  async createdAt(repo: string, digest: string): Promise<number> {
    return (await this.manifestMeta(repo, digest))?.createdAt ?? 0;
  }

  /**
   * Every manifest of a repository: those its tags point to, and untagged ones still stored (a tag
   * moved to a rebuild of the same commit leaves the old manifest untagged, but a release may still
   * run it by digest). Distribution has no API listing untagged manifests, so those are read from
   * its storage layout (`_manifests/revisions/sha256/HEX/link`; a deleted one loses its link file).
   */
  async inventory(repo: string): Promise<StoredManifest[]> {
    const tags = new Map<string, string[]>();
    for (const tag of await this.tags(repo)) {
      const d = await this.manifestDigest(repo, tag);
      if (d) tags.set(d, [...(tags.get(d) ?? []), tag]);
    }
    const pushed = await this.storedRevisions(repo);
    for (const d of pushed.keys()) if (!tags.has(d)) tags.set(d, []);
    const out: StoredManifest[] = [];
    for (const [digest, t] of tags) {
      const meta = await this.manifestMeta(repo, digest);
      if (meta) out.push({ repo, digest, tags: t, ...meta, pushedAt: pushed.get(digest) ?? 0 });
    }
    return out;
  }

  /**
   * Manifest digests with a revision link in storage → when that link was written (distribution
   * rewrites it on every push of the manifest: the push time, which a build's `created` is not when
   * it came from the layer cache).
   */
  private async storedRevisions(repo: string): Promise<Map<string, number>> {
    const dir = join(this.storageDir, 'repositories', repo, '_manifests', 'revisions', 'sha256');
    const names = await readdir(dir).catch(() => [] as string[]);
    const out = new Map<string, number>();
    for (const hex of names) {
      if (!/^[0-9a-f]{64}$/.test(hex)) continue;
      const st = await stat(join(dir, hex, 'link')).catch(() => undefined);
      if (st) out.set(`sha256:${hex}`, Math.round(st.mtimeMs));
    }
    return out;
  }

  /** Build time and sizes (unpacked, and compressed as stored) of a manifest; undefined when it is gone. */
  private async manifestMeta(repo: string, digest: string): Promise<ManifestMeta | undefined> {
    const k = `${repo}@${digest}`;
    const cached = this.meta.get(k);
    if (cached) return cached;
    const m = await this.manifest(repo, digest);
    if (!m) return undefined;
    const compressedBytes = (m.config?.size ?? 0) + (m.layers ?? []).reduce((a, l) => a + (l.size ?? 0), 0) + (m.manifests ?? []).reduce((a, l) => a + (l.size ?? 0), 0);
    // The unpacked size, as the engine measures it: an index (several platforms) has none.
    let sizeBytes: number | undefined = m.manifests?.length ? undefined : 0;
    for (const l of m.layers ?? []) {
      if (sizeBytes === undefined) break;
      const s = await this.layerSize(l.digest);
      sizeBytes = s === undefined ? undefined : sizeBytes + s;
    }
    let createdAt = 0;
    if (m.config?.digest) {
      const r = await this.request('GET', `/v2/${repo}/blobs/${m.config.digest}`, [200, 404]);
      if (r.status === 200) {
        const t = Date.parse(((await r.json()) as { created?: string }).created ?? '');
        if (Number.isFinite(t)) createdAt = t;
      } else {
        await r.arrayBuffer();
      }
    }
    const meta: ManifestMeta = { createdAt, compressedBytes, ...(sizeBytes !== undefined ? { sizeBytes } : {}) };
    this.meta.set(k, meta);
    return meta;
  }

  /** The unpacked size of a layer blob (cached by digest), or undefined when it is missing or unreadable. */
  private async layerSize(digest: string): Promise<number | undefined> {
    const sizes = await this.loadLayerSizes();
    const known = sizes.get(digest);
    if (known !== undefined) return known;
    let measuring = this.measuring.get(digest);
    if (!measuring) {
      measuring = unpackedLayerSize(this.blobPath(digest)).catch((err: Error) => {
        this.log.warn({ digest, err: err.message }, 'cannot read a layer to measure its size');
        return undefined;
      });
      this.measuring.set(digest, measuring);
      void measuring.finally(() => this.measuring.delete(digest));
    }
    const size = await measuring;
    if (size === undefined) return undefined;
    if (!sizes.has(digest)) {
      sizes.set(digest, size);
      await this.saveLayerSizes();
    }
    return size;
  }

  /** Writes the layer sizes (one write at a time). */
  private saveLayerSizes(): Promise<void> {
    const write = async () => {
      await writeFileAtomic(this.layerSizesPath, JSON.stringify(Object.fromEntries(this.layerSizes ?? [])) + '\n');
    };
    const run = this.sizesSaved.then(write, write);
    this.sizesSaved = run.catch(() => undefined);
    return run;
  }

  private async loadLayerSizes(): Promise<Map<string, number>> {
    if (this.layerSizes) return this.layerSizes;
    const text = await readFile(this.layerSizesPath, 'utf8').catch(() => '');
    const sizes = new Map<string, number>();
    try {
      for (const [d, n] of Object.entries(text ? (JSON.parse(text) as Record<string, unknown>) : {})) {
        if (/^sha256:[0-9a-f]{64}$/.test(d) && Number.isSafeInteger(n) && (n as number) >= 0) sizes.set(d, n as number);
      }
    } catch {
      // An edited file: measure again.
    }
    this.layerSizes ??= sizes;
    return this.layerSizes;
  }

  /** Forgets the sizes of layers whose blobs garbage collection removed. */
  private async pruneLayerSizes(): Promise<void> {
    const sizes = await this.loadLayerSizes();
    let changed = false;
    for (const d of [...sizes.keys()]) {
      if (!(await stat(this.blobPath(d)).then(() => true, () => false))) {
        sizes.delete(d);
        changed = true;
      }
    }
    if (changed) await this.saveLayerSizes();
  }

  /** Where distribution keeps a blob's bytes. */
  private blobPath(digest: string): string {
    const hex = digest.slice('sha256:'.length);
    return join(this.storageDir, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
  }

  /** Bytes the registry's storage takes on disk (blobs and repository links). */
  async storageBytes(): Promise<number> {
    return dirBytes(this.storageDir);
  }

  /** Distribution's storage root under our rootdirectory. */
  private get storageDir(): string {
    return join(this.dir, 'docker', 'registry', 'v2');
  }

  /** `DELETE /v2/REPO/manifests/DIGEST` (tags pointing at it go with it). False when it was not there. */
  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    const r = await this.request('DELETE', `/v2/${repo}/manifests/${digest}`, [202, 404]);
    await r.arrayBuffer();
    this.meta.delete(`${repo}@${digest}`);
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
        // Async, not spawnSync: a long collection must not stall the server's event loop. Never
        // --delete-untagged by default: an untagged manifest may still be a release's digest.
        const args = ['garbage-collect', ...(opts.deleteUntagged ? ['--delete-untagged'] : []), this.configPath];
        const r = await runCommand(this.binary, args, { timeoutMs: 30 * 60_000, maxBuffer: 256 * 1024 * 1024 });
        await this.pruneLayerSizes();
        return `${r.stdout}${r.stderr}`;
      } finally {
        if (wasRunning) await this.start();
      }
    });
  }

  private async request(method: string, path: string, ok: number[] = [200], headers: Record<string, string> = {}): Promise<Response> {
    let r: Response;
    try {
      r = await fetch(`${this.url}${path}`, { method, headers, signal: AbortSignal.timeout(30_000) });
    } catch (err) {
      const why = (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message;
      throw new ExternalCommandFailed(`Berth's image registry on ${this.url} did not answer ${method} ${path} (${why}); see ${this.logPath}`, { cause: err });
    }
    if (!ok.includes(r.status)) {
      const body = await r.text().catch(() => '');
      throw new ExternalCommandFailed(`registry ${method} ${path}: HTTP ${r.status} ${body.slice(0, 300)}`);
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

interface ManifestMeta {
  createdAt: number;
  /** Unpacked (the engine's measure); absent when unknown. */
  sizeBytes?: number;
  compressedBytes: number;
}

export interface ParsedManifest {
  mediaType?: string;
  config?: { digest: string; size?: number };
  layers?: { digest: string; size?: number }[];
  /** Manifest lists / OCI indexes. */
  manifests?: { digest: string; size?: number }[];
}

/** Total size of the regular files under dir (0 when it does not exist). */
async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await dirBytes(p);
    else if (e.isFile()) total += await lstat(p).then((st) => st.size, () => 0);
  }
  return total;
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
