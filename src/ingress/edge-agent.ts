import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Ingress, IngressRoute, Logger } from '../core/ports.ts';
import type { EdgeConfig } from '../core/edge.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';

/*
 * The edge agent: runs on an edge host beside nginx and keeps nginx serving the control plane's edge
 * route table. It long-polls `GET /v1/edge/config` (the answer comes at once when the agent is behind,
 * else at the next change or after `waitSeconds`), applies the table with the same writer the control
 * host uses (NginxIngress: render, `nginx -t` on the candidate, swap, reload for route changes, Lua
 * push for backend changes) and keeps the last table it applied in its state file. When the control
 * plane is unreachable nothing changes: nginx keeps serving what it last had, the agent retries with
 * backoff. When the agent itself restarts it adopts the running nginx and applies the saved table
 * (nothing changed: no reload) before it asks the control plane again.
 */

/** The last table the agent applied (DATA/edge-state.json). */
export interface EdgeState {
  epoch: string;
  generation: number;
  routes: IngressRoute[];
  /** When it was applied (ms). */
  appliedAt: number;
}

/** One poll: what the agent asks with (what it serves, and its last failure). */
export interface EdgePoll {
  epoch?: string;
  generation?: number;
  error?: string;
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
  logger: Logger;
  /** How long the control plane may hold a poll (default 25 s). */
  waitSeconds?: number;
  /** Retry delays after a failed poll or apply: doubles from min to max (default 500 ms .. 5 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  now?: () => number;
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
    if (saved) {
      this.o.ingress.apply(saved.routes);
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
    const cfg = await this.o.fetchConfig({
      ...(have ? { epoch: have.epoch, generation: have.generation } : {}),
      ...(this.lastError ? { error: this.lastError.slice(0, 300) } : {}),
      waitSeconds: this.o.waitSeconds ?? 25,
    }, this.abort.signal);
    this.polls++;
    this.lastContact = this.now();
    if (have && have.epoch === cfg.epoch && have.generation === cfg.generation) return false;
    if (have && JSON.stringify(have.routes) === JSON.stringify(cfg.routes)) {
      // A new epoch (the control plane restarted) with the same table: adopt its numbering, no apply.
      const renumbered = { ...have, epoch: cfg.epoch, generation: cfg.generation };
      await this.save(renumbered);
      this.state = renumbered;
      return false;
    }
    this.o.ingress.apply(cfg.routes);
    await this.o.ingress.flush();
    const applied = { epoch: cfg.epoch, generation: cfg.generation, routes: cfg.routes, appliedAt: this.now() };
    await this.save(applied);
    this.state = applied;
    this.applies++;
    this.log.info({ epoch: cfg.epoch, generation: cfg.generation, routes: cfg.routes.length }, 'edge table applied');
    return true;
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
  return c as EdgeConfig;
}
