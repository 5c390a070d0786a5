/**
 * `npm run bench -- network`: the cost of app-network mode per request. One Berth server runs the same
 * tiny Node HTTP server twice: in host mode (host network, allocated PORT) and in app-network mode (a
 * bridge network, its port 3000 published by docker-proxy on an allocated port of 127.0.0.1). wrk
 * drives each through the ingress (nginx, upstream keep-alive) and straight at the instance's port,
 * alternating host/appnet rounds in one run (the machine is noisy: only side-by-side figures mean
 * something). Reports medians: `{"host_rps", "appnet_rps", "ratio", "host_p99_ms", "appnet_p99_ms",
 * "direct_host_rps", "direct_appnet_rps", "direct_ratio"}`.
 *
 * Env: BENCH_NETWORK_ROUNDS (3), BENCH_NETWORK_SECONDS (5), BENCH_NETWORK_CONNECTIONS (32).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, get } from '../test/helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { exec, log, median, prepare } from './common.ts';

const ROUNDS = Number(process.env.BENCH_NETWORK_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_NETWORK_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_NETWORK_CONNECTIONS ?? 32);

const SERVER = "require('http').createServer((q,r)=>r.end('ok')).listen(Number(process.env.PORT))";

function compose(mode: 'host' | 'appnet'): string {
  const net = mode === 'host' ? '    x-berth:\n      port: 3000\n' : '    ports: ["3000"]\n    x-berth:\n';
  return `name: net-${mode}
services:
  web:
    image: berth/node:20
    command: ["node", "-e", ${JSON.stringify(SERVER)}]
${net}      routes: ["${mode}.bench/"]
      health: {http: /}
`;
}

interface WrkResult { rps: number; p99Ms: number; errors: number }

async function wrk(url: string, host?: string): Promise<WrkResult> {
  const args = ['-t', '2', '-c', String(CONNECTIONS), '-d', `${SECONDS}s`, '--latency', '--timeout', '5s', ...(host ? ['-H', `Host: ${host}`] : []), url];
  const { stdout } = await exec('wrk', args, { timeout: (SECONDS + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)\b/.exec(stdout);
  const p99Ms = p99 ? Number(p99[1]) * (p99[2] === 'us' ? 0.001 : p99[2] === 's' ? 1000 : 1) : NaN;
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = non2xx + (sock ? sock.slice(1).reduce((a, x) => a + Number(x), 0) : 0);
  return { rps, p99Ms, errors };
}

export async function run(): Promise<Record<string, number | string>> {
  await prepare();
  const h = await Harness.create({ portRange: '30600-30699' });
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-net-'));
  try {
    await h.startServer();
    const ports: Record<string, number> = {};
    for (const mode of ['host', 'appnet'] as const) {
      const file = join(dir, `${mode}.yaml`);
      await writeFile(file, compose(mode));
      log(`deploying the ${mode}-mode app`);
      const d = await h.cli(['deploy', '-f', file], { timeoutMs: 180_000 });
      if (d.code !== 0) throw new Error(`deploy ${mode} failed: ${d.stderr}`);
      const st = await h.status(`net-${mode}`);
      ports[mode] = st.services[0].instances[0].port as number;
      await waitFor(async () => (await get(ports[mode]!, '/')).body === 'ok', { timeoutMs: 30_000, what: `${mode} instance answering` });
    }
    const r: Record<string, WrkResult[]> = { host: [], appnet: [], directHost: [], directAppnet: [] };
    for (let i = 0; i < ROUNDS; i++) {
      for (const mode of ['host', 'appnet'] as const) {
        const via = await wrk(`http://127.0.0.1:${h.ingressPort}/`, `${mode}.bench`);
        const direct = await wrk(`http://127.0.0.1:${ports[mode]}/`);
        r[mode]!.push(via);
        r[mode === 'host' ? 'directHost' : 'directAppnet']!.push(direct);
        log(`round ${i + 1} ${mode}: ingress ${via.rps.toFixed(0)} req/s p99 ${via.p99Ms.toFixed(2)} ms; direct ${direct.rps.toFixed(0)} req/s (errors ${via.errors + direct.errors})`);
      }
    }
    const errors = Object.values(r).flat().reduce((a, x) => a + x.errors, 0);
    const m = (k: string, f: (x: WrkResult) => number) => Math.round(median(r[k]!.map(f)) * 100) / 100;
    const hostRps = m('host', (x) => x.rps);
    const appnetRps = m('appnet', (x) => x.rps);
    const directHost = m('directHost', (x) => x.rps);
    const directAppnet = m('directAppnet', (x) => x.rps);
    return {
      host_rps: hostRps, appnet_rps: appnetRps, ratio: Math.round((appnetRps / hostRps) * 1000) / 1000,
      host_p99_ms: m('host', (x) => x.p99Ms), appnet_p99_ms: m('appnet', (x) => x.p99Ms),
      direct_host_rps: directHost, direct_appnet_rps: directAppnet, direct_ratio: Math.round((directAppnet / directHost) * 1000) / 1000,
      errors, rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS,
    };
  } finally {
    await h.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}
