import type { Command } from 'commander';
import { CliFailure, connect, EXIT, type GlobalOpts } from '../context.ts';
import { output } from '../output.ts';

export function registerPortal(program: Command): void {
  program.command('portal')
    .description('print a one-time login link to the web portal (works once, for 5 minutes)')
    .option('--base <url>', 'the address your browser reaches the server at (default: the API address, e.g. http://127.0.0.1:7070)')
    .addHelpText('after', `
Open the link in a browser: the page exchanges it for a session (12 hours, ended by "Log out" or a
server restart) and forgets it. The code is after "#", so it is never sent in a request line or logged.`)
    .action(async (o: { base?: string }) => {
      const g = program.opts<GlobalOpts>();
      const client = connect(g);
      const base = (o.base ?? client.url).replace(/\/+$/, '');
      if (!/^https?:\/\/[^/\s]+$/.test(base)) throw new CliFailure(`--base "${o.base}" is not an http(s) origin: write e.g. http://berth.example.com:7070`, EXIT.usage);
      const c = await client.portalCode();
      const url = `${base}${c.path}`;
      output(g, { url, expiresAt: new Date(c.expiresAt).toISOString() }, () => {
        console.log(url);
        if (process.stderr.isTTY) process.stderr.write(`open this link within 5 minutes (it works once); run \`berth portal\` again for a new one\n`);
      });
    });
}
