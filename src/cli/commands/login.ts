import type { Command } from 'commander';
import { BerthClient } from '../../client/index.ts';
import { login, logout, whoami } from '../../client/auth-client.ts';
import { CliFailure, EXIT, connect, saveCredentials, savedSession, serverUrl, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import { readPassword } from '../password-input.ts';

const scope = (g: { team: string; app: string; env: string }) => `${g.team === '*' ? 'every team' : `team ${g.team}`}` +
  `${g.app === '*' ? '' : `, app ${g.app}`}${g.env === '*' ? '' : `, env ${g.env}`}`;

export function registerLogin(program: Command): void {
  program.command('login')
    .description('log in to a Berth server as a user: the session token is kept for this server in ~/.config/berth/credentials.json (0600)')
    .option('-u, --user <name>', 'user name (default: $USER)')
    .option('--password-stdin', 'read the password from stdin instead of asking')
    .addHelpText('after', `
Later commands use the stored session (until \`berth logout\` or it expires after 30 days); --token and
BERTH_TOKEN still win. Set BERTH_CONFIG_DIR to keep credentials elsewhere.

Examples:
  berth login -u ann
  echo "$PASSWORD" | berth login -u ci-bot --password-stdin --url https://berth.example.com`)
    .action(async (o: { user?: string; passwordStdin?: boolean }) => {
      const g = program.opts<GlobalOpts>();
      const user = o.user ?? process.env.USER;
      if (!user) throw new CliFailure('give the user name with --user', EXIT.usage);
      const password = await readPassword({ stdin: o.passwordStdin === true });
      const url = serverUrl(g);
      const r = await login(new BerthClient({ url, token: '' }), user, password);
      saveCredentials(url, { user: r.user, token: r.token, expiresAt: r.expiresAt });
      output(g, { user: r.user, url, expiresAt: r.expiresAt }, () => console.log(`logged in to ${url} as ${r.user}`));
    });

  program.command('logout')
    .description('end the session `berth login` started with this server and forget its token')
    .action(async () => {
      const g = program.opts<GlobalOpts>();
      const url = serverUrl(g);
      const saved = savedSession(url);
      if (!saved) {
        output(g, { loggedOut: false, url }, () => console.log(`not logged in to ${url}`));
        return;
      }
      // The server ends the session; the token is forgotten even if the server cannot be reached or already forgot it.
      let ended = false;
      try {
        ended = (await logout(new BerthClient({ url, token: saved.token }))).loggedOut;
      } finally {
        saveCredentials(url, undefined);
      }
      output(g, { loggedOut: true, url, user: saved.user, sessionEnded: ended }, () => console.log(`logged out of ${url} (${saved.user})`));
    });

  program.command('whoami')
    .description('who this CLI acts as on the server, and its roles')
    .action(async () => {
      const g = program.opts<GlobalOpts>();
      const me = await whoami(connect(g));
      output(g, me, () => {
        console.log(`${me.name} (${me.kind}, by ${me.via})`);
        for (const gr of me.grants) console.log(`  ${gr.role} of ${scope(gr)}`);
        if (me.grants.length === 0) console.log('  no roles yet: an owner grants them with `berth grant add`');
      });
    });
}
