import type { Command } from 'commander';
import { connect, timeoutSeconds, type GlobalOpts } from '../context.ts';
import { waitForReleases } from '../wait-release.ts';

export function registerRollback(program: Command): void {
  program.command('rollback')
    .argument('<app>', 'app name')
    .argument('[service]', 'only this service (default: every service of the app)')
    .description('go back to the previous healthy release (or --to a given one); waits until it serves')
    .option('--env <env>', 'environment', 'prod')
    .option('--to <release>', 'release number (see `berth releases APP`) or id')
    .option('--no-wait', 'return once the rollback is accepted')
    .option('--timeout <duration>', 'give up waiting after this long: seconds or a duration such as 90s, 2m (exit 1)', '300')
    .action(async (app: string, service: string | undefined, o: { env: string; to?: string; wait: boolean; timeout: string }) => {
      const timeoutS = timeoutSeconds(o.timeout);
      const g = program.opts<GlobalOpts>();
      const client = connect(g);
      const t0 = Date.now();
      const { rollbacks } = await client.rollback(app, { env: o.env, ...(service ? { service } : {}), ...(o.to ? { to: o.to } : {}) });
      if (!g.json) for (const r of rollbacks) process.stderr.write(`rolling back ${app}/${o.env}/${r.service} to release ${r.to}\n`);
      if (o.wait) await waitForReleases(client, app, o.env, rollbacks.map((r) => r.service), { json: !!g.json, timeoutS });
      const ms = Date.now() - t0;
      if (g.json) console.log(JSON.stringify({ rollbacks, ms }));
      else console.log(`✔ ${rollbacks.map((r) => `${r.service} → release ${r.to}`).join(', ')} (${ms} ms)`);
    });
}
