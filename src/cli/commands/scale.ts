import type { Command } from 'commander';
import { CliFailure, EXIT, connect, type GlobalOpts } from '../context.ts';

export function registerScale(program: Command): void {
  program.command('scale')
    .argument('<app>', 'app name')
    .argument('<service=replicas...>', 'one or more SERVICE=N')
    .description('set the number of replicas of services (until the next deploy of the file)')
    .option('--env <env>', 'environment', 'prod')
    .action(async (app: string, pairs: string[], o: { env: string }) => {
      const g = program.opts<GlobalOpts>();
      const wanted = pairs.map((p) => {
        const m = /^([a-z0-9][a-z0-9-]*)=(\d+)$/.exec(p);
        if (!m) throw new CliFailure(`"${p}" is not SERVICE=N: write e.g. web=3`, EXIT.usage);
        return { service: m[1]!, replicas: Number(m[2]) };
      });
      const client = connect(g);
      for (const w of wanted) {
        const r = await client.scale(app, o.env, w.service, w.replicas);
        if (g.json) console.log(JSON.stringify(r));
        else console.log(`${app}/${o.env}/${r.service}: ${r.from} → ${r.to} replicas`);
      }
    });
}
