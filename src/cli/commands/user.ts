import type { Command } from 'commander';
import { addUser, listUsers, removeUser, setPassword } from '../../client/auth-client.ts';
import { ago, connect, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import { readPassword } from '../password-input.ts';

export function registerUser(program: Command): void {
  const u = program.command('user').description('people who log in (owners only): add, list, remove, set passwords');
  u.command('add')
    .argument('<name>', 'user name: lower-case letters, digits, ".", "_", "-"')
    .option('--password-stdin', 'read the password from stdin (default: a random one is made and shown once)')
    .description('add a user')
    .action(async (name: string, o: { passwordStdin?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      const password = o.passwordStdin ? await readPassword({ stdin: true }) : undefined;
      const r = await addUser(connect(g), name, password);
      output(g, r, () => console.log(r.password ? `added user ${name}; password (shown once): ${r.password}` : `added user ${name}`));
    });
  u.command('ls').description('users and their roles').action(async () => {
    const g = program.opts<GlobalOpts>();
    const { users } = await listUsers(connect(g));
    output(g, users, () => {
      const rows = [['NAME', 'ADDED', 'BY', 'SIGNS ON', 'ROLES']];
      for (const x of users) rows.push([x.name, ago(x.createdAt), x.createdBy, x.sso ?? 'password', x.grants.map((gr) => `${gr.role}@${gr.team}/${gr.app}/${gr.env}`).join(' ') || '-']);
      console.log(users.length ? table(rows) : 'no users: add one with `berth user add NAME`');
    });
  });
  u.command('rm').argument('<name>').description('remove a user with their sessions, roles and API tokens').action(async (name: string) => {
    const g = program.opts<GlobalOpts>();
    await removeUser(connect(g), name);
    output(g, { removed: name }, () => console.log(`removed user ${name}`));
  });
  u.command('passwd')
    .argument('<name>')
    .option('--password-stdin', 'read the new password from stdin instead of asking')
    .description("set a user's password (ends their sessions)")
    .action(async (name: string, o: { passwordStdin?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      const password = await readPassword({ stdin: o.passwordStdin === true }, 'New password: ');
      const r = await setPassword(connect(g), name, password);
      output(g, r, () => console.log(`password of ${name} set; ${r.sessionsEnded} session(s) ended`));
    });
}
