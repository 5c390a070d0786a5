import type { Command } from 'commander';
import { CliFailure, EXIT, connect, timeoutSeconds, type GlobalOpts } from '../context.ts';
import type { ServiceView } from '../../client/index.ts';
import { ProgressTicker, followUntil, serviceLine } from '../wait-release.ts';

export function registerReload(program: Command): void {
  program.command('reload')
    .argument('<app>', 'app name')
    .argument('<service>', 'service name')
    .description('send the service\'s reload signal (x-berth.update.signal, default SIGHUP) to every instance, one at a time, waiting for health after each; no container is recreated')
    .option('--env <env>', 'environment', 'prod')
    .option('--timeout <duration>', 'give up waiting after this long: seconds or a duration such as 90s, 2m (exit 1)', '120')
    .action(async (app: string, service: string, o: { env: string; timeout: string }) => {
      const g = program.opts<GlobalOpts>();
      const client = connect(g);
      const timeoutS = timeoutSeconds(o.timeout);
      const { requestedAt } = await client.reload(app, o.env, service);
      const ticker = new ProgressTicker();
      let s: ServiceView | undefined;
      // One streaming request: the app's state on every change, until the reload is done.
      await followUntil<{ services: ServiceView[] }>({
        open: (after, on, signal) => client.followApp(app, { env: o.env, ...(after !== undefined ? { after } : {}) }, on, signal),
        timeoutS,
        onState: (st) => {
          s = st.services.find((x) => x.name === service);
          return !!s && s.reload.doneAt >= requestedAt;
        },
        tick: () => {
          if (s && !g.json) ticker.tickText((now) => `reload of ${serviceLine(s!, now)}`);
        },
        timedOut: () => new CliFailure(`reload of ${service} not done after ${timeoutS}s; see \`berth events ${app}\``, EXIT.failed),
      });
      if (g.json) console.log(JSON.stringify({ service, reloaded: s!.instances.length, healthy: s!.healthy }));
      else console.log(`✔ reloaded ${s!.instances.length} instance(s) of ${app}/${o.env}/${service}; ${s!.healthy}/${s!.desired} healthy`);
    });
}
