import type { Command } from 'commander';
import { BerthClient } from '../../client/index.ts';
import { createServer } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { login, logout, ssoCliSession, ssoStartPath, whoami } from '../../client/auth-client.ts';
import { CliFailure, EXIT, connect, saveCredentials, savedSession, serverUrl, timeoutSeconds, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';
import { readPassword } from '../password-input.ts';

const scope = (g: { team: string; app: string; env: string }) => `${g.team === '*' ? 'every team' : `team ${g.team}`}` +
  `${g.app === '*' ? '' : `, app ${g.app}`}${g.env === '*' ? '' : `, env ${g.env}`}`;

export function registerLogin(program: Command): void {
  program.command('login')
    .description('log in to a Berth server as a user: the session token is kept for this server in ~/.config/berth/credentials.json (0600)')
    .option('-u, --user <name>', 'user name (default: $USER)')
    .option('--password-stdin', 'read the password from stdin instead of asking')
    .option('--sso <provider>', 'log in through an OpenID Connect provider in a browser (`berth sso list`); an LDAP login is a plain `berth login -u NAME`')
    .option('--timeout <seconds>', 'with --sso: how long to wait for the browser', '300')
    .addHelpText('after', `
Later commands use the stored session (until \`berth logout\` or it expires after 30 days); --token and
BERTH_TOKEN still win. Set BERTH_CONFIG_DIR to keep credentials elsewhere.

With --sso, the CLI listens on 127.0.0.1 (a random port) and prints a link: open it in a browser on
this machine, sign in at the provider, and the browser comes back to the CLI with a one-time code that
only this CLI can spend (it holds the verifier). Names that are no local user are tried against the
LDAP providers when there are any.

Examples:
  berth login -u ann
  berth login --sso corp
  echo "$PASSWORD" | berth login -u ci-bot --password-stdin --url https://berth.example.com`)
    .action(async (o: { user?: string; passwordStdin?: boolean; sso?: string; timeout: string }) => {
      const g = program.opts<GlobalOpts>();
      if (o.sso) {
        const url = serverUrl(g);
        const r = await ssoLogin(url, o.sso, timeoutSeconds(o.timeout));
        saveCredentials(url, { user: r.user, token: r.token, expiresAt: r.expiresAt });
        output(g, { user: r.user, url, expiresAt: r.expiresAt, provider: o.sso }, () => console.log(`logged in to ${url} as ${r.user} (through ${o.sso})`));
        return;
      }
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

/**
 * `berth login --sso NAME`: a loopback listener on 127.0.0.1 receives the browser after the provider
 * (Berth's callback redirects there with a one-time code), then the code is spent with the verifier
 * only this process knows (its SHA-256 went out as the challenge), so a code seen by anyone else is useless.
 */
async function ssoLogin(url: string, provider: string, timeoutS: number): Promise<{ user: string; token: string; expiresAt: number }> {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  let settle: (r: { code?: string; error?: string }) => void = () => undefined;
  const arrived = new Promise<{ code?: string; error?: string }>((res) => (settle = res));
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (u.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    const error = u.searchParams.get('error') ?? undefined;
    const code = u.searchParams.get('code') ?? undefined;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(error ? `Berth: the sign-on failed: ${error}\n` : 'Berth: signed in. You can close this window and go back to the terminal.\n');
    settle({ ...(code ? { code } : {}), ...(error ? { error } : {}) });
  });
  await new Promise<void>((res, rej) => server.once('error', rej).listen(0, '127.0.0.1', () => res()));
  const port = (server.address() as AddressInfo).port;
  try {
    const link = url.replace(/\/+$/, '') + ssoStartPath(provider, { port, challenge });
    process.stderr.write(`open this link in a browser on this machine to sign in with ${provider}:\n  ${link}\nwaiting for the browser (${timeoutS} s)...\n`);
    if (process.stderr.isTTY && (process.env.DISPLAY || process.env.WAYLAND_DISPLAY)) execFile('xdg-open', [link], () => undefined);
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([arrived, new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new CliFailure(`no sign-on came back within ${timeoutS} s: run \`berth login --sso ${provider}\` again`, EXIT.failed)), timeoutS * 1000);
    })]).finally(() => clearTimeout(timer));
    if (r.error || !r.code) throw new CliFailure(r.error ?? 'the sign-on came back without a code', EXIT.unauthorized);
    return await ssoCliSession(new BerthClient({ url, token: '' }), r.code, verifier);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}
