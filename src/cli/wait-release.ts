import type { BerthClient, EventView, ServiceView } from '../client/index.ts';
import { CliFailure, EXIT, progress, progressDone } from './context.ts';

/**
 * Follows services until their current releases are healthy (resolves) or one failed (throws, exit 1):
 * a live line on a terminal, the event timeline as NDJSON with --json.
 */
export async function waitForReleases(client: BerthClient, app: string, env: string, services: string[],
  opts: { json: boolean; timeoutS: number; afterEvent?: number }): Promise<ServiceView[]> {
  const ac = new AbortController();
  const events = client.streamEvents({ app, env, ...(opts.afterEvent !== undefined ? { after: opts.afterEvent } : {}) }, (e: EventView) => {
    if (opts.json) console.log(JSON.stringify({ event: e }));
    else if (/failed|crashed|rollback|switched|healthy$|stopping|started/.test(e.kind)) progressDone(`  ${e.kind.padEnd(20)} ${e.message}`);
  }, ac.signal).catch(() => undefined);
  const deadline = Date.now() + opts.timeoutS * 1000;
  try {
    for (;;) {
      const st = await client.app(app, env);
      const mine = st.services.filter((s) => services.includes(s.name));
      const line = mine.map((s) => `${s.name} r${s.release.seq} ${s.healthy}/${s.desired} healthy${s.instances.some((i) => i.state === 'stopping') ? ', draining' : ''}`).join(' · ');
      if (!opts.json) progress(line);
      const failed = mine.find((s) => s.release.status === 'failed');
      if (failed) throw new CliFailure(`release ${failed.release.seq} of ${failed.name} failed: ${failed.release.message}`, EXIT.failed);
      if (mine.length === services.length && mine.every((s) => s.release.status === 'healthy')) {
        progressDone();
        return mine;
      }
      if (Date.now() > deadline) {
        throw new CliFailure(`still not healthy after ${opts.timeoutS}s: ${line}. It goes on in the background; see \`berth status ${app}\``, EXIT.failed);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  } finally {
    progressDone();
    ac.abort();
    await events;
  }
}
