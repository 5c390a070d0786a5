/**
 * cli: the `berth` command. One file per verb under commands/; the one error → exit-code mapper is
 * in context.ts. Results go to stdout (NDJSON/JSON with --json), progress and warnings to stderr.
 */
import { Command, CommanderError } from 'commander';
import { explain, EXIT } from './context.ts';
import { ERROR_CODE_OF_EXIT, jsonError } from './output.ts';
import { registerServer } from './commands/server.ts';
import { registerValidate } from './commands/validate.ts';
import { registerDeploy } from './commands/deploy.ts';
import { registerStatus } from './commands/status.ts';
import { registerScale } from './commands/scale.ts';
import { registerRm } from './commands/rm.ts';
import { registerLogs } from './commands/logs.ts';
import { registerEvents } from './commands/events.ts';
import { registerReleases } from './commands/releases.ts';
import { registerRollback } from './commands/rollback.ts';
import { registerReload } from './commands/reload.ts';
import { registerTemplate } from './commands/template.ts';
import { registerConfig } from './commands/config.ts';
import { registerSecret } from './commands/secret.ts';
import { registerTop } from './commands/top.ts';
import { registerAlert } from './commands/alert.ts';
import { registerBuilds } from './commands/builds.ts';
import { registerPromote } from './commands/promote.ts';
import { registerImages } from './commands/images.ts';
import { registerVolumes } from './commands/volumes.ts';
import { registerHosts } from './commands/hosts.ts';
import { registerEdge } from './commands/edge.ts';
import { registerPools } from './commands/pools.ts';
import { registerFailover } from './commands/failover.ts';
import { registerApps } from './commands/apps.ts';
import { registerRestart } from './commands/restart.ts';
import { registerExec } from './commands/exec.ts';
import { registerLogin } from './commands/login.ts';
import { registerUser } from './commands/user.ts';
import { registerTeam } from './commands/team.ts';
import { registerCert } from './commands/cert.ts';
import { registerAudit } from './commands/audit.ts';
import { registerRegistry } from './commands/registry.ts';
import { registerApprove } from './commands/approve.ts';
import { registerPortal } from './commands/portal.ts';
import { registerSso } from './commands/sso.ts';
import { registerPolicy } from './commands/policy.ts';
import { VERSION } from '../core/version.ts';

const program = new Command('berth')
  .description('Berth: Compose files to running, routed, self-healing services on your own servers')
  .version(VERSION)
  .option('--url <url>', 'API address (env BERTH_URL; default: from DATA_DIR/server.json)')
  .option('--token <token>', 'API token (env BERTH_TOKEN; default: the `berth login` session, else DATA_DIR/admin.token)')
  .option('--data-dir <dir>', 'where the local server keeps its state (env BERTH_DATA_DIR; default /var/lib/berth)')
  .option('--json', 'machine-readable output: one JSON document on stdout (lists are arrays; NDJSON for live streams), errors as JSON on stderr')
  .addHelpText('after', `
Exit codes: 0 ok, 1 operation failed, 2 invalid input or spec, 3 not found, 4 conflict,
5 unauthorized, 6 server or engine unreachable, 70 internal error.`)
  .exitOverride()
  .showHelpAfterError('(run with --help for usage)');

// With --json, commander's own complaints (a missing argument, an unknown option) become the one
// JSON error on stderr too; the usage hint after them is for people.
const json = process.argv.slice(2).includes('--json');
let usageError = '';
if (json) {
  program.configureOutput({
    outputError: (str) => {
      if (!usageError) usageError = str.replace(/^error: /, '').trim();
    },
    writeErr: () => undefined,
  });
}

for (const register of [registerServer, registerDeploy, registerApps, registerStatus, registerRestart, registerExec, registerScale, registerLogs, registerRm, registerValidate, registerEvents, registerReleases, registerRollback, registerReload, registerTemplate, registerConfig, registerSecret, registerTop, registerAlert, registerBuilds, registerPromote, registerImages, registerVolumes, registerHosts, registerEdge, registerFailover, registerPools, registerLogin, registerUser, registerTeam, registerCert, registerAudit, registerRegistry, registerApprove, registerPortal, registerSso, registerPolicy]) {
  register(program);
}
for (const c of program.commands) c.exitOverride();

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (json && err.exitCode !== 0) process.stderr.write(jsonError('invalid_input', usageError || err.message.replace(/^error: /, '')));
  } else {
    const { message, exitCode, code } = explain(err);
    process.stderr.write(json ? jsonError(code ?? ERROR_CODE_OF_EXIT[exitCode] ?? 'failed', message) : `error: ${message}\n`);
    process.exitCode = exitCode;
  }
}
