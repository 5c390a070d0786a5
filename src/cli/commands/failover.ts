import type { Command } from 'commander';
import { connect, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';

export function registerFailover(program: Command): void {
  program.command('failover')
    .argument('<app>', 'the app')
    .argument('<service>', 'a service with named volumes (pinned to its host)')
    .requiredOption('--to <host>', 'the host it runs on from now on (`berth hosts` lists them)')
    .option('--env <env>', 'environment', 'prod')
    .option('--force', 'move it even though its host is up (its data stays there, unused)', false)
    .description("move a stateful service to another host when its own is down: its volumes start EMPTY there")
    .addHelpText('after', `
On many hosts a service with named volumes is pinned to the host its volumes live on: \`berth status\`
says "pinned to HOST (volume V)". When that host dies Berth does not move it by itself (a silent
restart elsewhere would run on an empty volume): it is unrouted and waits. This command is the
explicit move: its instances are replaced on HOST, where its volumes start empty (restore a backup
there, or let the service initialise them). When the old host is up, --force is needed.

Examples:
  berth failover shop db --to h3
  berth failover shop db --to h3 --env staging --force`)
    .action(async (app: string, service: string, o: { to: string; env: string; force: boolean }) => {
      const g = program.opts<GlobalOpts>();
      const r = await connect(g).failover(app, o.env, service, o.to, o.force);
      output(g, r, () => {
        console.log(`${service} (${app}/${r.env}) moves from ${r.from || 'nowhere'} to ${r.to}: volume${r.volumes.length === 1 ? '' : 's'} ${r.volumes.join(', ')} start${r.volumes.length === 1 ? 's' : ''} empty there`);
        console.log(`follow it with: berth status ${app} --env ${r.env}`);
      });
    });
}
