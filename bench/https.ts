/**
 * https: certificate issuance time from the first request, with Debian's pebble as the ACME CA
 * (HTTP-01 answered through the ingress; pebble runs here, validation traffic stays on loopback).
 * Per run: a new app whose route names a new host is deployed (busybox httpd), then
 * - `deploy_to_https_ms`: from the deploy request to the first HTTPS answer verified against
 *   pebble's root (container start, health, routing, the ACME order, the nginx reload);
 * - `route_to_https_ms`: from the host's first HTTP answer (the route is live) to that HTTPS answer;
 * - `acme_order_ms`: the order alone, as the `cert.issued` event reports it.
 * Then a renewal under a bounded TLS load loop (4 loops, fresh connections): requests and failures.
 * Medians over BENCH_RUNS (default 5) runs; max too.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, freePort } from '../test/helpers/harness.ts';
import { startPebble } from '../test/helpers/pebble.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { log, median, prepare } from './common.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function get(scheme: 'http' | 'https', port: number, host: string, ca?: string): Promise<{ status: number; body: string; fp: string }> {
  return new Promise((res, rej) => {
    const o = { host: '127.0.0.1', port, path: '/', agent: false as const, timeout: 5000, headers: { host }, ...(scheme === 'https' ? { servername: host, ca } : {}) };
    const req = (scheme === 'https' ? httpsRequest : httpRequest)(o, (r) => {
      const fp = scheme === 'https' ? ((r.socket as import('node:tls').TLSSocket).getPeerX509Certificate?.()?.fingerprint256 ?? '') : '';
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body, fp }));
      r.on('error', rej);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', rej);
    req.end();
  });
}

function compose(app: string, host: string): string {
  return [
    `name: ${app}`, 'services:', '  web:', '    image: berth/busybox:latest',
    `    command: ["sh", "-c", "mkdir -p /www && echo ${app} > /www/index.html && exec httpd -f -p $$PORT -h /www"]`, '    stop_grace_period: 1s',
    '    x-berth:', '      port: 8080', `      routes: [${host}]`, '      health: { http: /index.html }', '',
  ].join('\n');
}

export async function run(): Promise<Record<string, number>> {
  await prepare();
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-https-'));
  const httpsPort = await freePort();
  const env: Record<string, string> = { BERTH_INGRESS_HTTPS_PORT: String(httpsPort) };
  const h = await Harness.create({ portRange: '19300-19399', env });
  const pebble = await startPebble(dir, h.ingressPort);
  Object.assign(env, { BERTH_ACME_DIRECTORY: pebble.directoryUrl, BERTH_ACME_CA_FILE: pebble.listenerCaFile });
  try {
    await h.startServer();
    const total: number[] = [];
    const fromRoute: number[] = [];
    const order: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const app = `tls${i}`;
      const host = `bench-${i}-${Date.now().toString(36)}.example.com`;
      const f = join(dir, `${app}.yaml`);
      await writeFile(f, compose(app, host));
      const t0 = performance.now();
      const deploy = h.cli(['deploy', '-f', f], { timeoutMs: 120_000 });
      const routed = await waitFor(async () => {
        const r = await get('http', h.ingressPort, host).catch(() => undefined);
        return r && (r.status === 200 || r.status === 308) ? performance.now() : undefined;
      }, { timeoutMs: 60_000, intervalMs: 10, what: `${host} routed` });
      await waitFor(async () => (await get('https', httpsPort, host, pebble.root).catch(() => undefined))?.status === 200, { timeoutMs: 60_000, intervalMs: 10, what: `${host} over HTTPS` });
      const t1 = performance.now();
      const d = await deploy;
      if (d.code !== 0) throw new Error(`deploy failed: ${d.stderr}`);
      const ev = await h.api('GET', `/v1/events?app=${app}&limit=100`);
      const issued = ev.json.events.find((e: { kind: string }) => e.kind === 'cert.issued');
      total.push(t1 - t0);
      fromRoute.push(t1 - routed);
      order.push(Number(/in (\d+) ms/.exec(issued?.message ?? '')?.[1] ?? NaN));
      log(`run ${i + 1}/${RUNS}: deploy→https ${Math.round(t1 - t0)} ms, route→https ${Math.round(t1 - routed)} ms, order ${order.at(-1)} ms`);
    }

    // Renewal under load.
    const host = (await h.api('GET', '/v1/certs')).json.certs[0].host as string;
    const before = (await get('https', httpsPort, host, pebble.root)).fp;
    let stop = false;
    let ok = 0;
    let failed = 0;
    let newFp = '';
    const loop = async () => {
      const deadline = Date.now() + 60_000;
      for (let n = 0; n < 5000 && !stop && Date.now() < deadline; n++) {
        try {
          const r = await get('https', httpsPort, host, pebble.root);
          if (r.status === 200) {
            ok++;
            if (r.fp !== before) newFp = r.fp;
          } else failed++;
        } catch {
          failed++;
        }
      }
    };
    const loops = [loop(), loop(), loop(), loop()];
    const r = await h.cli(['cert', 'renew', host, '--json'], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`renew failed: ${r.stderr}`);
    await waitFor(async () => newFp !== '', { timeoutMs: 30_000, intervalMs: 20, what: 'the renewed certificate served' });
    stop = true;
    await Promise.all(loops);
    log(`renewal under load: ${ok} ok, ${failed} failed`);
    const round = (x: number) => Math.round(x);
    return {
      runs: RUNS,
      deploy_to_https_ms: round(median(total)), deploy_to_https_max_ms: round(Math.max(...total)),
      route_to_https_ms: round(median(fromRoute)), route_to_https_max_ms: round(Math.max(...fromRoute)),
      acme_order_ms: round(median(order)),
      renewal_requests: ok + failed, renewal_failed: failed,
    };
  } finally {
    pebble.stop();
    await h.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}
