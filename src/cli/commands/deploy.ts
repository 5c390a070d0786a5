import type { Command } from 'commander';
import { formatIssue } from '../../core/errors.ts';
import { connect, progressDone, type GlobalOpts } from '../context.ts';
import { hostPathIssues, loadSpecFile } from '../load-spec.ts';
import { waitForDeployment } from '../wait-release.ts';

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
      const { state: st, line } = await waitForDeployment(client, { app: spec.name, env: o.env, id: deployment.id, what: 'deployment' },
        { json: !!g.json, timeoutS: Number(o.timeout), afterEvent: lastEvent });
      if (!g.json) {
        progressDone(`✔ ${spec.name}/${o.env} deployed: ${line}`);
        const ping = await client.ping().catch(() => undefined);
        for (const s of st.services) {
          for (const r of s.routes ?? []) {
            console.log(`  ${s.name}: http://${r.host ?? '127.0.0.1'}:${ping?.ingressPort ?? 8080}${r.path}`);
          }
        }
      }
    });
}
