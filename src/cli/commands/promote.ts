import type { Command } from 'commander';
import { connect, CliFailure, EXIT, progress, progressDone, type GlobalOpts } from '../context.ts';

export function registerPromote(program: Command): void {
  program.command('promote <app>')
    .description('deploy to --to the identical image digests that are healthy in --from (no rebuild), with --to\'s own configuration; waits like deploy')
    .requiredOption('--from <env>', 'source environment (its current releases must be healthy)')
    .requiredOption('--to <env>', 'target environment')
    .option('--no-wait', 'return once the deployment is accepted')
    .option('--timeout <seconds>', 'give up waiting after this long (exit 1)', '600')
    .action(async (app: string, o: { from: string; to: string; wait: boolean; timeout: string }) => {
      const g = program.opts<GlobalOpts>();
      const client = connect(g);
      const lastEvent = (await client.events({ limit: 1 })).events.at(-1)?.id ?? 0;
      const res = await client.promote(app, o.from, o.to);
      const id = res.deployment.id;
      if (!g.json) {
        process.stderr.write(`promoting ${app} from ${o.from} to ${o.to} (deployment ${id})\n`);
        for (const [svc, img] of Object.entries(res.images)) process.stderr.write(`  ${svc}: ${img}\n`);
      }
      if (!o.wait) {
        if (g.json) console.log(JSON.stringify(res));
        return;
      }
      const deadline = Date.now() + Number(o.timeout) * 1000;
      const ac = new AbortController();
      const stream = client.streamEvents({ app, env: o.to, after: lastEvent }, (e) => {
        if (g.json) console.log(JSON.stringify({ event: e }));
        else if (/failed|crashed|rollback|switched|release\.|stopping|reloaded/.test(e.kind)) progressDone(`  ${e.kind.padEnd(20)} ${e.message}`);
      }, ac.signal).catch(() => undefined);
      try {
        let last = '';
        for (;;) {
          const st = await client.deployment(id);
          const line = st.services.map((s) => s.instances ? `${s.name} ${s.healthy}/${s.desired} healthy` : `${s.name} pending`).join(' · ');
          const text = `[${st.deployment.status}] ${line}`;
          if (text !== last) {
            if (g.json) console.log(JSON.stringify({ status: st.deployment.status }));
            else progress(text);
            last = text;
          }
          if (st.deployment.status === 'succeeded') {
            if (g.json) console.log(JSON.stringify({ deployment: { id, status: 'succeeded' }, images: res.images }));
            else progressDone(`✔ ${app} promoted from ${o.from} to ${o.to}: ${line}`);
            return;
          }
          if (st.deployment.status === 'failed') {
            progressDone();
            throw new CliFailure(`promotion deployment ${id} failed: ${st.deployment.message}`, EXIT.failed);
          }
          if (Date.now() > deadline) {
            progressDone();
            throw new CliFailure(`deployment ${id} still ${st.deployment.status} after ${o.timeout}s. It goes on in the background; see \`berth status ${app}\``, EXIT.failed);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        ac.abort();
        await stream;
      }
    });
}
