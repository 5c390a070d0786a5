import type { Command } from 'commander';
import { approve, deny, listApprovals, listPolicies, setPolicy, type ApprovalStatus } from '../../client/auth-client.ts';
import { ago, CliFailure, connect, EXIT, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';

const STATUSES = ['pending', 'approved', 'denied', 'failed'];

export function registerApprove(program: Command): void {
  program.command('approve')
    .argument('<id>', 'the approval (from `berth approvals` or the deploy that asked for it)')
    .option('--deny', 'refuse it instead')
    .description("approve a deploy or promotion waiting for a second person: it is carried out at once, as its requester")
    .action(async (id: string, o: { deny?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      if (o.deny) {
        const r = await deny(connect(g), id);
        output(g, r, () => console.log(`denied ${r.approval.action} of ${r.approval.app} to ${r.approval.env} (requested by ${r.approval.requestedBy})`));
        return;
      }
      const r = await approve(connect(g), id);
      output(g, r, () => {
        const dep = (r.result as { deployment?: { id: string } }).deployment;
        console.log(`approved: ${r.approval.app} to ${r.approval.env} (requested by ${r.approval.requestedBy})${dep ? `, deployment ${dep.id}: follow it with \`berth status ${r.approval.app}\`` : ''}`);
      });
    });

  program.command('approvals')
    .option('--status <status>', STATUSES.join(' | '), 'pending')
    .description('deploys and promotions waiting for a second person (of apps you can see)')
    .action(async (o: { status: string }) => {
      const g = program.opts<GlobalOpts>();
      if (!STATUSES.includes(o.status)) throw new CliFailure(`--status: one of ${STATUSES.join(', ')}`, EXIT.usage);
      const { approvals } = await listApprovals(connect(g), o.status as ApprovalStatus);
      output(g, approvals, () => {
        const rows = [['ID', 'APP', 'ENV', 'WHAT', 'BY', 'ASKED', 'STATUS']];
        for (const a of approvals) rows.push([a.id, a.app, a.env, a.action, a.requestedBy, ago(a.createdAt), a.status + (a.decidedBy ? ` by ${a.decidedBy}` : '')]);
        console.log(approvals.length ? table(rows) : `no ${o.status} approvals`);
      });
    });
}

/** `berth team policy TEAM ENV --require-approval`: under `team`. */
export function registerPolicy(team: Command, program: Command): void {
  team.command('policy')
    .argument('<team>').argument('[env]', 'the environment (omit to list the team\'s policies)')
    .option('--require-approval', 'deploys and promotions to ENV need a second person (`berth approve`)')
    .option('--no-require-approval', 'they do not')
    .description("an environment's policy (team admins): e.g. prod requires a second person's approval")
    .action(async (name: string, env: string | undefined, o: { requireApproval?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      if (!env || o.requireApproval === undefined) {
        const { policies } = await listPolicies(connect(g), name);
        output(g, policies, () => console.log(policies.length
          ? table([['ENV', 'APPROVAL'], ...policies.map((p) => [p.env, p.requireApproval ? 'required' : 'not required'])])
          : `team ${name} has no environment policies`));
        return;
      }
      const r = await setPolicy(connect(g), name, env, o.requireApproval);
      output(g, r, () => console.log(`${env} of team ${name}: ${r.requireApproval ? 'deploys and promotions need a second person\'s approval' : 'no approval needed'}`));
    });
}
