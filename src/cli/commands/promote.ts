import type { Command } from 'commander';
import { connect, progressDone, timeoutSeconds, type GlobalOpts } from '../context.ts';
import { waitForDeployment } from '../wait-release.ts';

export function registerPromote(program: Command): void {
  program.command('promote <app>')
    .description('deploy to --to the identical image digests that are healthy in --from (no rebuild), with --to\'s own configuration; waits like deploy')
    .requiredOption('--from <env>', 'source environment (its current releases must be healthy)')
    .requiredOption('--to <env>', 'target environment')
    .option('--no-wait', 'return once the deployment is accepted')
    .option('--timeout <duration>', 'give up waiting after this long: seconds or a duration such as 90s, 2m (exit 1)', '600')
    .action(async (app: string, o: { from: string; to: string; wait: boolean; timeout: string }) => {
      const timeoutS = timeoutSeconds(o.timeout);
      const g = program.opts<GlobalOpts>();
      const client = connect(g);
      const lastEvent = (await client.events({ limit: 1 })).events.at(-1)?.id ?? 0;
      const res = await client.promote(app, o.from, o.to);
      if ('approval' in res) {
        if (g.json) console.log(JSON.stringify({ approval: res.approval }));
        else process.stderr.write(`${res.message}\n`);
        return;
      }
      const id = res.deployment.id;
      if (!g.json) {
        process.stderr.write(`promoting ${app} from ${o.from} to ${o.to} (deployment ${id})\n`);
        for (const [svc, img] of Object.entries(res.images)) process.stderr.write(`  ${svc}: ${img}\n`);
      }
      if (!o.wait) {
        if (g.json) console.log(JSON.stringify(res));
        return;
      }
      const { line } = await waitForDeployment(client, { app, env: o.to, id, what: 'promotion deployment' },
        { json: !!g.json, timeoutS, afterEvent: lastEvent });
      if (g.json) console.log(JSON.stringify({ deployment: { id, status: 'succeeded' }, images: res.images }));
      else progressDone(`✔ ${app} promoted from ${o.from} to ${o.to}: ${line}`);
    });
}
