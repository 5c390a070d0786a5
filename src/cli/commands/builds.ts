import type { Command } from 'commander';
import { ago, connect, limitOption, table, type GlobalOpts } from '../context.ts';
import { ndjson, output } from '../output.ts';
import { summaryLine } from '../../core/text.ts';
import { responseLines } from '../../client/index.ts';

export function registerBuilds(program: Command): void {
  program.command('builds')
    .argument('[app]', 'only this app')
    .description('builds from git pushes, webhooks and `berth deploy` (build: sections): commit, branch → env, status, images')
    .option('-n, --limit <n>', 'how many of the latest', '20')
    .action(async (app: string | undefined, o: { limit: string }) => {
      const g = program.opts<GlobalOpts>();
      const limit = limitOption(o.limit, 1000);
      const { builds } = await connect(g).builds({ limit, ...(app ? { app } : {}) });
      output(g, builds, () => {
        if (builds.length === 0) return void console.log(`no builds${app ? ` of ${app}` : ''} yet: git push to http://x:TOKEN@SERVER/git/APP.git`);
        const rows = [['BUILD', 'APP', 'BRANCH', 'ENV', 'COMMIT', 'STATUS', 'AGE', 'TOOK', 'MESSAGE']];
        for (const b of builds) {
          const status = b.status === 'running' && b.stage ? `running (${b.stage})` : b.status;
          // A `berth deploy` build has no branch or commit: its contexts are directories on the server.
          rows.push([b.id, b.app, b.source === 'deploy' ? '(deploy)' : b.branch, b.env, b.commit ? b.commit.slice(0, 12) : '-', status, ago(b.createdAt),
            // One short line per build (records of older servers may hold a whole log): `berth build logs ID` has the rest.
            b.finishedAt ? `${Math.round((b.finishedAt - b.createdAt) / 100) / 10}s` : '-', summaryLine(b.message, 120)]);
        }
        console.log(table(rows));
      });
    });

  const build = program.command('build').description('one build: its logs, or cancel it');
  build.command('cancel')
    .argument('<id>', 'build id (see `berth builds`)')
    .description('cancel a queued or running build (not one that is already deploying): nothing is deployed, a push is rejected')
    .action(async (id: string) => {
      const g = program.opts<GlobalOpts>();
      const { build: b } = await connect(g).cancelBuild(id);
      const what = b.source === 'deploy' ? `deployment ${b.id}` : `${b.branch} @ ${b.commit.slice(0, 12)}`;
      output(g, b, () => console.log(`build ${b.id} of ${b.app} (${what}) cancelled: ${b.message}`));
    });
  build.command('logs')
    .argument('<id>', 'build id (see `berth builds`)')
    .option('-f, --follow', 'keep printing until the build ends')
    .description('the build\'s output (build steps, tests, deploy)')
    .action(async (id: string, o: { follow?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      const res = await connect(g).buildLogs(id, { follow: !!o.follow }, ac.signal);
      // --json: NDJSON, one {"line"} per line of output (a stream, also without -f).
      try {
        if (!g.json) {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) process.stdout.write(chunk);
        } else {
          for await (const line of responseLines(res, { text: true })) ndjson({ line });
        }
      } catch (err) {
        if ((err as Error).name !== 'AbortError') throw err;
      }
    });
}
