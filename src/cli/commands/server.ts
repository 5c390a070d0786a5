import type { Command } from 'commander';

export function registerServer(program: Command): void {
  program.command('server')
    .description('run the Berth control plane (API, reconcilers, health checks, ingress writer) in the foreground')
    .option('--data-dir <dir>', 'state directory (env BERTH_DATA_DIR)', undefined)
    .option('--listen <host:port>', 'API address (env BERTH_LISTEN; default 127.0.0.1:7070)')
    .option('--ingress-port <port>', 'port nginx listens on for app traffic (env BERTH_INGRESS_PORT; default 8080)')
    .option('--ingress-admin-port <port>', 'loopback port of nginx\'s status server (env BERTH_INGRESS_ADMIN_PORT; default 7071)')
    .option('--docker-socket <path>', 'Docker Engine socket (env BERTH_DOCKER_SOCKET)')
    .option('--port-range <low-high>', 'ports allocated to instances (env BERTH_PORT_RANGE; default 20000-29999)')
    .option('--allowed-bind-roots <dirs>', 'host directories (":"-separated) under which bind mounts and build contexts may lie (env BERTH_ALLOWED_BIND_ROOTS; default: none)')
    .option('--log-level <level>', 'trace, debug, info, warn, error, fatal or silent (env BERTH_LOG_LEVEL; default info)')
    .addHelpText('after', '\nStopping the server (Ctrl-C, SIGTERM, or a crash) leaves containers and nginx serving; the next start adopts them.')
    .action(async (o: Record<string, string | undefined>) => {
      // Loaded here so that other commands start fast without the server's dependencies.
      const { createLogger, loadConfig, startServer } = await import('../../server/index.ts');
      const globals = program.opts<{ dataDir?: string }>();
      const cfg = loadConfig({ ...o, dataDir: o.dataDir ?? globals.dataDir }, process.env);
      const logger = createLogger(cfg.logLevel);
      const srv = await startServer(cfg, logger);
      process.stderr.write(`berth server listening on ${srv.url} (ingress on :${cfg.ingressPort}, data in ${cfg.dataDir})\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      process.stderr.write('stopping the control plane; containers and nginx keep serving\n');
      await srv.close();
    });
}
