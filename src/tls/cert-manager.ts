import { chmod, mkdir, readdir, stat, unlink, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Conflict, InvalidInput, NotFound } from '../core/errors.ts';
import type { CertificatesPort, Clock, IngressRoute, Logger } from '../core/ports.ts';
import type { EventStore } from '../core/store.ts';
import type { CertView } from '../core/views.ts';
import { certFileBase, type EdgeCert, type EdgeCertRef } from '../core/edge.ts';
import { normaliseHost } from '../core/spec/routes.ts';
import { checkUpload, readCertInfo, renewalDue, retryDelay } from './cert-info.ts';
import type { CertStore, StoredCert } from './cert-store.ts';
import type { CertIssuer } from './acme-issuer.ts';

export interface CertManagerOptions {
  store: CertStore;
  /** The ACME CA; undefined: only uploaded certificates are served. */
  issuer?: CertIssuer;
  /** Where certificate and key files for nginx go (0700 directory, 0600 files; the server mounts a tmpfs there). */
  fileDir: string;
  events: EventStore;
  clock: Clock;
  logger: Logger;
  /** The route table as the ingress gets it (before `decorate`): who wants which host's certificate. */
  routes: () => IngressRoute[];
  /** A host's certificate changed (issued, renewed, uploaded, removed): re-render the ingress. */
  changed: () => void;
  /** Renew at this fraction of the lifetime (default 2/3). */
  renewFraction?: number;
  /** Backoff after a failed ACME attempt: base·2^(n-1) up to max (defaults 1 min, 6 h). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How often it looks at every host without being woken (default 1 h; wakes on route changes). */
  intervalMs?: number;
}

/** Warn about a certificate nothing will renew once it has this little left. */
const EXPIRY_WARNING_MS = 14 * 86_400_000;

interface Wanted {
  host: string;
  owners: { app: string; env: string; service: string }[];
}

/**
 * Keeps a certificate for every host a route asks one for: uploaded ones as they are, ACME ones
 * issued and renewed at 2/3 of their lifetime, one host at a time, with backoff after a failure
 * (`cert.failed` event each time; `cert.issued`/`cert.renewed` with how long it took). Writes the
 * PEM files nginx reads (named by fingerprint, so a new certificate is a new config and one reload
 * swaps it) and decorates the route table with them.
 */
export class CertManager implements CertificatesPort {
  private readonly renewFraction: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly intervalMs: number;
  private readonly log: Logger;
  /** Files nginx may read now, by host. */
  private files = new Map<string, { fingerprint: string; certFile: string; keyFile: string }>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  /** Timers on (false in unit tests: each pass is `check()`). */
  private looping = false;
  private closed = false;
  /** When each host's last `cert.expiring` event was recorded. */
  private warned = new Map<string, number>();
  /** The host being issued now (its status is `renewing` or `pending`). */
  private inFlight: string | undefined;

  constructor(private readonly o: CertManagerOptions) {
    this.renewFraction = o.renewFraction ?? 2 / 3;
    this.retryBaseMs = o.retryBaseMs ?? 60_000;
    this.retryMaxMs = o.retryMaxMs ?? 6 * 3_600_000;
    this.intervalMs = o.intervalMs ?? 3_600_000;
    this.log = o.logger.child({ component: 'tls' });
  }

  get acme(): boolean {
    return this.o.issuer !== undefined;
  }

  /** Writes the files of every stored certificate (before nginx starts or is reloaded). No ACME yet: see `run`. */
  async start(): Promise<void> {
    await mkdir(this.o.fileDir, { recursive: true, mode: 0o700 });
    await chmod(this.o.fileDir, 0o700);
    for (const c of this.o.store.list()) await this.writeFiles(c);
  }

  /** Starts the loop (once nginx serves the challenge location): passes on `wake` and on a timer. */
  run(): void {
    this.looping = true;
    this.wake();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** The route table with each route's certificate files, for routes whose host has one and asks for it. */
  decorate(routes: IngressRoute[]): IngressRoute[] {
    return routes.map((r) => {
      const f = r.host === undefined ? undefined : this.files.get(r.host);
      if (!f || r.https?.wantsCert === false) return r;
      return { ...r, tls: { certFile: f.certFile, keyFile: f.keyFile } };
    });
  }

  /**
   * The certificates edge hosts need for this route table (hosts with a certificate whose routes ask
   * for one, as `decorate` picks them), by fingerprint: no key is opened here.
   */
  edgeRefs(routes: readonly IngressRoute[]): EdgeCertRef[] {
    const out = new Map<string, EdgeCertRef>();
    for (const r of routes) {
      const f = r.host === undefined ? undefined : this.files.get(r.host);
      if (f && r.https?.wantsCert !== false) out.set(r.host!, { host: r.host!, fingerprint: f.fingerprint });
    }
    return [...out.values()];
  }

  /**
   * The certificates and keys of these hosts as stored now (opened from tls.db for one answer to an
   * edge host over TLS; a certificate renewed since the ref was made is sent as it is now).
   */
  edgeCerts(refs: readonly EdgeCertRef[]): EdgeCert[] {
    const out: EdgeCert[] = [];
    for (const ref of refs) {
      const c = this.o.store.get(ref.host);
      if (c) out.push({ host: c.host, fingerprint: c.fingerprint, certPem: c.certPem, keyPem: c.keyPem });
    }
    return out;
  }

  /** Looks at every host soon (a route changed, a renewal was asked for). Coalesced. */
  wake(): void {
    if (this.closed || !this.looping) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.pass().catch((err: Error) => this.log.error({ err: err.message }, 'certificate pass failed')).finally(() => {
        this.running = undefined;
        if (this.closed) return;
        if (this.again) {
          this.again = false;
          this.wake();
        } else {
          this.schedule();
        }
      });
    }, 0);
  }

  /** Runs one pass now (after the one running, if any): what the timer does; tests call it directly. */
  async check(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
    this.running = this.pass();
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
  }

  private schedule(): void {
    if (this.closed) return;
    const now = this.o.clock.now();
    let next = now + this.intervalMs;
    for (const w of this.wanted()) {
      const due = this.dueAt(w.host);
      if (due !== undefined) next = Math.min(next, due);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.wake();
    }, Math.max(1000, Math.min(next - now, 2 ** 31 - 1)));
    this.timer.unref();
  }

  /** When the host should next get an ACME attempt; undefined: never (uploaded, wildcard, no ACME). */
  private dueAt(host: string): number | undefined {
    if (!this.o.issuer || host.startsWith('*.')) return undefined;
    const c = this.o.store.info(host);
    if (c?.source === 'upload') return undefined;
    const s = this.o.store.acmeState(host);
    const due = c === undefined || s.renewRequested ? 0 : renewalDue(c, this.renewFraction);
    return Math.max(due, s.nextAttemptAt);
  }

  private wanted(): Wanted[] {
    const by = new Map<string, Wanted>();
    for (const r of this.o.routes()) {
      if (r.host === undefined || r.https?.wantsCert === false) continue;
      const w = by.get(r.host) ?? { host: r.host, owners: [] };
      if (r.owner && !w.owners.some((o) => o.app === r.owner!.app && o.env === r.owner!.env && o.service === r.owner!.service)) w.owners.push(r.owner);
      by.set(r.host, w);
    }
    return [...by.values()].sort((a, b) => (a.host < b.host ? -1 : 1));
  }

  private async pass(): Promise<void> {
    for (const w of this.wanted()) {
      if (this.closed) return;
      const due = this.dueAt(w.host);
      if (due === undefined || due > this.o.clock.now()) continue;
      await this.issue(w);
    }
    this.warnExpiring();
    await this.sweepFiles();
  }

  /**
   * A certificate a route uses that nothing will renew in time (an upload, a wildcard, ACME failing
   * or not configured) is a `cert.expiring` event of the apps using it once a day in its last 14 days.
   */
  private warnExpiring(): void {
    const now = this.o.clock.now();
    for (const w of this.wanted()) {
      const c = this.o.store.info(w.host);
      if (!c || c.notAfter - now > EXPIRY_WARNING_MS) continue;
      const s = this.o.store.acmeState(w.host);
      const renewing = c.source === 'acme' && this.o.issuer !== undefined && s.failures === 0;
      if (renewing) continue;
      const last = this.warned.get(w.host);
      if (last !== undefined && now - last < 86_400_000) continue;
      this.warned.set(w.host, now);
      const days = Math.max(0, Math.floor((c.notAfter - now) / 86_400_000));
      const how = c.source === 'upload' ? `upload a new one (berth cert add ${w.host} --cert FILE --key FILE)` : `ACME is failing: ${s.lastError ?? 'see cert.failed events'}`;
      this.event(w, 'cert.expiring', c.notAfter <= now
        ? `certificate for ${w.host} expired at ${new Date(c.notAfter).toISOString()}: ${how}`
        : `certificate for ${w.host} expires in ${days} days (${new Date(c.notAfter).toISOString()}) and will not be renewed: ${how}`);
    }
  }

  private async issue(w: Wanted): Promise<void> {
    const issuer = this.o.issuer!;
    const before = this.o.store.get(w.host);
    const state = this.o.store.acmeState(w.host);
    const t0 = this.o.clock.now();
    this.inFlight = w.host;
    try {
      const got = await issuer.issue(w.host);
      const info = readCertInfo(got.certPem);
      const cert: StoredCert = { host: w.host, source: 'acme', certPem: got.certPem, keyPem: got.keyPem, ...info, updatedAt: this.o.clock.now() };
      // A stray upload may have landed while the CA worked: it wins.
      if (this.o.store.get(w.host)?.source === 'upload') return;
      this.o.store.put(cert);
      await this.writeFiles(cert);
      const ms = this.o.clock.now() - t0;
      const kind = before ? 'cert.renewed' : 'cert.issued';
      this.event(w, kind, `certificate for ${w.host} ${before ? 'renewed' : 'issued'} by ${info.issuer} in ${ms} ms, valid until ${new Date(info.notAfter).toISOString()}`);
      this.log.info({ host: w.host, ms, notAfter: info.notAfter }, kind);
      this.o.changed();
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      const failures = state.failures + 1;
      const retryAt = this.o.clock.now() + retryDelay(failures, this.retryBaseMs, this.retryMaxMs);
      this.o.store.putAcmeState({ host: w.host, failures, nextAttemptAt: retryAt, lastError: msg, lastAttemptAt: t0, renewRequested: state.renewRequested });
      const left = before ? `; the current certificate is served until ${new Date(before.notAfter).toISOString()}` : '; the host is served over HTTP only meanwhile';
      this.event(w, 'cert.failed', `certificate for ${w.host} not ${before ? 'renewed' : 'issued'} (attempt ${failures}, next at ${new Date(retryAt).toISOString()}${left}): ${msg}`);
      this.log.warn({ host: w.host, failures, retryAt, err: msg }, 'ACME attempt failed');
    } finally {
      this.inFlight = undefined;
    }
  }

  private event(w: Wanted, kind: string, message: string): void {
    const owners = w.owners.length > 0 ? w.owners : [{ app: '', env: '', service: '' }];
    for (const o of owners) this.o.events.addEvent({ app: o.app, env: o.env, service: o.service, instance: '', kind, message });
  }

  // --- files for nginx ---------------------------------------------------------------------------

  private async writeFiles(c: StoredCert): Promise<void> {
    const base = join(this.o.fileDir, certFileBase(c.host, c.fingerprint));
    const certFile = `${base}.crt`;
    const keyFile = `${base}.key`;
    // Root-owned 0600: nginx's master reads certificates and keys as root before dropping privileges.
    for (const [path, text] of [[certFile, c.certPem], [keyFile, c.keyPem]] as const) {
      const tmp = `${path}.tmp`;
      await writeFile(tmp, text.endsWith('\n') ? text : `${text}\n`, { mode: 0o600 });
      await chmod(tmp, 0o600);
      await rename(tmp, path);
    }
    this.files.set(c.host, { fingerprint: c.fingerprint, certFile, keyFile });
  }

  /** Files of certificates no longer current, after nginx had time to reload away from them. */
  private async sweepFiles(): Promise<void> {
    const keep = new Set([...this.files.values()].flatMap((f) => [f.certFile, f.keyFile]));
    const names = await readdir(this.o.fileDir).catch(() => [] as string[]);
    for (const n of names) {
      const p = join(this.o.fileDir, n);
      if (keep.has(p)) continue;
      const st = await stat(p).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 120_000) await unlink(p).catch(() => undefined);
    }
  }

  // --- the API's port ----------------------------------------------------------------------------

  list(): CertView[] {
    const wanted = new Map(this.wanted().map((w) => [w.host, w]));
    const hosts = new Set([...wanted.keys(), ...this.o.store.list().map((c) => c.host)]);
    return [...hosts].sort().map((h) => this.view(h, wanted.get(h)));
  }

  private view(host: string, w: Wanted | undefined): CertView {
    const now = this.o.clock.now();
    const c = this.o.store.get(host);
    const s = this.o.store.acmeState(host);
    const v: CertView = { host, status: 'valid', routes: (w?.owners ?? []).map((o) => `${o.app}/${o.env}/${o.service}`) };
    if (c) {
      Object.assign(v, { source: c.source, issuer: c.issuer, notBefore: c.notBefore, notAfter: c.notAfter, fingerprint: c.fingerprint });
      if (c.source === 'acme') v.renewAt = renewalDue(c, this.renewFraction);
    }
    if (s.lastError !== undefined && s.failures > 0) Object.assign(v, { lastError: s.lastError, retryAt: s.nextAttemptAt });
    const acmeManaged = w !== undefined && this.o.issuer !== undefined && !host.startsWith('*.') && c?.source !== 'upload';
    if (c && c.notAfter <= now) v.status = acmeManaged && s.failures === 0 ? 'renewing' : 'expired';
    else if (c && !w) v.status = 'unused';
    else if (acmeManaged && s.failures > 0) v.status = 'failed';
    else if (c && acmeManaged && (s.renewRequested || this.inFlight === host || now >= (v.renewAt ?? Infinity))) v.status = 'renewing';
    else if (c) v.status = 'valid';
    else if (host.startsWith('*.')) v.status = 'wildcard';
    else if (!this.o.issuer) v.status = 'no-acme';
    else v.status = 'pending';
    return v;
  }

  async upload(hostRaw: string, certPem: string, keyPem: string): Promise<CertView> {
    const host = checkHost(hostRaw);
    const info = checkUpload(host, certPem, keyPem, this.o.clock.now());
    const cert: StoredCert = { host, source: 'upload', certPem, keyPem, ...info, updatedAt: this.o.clock.now() };
    this.o.store.put(cert);
    await this.writeFiles(cert);
    this.log.info({ host, notAfter: info.notAfter }, 'certificate uploaded');
    this.o.changed();
    return this.view(host, this.wanted().find((w) => w.host === host));
  }

  async remove(hostRaw: string): Promise<boolean> {
    const host = checkHost(hostRaw);
    const gone = this.o.store.remove(host);
    if (!gone) return false;
    this.files.delete(host);
    this.o.changed();
    this.wake();
    return true;
  }

  renew(hostRaw: string): CertView {
    const host = checkHost(hostRaw);
    const w = this.wanted().find((x) => x.host === host);
    const c = this.o.store.get(host);
    if (!w && !c) throw new NotFound(`no certificate and no route for ${host}: see \`berth certs\``);
    if (c?.source === 'upload') throw new Conflict(`the certificate of ${host} was uploaded: renew it by uploading a new one (berth cert add ${host} --cert FILE --key FILE)`);
    if (!this.o.issuer) throw new Conflict('no ACME CA is configured (BERTH_ACME_DIRECTORY): upload a certificate instead');
    if (host.startsWith('*.')) throw new Conflict(`${host} is a wildcard: ACME's HTTP-01 cannot prove it; upload a certificate`);
    if (!w) throw new Conflict(`no route asks for a certificate for ${host}: Berth only renews certificates its routes use`);
    const s = this.o.store.acmeState(host);
    this.o.store.putAcmeState({ ...s, renewRequested: true, nextAttemptAt: 0, failures: 0 });
    this.wake();
    return this.view(host, w);
  }
}

function checkHost(raw: string): string {
  const h = normaliseHost(raw);
  if (!h.ok) throw new InvalidInput(`host: ${h.message}`, { details: { field: 'host' } });
  return h.value;
}
