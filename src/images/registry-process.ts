import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { chmod, lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
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

/** Berth's own account in its registry (the only one). */
export const REGISTRY_USER = 'berth';

export interface RegistryCredentials {
  username: string;
  password: string;
}

/**
 * Docker distribution (Debian's `docker-registry`) as a managed process on 127.0.0.1:PORT, storing
 * under DATA/registry. Like nginx it outlives the Berth server: it is started detached (own session,
 * output to DATA/registry/registry.log) and a restarted server adopts it by its pid file
 * (DATA/registry/registry.pid, checked against /proc/PID/cmdline) once `GET /v2/` answers.
 * Docker pushes to it without TLS: dockerd allows 127.0.0.0/8 registries as insecure by default.
 *
 * It is reachable from every container on the host network, so it is closed:
 * - every request needs Berth's credentials (htpasswd; user `berth`, a random password generated once
 *   into DATA/registry/password, 0600). The engine pushes and pulls with them.
 * - deletes are disabled (405) except while garbage collection deletes manifests: `withDeletes`
 *   restarts the registry with deletes enabled for that window only, pushes waiting meanwhile.
 * The pid file records which configuration (and password) the process was started with, so a
 * registry started by an older Berth (open, deletes on) or left in a deletion window by a crash is
 * restarted, never adopted.
 */
export class LocalRegistry {
  readonly dir: string;
  readonly configPath: string;
  readonly pidPath: string;
  readonly logPath: string;
  readonly passwordPath: string;
  readonly htpasswdPath: string;
  private readonly binary: string;
  private readonly log: Logger;
  /** Pushes and GC exclude each other (GC runs with the registry stopped or restarted). */
  private lock: Promise<unknown> = Promise.resolve();
  /** Build time and sizes per `repo@digest`: content-addressed, so never stale. */
  private readonly meta = new Map<string, ManifestMeta>();
  /** Unpacked size per layer digest, persisted in DATA/registry/layer-sizes.json (reading a layer costs a gunzip). */
  private layerSizes: Map<string, number> | undefined;
  private readonly layerSizesPath: string;
  private readonly measuring = new Map<string, Promise<number | undefined>>();
  private sizesSaved: Promise<void> = Promise.resolve();
  private creds: RegistryCredentials | undefined;
  /** start() succeeded once: pushes may start it again if it went away. */
  private managed = false;

  constructor(private readonly o: LocalRegistryOptions) {
    this.dir = join(o.dataDir, 'registry');
    this.configPath = join(this.dir, 'config.yml');
    this.pidPath = join(this.dir, 'registry.pid');
    this.logPath = join(this.dir, 'registry.log');
    this.passwordPath = join(this.dir, 'password');
    this.htpasswdPath = join(this.dir, 'htpasswd');
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

  /** Berth's credentials (known once start() ran): what the engine pushes and pulls with. */
  get credentials(): RegistryCredentials | undefined {
    return this.creds;
  }

  /** The configuration; `deletes` only for garbage collection's deletion window. */
  renderConfig(o: { deletes?: boolean } = {}): string {
    return renderRegistryConfig({ dir: this.dir, port: this.o.port, htpasswdPath: this.htpasswdPath, deletes: o.deletes === true });
  }

  /**
   * Starts the registry, or adopts the one already running from our data dir when it runs this very
   * configuration (and password). With `deletes`, (re)starts it with deletes enabled.
   */
  async start(o: { deletes?: boolean } = {}): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    await this.ensureCredentials();
    const config = this.renderConfig(o);
    await writeFileAtomic(this.configPath, config, { onlyIfChanged: true });
    const identity = configIdentity(config, await readFile(this.htpasswdPath, 'utf8'));
    const running = await this.running();
    if (running !== undefined) {
      if (running.identity === identity && (await this.answers())) {
        this.log.info({ pid: running.pid, addr: this.host }, 'adopted running registry');
        this.managed = true;
        return;
      }
      // Another configuration (an older Berth's open registry, a deletion window a crash left
      // behind, another port or password) or it does not answer: replace it.
      this.log.info({ pid: running.pid, deletes: o.deletes === true, sameConfig: running.identity === identity }, 'restarting registry');
      await this.stop();
    }
    if ((await this.probe()) !== undefined) {
      throw new Error(`something else already answers on ${this.url}/v2/: pick another BERTH_REGISTRY_PORT`);
    }
    const out = openSync(this.logPath, 'a', 0o600);
    try {
      const child = spawn(this.binary, ['serve', this.configPath], { detached: true, stdio: ['ignore', out, out] });
      await new Promise<void>((res, rej) => {
        child.once('spawn', () => res());
        child.once('error', (e) => rej(new Error(`cannot start ${this.binary} (apt-get install docker-registry): ${e.message}`)));
      });
      child.unref();
      await writeFileAtomic(this.pidPath, `${child.pid}\n${identity}\n`);
      this.log.info({ pid: child.pid, addr: this.host, deletes: o.deletes === true }, 'registry started');
    } finally {
      closeSync(out);
    }
    await waitFor(async () => {
      if ((await this.running()) === undefined) throw new Error(`registry exited at start; see ${this.logPath}:\n${await this.logTail()}`);
      return this.answers();
    }, { timeoutMs: 20_000, intervalMs: 20, what: `registry on ${this.url}/v2/` });
    this.managed = true;
  }

  /** Stops the registry process (SIGTERM, then SIGKILL). False when none was running. */
  async stop(): Promise<boolean> {
    const pid = (await this.running())?.pid;
    return pid !== undefined && terminate(pid, 'registry');
  }

  /**
   * The registry's password (DATA/registry/password, 0600, generated once) and its htpasswd entry
   * (bcrypt, rewritten when it does not match the password). bcrypt's lowest cost (4): the password is
   * 256 random bits, so a slow hash adds nothing, and distribution checks it on every request.
   */
  private async ensureCredentials(): Promise<RegistryCredentials> {
    let password = (await readFile(this.passwordPath, 'utf8').catch(() => '')).trim();
    if (!/^[A-Za-z0-9_-]{32,}$/.test(password)) {
      password = randomBytes(32).toString('base64url');
      await writeFileAtomic(this.passwordPath, `${password}\n`, { mode: 0o600 });
      this.log.info({ path: this.passwordPath }, 'registry password generated');
    }
    await chmod(this.passwordPath, 0o600);
    const line = (await readFile(this.htpasswdPath, 'utf8').catch(() => '')).trim();
    const hash = line.startsWith(`${REGISTRY_USER}:`) ? line.slice(REGISTRY_USER.length + 1) : '';
    if (!hash || !(await bcrypt.compare(password, hash).catch(() => false))) {
      await writeFileAtomic(this.htpasswdPath, `${REGISTRY_USER}:${await bcrypt.hash(password, 4)}\n`, { mode: 0o600 });
    }
    await chmod(this.htpasswdPath, 0o600);
    this.creds = { username: REGISTRY_USER, password };
    return this.creds;
  }

  /** The pid and configuration identity from our pid file when that process is a `docker-registry serve OUR-CONFIG`. */
  private async running(): Promise<{ pid: number; identity: string } | undefined> {
    const [first, identity = ''] = (await readFile(this.pidPath, 'utf8').catch(() => '')).split('\n');
    const pid = Number(first?.trim());
    if (!Number.isInteger(pid) || pid <= 0 || !(await isAlive(pid))) return undefined;
    const cmd = await readFile(`/proc/${pid}/cmdline`).then((b) => b.toString().split('\0')).catch(() => [] as string[]);
    return cmd.includes('serve') && cmd.includes(this.configPath) ? { pid, identity: identity.trim() } : undefined;
  }

  /** The pid of our registry process, if it runs. */
  async runningPid(): Promise<number | undefined> {
    return (await this.running())?.pid;
  }

  /** True when `GET /v2/` with our credentials is 200: it runs and knows our password. */
  async answers(): Promise<boolean> {
    return (await this.probe(true)) === 200;
  }

  /** The status of `GET /v2/` (with our credentials when `auth`), or undefined when nothing answers. */
  private async probe(auth = false): Promise<number | undefined> {
    try {
      const r = await fetch(`${this.url}/v2/`, { headers: auth ? this.authHeaders() : {}, signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      return r.status;
    } catch {
      return undefined;
    }
  }

  private authHeaders(): Record<string, string> {
    const c = this.creds;
    return c ? { authorization: `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` } : {};
  }

  /** Runs fn while no other exclusive section (push or GC) runs. */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.catch(() => undefined).then(fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /**
   * Runs fn (a push) while garbage collection does not run; the registry is started again first if
   * it went away (e.g. a restart after a deletion window failed).
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.locked(async () => {
      if (this.managed && !(await this.answers())) await this.start();
      return fn();
    });
  }

  /**
   * Garbage collection's deletion window: the registry is restarted with deletes enabled, fn runs
   * (deleteManifest works only here; outside it the registry answers 405), then it is restarted with
   * deletes disabled again — also when fn fails. Pushes wait meanwhile; each restart costs ~0.1 s.
   */
  withDeletes<T>(fn: () => Promise<T>): Promise<T> {
    return this.locked(async () => {
      const t0 = performance.now();
      let opened = 0;
      try {
        await this.start({ deletes: true });
        opened = performance.now();
        return await fn();
      } finally {
        const t1 = performance.now();
        await this.start();
        this.log.info({ restartMs: Math.round(opened - t0 + performance.now() - t1), windowMs: Math.round(performance.now() - t0) }, 'registry deletion window closed');
      }
    });
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

  /**
   * `DELETE /v2/REPO/manifests/DIGEST` (tags pointing at it go with it). False when it was not there.
   * Only inside withDeletes: the registry refuses deletes otherwise.
   */
  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    const r = await this.request('DELETE', `/v2/${repo}/manifests/${digest}`, [202, 404, 405]);
    await r.arrayBuffer();
    if (r.status === 405) throw new ExternalCommandFailed(`registry DELETE ${repo}@${digest}: deletes are disabled outside garbage collection's deletion window (withDeletes)`);
    this.meta.delete(`${repo}@${digest}`);
    return r.status === 202;
  }

  /**
   * `docker-registry garbage-collect CONFIG`: removes blobs no manifest references. Distribution
   * requires that nothing writes meanwhile, so the registry is STOPPED for the run (pushes wait on
   * the exclusive lock) and started again afterwards. Returns the command's output.
   */
  async garbageCollect(opts: { deleteUntagged?: boolean } = {}): Promise<string> {
    return this.locked(async () => {
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
      r = await fetch(`${this.url}${path}`, { method, headers: { ...this.authHeaders(), ...headers }, signal: AbortSignal.timeout(30_000) });
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

/**
 * distribution's configuration: storage under `dir`, 127.0.0.1 only, htpasswd auth on every request,
 * deletes only when asked for (garbage collection's window).
 */
export function renderRegistryConfig(o: { dir: string; port: number; htpasswdPath: string; deletes: boolean }): string {
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    '  fields:',
    '    service: berth-registry',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(o.dir)}`,
    '  delete:',
    `    enabled: ${o.deletes}`,
    'auth:',
    '  htpasswd:',
    '    realm: berth-registry',
    `    path: ${JSON.stringify(o.htpasswdPath)}`,
    'http:',
    `  addr: 127.0.0.1:${o.port}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    '',
  ].join('\n');
}

/** What the pid file records: the process must be restarted when its configuration or password differs. */
export function configIdentity(config: string, htpasswd: string): string {
  return createHash('sha256').update(config).update('\0').update(htpasswd).digest('hex');
}

/** SIGTERM, up to 10 s for it to exit, then SIGKILL. False when there was no such process to signal. */
export async function terminate(pid: number, what: string): Promise<boolean> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  await waitFor(async () => !(await isAlive(pid)), { timeoutMs: 10_000, intervalMs: 20, what: `${what} ${pid} to exit` }).catch(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  });
  return true;
}

export async function isAlive(pid: number): Promise<boolean> {
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
