import type { Command } from 'commander';
import { audit, auditJsonl, auditVerify } from '../../client/auth-client.ts';
import { CliFailure, connect, EXIT, limitOption, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import { parseDuration } from '../../core/spec/units.ts';

/** `1h`, `7d` (before now), an ISO time or epoch milliseconds → epoch milliseconds. */
function when(name: string, v: string): number {
  if (/^\d{12,}$/.test(v)) return Number(v);
  if (/^\d/.test(v) && /[a-z]$/i.test(v)) {
    const d = parseDuration(v, { days: true });
    if (d.error === undefined) return Date.now() - d.value;
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new CliFailure(`--${name} "${v}": write e.g. 1h, 7d, 2026-01-31T12:00:00Z or epoch milliseconds`, EXIT.usage);
  return t;
}

export function registerAudit(program: Command): void {
  const a = program.command('audit')
    .description('the audit log (owners): every change and every secret read — who, from where, what, the result')
    .option('--actor <who>', 'a user or token name, or a subject (user:ID, token:ID, admin)')
    .option('--app <app>').option('--action <text>', 'part of the action, e.g. scale, DELETE, git.push')
    .option('--since <when>', 'e.g. 1h, 7d, an ISO time').option('--until <when>')
    .option('-n, --limit <n>', 'at most this many (newest)', '100')
    .option('--jsonl', 'export as JSON lines (one entry per line, with its hashes)')
    .addHelpText('after', `
Entries are append-only and hash-chained: \`berth audit verify\` finds an edited, removed or inserted
row. Entries older than BERTH_AUDIT_RETENTION_DAYS (default 365) are removed; the chain stays
verifiable from the first kept one.`)
    .action(async (o: { actor?: string; app?: string; action?: string; since?: string; until?: string; limit: string; jsonl?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      const limit = limitOption(o.limit, 10000);
      const f = {
        ...(o.actor ? { actor: o.actor } : {}), ...(o.app ? { app: o.app } : {}), ...(o.action ? { action: o.action } : {}),
        ...(o.since ? { since: when('since', o.since) } : {}), ...(o.until ? { until: when('until', o.until) } : {}), limit,
      };
      if (o.jsonl) {
        process.stdout.write(await auditJsonl(connect(g), f));
        return;
      }
      const { entries } = await audit(connect(g), f);
      output(g, entries, () => {
        const rows = [['SEQ', 'TIME', 'WHO', 'FROM', 'ACTION', 'APP/ENV', 'STATUS', 'RESULT']];
        for (const e of entries) {
          rows.push([String(e.seq), new Date(e.ts).toISOString().slice(0, 19), e.actorName || e.actor, e.ip, e.action, [e.app, e.env].filter(Boolean).join('/') || '-',
            String(e.status), e.result.slice(0, 80)]);
        }
        console.log(entries.length ? table(rows) : 'no audit entries match');
      });
    });
  a.command('verify').description('check the hash chain; exit 1 naming the first row that does not hold').action(async () => {
    const g = program.opts<GlobalOpts>();
    const r = await auditVerify(connect(g));
    output(g, r, () => console.log(r.ok
      ? `audit log intact: ${r.checked} entries from #${r.retainedFrom} verified`
      : `audit log TAMPERED at entry #${r.firstBad!.seq}: ${r.firstBad!.reason} (${r.checked} checked)`));
    if (!r.ok) process.exitCode = EXIT.failed;
  });
}
