import type { Command } from 'commander';
import { connect, table, type GlobalOpts } from '../context.ts';

export function registerEvents(program: Command): void {
  program.command('events')
    .argument('[app]', 'only this app')
    .description('show the event timeline: deployments, releases, starts, crashes, health flips, scaling')
    .option('-n, --limit <n>', 'how many of the latest events', '50')
    .action(async (app: string | undefined, o: { limit: string }) => {
      const g = program.opts<GlobalOpts>();
      const { events } = await connect(g).events({ ...(app ? { app } : {}), limit: Number(o.limit) || 50 });
      if (g.json) {
        for (const e of events) console.log(JSON.stringify(e));
        return;
      }
      const rows = [['TIME', 'APP/ENV/SERVICE', 'KIND', 'MESSAGE']];
      for (const e of events) rows.push([new Date(e.ts).toISOString().replace('T', ' ').slice(0, 19), [e.app, e.env, e.service].filter(Boolean).join('/') || '-', e.kind, e.message]);
      console.log(table(rows));
    });
}
