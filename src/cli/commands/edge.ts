import type { Command } from 'commander';

/** `berth edge`: run the edge agent (this host's nginx, fed by the control plane) in the foreground. */
export function registerEdge(program: Command): void {
  program.command('edge')
    .description('run the edge agent: this host\'s nginx serves the control plane\'s routes, and keeps serving them while the control plane is away')
    .option('--control <url>', 'the control plane\'s URL as this host reaches it (env BERTH_EDGE_CONTROL), e.g. https://10.0.0.5:7070')
    .option('--token-file <file>', 'file holding this host\'s edge token')
    .option('--port <port>', 'port nginx listens on for app traffic (default 80)')
    .option('--https-port <port>', 'port nginx serves HTTPS on for routes with certificates (default 443)')
    .option('--tls-dir <dir>', 'where certificate keys go: a tmpfs mounted there (env BERTH_EDGE_TLS_DIR; default /run/berth-edge/tls)')
    .option('--listen <ip>', 'address nginx listens on (default 0.0.0.0)')
    .option('--admin-port <port>', 'loopback port of nginx\'s admin server (default 7071)')
    .option('--wait-seconds <s>', 'how long the control plane holds a poll when nothing changed (default 25)')
    .option('--log-level <level>', 'trace, debug, info, warn, error, fatal or silent (env BERTH_LOG_LEVEL; default info)')
    .addHelpText('after', `
The global --token is this host's edge token here (or env BERTH_EDGE_TOKEN; --token-file is better),
and the global --data-dir holds nginx's prefix and the last table applied (env BERTH_EDGE_DATA_DIR;
default /var/lib/berth-edge).
The control host prints the token and a systemd unit: berth host add --pool edge --name HOST.
Stopping the agent (Ctrl-C, SIGTERM, a crash) leaves nginx serving; the next start adopts it.
HTTPS: over --control https://… the control plane sends the certificates (and keys) of the routes'
hosts; they go to a tmpfs at --tls-dir only, and nginx serves them on --https-port with the same
redirects and HSTS as the control host. Over plain HTTP no key is sent: those routes stay HTTP here.

Example:
  berth edge --control https://10.0.0.5:7070 --token-file /etc/berth/edge.token --port 80 --https-port 443`)
    .action(async (o: Record<string, string | undefined>) => {
      const { createLogger, loadEdgeConfig, parseLogLevel, startEdgeAgent } = await import('../../server/index.ts');
      const level = parseLogLevel(o.logLevel, process.env.BERTH_LOG_LEVEL);
      const globals = program.opts<{ token?: string; dataDir?: string }>();
      const cfg = await loadEdgeConfig({ ...o, ...(globals.token ? { token: globals.token } : {}), ...(globals.dataDir ? { dataDir: globals.dataDir } : {}) }, process.env);
      const logger = createLogger(level);
      const edge = await startEdgeAgent(cfg, logger);
      process.stderr.write(`berth edge ${cfg.host}: nginx on ${cfg.listenAddress}:${cfg.port} (pid ${edge.ingress.masterPid}), fed by ${cfg.control}\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      process.stderr.write('stopping the edge agent; nginx keeps serving\n');
      await edge.stop();
    });
}
