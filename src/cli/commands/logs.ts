import type { Command } from 'commander';
import { CliFailure, EXIT, connect, type GlobalOpts } from '../context.ts';
import { ndjson, output } from '../output.ts';
import { responseLines, type LogsQuery } from '../../client/index.ts';

interface Line {
  service: string;
  instance: string;
  stream: string;
  time: string;
  level: string | null;
  text: string;
}

function print(l: Line, json: boolean): void {
  if (json) return ndjson(l);
  const out = `${l.time.slice(11, 23)} ${l.service}/${l.instance} | ${l.text}`;
  if (l.stream === 'stderr') process.stderr.write(out + '\n');
  else process.stdout.write(out + '\n');
}

export function registerLogs(program: Command): void {
  program.command('logs')
    .argument('<app[/service]>', 'app, or app/service')
    .description('search the logs of all replicas (kept by Berth, also for containers that are gone), newest last; -f follows all replicas live ' +
      '(--json: an array of lines, oldest first; with -f, NDJSON)')
    .option('--env <env>', 'environment', 'prod')
    .option('-f, --follow', 'keep printing new lines from every replica')
    .option('-n, --limit <lines>', 'how many of the latest matching lines', '200')
    .option('--since <time>', 'only lines after this: 1h, 30m, 2d, an ISO time')
    .option('--until <time>', 'only lines before this')
    .option('--grep <words>', 'full-text search: all words must occur; "a phrase"; prefix*')
    .option('--level <level>', 'only lines with this level (JSON logs, or a leading ERROR/WARN/INFO word)')
    .option('--stream <stream>', 'stdout or stderr')
    .option('--instance <id>', 'only this instance')
    .option('--before <cursor>', 'older page: the cursor printed after a full page')
    .action(async (target: string, o: { env: string; follow?: boolean; limit: string; since?: string; until?: string; grep?: string; level?: string; stream?: string; instance?: string; before?: string }) => {
      const g = program.opts<GlobalOpts>();
      const [app, service] = target.split('/', 2) as [string, string | undefined];
      if (!/^\d+$/.test(o.limit)) throw new CliFailure(`--limit "${o.limit}" is not a number of lines`, EXIT.usage);
      const client = connect(g);
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      const res = await client.logs(app, { env: o.env, limit: Number(o.limit), follow: o.follow ? 'true' : 'false', service, since: o.since, until: o.until, grep: o.grep,
        level: o.level as LogsQuery['level'], stream: o.stream as LogsQuery['stream'], instance: o.instance, before: o.before }, ac.signal);
      if (!o.follow) {
        const page = (await res.json()) as { lines: Line[]; next?: string };
        const lines = [...page.lines].reverse();
        output(g, lines, () => {
          for (const l of lines) print(l, false);
          if (page.next) process.stderr.write(`(older lines: add --before ${page.next})\n`);
        });
        return;
      }
      try {
        for await (const line of responseLines(res)) print(JSON.parse(line) as Line, !!g.json);
      } catch (err) {
        if ((err as Error).name !== 'AbortError') throw err;
      }
    });
}
