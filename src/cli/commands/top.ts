import type { Command } from 'commander';
import { connect, table, timeoutSeconds, type GlobalOpts } from '../context.ts';
import type { TopView } from '../../client/index.ts';

function bytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)}${u[i]}`;
}

function ms(s: number | null): string {
  return s === null ? '-' : `${(s * 1000).toFixed(s < 0.01 ? 1 : 0)}ms`;
}

/** The tables of one snapshot, as text. */
export function renderTop(t: TopView): string {
  const out: string[] = [];
  const svc = [['APP', 'ENV', 'SERVICE', 'INSTANCES', 'CPU%', 'MEM']];
  for (const s of t.services) svc.push([s.app, s.env, s.service, `${s.instances}/${s.desired ?? '-'}`, s.cpuPercent.toFixed(1), bytes(s.memoryBytes)]);
  out.push(table(svc));
  out.push('');
  const inst = [['INSTANCE', 'SERVICE', 'CPU%', 'MEM', 'LIMIT', 'BLK READ', 'BLK WRITE']];
  for (const i of t.instances) inst.push([i.instance, `${i.app}/${i.env}/${i.service}`, i.cpuPercent.toFixed(1), bytes(i.memoryBytes), bytes(i.memoryLimitBytes), bytes(i.blockReadBytes), bytes(i.blockWriteBytes)]);
  out.push(t.instances.length ? table(inst) : 'no running instances sampled yet');
  out.push('');
  const rt = [['ROUTE', 'REQ/S', '2XX', '3XX', '4XX', '5XX', 'P50', 'P95', 'P99']];
  for (const r of t.routes) rt.push([r.route, r.ratePerSec.toFixed(2), String(r.s2xx), String(r.s3xx), String(r.s4xx), String(r.s5xx), ms(r.p50), ms(r.p95), ms(r.p99)]);
  out.push(t.routes.length ? table(rt) : `no requests in the last ${Math.round(t.windowMs / 1000)} s`);
  return out.join('\n');
}

export function registerTop(program: Command): void {
  program.command('top')
    .argument('[app]', 'app name; all apps when omitted')
    .description('live CPU, memory and request figures per service, instance and route')
    .option('--env <env>', 'only this environment')
    .option('--once', 'print one snapshot and exit (the default when stdout is not a terminal)')
    .option('--interval <seconds>', 'refresh interval on a terminal', '2')
    .action(async (app: string | undefined, o: { env?: string; once?: boolean; interval: string }) => {
      const g = program.opts<GlobalOpts>();
      const every = Math.max(0.5, timeoutSeconds(o.interval, '--interval')) * 1000;
      const client = connect(g);
      const get = () => client.top({ ...(app ? { app } : {}), ...(o.env ? { env: o.env } : {}) });
      if (g.json) return void console.log(JSON.stringify(await get()));
      if (o.once || !process.stdout.isTTY) return void console.log(renderTop(await get()));
      let stop = false;
      process.once('SIGINT', () => (stop = true));
      while (!stop) {
        const t = await get();
        // Home + clear screen, then the table: a redraw, not a scroll.
        process.stdout.write(`\x1b[H\x1b[2J${new Date(t.at).toISOString()}  berth top${app ? ` ${app}` : ''}  (Ctrl-C to quit)\n\n${renderTop(t)}\n`);
        const until = Date.now() + every;
        while (!stop && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      }
    });
}
