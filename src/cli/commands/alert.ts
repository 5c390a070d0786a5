import type { Command } from 'commander';
import { CliFailure, EXIT, ago, connect, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import type { Body } from '../../client/index.ts';

export function registerAlert(program: Command): void {
  const a = program.command('alert').description('alert rules over restarts, latency, 5xx ratio, host disk and memory; webhooks on firing and resolved');
  a.command('set')
    .argument('<name>', 'rule name')
    .requiredOption('--metric <metric>', 'restarts | p95_latency (s) | error_ratio (0-1) | host_disk (0-1) | host_memory (0-1)')
    .requiredOption('--threshold <n>', 'fires when the value is above this')
    .option('--window <duration>', 'look-back window, e.g. 5m', '5m')
    .option('--for <duration>', 'how long it must hold before firing', '0s')
    .option('--app <app>').option('--env <env>').option('--service <service>')
    .option('--webhook <url>', 'POST JSON notifications here (with retries)')
    .description('create or replace a rule')
    .action(async (name: string, o: { metric: string; threshold: string; window: string; for: string; app?: string; env?: string; service?: string; webhook?: string }) => {
      const g = program.opts<GlobalOpts>();
      const threshold = o.threshold.trim() === '' ? NaN : Number(o.threshold);
      if (!Number.isFinite(threshold)) throw new CliFailure(`--threshold "${o.threshold}" is not a number: write e.g. 3 (restarts), 0.5 (seconds of p95_latency) or 0.05 (a ratio)`, EXIT.usage);
      const r = await connect(g).setAlert(name, {
        metric: o.metric as Body<'/v1/alerts/{name}', 'put'>['metric'], threshold, window: o.window, for: o.for,
        ...(o.app ? { app: o.app } : {}), ...(o.env ? { env: o.env } : {}), ...(o.service ? { service: o.service } : {}), ...(o.webhook ? { webhook: o.webhook } : {}),
      });
      output(g, r, () => console.log(`alert ${name} set`));
    });
  a.command('ls').description('rules and their state').action(async () => {
    const g = program.opts<GlobalOpts>();
    const { alerts } = await connect(g).alerts();
    output(g, alerts, () => {
      const rows = [['NAME', 'STATE', 'SINCE', 'METRIC', 'VALUE', 'THRESHOLD', 'SCOPE', 'WEBHOOK']];
      for (const x of alerts) {
        rows.push([x.name, x.state, ago(x.since), x.rule.metric, x.value === undefined ? '-' : String(Math.round(x.value * 1000) / 1000), String(x.rule.threshold),
          [x.rule.app, x.rule.service].filter(Boolean).join('/') || 'all', x.rule.webhook ?? '-']);
      }
      console.log(alerts.length ? table(rows) : 'no alert rules: add one with `berth alert set`');
    });
  });
  a.command('rm').argument('<name>').description('remove a rule').action(async (name: string) => {
    const g = program.opts<GlobalOpts>();
    await connect(g).removeAlert(name);
    output(g, { removed: name }, () => console.log(`removed alert ${name}`));
  });
}
