import { randomBytes } from 'node:crypto';
import type { Clock, IngressRoute } from '../core/ports.ts';
import {
  UNREACHABLE_KEEP_MS, UNREACHABLE_MAX, isBehind, type EdgeCertRef, type EdgeChallenge, type EdgeContact, type EdgeHostState, type EdgeTable, type EdgeUnreachable, type EdgeCutReport,
} from '../core/edge.ts';

/** An agent that asked within this long is expected to apply a new generation (polls are held at most 60 s). */
const ACTIVE_MS = 75_000;

/**
 * The control plane's side of the edge hosts: the latest edge table (routes, the fingerprints of their
 * hosts' certificates, open ACME challenges) with its generation, the long polls of edge agents
 * waiting for a change, and what each agent last reported. Generations count changes of the table's
 * bytes (a publish of the same table is no change), within an epoch that is new at every start of the
 * control plane. Keys are not held here: the API opens them per answer over TLS.
 */
export class EdgeFeed {
  readonly epoch: string;
  private generation = 0;
  private routes: IngressRoute[] = [];
  private certs: EdgeCertRef[] = [];
  private challenges: EdgeChallenge[] = [];
  private unreachableList: EdgeUnreachable[] = [];
  /** Whose backend each unreachable address:port is (server side only: never sent). */
  private owners = new Map<string, unknown>();
  private cutListeners = new Set<(host: string, cut: EdgeCutReport, owner: unknown) => void>();
  private text = '';
  private waiters = new Set<() => void>();
  private contactWatchers = new Set<() => void>();
  private contacts = new Map<string, Omit<EdgeHostState, 'inSync'>>();
  private closed = false;

  constructor(private readonly clock: Clock, epoch = randomBytes(6).toString('hex')) {
    this.epoch = epoch;
  }

  /** Sets the edge route table and its hosts' certificates; wakes waiting agents when it changed. */
  publish(routes: IngressRoute[], certs: EdgeCertRef[] = []): void {
    this.set(routes, [...certs].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0)), this.challenges);
  }

  /** Sets the ACME HTTP-01 answers every edge host serves; wakes waiting agents when they changed. */
  setChallenges(challenges: EdgeChallenge[]): void {
    this.set(this.routes, this.certs, [...challenges].sort((a, b) => (a.token < b.token ? -1 : 1)));
  }

  /**
   * A backend found unreachable (HealthMonitor's onUnreachable, for an instance of another host): named
   * in the table for UNREACHABLE_KEEP_MS (at most UNREACHABLE_MAX, the oldest dropped), so edge agents
   * cut their nginx's connections to it once it is out of their table. Wakes waiting agents.
   */
  unreachable(address: string, port: number, owner?: unknown): void {
    const now = this.clock.now();
    const list = [...this.fresh(now).filter((u) => !(u.address === address && u.port === port)), { address, port, at: now }].slice(-UNREACHABLE_MAX);
    this.owners.set(`${address}:${port}`, owner);
    this.set(this.routes, this.certs, this.challenges, list);
  }

  /** Called with each cut an edge host reports of a backend named unreachable now (and its owner as given to `unreachable`). */
  onCut(fn: (host: string, cut: EdgeCutReport, owner: unknown) => void): void {
    this.cutListeners.add(fn);
  }

  reportCuts(host: string, cuts: readonly EdgeCutReport[]): void {
    const named = new Set(this.unreachableList.map((u) => `${u.address}:${u.port}`));
    for (const c of cuts) {
      const key = `${c.address}:${c.port}`;
      // An edge host reports only what the feed asked it to cut: anything else is not recorded.
      if (!named.has(key)) continue;
      for (const l of this.cutListeners) l(host, c, this.owners.get(key));
    }
  }

  private fresh(now: number): EdgeUnreachable[] {
    return this.unreachableList.filter((u) => now - u.at < UNREACHABLE_KEEP_MS);
  }

  private set(routes: IngressRoute[], certs: EdgeCertRef[], challenges: EdgeChallenge[], unreachable = this.fresh(this.clock.now())): void {
    const text = JSON.stringify([routes, certs, challenges, unreachable]);
    if (text === this.text && this.generation > 0) return;
    this.text = text;
    this.routes = routes;
    this.certs = certs;
    this.challenges = challenges;
    this.unreachableList = unreachable;
    for (const k of [...this.owners.keys()]) if (!unreachable.some((u) => `${u.address}:${u.port}` === k)) this.owners.delete(k);
    this.generation++;
    this.wake();
  }

  current(): EdgeTable {
    return { epoch: this.epoch, generation: this.generation, routes: this.routes, certs: this.certs, challenges: this.challenges, unreachable: this.unreachableList };
  }

  /**
   * The current table once it differs from what the agent has (at once when it already does), or
   * the unchanged one after `timeoutMs`, or when `signal` aborts or the feed closes.
   */
  async wait(have: { epoch?: string; generation?: number }, timeoutMs: number, signal?: AbortSignal): Promise<EdgeTable> {
    if (this.closed || this.generation === 0 || isBehind(have, this.current())) return this.current();
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
    return this.current();
  }

  /** Records an agent's poll: where from, which generation its nginx serves (or why not), whether keys were withheld. */
  contact(host: string, r: EdgeContact): void {
    this.contacts.set(host, {
      host, address: r.address, lastContact: this.clock.now(),
      ...(r.applied !== undefined ? { applied: r.applied } : {}),
      ...(r.appliedEpoch !== undefined ? { appliedEpoch: r.appliedEpoch } : {}),
      ...(r.error ? { error: r.error } : {}),
      ...(r.certsWithheld ? { certsWithheld: true } : {}),
    });
    for (const w of [...this.contactWatchers]) w();
  }

  /** Edge hosts that asked since this control plane started, by name. */
  hosts(): EdgeHostState[] {
    return [...this.contacts.values()]
      .map((c) => ({ ...c, inSync: c.appliedEpoch === this.epoch && c.applied === this.generation }))
      .sort((a, b) => a.host.localeCompare(b.host));
  }

  /**
   * Waits until every edge host that asked lately serves the current generation (or a later one),
   * at most `timeoutMs`; returns the hosts still behind then. The ACME issuer calls it after adding a
   * challenge, so the CA is told to validate only once every edge host can answer it.
   */
  async waitApplied(timeoutMs: number): Promise<{ behind: string[] }> {
    const target = this.generation;
    const behind = (): string[] => {
      const now = this.clock.now();
      return [...this.contacts.values()]
        .filter((c) => now - c.lastContact <= ACTIVE_MS && !(c.appliedEpoch === this.epoch && (c.applied ?? -1) >= target))
        .map((c) => c.host).sort();
    };
    if (behind().length === 0 || this.closed) return { behind: [] };
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (behind().length === 0 || this.closed) done();
      };
      const done = (): void => {
        clearTimeout(timer);
        this.contactWatchers.delete(check);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.contactWatchers.add(check);
    });
    return { behind: behind() };
  }

  /** Answers every waiting poll now (the API is closing). */
  close(): void {
    this.closed = true;
    this.wake();
    for (const w of [...this.contactWatchers]) w();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
