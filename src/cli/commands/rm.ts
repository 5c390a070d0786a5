import type { Command } from 'commander';
import { connect, type GlobalOpts } from '../context.ts';

export function registerRm(program: Command): void {
  program.command('rm')
    .argument('<app>', 'app name')
    .description('remove an app: its instances leave the ingress, are stopped gracefully and removed')
    .option('--env <env>', 'only this environment (default: all)')
    .action(async (app: string, o: { env?: string }) => {
      const g = program.opts<GlobalOpts>();
      const r = await connect(g).remove(app, o.env);
      if (g.json) console.log(JSON.stringify(r));
      else console.log(`removing ${app}: ${r.removed.join(', ')}`);
    });
}
