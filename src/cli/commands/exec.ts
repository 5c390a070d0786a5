import type { Command } from 'commander';
import { ApiError, responseLines } from '../../client/index.ts';
import { CliFailure, EXIT, connect, type GlobalOpts } from '../context.ts';
import { appAndService } from './restart.ts';

interface Frame {
  stream?: 'stdout' | 'stderr';
  data?: string;
  exit?: number;
  instance?: string;
  error?: { code: string; message: string };
}

export function registerExec(program: Command): void {
  program.command('exec')
    .argument('<app/service>', 'the service to run the command in')
    .argument('<command...>', 'the command and its arguments, after --')
    .description('run a command in a container of a service (one healthy instance, or --instance) and exit with its exit code')
    .option('--env <env>', 'environment', 'prod')
    .option('--instance <id>', 'this instance (see `berth status APP`)')
    .addHelpText('after', `
The command runs without a terminal and without stdin; its stdout and stderr are passed on as they
come, and berth exits with its exit code (Berth's own exit codes only when it could not run it).

Examples:
  berth exec shop/web -- ls -l /app
  berth exec shop/worker --instance a1b2c3d4e5 -- sh -c 'echo $PORT'`)
    .action(async (target: string, cmd: string[], o: { env: string; instance?: string }) => {
      const g = program.opts<GlobalOpts>();
      const { app, service } = appAndService(target);
      if (!service) throw new CliFailure(`"${target}" names no service: write APP/SERVICE, e.g. ${app}/web`, EXIT.usage);
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      const res = await connect(g).exec(app, { env: o.env, service, cmd, ...(o.instance ? { instance: o.instance } : {}) }, ac.signal);
      let end: Frame | undefined;
      const handle = (line: string) => {
        const f = JSON.parse(line) as Frame;
        if (f.stream && f.data !== undefined) (f.stream === 'stdout' ? process.stdout : process.stderr).write(Buffer.from(f.data, 'base64'));
        else end = f;
      };
      try {
        for await (const line of responseLines(res)) handle(line);
      } catch (err) {
        if ((err as Error).name !== 'AbortError') throw err;
        throw new CliFailure('interrupted: berth stopped reading; the command may still be running in the container', EXIT.failed);
      }
      if (end?.error) throw new ApiError(500, end.error.code, end.error.message);
      if (end?.exit === undefined) throw new CliFailure('the server ended the output without an exit code (stopped or restarted?)', EXIT.unavailable);
      // The command's own exit code (0-255), like ssh and docker exec.
      process.exitCode = end.exit;
    });
}
