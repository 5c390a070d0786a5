import type { Command } from 'commander';
import { registryLogin, registryLogins, registryLogout } from '../../client/image-client.ts';
import { ago, connect, table, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import { readPassword } from '../password-input.ts';

/**
 * `berth registry login|logout|logins`: credentials of private image registries, which the server
 * keeps sealed with its secret key and hands the engine for each pull of a deployment. The password
 * never goes on the command line (argv ends up in shell history and `ps`): stdin or a prompt.
 */
export function registerRegistry(program: Command): void {
  const reg = program.command('registry').description('credentials of private image registries, for the images deployments pull');
  reg.command('login')
    .argument('<host>', 'registry host, e.g. registry.example.com or 127.0.0.1:5000')
    .requiredOption('-u, --username <user>', 'user name at the registry')
    .option('--password-stdin', 'read the password (or token) from stdin instead of asking')
    .description('store the credentials of a registry on the server (encrypted); later pulls from it use them')
    .action(async (host: string, o: { username: string; passwordStdin?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      const password = await readPassword({ stdin: o.passwordStdin === true });
      const { login } = await registryLogin(connect(g), host, o.username, password);
      output(g, login, () => console.log(`logged in to ${login.host} as ${login.username}: deployments pull its images with these credentials`));
    });
  reg.command('logout')
    .argument('<host>', 'registry host')
    .description('forget the credentials of a registry')
    .action(async (host: string) => {
      const g = program.opts<GlobalOpts>();
      await registryLogout(connect(g), host);
      output(g, { host, loggedOut: true }, () => console.log(`logged out of ${host}`));
    });
  reg.command('logins')
    .description('registries the server has credentials for: host and user (never the password)')
    .action(async () => {
      const g = program.opts<GlobalOpts>();
      const { logins } = await registryLogins(connect(g));
      output(g, logins, () => {
        if (logins.length === 0) return void console.log('no registry logins: `berth registry login HOST -u USER`');
        console.log(table([['HOST', 'USER', 'SET'], ...logins.map((l) => [l.host, l.username, ago(l.updatedAt)])]));
      });
    });
}
