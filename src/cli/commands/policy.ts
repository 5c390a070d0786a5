import type { Command } from 'commander';
import { addExemption, getPolicies, listExemptions, revokeExemption, setGuardPolicy } from '../../client/policy-client.ts';
import { GUARD_FIELDS, GUARD_KEYS, type GuardKey, type GuardPolicy } from '../../core/guard.ts';
import { parseSize } from '../../core/spec/units.ts';
import { ago, CliFailure, connect, EXIT, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';

const LISTS = new Set(['capabilities', 'bindRoots', 'sysctls']);
const NUMBERS = new Set(['pidsLimit']);

/** `field=value` → a policy layer; `field=` leaves the field to the layers below. */
export function parsePolicyArgs(args: readonly string[], base: GuardPolicy = {}): GuardPolicy {
  const out: Record<string, unknown> = { ...base };
  for (const a of args) {
    const eq = a.indexOf('=');
    const rawKey = eq < 0 ? a : a.slice(0, eq);
    const key = rawKey === 'memoryDefault' ? 'memoryDefaultBytes' : rawKey;
    if (eq < 0 || !(GUARD_FIELDS as readonly string[]).includes(key)) {
      throw new CliFailure(`"${a}": write FIELD=VALUE with FIELD one of ${GUARD_FIELDS.map((f) => (f === 'memoryDefaultBytes' ? 'memoryDefault' : f)).join(', ')}`, EXIT.usage);
    }
    const v = a.slice(eq + 1).trim();
    if (v === '') {
      delete out[key];
      continue;
    }
    if (LISTS.has(key)) out[key] = v === 'none' ? [] : v.split(',').map((x) => x.trim()).filter(Boolean).map((x) => (key === 'capabilities' ? x.toUpperCase().replace(/^CAP_/, '') : x));
    else if (NUMBERS.has(key)) {
      if (!/^\d+$/.test(v)) throw new CliFailure(`${rawKey}=${v}: a whole number (0: no limit)`, EXIT.usage);
      out[key] = Number(v);
    } else if (key === 'memoryDefaultBytes') {
      const p = v === '0' ? { value: 0 } : parseSize(v);
      if (p.error !== undefined) throw new CliFailure(`${rawKey}=${v}: ${p.error}`, EXIT.usage);
      out[key] = p.value;
    } else if (v === 'true' || v === 'false') out[key] = v === 'true';
    else throw new CliFailure(`${rawKey}=${v}: true or false`, EXIT.usage);
  }
  return out as GuardPolicy;
}

/** `berth policy show|set|history|exempt|exemptions|revoke`: container guardrails. */
export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('container guardrails: what containers may take from the host, per team and/or environment, and exemptions');

  policy.command('show')
    .option('--team <team>', 'the team whose policy applies').option('--env <env>', 'the environment (default prod when --team or --app is given)')
    .option('--app <app>', 'the policy that applies to this app (its team)')
    .description('the policy that applies (field, value, and the layer that set it), and the stored layers')
    .action(async (o: { team?: string; env?: string; app?: string }) => {
      const g = program.opts<GlobalOpts>();
      const r = await getPolicies(connect(g), { ...(o.team ? { team: o.team } : {}), ...(o.env ? { env: o.env } : {}), ...(o.app ? { app: o.app } : {}) });
      output(g, r, () => {
        if (r.effective) {
          const where = r.effective.team || r.effective.env ? `team ${r.effective.team || '(none)'}, env ${r.effective.env || '(any)'}` : 'the installation';
          console.log(`Policy for ${where}:`);
          console.log(table([['FIELD', 'VALUE', 'SET BY'], ...Object.entries(r.effective.shown).map(([k, v]) => [k === 'memoryDefaultBytes' ? 'memoryDefault' : k, v, r.effective!.from[k] ?? ''])]));
        }
        if (r.layers.length) {
          console.log('\nStored layers:');
          console.log(table([['SCOPE', 'VERSION', 'SET', 'BY', 'FIELDS'], ...r.layers.map((l) => [l.scope, String(l.version), ago(l.setAt), l.setBy, JSON.stringify(l.policy)])]));
        } else console.log('\nNo layers stored: Berth\'s built-in policy applies.');
      });
    });

  policy.command('set')
    .argument('[field=value...]', `fields to set (${GUARD_FIELDS.map((f) => (f === 'memoryDefaultBytes' ? 'memoryDefault' : f)).join(', ')}); FIELD= inherits it again`)
    .option('--team <team>', 'the team\'s layer (team admins may tighten it; owners anything)').option('--env <env>', 'the environment\'s layer')
    .option('--replace', 'replace the layer with exactly these fields (default: change only these fields)')
    .description('set a policy layer (a new version): e.g. `berth policy set --team web --env prod readOnly=true pidsLimit=512`')
    .action(async (args: string[] = [], o: { team?: string; env?: string; replace?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      const c = connect(g);
      const team = o.team ?? '';
      const env = o.env ?? '';
      let base: GuardPolicy = {};
      if (!o.replace) {
        const cur = await getPolicies(c, { ...(team ? { team } : {}), ...(env ? { env } : {}) });
        base = cur.layers.find((l) => l.team === team && l.env === env)?.policy ?? {};
      }
      const r = await setGuardPolicy(c, team, env, parsePolicyArgs(args, base));
      output(g, r, () => console.log(`policy of ${r.layer.scope} is now version ${r.layer.version}: ${JSON.stringify(r.layer.policy)}`));
    });

  policy.command('history')
    .option('--team <team>').option('--env <env>')
    .description('every version of one layer, newest first')
    .action(async (o: { team?: string; env?: string }) => {
      const g = program.opts<GlobalOpts>();
      const r = await getPolicies(connect(g), { team: o.team ?? '', env: o.env ?? '', history: true });
      output(g, r.layers, () => console.log(r.layers.length
        ? table([['VERSION', 'SET', 'BY', 'FIELDS'], ...r.layers.map((l) => [String(l.version), ago(l.setAt), l.setBy, JSON.stringify(l.policy)])])
        : 'no versions of this layer'));
    });

  policy.command('exempt')
    .argument('<app[/service]>', 'the app, or one service of it').argument('<key>', `the refused key: ${GUARD_KEYS.join(', ')}`)
    .requiredOption('--env <env>', 'the environment it holds in (only there)')
    .requiredOption('--reason <text>', 'why (kept with it and in the audit log)')
    .requiredOption('--expires <duration>', 'how long it holds, e.g. 7d or 12h (at most 90d)')
    .description('let one refused key through for one app (or service) in one environment, until it expires (admins of the app\'s team)')
    .action(async (target: string, key: string, o: { env: string; reason: string; expires: string }) => {
      const g = program.opts<GlobalOpts>();
      if (!(GUARD_KEYS as readonly string[]).includes(key)) throw new CliFailure(`key "${key}": one of ${GUARD_KEYS.join(', ')}`, EXIT.usage);
      const [app, service] = target.split('/') as [string, string?];
      const r = await addExemption(connect(g), { app, ...(service ? { service } : {}), env: o.env, key: key as GuardKey, reason: o.reason, expires: o.expires });
      const e = r.exemption;
      output(g, r, () => console.log(`exemption ${e.id}: ${e.key} of ${e.app}${e.service === '*' ? '' : `/${e.service}`} in ${e.env} until ${new Date(e.expiresAt).toISOString()} ` +
        '(deploys after that are refused again; running containers are not stopped)'));
    });

  policy.command('exemptions')
    .option('--app <app>')
    .description('exemptions (active, expired, revoked) of the apps you can see')
    .action(async (o: { app?: string }) => {
      const g = program.opts<GlobalOpts>();
      const { exemptions } = await listExemptions(connect(g), o.app);
      output(g, exemptions, () => console.log(exemptions.length
        ? table([['ID', 'APP', 'SERVICE', 'ENV', 'KEY', 'STATUS', 'EXPIRES', 'BY', 'REASON'],
          ...exemptions.map((e) => [e.id, e.app, e.service, e.env, e.key, e.status, new Date(e.expiresAt).toISOString(), e.createdBy, e.reason])])
        : 'no exemptions'));
    });

  policy.command('revoke')
    .argument('<id>', 'the exemption (from `berth policy exemptions`)')
    .description('end an exemption now (running containers keep running; the next deploy is checked)')
    .action(async (id: string) => {
      const g = program.opts<GlobalOpts>();
      const r = await revokeExemption(connect(g), id);
      output(g, r, () => console.log(r.revoked ? `exemption ${id} revoked` : `exemption ${id} was not active (${r.exemption.status})`));
    });
}
