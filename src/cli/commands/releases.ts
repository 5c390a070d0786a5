import type { Command } from 'commander';
import { ago, connect, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';

export function registerReleases(program: Command): void {
  program.command('releases')
    .argument('<app>', 'app name')
    .description('release history: image, digest, strategy, who, when, outcome (current release marked *)')
    .option('--env <env>', 'only this environment')
    .option('--service <service>', 'only this service')
    .action(async (app: string, o: { env?: string; service?: string }) => {
      const g = program.opts<GlobalOpts>();
      const { releases } = await connect(g).releases(app, { ...(o.env ? { env: o.env } : {}), ...(o.service ? { service: o.service } : {}) });
      output(g, releases, () => {
        if (releases.length === 0) return void console.log(`no releases of ${app}`);
        const rows = [['', 'ENV', 'SERVICE', 'REL', 'STATUS', 'STRATEGY', 'IMAGE', 'DIGEST', 'BY', 'AGE', 'MESSAGE']];
        for (const r of releases) {
          rows.push([r.current ? '*' : '', r.env, r.service, String(r.seq), r.status, r.strategy, r.image, r.imageId.replace(/^sha256:/, '').slice(0, 12),
            r.createdBy, ago(r.createdAt), r.message]);
        }
        console.log(table(rows));
      });
    });
}
