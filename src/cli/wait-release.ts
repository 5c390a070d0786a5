import { ApiError, Unreachable, type BerthClient, type DeploymentState, type EventView, type FollowHandlers, type ServiceView } from '../client/index.ts';
import { waitingOn } from '../core/views.ts';
import { CliFailure, EXIT, progress, progressDone } from './context.ts';

/** How often a long wait prints a line saying what it waits for (on a terminal and off it). */
export const PROGRESS_EVERY_MS = 5000;
/** The least time between two lines when what a wait waits on changes between the regular ones. */
export const PROGRESS_CHANGE_MS = 2000;

/** Events worth a line while a deploy, rollback or reload runs. */
export const SHOWN_EVENTS = /failed|crashed|dependency\.|rollback|switched|release\.|build\.|image\.|stopping|reloaded|unhealthy/;

type Waited = Partial<ServiceView> & { name: string; status: string };

/**
 * What a wait is still waiting for, one part per service not yet there: `web 0/2 healthy; last check
 * GET /healthz → 404 (i1 on 127.0.0.1:20031, for 12s)` — or `web pending` before its release exists.
 */
export function waitLine(services: Waited[], now = Date.now()): string {
  return services
    .filter((s) => !s.instances || !s.release || s.release.status !== 'healthy' || (s.healthy ?? 0) < (s.desired ?? 0))
    .map((s) => serviceLine(s, now))
    .join(' · ');
}

/** One service's part of a wait line, whether or not it is there yet. */
export function serviceLine(s: Waited, now = Date.now()): string {
  return s.instances && s.release
    ? `${s.name} ${waitingOn({ healthy: s.healthy ?? 0, desired: s.desired ?? 0, releaseSeq: s.release.seq, instances: s.instances,
      ...(s.lastCrash ? { lastCrash: s.lastCrash } : {}) }, now)}`
    : `${s.name} ${s.status}`;
}

/**
 * Prints a `waiting Ns: …` line every PROGRESS_EVERY_MS (as a line of its own, so it shows in logs and
 * CI too). Once a wait has printed one, a change of what it waits on (another check result, one more
 * instance healthy) is printed when seen, at most one line per PROGRESS_CHANGE_MS: a check that turns
 * from `connection refused` to `404` a second after a line says so before the next five seconds are up.
 */
export class ProgressTicker {
  private next: number;
  private last?: { at: number; key: string };
  private readonly t0: number;
  constructor(private readonly io: { now: () => number; print: (line: string) => void } = { now: Date.now, print: progressDone }) {
    this.t0 = io.now();
    this.next = this.t0 + PROGRESS_EVERY_MS;
  }

  tick(services: Waited[]): void {
    this.tickText((now) => waitLine(services, now));
  }

  /** The same with a line of the caller's (empty: nothing to say this time). */
  tickText(line: (now: number) => string): void {
    const now = this.io.now();
    const due = now >= this.next;
    if (!due && (!this.last || now - this.last.at < PROGRESS_CHANGE_MS)) return;
    const text = line(now);
    // What changed, not how long: durations (`for 12s`) are not a change.
    const key = text.replace(/\b\d+(?:ms|s|m)\b/g, '');
    if (!due && key === this.last!.key) return;
    this.next = now + PROGRESS_EVERY_MS;
    if (!text) return;
    this.last = { at: now, key };
    this.io.print(`  waiting ${Math.round((now - this.t0) / 1000)}s: ${text}`);
  }
}

/**
 * Follows one server-sent stream (client.followDeployment / followApp / followPurge) until `onState`
 * says the wait is over: no polling, the server pushes each change. A stream that ends early (the
 * server restarted, the connection dropped) is opened again from the last event seen; an unreachable
 * server or an API error ends the wait with that error; the deadline with `timedOut()`.
 * `endsItself`: the server ends the stream once it is over (a deployment's stream, after its outcome
 * event), so the wait reads on to that end instead of hanging up at the state that finished it.
 */
export async function followUntil<S>(o: {
  open: (after: number | undefined, on: FollowHandlers<S>, signal: AbortSignal) => Promise<void>;
  after?: number;
  timeoutS: number;
  endsItself?: boolean;
  onEvent?: (e: EventView) => void;
  /** Sees each state; true: the wait is over. May throw to fail it. */
  onState: (s: S) => boolean;
  /** Called every second while waiting (a `waiting Ns` line). */
  tick?: () => void;
  timedOut: () => Error;
}): Promise<S> {
  const deadline = Date.now() + o.timeoutS * 1000;
  let after = o.after;
  let last: S | undefined;
  let done = false;
  let failure: { err: unknown } | undefined;
  const ticker = o.tick ? setInterval(o.tick, 1000) : undefined;
  try {
    for (let attempt = 0; ; attempt++) {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), Math.max(0, deadline - Date.now()));
      try {
        await o.open(after, {
          event: (e) => {
            after = e.id;
            o.onEvent?.(e);
          },
          state: (st) => {
            if (done || failure) return;
            last = st;
            try {
              done = o.onState(st);
            } catch (err) {
              failure = { err };
            }
            if (failure || (done && !o.endsItself)) ac.abort();
          },
        }, ac.signal);
      } catch (err) {
        // The API said no, or the server cannot be reached: that is the answer. A stream cut mid-way reconnects below.
        if (!ac.signal.aborted && (err instanceof ApiError || err instanceof Unreachable)) throw err;
      } finally {
        clearTimeout(timer);
      }
      if (failure) throw failure.err;
      if (done && last !== undefined) return last;
      if (Date.now() >= deadline) throw o.timedOut();
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
    }
  } finally {
    if (ticker) clearInterval(ticker);
  }
}

/** Prints a timeline event while a deploy, rollback or reload runs: NDJSON with --json, a line for the ones worth one otherwise. */
function eventPrinter(json: boolean, shown: (kind: string) => boolean): (e: EventView) => void {
  return (e) => {
    if (json) console.log(JSON.stringify({ event: e }));
    else if (shown(e.kind)) progressDone(`  ${e.kind.padEnd(20)} ${e.message}`);
  };
}

/**
 * Follows services until their current releases are healthy (resolves) or one failed (throws, exit 1):
 * a live line on a terminal, the event timeline as NDJSON with --json. One streaming request.
 */
export async function waitForReleases(client: BerthClient, app: string, env: string, services: string[],
  opts: { json: boolean; timeoutS: number; afterEvent?: number }): Promise<ServiceView[]> {
  const ticker = new ProgressTicker();
  let mine: ServiceView[] = [];
  let line = '';
  try {
    await followUntil<{ app: string; services: ServiceView[] }>({
      open: (after, on, signal) => client.followApp(app, { env, ...(after !== undefined ? { after } : {}) }, on, signal),
      ...(opts.afterEvent !== undefined ? { after: opts.afterEvent } : {}),
      timeoutS: opts.timeoutS,
      onEvent: eventPrinter(opts.json, (kind) => SHOWN_EVENTS.test(kind) || /healthy$|started/.test(kind)),
      onState: (st) => {
        mine = st.services.filter((s) => services.includes(s.name));
        line = mine.map((s) => `${s.name} r${s.release.seq} ${s.healthy}/${s.desired} healthy${s.instances.some((i) => i.state === 'stopping') ? ', draining' : ''}`).join(' · ');
        if (!opts.json) progress(line);
        const failed = mine.find((s) => s.release.status === 'failed');
        if (failed) throw new CliFailure(`release ${failed.release.seq} of ${failed.name} failed: ${failed.release.message}`, EXIT.failed);
        return mine.length === services.length && mine.every((s) => s.release.status === 'healthy');
      },
      tick: () => {
        if (!opts.json) ticker.tick(mine);
      },
      timedOut: () => new CliFailure(`still not healthy after ${opts.timeoutS}s: ${waitLine(mine) || line}. It goes on in the background; see \`berth status ${app}\``, EXIT.failed),
    });
    return mine;
  } finally {
    progressDone();
  }
}

/**
 * Follows one instance's restart (`berth restart APP INSTANCE`) until it is gone from its service and
 * the service runs its desired number of healthy instances again (resolves with the new instances'
 * ids) or the service crash-loops or fails (throws, exit 1). One streaming request, like the others.
 */
export async function waitForInstanceReplaced(client: BerthClient, r: { app: string; env: string; service: string; instance: string; before: string[] },
  opts: { json: boolean; timeoutS: number; afterEvent?: number }): Promise<string[]> {
  const ticker = new ProgressTicker();
  let svc: ServiceView | undefined;
  try {
    await followUntil<{ app: string; services: ServiceView[] }>({
      open: (after, on, signal) => client.followApp(r.app, { env: r.env, ...(after !== undefined ? { after } : {}) }, on, signal),
      ...(opts.afterEvent !== undefined ? { after: opts.afterEvent } : {}),
      timeoutS: opts.timeoutS,
      onEvent: eventPrinter(opts.json, (kind) => SHOWN_EVENTS.test(kind) || /healthy$|started|restart/.test(kind)),
      onState: (st) => {
        svc = st.services.find((s) => s.name === r.service);
        if (!svc) throw new CliFailure(`${r.app}/${r.env}/${r.service} is gone (removed while restarting ${r.instance})`, EXIT.failed);
        const old = svc.instances.find((i) => i.id === r.instance);
        if (!opts.json) progress(`${r.instance} ${old ? old.state : 'replaced'} · ${r.service} ${svc.healthy}/${svc.desired} healthy`);
        if (svc.status === 'crash-looping' || svc.release.status === 'failed') {
          throw new CliFailure(`the replacement of ${r.instance} does not run: ${svc.detail || svc.release.message}. See \`berth events ${r.app} --service ${r.service}\``, EXIT.failed);
        }
        return !old && svc.healthy >= svc.desired;
      },
      tick: () => {
        if (!opts.json && svc) ticker.tickText((now) => `restart of ${r.instance}: ${serviceLine(svc!, now)}`);
      },
      timedOut: () => new CliFailure(`${r.instance} not replaced by a healthy instance after ${opts.timeoutS}s${svc ? ` (${serviceLine(svc)})` : ''}. It goes on in the background; see \`berth status ${r.app}\``, EXIT.failed),
    });
    return (svc?.instances ?? []).filter((i) => !r.before.includes(i.id)).map((i) => i.id);
  } finally {
    progressDone();
  }
}

/**
 * Follows a deployment (`berth deploy`, `berth promote`, a configuration rollout) over one streaming
 * request until it succeeded (resolves with its last state and the one-line summary) or failed or
 * timed out (throws, exit 1): the event timeline from `afterEvent`, a live line on a terminal (NDJSON
 * status lines with --json), a `waiting Ns` line every few seconds. The server sends the outcome
 * event before it ends the stream, so the outcome comes after the events before it (`release.healthy` first).
 */
export async function waitForDeployment(client: BerthClient, d: { app: string; env: string; id: string; what: string },
  opts: { json: boolean; timeoutS: number; /** Events after this id (default: from when the stream opens). */ afterEvent?: number; /** No events and no NDJSON status lines (the caller prints one document). */ quiet?: boolean; failure?: (message: string) => string }): Promise<{ state: DeploymentState; line: string }> {
  let lastText = '';
  let line = '';
  let current: DeploymentState | undefined;
  const ticker = new ProgressTicker();
  const state = await followUntil<DeploymentState>({
    open: (after, on, signal) => client.followDeployment(d.id, after, on, signal),
    ...(opts.afterEvent !== undefined ? { after: opts.afterEvent } : {}), timeoutS: opts.timeoutS, endsItself: true,
    ...(opts.quiet ? {} : { onEvent: eventPrinter(opts.json, (kind) => SHOWN_EVENTS.test(kind)) }),
    onState: (st) => {
      current = st;
      line = st.services.map((s) => 'instances' in s ? `${s.name} ${s.healthy}/${s.desired} healthy${s.status === 'deploying' ? '' : ` (${s.status})`}` : `${s.name} pending`).join(' · ');
      const text = `[${st.deployment.status}] ${line}`;
      if (text !== lastText) {
        if (opts.json) {
          if (!opts.quiet) console.log(JSON.stringify({ status: st.deployment.status, services: st.services.map((s) => ({ name: s.name, status: s.status, healthy: 'healthy' in s ? s.healthy : 0, desired: 'desired' in s ? s.desired : 0 })) }));
        } else progress(text);
        lastText = text;
      }
      return st.deployment.status === 'succeeded' || st.deployment.status === 'failed';
    },
    tick: () => {
      const st = current?.deployment.status;
      if (!opts.json && current && st !== 'succeeded' && st !== 'failed') ticker.tick(current.services);
    },
    timedOut: () => {
      progressDone();
      return new CliFailure(`deployment ${d.id} still ${current?.deployment.status ?? 'pending'} after ${opts.timeoutS}s: ${(current && waitLine(current.services)) || line}. ` +
        `It goes on in the background; see \`berth status ${d.app}\``, EXIT.failed);
    },
  });
  if (state.deployment.status === 'failed') {
    progressDone();
    throw new CliFailure(opts.failure ? opts.failure(state.deployment.message) : `${d.what} ${d.id} failed: ${state.deployment.message}`, EXIT.failed);
  }
  return { state, line };
}
