import type { Command } from 'commander';
import type { EventView } from '../../client/index.ts';
import { CliFailure, EXIT, connect, limitOption, table, type GlobalOpts } from '../context.ts';
import { ndjson, output } from '../output.ts';

function cells(e: EventView): string[] {
  return [new Date(e.ts).toISOString().replace('T', ' ').slice(0, 19), [e.app, e.env, e.service].filter(Boolean).join('/') || '-', e.kind, e.message];
}

export function registerEvents(program: Command): void {
  program.command('events')
    .argument('[app]', 'only this app')
    .description('show the event timeline: deployments, releases, starts, crashes, health flips, scaling; -f follows it live')
    .option('--env <env>', 'only this environment (with an app)')
    .option('--service <service>', 'only this service (with an app)')
    .option('-n, --limit <n>', 'how many of the latest events (default 50; 1000 with --since)')
    .option('--since <time>', 'only events after this: 10m, 1h, 2d, an ISO time')
    .option('-f, --follow', 'keep printing new events as they happen (Ctrl-C to stop); --json prints NDJSON')
    .addHelpText('after', `
Examples:
  berth events shop --since 1h
  berth events shop -f --since 10m     # the last ten minutes, then live`)
    .action(async (app: string | undefined, o: { env?: string; service?: string; limit?: string; since?: string; follow?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      if (!app && (o.env || o.service)) throw new CliFailure('--env and --service filter the events of one app: give the app too, e.g. `berth events shop --env prod`', EXIT.usage);
      const limit = o.limit === undefined ? (o.since ? 1000 : 50) : limitOption(o.limit, 1000);
      const scope = { ...(app ? { app } : {}), ...(o.env ? { env: o.env } : {}), ...(o.service ? { service: o.service } : {}) };
      const client = connect(g);
      const { events, last } = await client.events({ ...scope, ...(o.since ? { since: o.since } : {}), limit });
      if (!o.follow) {
        return output(g, events, () => {
          if (events.length === 0) return void console.log(`no events${app ? ` of ${app}` : ''}${o.since ? ` since ${o.since}` : ''}`);
          console.log(table([['TIME', 'APP/ENV/SERVICE', 'KIND', 'MESSAGE'], ...events.map(cells)]));
        });
      }
      // A stream: what is there (one line each, fixed columns), then every new event as it happens.
      const line = (e: EventView) => {
        if (g.json) return ndjson(e);
        const [time, where, kind, message] = cells(e);
        console.log(`${time}  ${where!.padEnd(24)}  ${kind!.padEnd(22)}  ${message}`);
      };
      for (const e of events) line(e);
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      process.once('SIGTERM', () => ac.abort());
      await client.streamEvents({ ...scope, after: Math.max(last, events.at(-1)?.id ?? 0) }, line, ac.signal);
      if (!ac.signal.aborted) throw new CliFailure('the server ended the event stream (stopped or restarted?): run the command again', EXIT.unavailable);
    });
}
