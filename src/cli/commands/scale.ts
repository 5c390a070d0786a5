import type { Command } from 'commander';
import { CliFailure, EXIT, connect, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';

export function registerScale(program: Command): void {
  program.command('scale')
    .argument('<app>', 'app name')
    .argument('<service=replicas...>', 'one or more SERVICE=N')
    .description('set the number of replicas of services (until the next deploy of the file); all of them or none')
    .option('--env <env>', 'environment', 'prod')
    .option('--force', 'scale even when the memory limits of all instances would add up to more than the host\'s memory')
    .addHelpText('after', `
A scale that would make the memory limits (deploy.resources.limits.memory) of all instances on the
host add up to more than its memory is refused (exit 4) with the numbers; --force scales anyway.
BERTH_HOST_MEMORY_MB on the server sets that budget (default: the host's total memory).`)
    .action(async (app: string, pairs: string[], o: { env: string; force?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      const services: Record<string, number> = {};
      for (const p of pairs) {
        const m = /^([a-z0-9][a-z0-9-]*)=(\d+)$/.exec(p);
        if (!m) throw new CliFailure(`"${p}" is not SERVICE=N: write e.g. web=3`, EXIT.usage);
        if (m[1]! in services) throw new CliFailure(`${m[1]} is given twice`, EXIT.usage);
        services[m[1]!] = Number(m[2]);
      }
      const { scaled } = await connect(g).scaleServices(app, o.env, services, { force: o.force === true });
      output(g, scaled, () => {
        for (const r of scaled) console.log(`${app}/${o.env}/${r.service}: ${r.from} → ${r.to} replicas`);
      });
    });
}
