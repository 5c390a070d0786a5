/**
 * propagation: 50 times, kill a healthy instance and measure until it is gone from both Berth's DNS
 * answers (SRV) and the nginx upstreams nginx actually serves — with the Lua balancer the backends in
 * nginx's shared dict (admin endpoint, with Berth's admin token), without it the config on disk and
 * the admin generation endpoint agreeing; and a new healthy instance, from the moment it turned healthy (its event) until
 * it is in both. The service uses restart_policy none so kills do not build up crash-loop backoff;
 * new instances come from scaling up by one after each kill.
 */
import { request } from 'node:http';
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { Harness, ROOT } from '../test/helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { exec, log, prepare } from './common.ts';
import { SecretBox, loadSecretKey } from '../src/config/secret-box.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 50);
const IMAGE = 'berth-bench/web:latest';

function dockerKill(id: string): Promise<void> {
  return new Promise((res, rej) => {
    const req = request({ socketPath: '/var/run/docker.sock', method: 'POST', path: `/containers/${id}/kill?signal=SIGKILL` }, (r) => {
      r.resume();
      r.on('end', () => (r.statusCode === 204 ? res() : rej(new Error(`kill: HTTP ${r.statusCode}`))));
    });
    req.on('error', rej);
    req.end();
  });
}

function srvPorts(port: number, name: string): Promise<number[]> {
  return new Promise((res, rej) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      rej(new Error('dns timeout'));
    }, 1000);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      const p = dnsPacket.decode(m);
      res((p.answers ?? []).filter((a) => a.type === 'SRV').map((a) => (a.data as { port: number }).port).sort());
    });
    s.send(dnsPacket.encode({ type: 'query', id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'SRV', name }] }), port, '127.0.0.1');
  });
}

function generation(adminPort: number): Promise<number> {
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port: adminPort, path: '/berth/generation', agent: false }, (r) => {
      let b = '';
      r.on('data', (c) => (b += c));
      r.on('end', () => res(Number(b)));
    });
    req.on('error', rej);
    req.end();
  });
}

/** The backends nginx's Lua balancer picks from (`UPSTREAM ADDR PORT,…` lines), read with the admin token. */
function dictBackends(adminPort: number, token: string): Promise<string> {
  return new Promise((res, rej) => {
    const req = request({ host: '127.0.0.1', port: adminPort, path: '/berth/backends', agent: false, headers: { 'x-berth-token': token } }, (r) => {
      let b = '';
      r.on('data', (c) => (b += c));
      r.on('end', () => (r.statusCode === 200 ? res(b) : rej(new Error(`admin endpoint: HTTP ${r.statusCode}`))));
    });
    req.on('error', rej);
    req.end();
  });
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

export async function run(): Promise<Record<string, number>> {
  await prepare();
  await exec('docker', ['build', '-q', '-t', IMAGE, join(ROOT, 'examples/hello')], { timeout: 300_000 });
  const h = await Harness.create({ portRange: '15000-15999' });
  const conf = join(h.dataDir, 'nginx/conf/nginx.conf');
  let token: string | undefined;
  const inNginx = async (port: number) => {
    if (token !== undefined) {
      const text = await dictBackends(h.adminPort, token);
      return { listed: new RegExp(`[ ,]127\\.0\\.0\\.1 ${port}(,|$)`, 'm').test(text), live: true };
    }
    const text = await readFile(conf, 'utf8');
    const fileGen = Number(/berth-generation: (\d+)/.exec(text)?.[1]);
    return { listed: text.includes(`127.0.0.1:${port};`) || text.includes(`127.0.0.1:${port} `), live: (await generation(h.adminPort)) === fileGen };
  };
  try {
    await h.startServer();
    const mode = (await h.api('GET', '/v1/ping')).json.ingressBackendUpdates?.mode ?? 'reload';
    // The token Berth derives for nginx's admin endpoint (server.ts), from the key in the data dir.
    if (mode === 'lua') token = SecretBox.fromLoaded(loadSecretKey({ dataDir: h.dataDir })).mac('ingress admin token');
    log(`backend updates: ${mode}`);
    let replicas = 3;
    const spec = () => ({
      name: 'prop', services: { web: {
        name: 'web', image: IMAGE, environment: {}, ports: [], replicas, limits: {}, labels: {},
        health: { type: 'http', path: '/healthz', intervalMs: 1000, timeoutMs: 1000, retries: 1, startPeriodMs: 0 },
        restart: { condition: 'none', delayMs: 1000 }, stopSignal: 'SIGTERM', stopGracePeriodMs: 2000, volumes: [], dependsOn: [],
        port: 3000, routes: [{ path: '/' }],
      } },
    });
    const dep = await h.api('POST', '/v1/apps/prop/deployments', { env: 'prod', spec: spec() });
    await waitFor(async () => (await h.api('GET', `/v1/deployments/${dep.json.deployment.id}`)).json.deployment.status === 'succeeded', { timeoutMs: 60_000, what: 'deploy' });
    const removal: number[] = [];
    const add: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const st = (await h.status('prop')).services[0];
      const victim = st.instances.find((i: { health: string; state: string }) => i.health === 'healthy' && i.state === 'running');
      const t0 = performance.now();
      await dockerKill(victim.containerId);
      await waitFor(async () => {
        if ((await srvPorts(h.dnsPort, '_web._tcp.prop.prod.berth')).includes(victim.port)) return false;
        const n = await inNginx(victim.port);
        return !n.listed && n.live;
      }, { timeoutMs: 10_000, intervalMs: 5, what: 'removal' });
      removal.push(performance.now() - t0);
      // A new instance: scale up by one; time from its health.healthy event to DNS + nginx.
      const lastEvent = (await h.api('GET', '/v1/events?limit=1')).json.events.at(-1)?.id ?? 0;
      replicas++;
      await h.api('POST', '/v1/apps/prop/scale', { env: 'prod', service: 'web', replicas });
      const ev = await waitFor(async () => {
        const evs = (await h.api('GET', `/v1/events?app=prop&after=${lastEvent}&limit=200`)).json.events as { kind: string; instance: string; ts: number }[];
        return evs.find((e) => e.kind === 'health.healthy');
      }, { timeoutMs: 30_000, intervalMs: 5, what: 'new instance healthy' });
      const inst = (await h.status('prop')).services[0].instances.find((i: { id: string }) => i.id === ev.instance);
      await waitFor(async () => {
        if (!(await srvPorts(h.dnsPort, '_web._tcp.prop.prod.berth')).includes(inst.port)) return false;
        const n = await inNginx(inst.port);
        return n.listed && n.live;
      }, { timeoutMs: 10_000, intervalMs: 5, what: 'routable' });
      add.push(Date.now() - ev.ts);
      if (round % 10 === 9) log(`round ${round + 1}/${ROUNDS}: removal p50 ${percentile(removal, 50).toFixed(0)} ms, add p50 ${percentile(add, 50).toFixed(0)} ms`);
    }
    return {
      removal_p50_ms: Math.round(percentile(removal, 50)), removal_p99_ms: Math.round(percentile(removal, 99)),
      add_p50_ms: Math.round(percentile(add, 50)), add_p99_ms: Math.round(percentile(add, 99)), rounds: ROUNDS, lua_balancer: mode === 'lua' ? 1 : 0,
    };
  } finally {
    await h.cleanup();
  }
}
