import type { Command } from 'commander';
import { CliFailure, EXIT, connect, timeoutSeconds, type GlobalOpts } from '../context.ts';
import { ProgressTicker, serviceLine } from '../wait-release.ts';

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
      const deadline = Date.now() + timeoutS * 1000;
      const ticker = new ProgressTicker();
      for (;;) {
        const st = await client.app(app, o.env);
        const s = st.services.find((x) => x.name === service);
        if (s && !g.json) ticker.tickText((now) => `reload of ${serviceLine(s, now)}`);
        if (s && s.reload.doneAt >= requestedAt) {
          if (g.json) console.log(JSON.stringify({ service, reloaded: s.instances.length, healthy: s.healthy }));
          else console.log(`✔ reloaded ${s.instances.length} instance(s) of ${app}/${o.env}/${service}; ${s.healthy}/${s.desired} healthy`);
          return;
        }
        if (Date.now() > deadline) throw new CliFailure(`reload of ${service} not done after ${timeoutS}s; see \`berth events ${app}\``, EXIT.failed);
        await new Promise((r) => setTimeout(r, 150));
      }
    });
}
