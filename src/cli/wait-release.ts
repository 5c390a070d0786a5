import type { BerthClient, EventView, ServiceView } from '../client/index.ts';
import { waitingOn } from '../core/views.ts';
import { CliFailure, EXIT, progress, progressDone } from './context.ts';

/** How often a long wait prints a line saying what it waits for (on a terminal and off it). */
export const PROGRESS_EVERY_MS = 5000;

/** Events worth a line while a deploy, rollback or reload runs. */
export const SHOWN_EVENTS = /failed|crashed|rollback|switched|release\.|build\.|image\.|stopping|reloaded|unhealthy/;

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

/** Prints a `waiting Ns: …` line every PROGRESS_EVERY_MS (as a line of its own, so it shows in logs and CI too). */
export class ProgressTicker {
  private next: number;
  constructor(private readonly t0 = Date.now()) {
    this.next = t0 + PROGRESS_EVERY_MS;
  }

  tick(services: Waited[]): void {
    this.tickText((now) => waitLine(services, now));
  }

  /** The same with a line of the caller's (empty: nothing to say this time). */
  tickText(line: (now: number) => string): void {
    const now = Date.now();
    if (now < this.next) return;
    this.next = now + PROGRESS_EVERY_MS;
    const text = line(now);
    if (text) progressDone(`  waiting ${Math.round((now - this.t0) / 1000)}s: ${text}`);
  }
}

/**
 * Follows services until their current releases are healthy (resolves) or one failed (throws, exit 1):
 * a live line on a terminal, the event timeline as NDJSON with --json.
 */
export async function waitForReleases(client: BerthClient, app: string, env: string, services: string[],
  opts: { json: boolean; timeoutS: number; afterEvent?: number }): Promise<ServiceView[]> {
  const ac = new AbortController();
  const events = client.streamEvents({ app, env, ...(opts.afterEvent !== undefined ? { after: opts.afterEvent } : {}) }, (e: EventView) => {
    if (opts.json) console.log(JSON.stringify({ event: e }));
    else if (SHOWN_EVENTS.test(e.kind) || /healthy$|started/.test(e.kind)) progressDone(`  ${e.kind.padEnd(20)} ${e.message}`);
  }, ac.signal).catch(() => undefined);
  const deadline = Date.now() + opts.timeoutS * 1000;
  const ticker = new ProgressTicker();
  try {
    for (;;) {
      const st = await client.app(app, env);
      const mine = st.services.filter((s) => services.includes(s.name));
      const line = mine.map((s) => `${s.name} r${s.release.seq} ${s.healthy}/${s.desired} healthy${s.instances.some((i) => i.state === 'stopping') ? ', draining' : ''}`).join(' · ');
      if (!opts.json) {
        progress(line);
        ticker.tick(mine);
      }
      const failed = mine.find((s) => s.release.status === 'failed');
      if (failed) throw new CliFailure(`release ${failed.release.seq} of ${failed.name} failed: ${failed.release.message}`, EXIT.failed);
      if (mine.length === services.length && mine.every((s) => s.release.status === 'healthy')) {
        progressDone();
        return mine;
      }
      if (Date.now() > deadline) {
        throw new CliFailure(`still not healthy after ${opts.timeoutS}s: ${waitLine(mine) || line}. It goes on in the background; see \`berth status ${app}\``, EXIT.failed);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  } finally {
    progressDone();
    ac.abort();
    await events;
  }
}

type DeploymentState = Awaited<ReturnType<BerthClient['deployment']>>;

/**
 * Follows a deployment (`berth deploy`, `berth promote`) until it succeeded (resolves with its last
 * state and the one-line summary) or failed or timed out (throws, exit 1): the event timeline from
 * `afterEvent`, a live line on a terminal (NDJSON status lines with --json), a `waiting Ns` line
 * every few seconds. The outcome comes after the events before it (`release.healthy` first).
 */
export async function waitForDeployment(client: BerthClient, d: { app: string; env: string; id: string; what: string },
  opts: { json: boolean; timeoutS: number; afterEvent: number }): Promise<{ state: DeploymentState; line: string }> {
  const deadline = Date.now() + opts.timeoutS * 1000;
  let last = '';
  const ac = new AbortController();
  let outcomeSeen = (): void => {};
  const outcomeShown = new Promise<void>((resolve) => (outcomeSeen = resolve));
  const stream = client.streamEvents({ app: d.app, env: d.env, after: opts.afterEvent }, (e) => {
    if (opts.json) console.log(JSON.stringify({ event: e }));
    else if (SHOWN_EVENTS.test(e.kind)) progressDone(`  ${e.kind.padEnd(20)} ${e.message}`);
    // (A failure's message is its reason; a success names the deployment.)
    if (e.kind === 'deployment.failed' || (e.kind === 'deployment.succeeded' && e.message.includes(d.id))) outcomeSeen();
  }, ac.signal).catch(() => undefined);
  const ticker = new ProgressTicker();
  try {
    for (;;) {
      const st = await client.deployment(d.id);
      const line = st.services.map((s) => s.instances ? `${s.name} ${s.healthy}/${s.desired} healthy${s.status === 'deploying' ? '' : ` (${s.status})`}` : `${s.name} pending`).join(' · ');
      const text = `[${st.deployment.status}] ${line}`;
      if (text !== last) {
        if (opts.json) console.log(JSON.stringify({ status: st.deployment.status, services: st.services.map((s) => ({ name: s.name, status: s.status, healthy: s.healthy ?? 0, desired: s.desired ?? 0 })) }));
        else progress(text);
        last = text;
      }
      const finished = st.deployment.status === 'succeeded' || st.deployment.status === 'failed';
      if (finished) await Promise.race([outcomeShown, new Promise((r) => setTimeout(r, 2000))]);
      else if (!opts.json) ticker.tick(st.services);
      if (st.deployment.status === 'succeeded') return { state: st, line };
      if (st.deployment.status === 'failed') {
        progressDone();
        throw new CliFailure(`${d.what} ${d.id} failed: ${st.deployment.message}`, EXIT.failed);
      }
      if (Date.now() > deadline) {
        progressDone();
        throw new CliFailure(`deployment ${d.id} still ${st.deployment.status} after ${opts.timeoutS}s: ${waitLine(st.services) || line}. It goes on in the background; see \`berth status ${d.app}\``, EXIT.failed);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    ac.abort();
    await stream;
  }
}
