import type { Command } from 'commander';
import {
  addGrant, addTeam, assignApp, createToken, listGrants, listTeams, listTokens, removeGrant, removeTeam, revokeToken, unassignApp, type Scope,
} from '../../client/auth-client.ts';
import { ago, CliFailure, connect, EXIT, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import { registerPolicy } from './approve.ts';

const ROLE_HELP = 'viewer | operator (restart, scale, reload, logs) | deployer (+ deploy, promote, rollback, push) | maintainer (+ config, secrets, exec) | admin (+ remove, grant within the team) | owner (everything, team "*")';

const where = (g: { team: string; app: string; env: string }) => `${g.team}/${g.app}/${g.env}`;

/** `ROLE:TEAM[/APP[/ENV]]` → a scope (`deployer:web/shop/test`). */
export function parseScope(s: string): Scope {
  const m = /^([a-z]+):([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/.exec(s);
  if (!m) throw new CliFailure(`--grant "${s}": write ROLE:TEAM[/APP[/ENV]], e.g. deployer:web/shop/test or viewer:web`, EXIT.usage);
  return { role: m[1]! as Scope['role'], team: m[2]!, ...(m[3] ? { app: m[3] } : {}), ...(m[4] ? { env: m[4] } : {}) };
}

export function registerTeam(program: Command): void {
  const t = program.command('team').description('teams own apps; people get roles on a team (or one of its apps or environments) with `berth grant`');
  t.command('add').argument('<name>').description('make a team (owners)').action(async (name: string) => {
    const g = program.opts<GlobalOpts>();
    const r = await addTeam(connect(g), name);
    output(g, r, () => console.log(`team ${name} added; give it apps with \`berth team assign ${name} APP\``));
  });
  t.command('ls').description('teams you have a role in (owners: all) and their apps').action(async () => {
    const g = program.opts<GlobalOpts>();
    const { teams } = await listTeams(connect(g));
    output(g, teams, () => {
      const rows = [['TEAM', 'APPS', 'ADDED', 'BY']];
      for (const x of teams) rows.push([x.name, x.apps.join(' ') || '-', ago(x.createdAt), x.createdBy]);
      console.log(teams.length ? table(rows) : 'no teams: an owner makes one with `berth team add NAME`');
    });
  });
  t.command('rm').argument('<name>').description('remove a team that owns no app (owners)').action(async (name: string) => {
    const g = program.opts<GlobalOpts>();
    await removeTeam(connect(g), name);
    output(g, { removed: name }, () => console.log(`removed team ${name}`));
  });
  t.command('assign').argument('<team>').argument('<app>').description('give an app to a team (owners); a new app deployed by a team member is its team\'s already')
    .action(async (team: string, app: string) => {
      const g = program.opts<GlobalOpts>();
      const r = await assignApp(connect(g), team, app);
      output(g, r, () => console.log(`${app} belongs to team ${team}${r.previous ? ` (was ${r.previous})` : ''}`));
    });
  t.command('unassign').argument('<team>').argument('<app>').description('take an app from its team: only owners may touch it then (owners)')
    .action(async (team: string, app: string) => {
      const g = program.opts<GlobalOpts>();
      await unassignApp(connect(g), team, app);
      output(g, { app, team: null }, () => console.log(`${app} belongs to no team now`));
    });

  registerPolicy(t, program);

  const gr = program.command('grant').description('roles of people on teams, apps and environments');
  gr.command('add')
    .argument('<user>').argument('<role>', ROLE_HELP)
    .option('--team <team>', 'the team (owner: omit)').option('--app <app>', 'only this app of the team (default: all)').option('--env <env>', 'only this environment (default: all)')
    .description('give a user a role (owners; a team\'s admins within what they hold)')
    .addHelpText('after', `
A role in one environment never reaches another: deployer --env test cannot deploy to prod.

Examples:
  berth grant add ann deployer --team web --env test
  berth grant add bob operator --team web --app shop
  berth grant add carol owner`)
    .action(async (user: string, role: string, o: { team?: string; app?: string; env?: string }) => {
      const g = program.opts<GlobalOpts>();
      if (!o.team && role !== 'owner') throw new CliFailure('give the team: --team TEAM (only the owner role is for the whole installation)', EXIT.usage);
      const r = await addGrant(connect(g), user, { role: role as Scope['role'], team: o.team ?? '*', ...(o.app ? { app: o.app } : {}), ...(o.env ? { env: o.env } : {}) });
      output(g, r.grant, () => console.log(`${user} is ${role} of ${where(r.grant)} (grant ${r.grant.id})`));
    });
  gr.command('ls').option('--team <team>').option('--user <user>').description('grants you may see').action(async (o: { team?: string; user?: string }) => {
    const g = program.opts<GlobalOpts>();
    const { grants } = await listGrants(connect(g), { ...(o.team ? { team: o.team } : {}), ...(o.user ? { user: o.user } : {}) });
    output(g, grants, () => {
      const rows = [['ID', 'WHO', 'ROLE', 'TEAM/APP/ENV', 'BY']];
      for (const x of grants) rows.push([x.id, 'user' in x ? x.user : `token ${x.token}`, x.role, where(x), x.createdBy]);
      console.log(grants.length ? table(rows) : 'no grants');
    });
  });
  gr.command('rm').argument('<id>').description('take a role away').action(async (id: string) => {
    const g = program.opts<GlobalOpts>();
    await removeGrant(connect(g), id);
    output(g, { removed: id }, () => console.log(`removed grant ${id}`));
  });

  const tk = program.command('token').description('API tokens for CI: scoped to roles you hold, expiring, revocable, shown once');
  tk.command('create')
    .argument('<name>', 'what it is for, e.g. "ci shop"')
    .requiredOption('--grant <scope...>', 'what it may do, as ROLE:TEAM[/APP[/ENV]] (one or more), e.g. deployer:web/shop/test')
    .option('--expires <duration>', 'lifetime, e.g. 30d, 12h (default 90d, at most 365d)')
    .description('make a token (its secret is printed once; only its hash is kept)')
    .action(async (name: string, o: { grant: string[]; expires?: string }) => {
      const g = program.opts<GlobalOpts>();
      const r = await createToken(connect(g), name, o.grant.map(parseScope), o.expires);
      output(g, r, () => {
        console.log(r.token);
        process.stderr.write(`token ${r.id} "${name}" expires ${new Date(r.expiresAt).toISOString()}: this is the only time it is shown\n`);
      });
    });
  tk.command('ls').description('your tokens (owners: all); never their secrets').action(async () => {
    const g = program.opts<GlobalOpts>();
    const { tokens } = await listTokens(connect(g));
    output(g, tokens, () => {
      const rows = [['ID', 'NAME', 'BY', 'EXPIRES', 'STATE', 'LAST USED', 'GRANTS']];
      const now = Date.now();
      for (const x of tokens) {
        rows.push([x.id, x.name, x.createdBy, new Date(x.expiresAt).toISOString().slice(0, 16), x.revokedAt ? 'revoked' : x.expiresAt <= now ? 'expired' : 'active',
          x.lastUsedAt ? ago(x.lastUsedAt) : 'never', x.grants.map((s) => `${s.role}:${where(s)}`).join(' ')]);
      }
      console.log(tokens.length ? table(rows) : 'no tokens: make one with `berth token create NAME --grant ROLE:TEAM`');
    });
  });
  tk.command('revoke').argument('<id>').description('revoke a token at once').action(async (id: string) => {
    const g = program.opts<GlobalOpts>();
    const r = await revokeToken(connect(g), id);
    output(g, r, () => console.log(r.revoked ? `revoked token ${id}` : `token ${id} was already revoked`));
  });
}
