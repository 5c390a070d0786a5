import type { Command } from 'commander';
import { grantPool, listPools, revokePool, setPoolQuota, type PoolView } from '../../client/pool-client.ts';
import { CliFailure, EXIT, connect, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import { HOST_LABEL } from '../../core/ports.ts';

const cpus = (n: number): string => `${Math.round((n / 1e9) * 100) / 100}`;
const gib = (b: number): string => `${Math.round((b / 1024 ** 3) * 10) / 10}G`;

function poolRows(pools: PoolView[]): string {
  const rows = [['POOL', 'HOSTS', 'CPU (RESERVED/ALL)', 'MEMORY (RESERVED/ALL)', 'USED (INSTANCES, CPU, MEMORY)', 'QUOTA', 'TEAMS']];
  for (const p of pools) {
    rows.push([p.name, p.hosts.join(',') || '-', `${cpus(p.reserved.nanoCpus)}/${cpus(p.capacity.nanoCpus)}`, `${gib(p.reserved.memoryBytes)}/${gib(p.capacity.memoryBytes)}`,
      `${p.used.instances}, ${cpus(p.used.nanoCpus)}, ${gib(p.used.memoryBytes)}`, p.quotaShown, p.teams.length ? p.teams.map((t) => (t === '*' ? '* (every team)' : t)).join(',') : '(none: owners only)']);
  }
  return table(rows);
}

/** `none` removes a limit; anything else is sent as written (the server parses and names what is wrong). */
function limit(v: string | undefined, flag: string): string | null | undefined {
  if (v === undefined) return undefined;
  if (v === 'none') return null;
  if (v.trim() === '') throw new CliFailure(`${flag}: give a value, or none to remove the limit`, EXIT.usage);
  return v;
}

/** `berth pools`, `berth pool quota|grant|revoke`: pools as objects — quotas and the teams granted each. */
export function registerPools(program: Command): void {
  program.command('pools')
    .description('pools: hosts, CPU and memory reserved of capacity, what is placed there (desired), quota, granted teams')
    .addHelpText('after', `
A pool exists when a host carries it (label ${HOST_LABEL.pool}) or an owner gives it a quota or a grant.
"default" is open to every team (*) until an owner revokes that; other pools only to granted teams.
Owners see every pool; others the pools open to them, with only their own teams named.

Examples:
  berth pools
  berth --json pools`)
    .action(async () => {
      const g = program.opts<GlobalOpts>();
      const r = await listPools(connect(g));
      output(g, r, () => console.log(poolRows(r.pools)));
    });

  const pool = program.command('pool').description("set a pool's quota, grant or revoke a team (owners)");
  pool.command('quota')
    .argument('<pool>', 'pool name (berth pools); a new name makes the pool')
    .option('--cpus <n>', 'CPUs at most (e.g. 8, 0.5); none removes the limit')
    .option('--memory <size>', 'memory at most (e.g. 16g, 512m); none removes the limit')
    .option('--instances <n>', 'instances (replicas) at most; none removes the limit')
    .description("set a pool's quota: deploys, promotions and scale-ups that would place more there are refused (owners included); limits not given stay as they are")
    .addHelpText('after', `
What counts: every service placed in the pool, replicas × its reservation (Compose
deploy.resources.reservations, else its limits). In a pool with a CPU or memory quota, a service
that reserves none of it is refused. A pool already over its quota can still shrink.

Examples:
  berth pool quota a --cpus 8 --memory 16g --instances 50
  berth pool quota a --cpus none`)
    .action(async (name: string, o: { cpus?: string; memory?: string; instances?: string }) => {
      const g = program.opts<GlobalOpts>();
      const body: { cpus?: string | null; memory?: string | null; instances?: number | null } = {};
      const c = limit(o.cpus, '--cpus');
      const m = limit(o.memory, '--memory');
      const i = limit(o.instances, '--instances');
      if (c !== undefined) body.cpus = c;
      if (m !== undefined) body.memory = m;
      if (i !== undefined) {
        if (i !== null && !/^\d+$/.test(i)) throw new CliFailure(`--instances "${i}": write a whole number such as 50, or none`, EXIT.usage);
        body.instances = i === null ? null : Number(i);
      }
      if (Object.keys(body).length === 0) throw new CliFailure('nothing to change: give --cpus, --memory or --instances (none removes one)', EXIT.usage);
      const r = await setPoolQuota(connect(g), name, body);
      output(g, r, () => console.log(`pool ${r.pool.name}: quota ${r.pool.quotaShown}`));
    });
  pool.command('grant')
    .argument('<pool>', 'pool name; a new name makes the pool')
    .argument('<team>', "team name (berth team ls), or '*' for every team")
    .description("let a team's apps deploy into a pool")
    .addHelpText('after', `
Examples:
  berth pool grant gpu ml
  berth pool grant batch '*'`)
    .action(async (name: string, team: string) => {
      const g = program.opts<GlobalOpts>();
      const r = await grantPool(connect(g), name, team);
      output(g, r, () => console.log(`pool ${r.pool.name}: ${r.granted ? 'granted to' : 'already granted to'} ${team === '*' ? 'every team' : `team ${team}`} (teams: ${r.pool.teams.join(', ')})`));
    });
  pool.command('revoke')
    .argument('<pool>', 'pool name')
    .argument('<team>', "team name, or '*' (default is granted to '*' until you revoke it)")
    .description("take a pool away from a team: running apps stay; their new deploys and scale-ups there are refused")
    .addHelpText('after', `
Examples:
  berth pool revoke default '*'    # restrict default to the teams you grant it
  berth pool revoke gpu ml`)
    .action(async (name: string, team: string) => {
      const g = program.opts<GlobalOpts>();
      const r = await revokePool(connect(g), name, team);
      output(g, r, () => console.log(r.revoked ? `pool ${r.pool.name}: revoked from ${team === '*' ? 'every team' : `team ${team}`} (teams: ${r.pool.teams.join(', ') || 'none: owners only'})` : `pool ${r.pool.name} was not granted to ${team}`));
    });
}
