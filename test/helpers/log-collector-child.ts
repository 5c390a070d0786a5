/**
 * A log collector in its own process, so tests and benchmarks can kill -9 it mid-stream and measure
 * its CPU: `node --import tsx test/helpers/log-collector-child.ts DB_PATH LABEL=VALUE [FLUSH_MS]`.
 * Follows every container carrying the label into the LogStore at DB_PATH, re-syncing the container
 * list every 250 ms. Prints `ready` once the first sync is done; SIGTERM closes cleanly.
 */
import { LABEL, type Logger } from '../../src/core/ports.ts';
import { systemClock } from '../../src/core/ports.ts';
import { DockerEngine } from '../../src/engine/docker/index.ts';
import { LogCollector, LogStore } from '../../src/logs/index.ts';

const [dbPath, label, flushMs] = process.argv.slice(2);
if (!dbPath || !label?.includes('=')) {
  console.error('usage: log-collector-child.ts DB_PATH LABEL=VALUE [FLUSH_MS]');
  process.exit(2);
}
const [key, value] = [label.slice(0, label.indexOf('=')), label.slice(label.indexOf('=') + 1)];

const stderrLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: (o, m) => console.error('warn', m ?? '', JSON.stringify(o)),
  error: (o, m) => console.error('error', m ?? '', JSON.stringify(o)),
  child: () => stderrLogger,
};

const engine = new DockerEngine({ logger: stderrLogger, hostName: 'log-child' });
const store = new LogStore(dbPath);
const collector = new LogCollector({
  engine,
  store,
  logger: stderrLogger,
  clock: systemClock,
  ...(flushMs ? { flushIntervalMs: Number(flushMs) } : {}),
  listContainers: async () =>
    (await engine.list({ [key]: value })).map((c) => ({
      containerId: c.id,
      app: c.labels[LABEL.app] ?? 'test',
      env: c.labels[LABEL.env] ?? 'test',
      service: c.labels[LABEL.service] ?? 'main',
      instance: c.labels[LABEL.instance] ?? c.id.slice(0, 12),
      running: c.running,
    })),
});

await collector.sync();
console.log('ready');
const timer = setInterval(() => void collector.sync(), 250);

process.on('SIGTERM', () => {
  clearInterval(timer);
  void collector.close().then(() => {
    store.close();
    process.exit(0);
  });
});
