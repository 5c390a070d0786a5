/**
 * Berth's DnsServer in its own process for `npm run bench -- dns` (so the benchmark driver does not
 * share its event loop). bench/dns.ts runs it as an esbuild bundle, as `berth server` runs (no
 * run-time TypeScript loader). Serves SERVICES services × INSTANCES instances in env `prod` of zone
 * `berth`: `svcN.prod.berth`, `_svcN._tcp.prod.berth`, `sNiK.svcN.prod.berth`, all on 127.0.0.1,
 * ports from 20000. Prints `{"port":N}` once listening; exits on SIGTERM or when stdin closes.
 */
import { DnsServer, type DnsInstance, type DnsSnapshot } from '../src/dns/index.ts';
import { silentLogger } from '../src/lib/logger.ts';

const SERVICES = Number(process.env.DNS_BENCH_SERVICES ?? 20);
const INSTANCES = Number(process.env.DNS_BENCH_INSTANCES ?? 3);
const PORT = Number(process.env.DNS_BENCH_PORT ?? 0);

const services = new Map<string, DnsInstance[]>();
for (let s = 0; s < SERVICES; s++) {
  services.set(`svc${s}.prod`, Array.from({ length: INSTANCES }, (_, k) => ({ instance: `s${s}i${k}`, address: '127.0.0.1', port: 20000 + s * INSTANCES + k })));
}
const snapshot: DnsSnapshot = { zone: 'berth', serial: 1, services };
const server = new DnsServer({ host: '127.0.0.1', port: PORT, zone: 'berth', ttl: 5, logger: silentLogger, snapshot: () => snapshot });

const stop = () => {
  process.stderr.write(`[dns-child] ${JSON.stringify(server.stats)}\n`);
  void server.close().then(() => process.exit(0));
};

server.start().then(() => {
  process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
}, (err: unknown) => {
  process.stderr.write(`[dns-child] ${String(err)}\n`);
  process.exit(1);
});
