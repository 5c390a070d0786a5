import type { Command } from 'commander';
import { CliFailure, EXIT, connect, type GlobalOpts } from '../context.ts';
import { ApiError } from '../../client/index.ts';

export function registerLogs(program: Command): void {
  program.command('logs')
    .argument('<app[/service]>', 'app, or app/service')
    .description('print logs of all replicas merged, each line prefixed with its instance')
    .option('--env <env>', 'environment', 'prod')
    .option('-f, --follow', 'keep printing new lines')
    .option('-n, --tail <lines>', 'lines per instance to start with', '200')
    .action(async (target: string, o: { env: string; follow?: boolean; tail: string }) => {
      const g = program.opts<GlobalOpts>();
      const [app, service] = target.split('/', 2) as [string, string | undefined];
      if (!/^\d+$/.test(o.tail)) throw new CliFailure(`--tail "${o.tail}" is not a number of lines`, EXIT.usage);
      const q = new URLSearchParams({ env: o.env, tail: o.tail, follow: o.follow ? 'true' : 'false' });
      if (service) q.set('service', service);
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      const res = await connect(g).raw('GET', `/v1/apps/${encodeURIComponent(app)}/logs?${q}`, undefined, ac.signal);
      if (!res.ok) {
        const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
        throw new ApiError(res.status, body.error?.code ?? 'error', body.error?.message ?? `HTTP ${res.status}`);
      }
      const dec = new TextDecoder();
      let buf = '';
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += dec.decode(chunk, { stream: true });
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (!line) continue;
            if (g.json) {
              console.log(line);
              continue;
            }
            const l = JSON.parse(line) as { service: string; instance: string; stream: string; text: string };
            const out = `${l.service}/${l.instance} | ${l.text}`;
            if (l.stream === 'stderr') process.stderr.write(out + '\n');
            else process.stdout.write(out + '\n');
          }
        }
      } catch (err) {
        if ((err as Error).name !== 'AbortError') throw err;
      }
    });
}
