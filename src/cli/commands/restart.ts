import type { Command } from 'commander';
import { CliFailure, EXIT, connect, timeoutSeconds, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import { waitForReleases } from '../wait-release.ts';

/** `APP` or `APP/SERVICE`. */
export function appAndService(target: string): { app: string; service?: string } {
  const m = /^([a-z0-9][a-z0-9-]*)(?:\/([a-z0-9][a-z0-9-]*))?$/.exec(target);
  if (!m) throw new CliFailure(`"${target}" is not APP or APP/SERVICE: write e.g. shop or shop/web`, EXIT.usage);
  return { app: m[1]!, ...(m[2] ? { service: m[2] } : {}) };
}

export function registerRestart(program: Command): void {
  program.command('restart')
    .argument('<app[/service]>', 'app, or app/service')
    .description('restart every instance of an app (or one service) with new containers, the way a deploy rolls out: ' +
      'start-first for rolling and blue-green (no downtime), stop-first for recreate; waits until healthy')
    .option('--env <env>', 'environment', 'prod')
    .option('--no-wait', 'return once the restart is accepted')
    .option('--timeout <duration>', 'give up waiting after this long: seconds or a duration such as 90s, 2m (exit 1)', '300')
    .addHelpText('after', `
A restart is a new release with the same spec, image and configuration (see \`berth releases\`), so it
follows the service's update strategy, health checks, deadline and automatic rollback. To send a
signal instead of replacing containers, use \`berth reload\`.`)
    .action(async (target: string, o: { env: string; wait: boolean; timeout: string }) => {
      const timeoutS = timeoutSeconds(o.timeout);
      const g = program.opts<GlobalOpts>();
      const { app, service } = appAndService(target);
      const client = connect(g);
      const t0 = Date.now();
      const { last } = await client.events({ limit: 1 });
      const { restarts } = await client.restart(app, o.env, service);
      if (!g.json) for (const r of restarts) process.stderr.write(`restarting ${app}/${o.env}/${r.service}: release ${r.release} replaces release ${r.from}\n`);
      if (!o.wait) return output(g, { restarts }, () => undefined);
      await waitForReleases(client, app, o.env, restarts.map((r) => r.service), { json: !!g.json, timeoutS, afterEvent: last });
      const ms = Date.now() - t0;
      output(g, { restarts, ms }, () => console.log(`✔ restarted ${restarts.map((r) => `${r.service} (release ${r.release})`).join(', ')} in ${(ms / 1000).toFixed(1)} s`));
    });
}
