import { chmod, mkdir, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Ingress, IngressRoute, Logger } from '../core/ports.ts';
import {
  CUT_REPORT_MAX, certFileBase, edgeCutTargets, formatCutReport, withCertFiles, UNREACHABLE_MAX, type EdgeCutReport, type EdgeCert, type EdgeCertRef, type EdgeChallenge, type EdgeConfig,
} from '../core/edge.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { cutConnections, cutFilter, type CutTarget } from './cut-connections.ts';

/*
 * The edge agent: runs on an edge host beside nginx and keeps nginx serving the control plane's edge
 * route table. It long-polls `GET /v1/edge/config` (the answer comes at once when the agent is behind,
 * else at the next change or after `waitSeconds`), applies the table with the same writer the control
 * host uses (NginxIngress: render, `nginx -t` on the candidate, swap, reload for route changes, Lua
 * push for backend changes) and keeps the last table it applied in its state file. When the control
 * plane is unreachable nothing changes: nginx keeps serving what it last had, the agent retries with
 * backoff. When the agent itself restarts it adopts the running nginx and applies the saved table
 * (nothing changed: no reload) before it asks the control plane again.
 *
 * HTTPS: an answer over TLS carries the certificates (with keys) of the routes' hosts. The agent
 * writes them as root-only 0600 files to `certDir` (a tmpfs: server/edge.ts mounts it and gives no
 * certDir when it cannot, so a key never lies on the edge host's disk), named by fingerprint, and
 * renders the routes with them as the control host does: a new certificate is a new config and one
 * graceful reload. The state file keeps fingerprints, never keys. ACME HTTP-01 answers in the table
 * are written to `challengeDir`, which nginx serves at `/.well-known/acme-challenge/`.
 *
 * A dead host: the table names backends the control plane found unreachable (core/edge.ts
 * EdgeUnreachable). Once one is out of the table this nginx serves, the agent cuts nginx's sockets to it
 * in this host's network namespace (`ss -K`, cut-connections.ts): an idempotent request in flight there
 * is retried on another backend at once instead of waiting for proxy_read_timeout. Backends that left
 * for another reason (a rolling update's old instance draining) are never named, never cut; nor is
 * anything on this host's own loopback or addresses. Each cut is a log line (`edge: connections to an
 * unreachable backend cut`).
 */

/** The last table the agent applied (DATA/edge-state.json). */
export interface EdgeState {
  epoch: string;
  generation: number;
  routes: IngressRoute[];
  /** The certificates served with them (by fingerprint; the key files are on the tmpfs only). */
  certs?: EdgeCertRef[];
  /** When it was applied (ms). */
  appliedAt: number;
}

/** One poll: what the agent asks with (what it serves, and its last failure). */
export interface EdgePoll {
  epoch?: string;
  generation?: number;
  error?: string;
  /** Cuts not yet reported (`ADDRESS:PORT=N,…`). */
  cut?: string;
  waitSeconds: number;
}

export type EdgeFetch = (poll: EdgePoll, signal: AbortSignal) => Promise<EdgeConfig>;

export interface EdgeAgentOptions {
  /** The writer of this host's nginx (NginxIngress). */
  ingress: Pick<Ingress, 'start' | 'apply' | 'flush'>;
  /** Asks the control plane (httpEdgeFetch in production; a fake in unit tests). */
  fetchConfig: EdgeFetch;
  /** Directory of the state file. */
  stateDir: string;
  /**
   * Where certificate and key files go: a tmpfs, 0700. Undefined: certificates sent are not used
   * (no tmpfs, or the control plane is reached over plain HTTP) and routes are served over HTTP.
   */
  certDir?: string;
  /** Why there is no certDir (logged once). */
  certsRefused?: string;
  /** Where nginx serves ACME HTTP-01 answers from (undefined: none are written). */
  challengeDir?: string;
  logger: Logger;
  /** How long the control plane may hold a poll (default 25 s). */
  waitSeconds?: number;
  /** Retry delays after a failed poll or apply: doubles from min to max (default 500 ms .. 5 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  now?: () => number;
  /** Cuts this namespace's connections to the targets (default `ss -K`: cutConnections); returns how many. */
  cut?: (targets: readonly CutTarget[]) => Promise<number>;
  /** This host's own addresses (never cut; default: its network interfaces'). */
  localAddresses?: () => Iterable<string>;
}

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address));
}

/** An HTTP error answer of the control plane (status kept: 401 is a wrong token, not an outage). */
export class EdgeHttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class EdgeAgent {
  /** What nginx serves now (undefined: nothing applied yet). */
  state: EdgeState | undefined;
  /** Polls answered, and when the control plane last answered (ms). */
  polls = 0;
  lastContact: number | undefined;
  /** Why the last poll or apply failed; cleared by the next success. */
  lastError: string | undefined;
  /** Tables applied (a new generation, or the saved one at start). */
  applies = 0;
  /** Why routes with certificates are served over HTTP only here (keys withheld or refused); undefined: they are not. */
  certsNotServed: string | undefined;
  /** Connections cut to unreachable backends (a log line each), and the (address:port@at) keys cut. */
  cuts: { address: string; port: number; connections: number }[] = [];
  private cutKeys = new Set<string>();
  /** Cuts the control plane has not been told of yet (sent with the next poll). */
  private unreported: EdgeCutReport[] = [];
  private challenges = new Map<string, string>();

  private readonly file: string;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly abort = new AbortController();
  private loopDone: Promise<void> | undefined;
  private retryMs: number;
  private wakeRetry: (() => void) | undefined;

  constructor(private readonly o: EdgeAgentOptions) {
    this.file = join(o.stateDir, 'edge-state.json');
    this.log = o.logger.child({ component: 'edge-agent' });
    this.now = o.now ?? Date.now;
    this.retryMs = o.retryMinMs ?? 500;
  }

  /**
   * Applies the saved table (if any) and starts (or adopts) nginx with it, so this host serves before
   * the control plane answers or even when it never does; then polls until stop().
   */
  async start(): Promise<void> {
    await mkdir(this.o.stateDir, { recursive: true });
    const saved = await this.load();
    if (this.o.certDir) {
      await mkdir(this.o.certDir, { recursive: true, mode: 0o700 });
      await chmod(this.o.certDir, 0o700);
    } else if (this.o.certsRefused) {
      this.log.warn(`${this.o.certsRefused}: routes with certificates are served over HTTP only on this host`);
    }
    if (saved) {
      // Key files survive an agent restart on the tmpfs, not a reboot: a route whose files are gone is HTTP until the control plane answers.
      this.o.ingress.apply(await this.decorate(saved.routes, saved.certs ?? []));
      this.log.info({ epoch: saved.epoch, generation: saved.generation, routes: saved.routes.length }, 'serving the saved edge table');
    }
    await this.o.ingress.start();
    if (saved) {
      await this.o.ingress.flush();
      this.state = saved;
      this.applies++;
    }
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.wakeRetry?.();
    await this.loopDone;
  }

  /** One round: ask, apply what is new. Throws on failure (the loop backs off). Exposed for tests. */
  async syncOnce(): Promise<boolean> {
    const have = this.state;
    const report = this.unreported.slice(0, CUT_REPORT_MAX);
    const cfg = await this.o.fetchConfig({
      ...(have ? { epoch: have.epoch, generation: have.generation } : {}),
      ...(report.length > 0 ? { cut: formatCutReport(report) } : {}),
      ...(this.lastError ?? this.certsNotServed ? { error: (this.lastError ?? this.certsNotServed)!.slice(0, 300) } : {}),
      waitSeconds: this.o.waitSeconds ?? 25,
    }, this.abort.signal);
    this.polls++;
    this.lastContact = this.now();
    this.unreported.splice(0, report.length);
    await this.syncChallenges(cfg.challenges ?? []);
    this.noteWithheld(cfg);
    if (have && have.epoch === cfg.epoch && have.generation === cfg.generation) return false;
    const certs = await this.writeCerts(this.o.certDir ? cfg.certs ?? [] : []);
    if (have && JSON.stringify(have.routes) === JSON.stringify(cfg.routes) && JSON.stringify(have.certs ?? []) === JSON.stringify(certs)) {
      // A new epoch (the control plane restarted), or only challenges changed: adopt the numbering, no apply.
      const renumbered = { ...have, epoch: cfg.epoch, generation: cfg.generation };
      await this.save(renumbered);
      this.state = renumbered;
      await this.cutUnreachable(cfg);
      return false;
    }
    this.o.ingress.apply(await this.decorate(cfg.routes, certs));
    await this.o.ingress.flush();
    const applied: EdgeState = { epoch: cfg.epoch, generation: cfg.generation, routes: cfg.routes, ...(certs.length > 0 ? { certs } : {}), appliedAt: this.now() };
    await this.save(applied);
    this.state = applied;
    this.applies++;
    this.log.info({ epoch: cfg.epoch, generation: cfg.generation, routes: cfg.routes.length, certs: certs.length }, 'edge table applied');
    // nginx serves the new files now (its workers hold what they loaded): the old ones can go.
    await this.sweepCerts(certs);
    await this.cutUnreachable(cfg);
    return true;
  }

  /**
   * Cuts nginx's connections to the unreachable backends the table names that nginx no longer routes
   * to (core/edge.ts edgeCutTargets: never a served one, never this host's own), each once. Runs after
   * the table without them is applied, so a retried request goes to a live backend. A failed cut is
   * logged: the requests in flight there then wait for the read timeout, as before.
   */
  private async cutUnreachable(cfg: EdgeConfig): Promise<void> {
    const list = (cfg.unreachable ?? []).slice(0, UNREACHABLE_MAX);
    // Forget what the feed no longer names (it keeps each for a minute): the set stays as small as the feed's list.
    const named = new Set(list.map((u) => `${u.address}:${u.port}@${u.at}`));
    for (const k of this.cutKeys) if (!named.has(k)) this.cutKeys.delete(k);
    if (list.length === 0) return;
    const local = new Set<string>();
    try {
      for (const a of (this.o.localAddresses ?? interfaceAddresses)()) local.add(a.replace(/%.*$/, ''));
    } catch (e) {
      this.log.warn({ err: String(e) }, 'this host\'s addresses not listed; no connection cut this time');
      return;
    }
    const { cut, keys } = edgeCutTargets(list, cfg.routes, local, this.cutKeys);
    for (const k of keys) this.cutKeys.add(k);
    for (const t of cut) {
      const where = isIP(t.address) === 6 ? `[${t.address}]:${t.port}` : `${t.address}:${t.port}`;
      try {
        cutFilter([t]); // throws on anything that is not an IP address and port: nothing else reaches `ss`
        const n = await (this.o.cut ?? cutConnections)([{ address: t.address, port: t.port }]);
        this.cuts.push({ address: t.address, port: t.port, connections: n });
        if (n > 0 && this.unreported.length < 4 * CUT_REPORT_MAX) this.unreported.push({ address: t.address, port: t.port, connections: n });
        this.log.info({ where, cut: n }, `edge: connections to an unreachable backend cut (${n}); idempotent requests in flight there are retried on another backend`);
      } catch (e) {
        this.log.warn({ where, err: String(e) }, 'edge: connections to an unreachable backend not cut; requests in flight there wait for the read timeout');
      }
    }
  }

  /** Says (once per reason) why routes with certificates are HTTP only here: the control plane withheld the keys, or this host refuses them. */
  private noteWithheld(cfg: EdgeConfig): void {
    const refused = (cfg.certs?.length ?? 0) > 0 && !this.o.certDir ? this.o.certsRefused ?? 'no tmpfs for certificate keys' : undefined;
    const why = cfg.certsWithheld ?? refused;
    if (why && why !== this.certsNotServed) this.log.warn(`routes with certificates are served over HTTP only on this host: ${why}`);
    this.certsNotServed = why;
  }

  /** Writes each certificate's files (once: they are named by fingerprint); returns what was written, by host. */
  private async writeCerts(certs: EdgeCert[]): Promise<EdgeCertRef[]> {
    const dir = this.o.certDir;
    if (!dir) return [];
    const out: EdgeCertRef[] = [];
    for (const c of [...certs].sort((a, b) => (a.host < b.host ? -1 : 1))) {
      const base = join(dir, certFileBase(c.host, c.fingerprint));
      for (const [path, text] of [[`${base}.crt`, c.certPem], [`${base}.key`, c.keyPem]] as const) {
        if (await stat(path).then(() => true, () => false)) continue;
        // Root-only: nginx's master reads certificates and keys as root before dropping privileges.
        const tmp = `${path}.tmp`;
        await writeFile(tmp, text.endsWith('\n') ? text : `${text}\n`, { mode: 0o600 });
        await chmod(tmp, 0o600);
        await rename(tmp, path);
      }
      out.push({ host: c.host, fingerprint: c.fingerprint });
    }
    return out;
  }

  /** The routes with the certificate files of `certs` that are on the tmpfs (all, unless it was emptied by a reboot). */
  private async decorate(routes: IngressRoute[], certs: EdgeCertRef[]): Promise<IngressRoute[]> {
    const dir = this.o.certDir;
    const files = new Map<string, { certFile: string; keyFile: string }>();
    if (dir) {
      for (const c of certs) {
        const base = join(dir, certFileBase(c.host, c.fingerprint));
        const both = await Promise.all([stat(`${base}.crt`), stat(`${base}.key`)]).then(() => true, () => false);
        if (both) files.set(c.host, { certFile: `${base}.crt`, keyFile: `${base}.key` });
      }
    }
    return withCertFiles(routes, files);
  }

  /** Removes key and certificate files no certificate in use names. */
  private async sweepCerts(keep: EdgeCertRef[]): Promise<void> {
    const dir = this.o.certDir;
    if (!dir) return;
    const names = new Set(keep.flatMap((c) => [`${certFileBase(c.host, c.fingerprint)}.crt`, `${certFileBase(c.host, c.fingerprint)}.key`]));
    for (const n of await readdir(dir).catch(() => [] as string[])) {
      if (!names.has(n)) await unlink(join(dir, n)).catch(() => undefined);
    }
  }

  /** Makes the challenge directory hold exactly the open ACME answers (nginx serves them without a reload). */
  private async syncChallenges(list: EdgeChallenge[]): Promise<void> {
    const dir = this.o.challengeDir;
    if (!dir) return;
    const want = new Map(list.map((c) => [c.token, c.keyAuthorization]));
    for (const [token, ka] of want) {
      if (this.challenges.get(token) === ka) continue;
      await mkdir(dir, { recursive: true, mode: 0o755 });
      await chmod(dir, 0o755);
      // Public by design (the CA fetches it over plain HTTP); nginx's workers must read it.
      await writeFile(join(dir, token), ka, { mode: 0o644 });
      await chmod(join(dir, token), 0o644);
      this.challenges.set(token, ka);
    }
    for (const token of [...this.challenges.keys()]) {
      if (want.has(token)) continue;
      await unlink(join(dir, token)).catch(() => undefined);
      this.challenges.delete(token);
    }
  }

  private async loop(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        await this.syncOnce();
        this.lastError = undefined;
        this.retryMs = this.o.retryMinMs ?? 500;
      } catch (e) {
        if (this.abort.signal.aborted) break;
        const msg = e instanceof Error ? e.message : String(e);
        if (msg !== this.lastError) {
          const wrongToken = e instanceof EdgeHttpError && (e.status === 401 || e.status === 403);
          this.log.warn({ err: msg }, wrongToken
            ? 'the control plane refuses this edge host\'s token; nginx keeps serving what it has'
            : 'edge table not updated; nginx keeps serving what it has, retrying');
        }
        this.lastError = msg;
        await this.sleep(this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, this.o.retryMaxMs ?? 5000);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wakeRetry = done;
    });
  }

  private async load(): Promise<EdgeState | undefined> {
    const text = await readFile(this.file, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      const s = JSON.parse(text) as EdgeState;
      if (typeof s.epoch !== 'string' || !Number.isInteger(s.generation) || !Array.isArray(s.routes)) throw new Error('missing fields');
      if (s.certs !== undefined && (!Array.isArray(s.certs) || !s.certs.every((c) => typeof c?.host === 'string' && /^[0-9a-f]{64}$/.test(String(c.fingerprint))))) throw new Error('malformed certs');
      return s;
    } catch (e) {
      this.log.warn({ file: this.file, err: String(e) }, 'saved edge table unreadable; waiting for the control plane');
      return undefined;
    }
  }

  private async save(s: EdgeState): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(s) + '\n', { mode: 0o600 });
  }
}

/**
 * Polls over HTTP(S): `GET CONTROL/v1/edge/config?epoch=&generation=&wait=&error=` with the host's
 * token as a bearer credential. The answer is checked for shape before anything is applied.
 */
export function httpEdgeFetch(control: string, token: string): EdgeFetch {
  const base = control.replace(/\/+$/, '');
  return async (poll, signal) => {
    const q = new URLSearchParams({ wait: String(poll.waitSeconds) });
    if (poll.epoch !== undefined) q.set('epoch', poll.epoch);
    if (poll.generation !== undefined) q.set('generation', String(poll.generation));
    if (poll.error) q.set('error', poll.error);
    if (poll.cut) q.set('cut', poll.cut);
    const timeout = AbortSignal.timeout((poll.waitSeconds + 15) * 1000);
    const res = await fetch(`${base}/v1/edge/config?${q}`, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      signal: AbortSignal.any([signal, timeout]),
    });
    const text = await res.text();
    if (!res.ok) {
      let message = text.slice(0, 300);
      try {
        message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
      } catch {
        /* not JSON */
      }
      throw new EdgeHttpError(res.status, `control plane answered ${res.status}: ${message}`);
    }
    return checkEdgeConfig(JSON.parse(text));
  };
}

/** The answer's shape, checked before it reaches nginx (the writer validates routes themselves again). */
export function checkEdgeConfig(v: unknown): EdgeConfig {
  const c = v as Partial<EdgeConfig> | null;
  if (!c || typeof c.epoch !== 'string' || !Number.isInteger(c.generation) || !Array.isArray(c.routes)) {
    throw new Error('control plane answered something that is not an edge config (epoch, generation, routes)');
  }
  for (const r of c.routes) {
    if (!r || typeof r.upstream !== 'string' || typeof r.path !== 'string' || !Array.isArray(r.backends)) throw new Error('edge config has a malformed route');
    for (const b of r.backends) if (typeof b?.address !== 'string' || !Number.isInteger(b.port)) throw new Error(`edge config route ${r.upstream} has a malformed backend`);
  }
  // Certificate hosts and fingerprints become file names, challenge tokens too: nothing may name a path elsewhere.
  if (c.certs !== undefined) {
    if (!Array.isArray(c.certs)) throw new Error('edge config certs is not a list');
    for (const x of c.certs) {
      if (!x || typeof x.host !== 'string' || !/^(\*\.)?[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(x.host) || x.host.includes('..')) throw new Error('edge config has a certificate for a malformed host');
      if (typeof x.fingerprint !== 'string' || !/^[0-9a-f]{64}$/.test(x.fingerprint)) throw new Error(`edge config certificate of ${x.host} has a malformed fingerprint`);
      if (typeof x.certPem !== 'string' || !x.certPem.includes('-----BEGIN CERTIFICATE-----') || typeof x.keyPem !== 'string' || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(x.keyPem)) {
        throw new Error(`edge config certificate of ${x.host} is not PEM (certificate and private key)`);
      }
    }
  }
  // Unreachable backends become `ss` arguments: IP addresses and ports only (cutFilter checks each again).
  if (c.unreachable !== undefined) {
    if (!Array.isArray(c.unreachable) || c.unreachable.length > 4 * UNREACHABLE_MAX) throw new Error('edge config unreachable is not a list (of at most 1024)');
    for (const x of c.unreachable) {
      if (!x || typeof x.address !== 'string' || isIP(x.address) === 0 || !Number.isInteger(x.port) || x.port < 1 || x.port > 65535 || !Number.isFinite(x.at)) {
        throw new Error('edge config has a malformed unreachable backend (an IP address, a port 1-65535, a time)');
      }
    }
  }
  if (c.challenges !== undefined) {
    if (!Array.isArray(c.challenges)) throw new Error('edge config challenges is not a list');
    for (const x of c.challenges) {
      if (!x || typeof x.token !== 'string' || !/^[A-Za-z0-9_-]{1,256}$/.test(x.token) || typeof x.keyAuthorization !== 'string' || !/^[A-Za-z0-9_.-]{1,1024}$/.test(x.keyAuthorization)) {
        throw new Error('edge config has a malformed ACME challenge (token and key authorization are base64url)');
      }
    }
  }
  return c as EdgeConfig;
}


