import type { Command } from 'commander';
import { CliFailure, EXIT, connect, timeoutSeconds, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import { waitForInstanceReplaced, waitForReleases } from '../wait-release.ts';

/** `APP` or `APP/SERVICE`. */
export function appAndService(target: string): { app: string; service?: string } {
  const m = /^([a-z0-9][a-z0-9-]*)(?:\/([a-z0-9][a-z0-9-]*))?$/.exec(target);
  if (!m) throw new CliFailure(`"${target}" is not APP or APP/SERVICE: write e.g. shop or shop/web`, EXIT.usage);
  return { app: m[1]!, ...(m[2] ? { service: m[2] } : {}) };
}

export function registerRestart(program: Command): void {
  program.command('restart')
    .argument('<app[/service]>', 'app, or app/service')
    .argument('[instance]', 'one instance id (see `berth status APP`): only it is replaced, the others are untouched')
    .description('restart every instance of an app (or one service, or one instance) with new containers, the way a deploy rolls out: ' +
      'start-first for rolling and blue-green (no downtime), stop-first for recreate; waits until healthy')
    .option('--env <env>', 'environment', 'prod')
    .option('--no-wait', 'return once the restart is accepted')
    .option('--timeout <duration>', 'give up waiting after this long: seconds or a duration such as 90s, 2m (exit 1)', '300')
    .addHelpText('after', `
A restart of an app or service is a new release with the same spec, image and configuration (see
\`berth releases\`), so it follows the service's update strategy, health checks, deadline and
automatic rollback. A restart of one instance (\`berth restart shop i-3f2a\`) replaces only that
instance with a new one of the current release: under rolling and blue-green the new one serves
before the old one drains. It is refused while the service is rolling out. To send a signal instead
of replacing containers, use \`berth reload\`.

Exit codes: 0 restarted and healthy; 1 not healthy in time or the new instance crashes; 2 bad
arguments; 3 no such app, environment or instance; 4 refused now (a rollout in progress, the
instance not running or already restarting).`)
    .action(async (target: string, instance: string | undefined, o: { env: string; wait: boolean; timeout: string }) => {
      const timeoutS = timeoutSeconds(o.timeout);
      const g = program.opts<GlobalOpts>();
      const { app, service } = appAndService(target);
      if (instance !== undefined && service) {
        throw new CliFailure(`give APP INSTANCE (an instance names its service): berth restart ${app} ${instance}`, EXIT.usage);
      }
      const client = connect(g);
      const t0 = Date.now();
      const { last } = await client.events({ limit: 1 });
      if (instance !== undefined) {
        const before = (await client.app(app, o.env)).services.flatMap((s) => s.instances.map((i) => i.id));
        const r = await client.restartInstance(app, o.env, instance);
        if (!g.json) process.stderr.write(`restarting ${app}/${o.env}/${r.service} instance ${instance}: a new instance replaces it\n`);
        if (!o.wait) return output(g, r, () => undefined);
        const replacedBy = await waitForInstanceReplaced(client, { app, env: o.env, service: r.service, instance, before }, { json: !!g.json, timeoutS, afterEvent: last });
        const ms = Date.now() - t0;
        return output(g, { ...r, replacedBy, ms }, () => console.log(`✔ restarted ${instance} of ${r.service}${replacedBy.length ? `: ${replacedBy.join(', ')} serves instead` : ''} in ${(ms / 1000).toFixed(1)} s`));
      }
      const { restarts } = await client.restart(app, o.env, service);
      if (!g.json) for (const r of restarts) process.stderr.write(`restarting ${app}/${o.env}/${r.service}: release ${r.release} replaces release ${r.from}\n`);
      if (!o.wait) return output(g, { restarts }, () => undefined);
      await waitForReleases(client, app, o.env, restarts.map((r) => r.service), { json: !!g.json, timeoutS, afterEvent: last });
      const ms = Date.now() - t0;
      output(g, { restarts, ms }, () => console.log(`✔ restarted ${restarts.map((r) => `${r.service} (release ${r.release})`).join(', ')} in ${(ms / 1000).toFixed(1)} s`));
    });
}
