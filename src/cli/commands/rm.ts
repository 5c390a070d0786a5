import type { Command } from 'commander';
import { remainsEmpty, remainsRows } from '../../core/app-remains.ts';
import type { PurgeRecord } from '../../core/store.ts';
import { CliFailure, EXIT, connect, table, tty, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import { followUntil } from '../wait-release.ts';
import type { BerthClient } from '../../client/index.ts';

/** How long `rm --purge` follows the purge before it leaves the server to finish it. */
const PURGE_WAIT_MS = 10 * 60_000;

export function registerRm(program: Command): void {
  program.command('rm')
    .argument('<app>', 'app name')
    .description('remove an app: its instances leave the ingress, are stopped gracefully and removed; says what Berth still keeps of it')
    .option('--env <env>', 'only this environment (default: all)')
    .option('--purge', 'also remove everything Berth keeps of the app: configuration and secrets with their history, builds, the git ' +
      'repository and webhook source, registry images, volumes, releases (numbering starts again at 1), logs, metrics and events')
    .addHelpText('after', '\nWithout --purge the app\'s configuration, secrets, builds, images, repository, volumes and history stay ' +
      '(a later deploy picks them up); rm lists them. --purge is for the whole app and is refused while a build or deployment of it runs.')
    .action(async (app: string, o: { env?: string; purge?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      const client = connect(g);
      if (!o.purge) {
        const r = await client.remove(app, o.env);
        output(g, r, () => {
          console.log(r.removed.length ? `removing ${app}: ${r.removed.join(', ')}` : `${app}${o.env ? `/${o.env}` : ''} runs no services`);
          if (remainsEmpty(r.remains)) return;
          console.log(`\nkept (a later deploy of ${app} uses them):`);
          console.log(table(remainsRows(r.remains).map(([what, detail]) => [`  ${what}`, detail])));
          console.log(`\nremove all of it with: berth rm ${app} --purge`);
        });
        return;
      }
      const asked = await client.purge(app);
      if (!g.json) {
        if (asked.removed.length) console.log(`removing ${app}: ${asked.removed.join(', ')}`);
        console.log(`purging ${app}…`);
      }
      const rec = await follow(client, app, (why) => {
        if (tty && !g.json) process.stderr.write(`  ${why}\n`);
      });
      output(g, rec, () => {
        const rows = Object.entries(rec.removed).filter(([, what]) => what).map(([step, what]) => [`  ${step}`, what]);
        console.log(rows.length ? `purged ${app}:\n${table(rows)}` : `purged ${app}: nothing was left`);
      });
    });
}

/** Follows the purge (one streaming request) until it is done; a step that keeps failing is shown once per new reason. */
async function follow(client: BerthClient, app: string, progress: (why: string) => void): Promise<PurgeRecord> {
  let last = '';
  let rec: PurgeRecord | undefined;
  const { purge } = await followUntil<{ purge: PurgeRecord }>({
    open: (_after, on, signal) => client.followPurge(app, on.state, signal),
    timeoutS: PURGE_WAIT_MS / 1000, endsItself: true,
    onState: (st) => {
      rec = st.purge;
      if (rec.waiting && rec.waiting !== last) progress((last = rec.waiting));
      return rec.state === 'done';
    },
    timedOut: () => new CliFailure(`the purge of ${app} is not done yet (${rec?.waiting ?? 'in progress'}); the server goes on with it: ` +
      `run \`berth rm ${app} --purge\` again to follow it`, EXIT.failed),
  });
  return purge;
}
