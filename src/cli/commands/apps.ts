import type { Command } from 'commander';
import { ago, connect, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';

export function registerApps(program: Command): void {
  program.command('apps')
    .description('list apps: environments, services healthy/desired, the last deployment')
    .option('--env <env>', 'only apps in this environment')
    .action(async (o: { env?: string }) => {
      const g = program.opts<GlobalOpts>();
      const { apps } = await connect(g).apps();
      const rows = apps.filter((a) => !o.env || a.envs.includes(o.env)).map((a) => {
        const services = a.services.filter((s) => !o.env || s.env === o.env);
        return {
          name: a.name,
          envs: o.env ? [o.env] : a.envs,
          healthy: services.reduce((n, s) => n + s.healthy, 0),
          desired: services.reduce((n, s) => n + s.desired, 0),
          services: services.map((s) => ({ env: s.env, name: s.name, status: s.status, healthy: s.healthy, desired: s.desired })),
          ...(a.lastDeployment ? { lastDeployment: a.lastDeployment } : {}),
        };
      });
      output(g, rows, () => {
        if (rows.length === 0) return void console.log(o.env ? `no apps in ${o.env}` : 'no apps yet: deploy one with `berth deploy -f compose.yaml`');
        const t = [['APP', 'ENVS', 'SERVICES', 'READY', 'LAST DEPLOY']];
        for (const r of rows) {
          const names = [...new Set(r.services.map((s) => s.name))].join(',');
          const problems = r.services.filter((s) => s.status !== 'running' && s.status !== 'stopped').map((s) => `${s.env}/${s.name} ${s.status}`);
          const d = r.lastDeployment;
          t.push([r.name, r.envs.join(','), names + (problems.length ? ` (${problems.join('; ')})` : ''), `${r.healthy}/${r.desired}`,
            d ? `${ago(d.createdAt)} ago to ${d.env}, ${d.status}` : '-']);
        }
        console.log(table(t));
      });
    });
}
