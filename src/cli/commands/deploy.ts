import type { Command } from 'commander';
import { formatIssue } from '../../core/errors.ts';
import { connect, CliFailure, EXIT, progress, progressDone, type GlobalOpts } from '../context.ts';
import { hostPathIssues, loadSpecFile } from '../load-spec.ts';
import { ProgressTicker, SHOWN_EVENTS, waitLine } from '../wait-release.ts';

export function registerDeploy(program: Command): void {
  program.command('deploy')
    .description('deploy a Compose file; waits until every service is healthy (exit 0) or the deployment failed (exit 1)')
    .requiredOption('-f, --file <file>', 'Compose file')
    .option('--app <name>', 'app name (default: the file\'s `name:` or its directory)')
    .option('--env <env>', 'environment (also ${BERTH_ENV} in the file)', 'prod')
    .option('--no-wait', 'return once the deployment is accepted')
    .option('--timeout <seconds>', 'give up waiting after this long (exit 1)', '600')
    .action(async (o: { file: string; app?: string; env: string; wait: boolean; timeout: string }) => {
      const g = program.opts<GlobalOpts>();
      const parsed = loadSpecFile(o.file, o.app, o.env);
      const { spec, warnings, source } = parsed;
      for (const w of warnings) process.stderr.write(`warning: ${formatIssue(w)}\n`);
      const client = connect(g);
      // Follow the event timeline from just before the deploy: releases, starts, health, drains, rollbacks.
      // The newest event of any app is the cursor (a first deploy's app does not exist yet to filter by).
      const lastEvent = (await client.events({ limit: 1 })).events.at(-1)?.id ?? 0;
      const { deployment } = await client.deploy(spec.name, o.env, spec, warnings, source).catch((err: unknown) => {
        // Host paths the server refused, shown where the file names them.
        throw hostPathIssues(err, o.file, parsed) ?? err;
      });
      if (!g.json) process.stderr.write(`deploying ${spec.name} to ${o.env} (deployment ${deployment.id})\n`);
      if (!o.wait) {
        if (g.json) console.log(JSON.stringify({ deployment }));
        return;
      }
      const deadline = Date.now() + Number(o.timeout) * 1000;
      let last = '';
      const ac = new AbortController();
      // The outcome is printed only after the events before it: `✔ deployed` comes after `release.healthy`.
      let outcomeSeen = (): void => {};
      const outcomeShown = new Promise<void>((resolve) => (outcomeSeen = resolve));
      const stream = client.streamEvents({ app: spec.name, env: o.env, after: lastEvent }, (e) => {
        if (g.json) console.log(JSON.stringify({ event: e }));
        else if (SHOWN_EVENTS.test(e.kind)) progressDone(`  ${e.kind.padEnd(20)} ${e.message}`);
        // (A failure's message is its reason; a success names the deployment.)
        if (e.kind === 'deployment.failed' || (e.kind === 'deployment.succeeded' && e.message.includes(deployment.id))) outcomeSeen();
      }, ac.signal).catch(() => undefined);
      const ticker = new ProgressTicker();
      try {
        for (;;) {
          const st = await client.deployment(deployment.id);
          const line = st.services.map((s) => s.instances ? `${s.name} ${s.healthy}/${s.desired} healthy${s.status === 'deploying' ? '' : ` (${s.status})`}` : `${s.name} pending`).join(' · ');
          const text = `[${st.deployment.status}] ${line}`;
          if (text !== last) {
            if (g.json) console.log(JSON.stringify({ status: st.deployment.status, services: st.services.map((s) => ({ name: s.name, status: s.status, healthy: s.healthy ?? 0, desired: s.desired ?? 0 })) }));
            else progress(text);
            last = text;
          }
          const finished = st.deployment.status === 'succeeded' || st.deployment.status === 'failed';
          if (finished) await Promise.race([outcomeShown, new Promise((r) => setTimeout(r, 2000))]);
          else if (!g.json) ticker.tick(st.services);
          if (st.deployment.status === 'succeeded') {
            if (!g.json) {
              progressDone(`✔ ${spec.name}/${o.env} deployed: ${line}`);
              const ping = await client.ping().catch(() => undefined);
              for (const s of st.services) {
                for (const r of s.routes ?? []) {
                  console.log(`  ${s.name}: http://${r.host ?? '127.0.0.1'}:${ping?.ingressPort ?? 8080}${r.path}`);
                }
              }
            }
            return;
          }
          if (st.deployment.status === 'failed') {
            progressDone();
            throw new CliFailure(`deployment ${deployment.id} failed: ${st.deployment.message}`, EXIT.failed);
          }
          if (Date.now() > deadline) {
            progressDone();
            throw new CliFailure(`deployment ${deployment.id} still ${st.deployment.status} after ${o.timeout}s: ${waitLine(st.services) || line}. It goes on in the background; see \`berth status ${spec.name}\``, EXIT.failed);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        ac.abort();
        await stream;
      }
    });
}
