/**
 * Every host's engine reachable (issue 13 item 4): the control plane reaches each test host's dockerd
 * over TCP with mutual TLS (certificates from Berth's cluster CA, tls/cluster-ca.ts) — never through
 * the hosts' unix sockets, which a real remote host would not share. An instance (a one-task Swarm
 * service, engine/docker/swarm-containers.ts) placed on a worker: its logs collected exactly once
 * across a collector restart and searchable, its stats in the metrics store and /metrics, a SIGHUP
 * reaching it, exec into it; the TCP endpoint refuses clients without Berth's certificate; an
 * unreachable host fails fast and says so. Test hosts: slot from BERTH_TESTHOSTS_SLOT; no fixed ports.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect as tlsConnect } from 'node:tls';
import { after, before, test } from 'node:test';
import Docker from 'dockerode';
import { EngineUnavailable } from '../src/core/errors.ts';
import { LABEL, type ContainerSpec, type EngineContainers, type EngineTelemetry } from '../src/core/ports.ts';
import { HostEngines, SwarmDataPlane, withHostEngines } from '../src/engine/docker/host-engines.ts';
import { SwarmContainers } from '../src/engine/docker/swarm-containers.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { createLogger } from '../src/lib/logger.ts';
import { LogCollector, LogStore } from '../src/logs/index.ts';
import { MetricsStore, StatsSampler, hostEngineFamilies, renderFamilies, renderMetrics } from '../src/metrics/index.ts';
import { ClusterCa } from '../src/tls/cluster-ca.ts';
import { SecretBox, loadSecretKey } from '../src/config/index.ts';
import { Harness } from './helpers/harness.ts';
import { planTestHosts, startTestHosts, type TestHosts } from './helpers/swarm-hosts.ts';

const execFileP = promisify(execFile);
const logger = createLogger('silent');
const clock = { now: () => Date.now() };
let th: TestHosts;
let ca: ClusterCa;
let dir: string;
let swarm: SwarmContainers;
let dp: SwarmDataPlane;
let engine: SwarmContainers & Pick<SwarmDataPlane, 'logs' | 'stats' | 'exec' | 'kill'>;
let web: string;
let h: Harness;
const hn = (i: number): string => th.hosts[i - 1]!.name;
const ad = (i: number): string => th.hosts[i - 1]!.address;
const CLUSTER = `cdata${randomBytes(3).toString('hex')}`;
const BOOT = 40;

before(async () => {
  // The server's own cluster CA (its data directory, its secret key) issues the hosts' engine
  // certificates, as `berth host add --address` would; the direct tests below use it too.
  const planned = await planTestHosts(3);
  const managerSocket = planned[0]!.socket;
  // The server's cluster address is the test bridge's (the root namespace's address there): Berth's
  // files (secrets, configs, resolv.conf) go to other hosts as Swarm secrets, as on real machines,
  // not as bind mounts of this machine's tmpfs that the test hosts happen to share.
  const bridge = planned[0]!.address.replace(/\.\d+$/, '.1');
  h = await Harness.create({ portRange: '20400-20549', env: { BERTH_DOCKER_SOCKET: managerSocket, BERTH_METRICS_INTERVAL_MS: '1000',
    BERTH_CLUSTER_ADDRESS: bridge, BERTH_CLUSTER_REGISTRY_PORT: '20549' } });
  ca = await ClusterCa.open(join(h.dataDir, 'cluster-ca.json'), SecretBox.fromLoaded(loadSecretKey({ dataDir: h.dataDir })));
  dir = await mkdtemp(join(tmpdir(), 'berth-cluster-data-'));
  th = await startTestHosts(3, { engineTls: (x) => ca.issueEngine({ host: x.name, addresses: [x.address] }) });
  const tls = ca.clientMaterial();
  // The manager too is reached over TCP + TLS, like every other host.
  const manager = new Docker({ host: ad(1), port: 2376, protocol: 'https', ca: tls.caPem, cert: tls.certPem, key: tls.keyPem } as Docker.DockerOptions);
  swarm = new SwarmContainers(manager, `tcp://${ad(1)}:2376`, hn(1), { logMaxSize: '1m', logMaxFile: 2 });
  dp = new SwarmDataPlane(manager, `tcp://${ad(1)}:2376`, new HostEngines({ tls: { ca: tls.caPem, cert: tls.certPem, key: tls.keyPem }, logger, connectTimeoutMs: 3000 }));
  engine = withHostEngines(swarm, dp);
  const imageId = (await th.docker(1, 'image', 'inspect', '-f', '{{.Id}}', 'berth/busybox')).trim();
  // Boot lines, then a tick every 0.3 s; SIGHUP is noticed (the reload an app gets from `berth reload`).
  const script = `trap 'echo got-HUP' HUP; i=0; while [ $i -lt ${BOOT} ]; do i=$((i+1)); echo "boot line $i"; done; ` +
    'n=0; while true; do n=$((n+1)); echo "tick $n"; sleep 0.3; done';
  const spec: ContainerSpec = {
    name: `${CLUSTER}-web-0`, image: imageId, labels: { [LABEL.managed]: 'true', [LABEL.cluster]: CLUSTER, [LABEL.app]: 'shop', [LABEL.service]: 'web' },
    env: {}, entrypoint: ['sh', '-c', script], mounts: [], stopTimeoutS: 1,
    placement: { pool: 'default', constraints: [`node.hostname==${hn(2)}`], spread: [], reservation: { nanoCpus: 0, memoryBytes: 0 } },
  };
  web = await engine.create(spec);
  await engine.start(web);
  await waitFor(async () => (await engine.inspect(web))?.running || undefined, { timeoutMs: 60_000, intervalMs: 200, what: 'web running' });
});

after(async () => {
  if (process.exitCode) console.error(h?.serverLog.slice(-6000));
  // The server and its local leftovers, and the test hosts: independent, so both at once.
  await Promise.all([h?.cleanup(), th?.down()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the instance runs on a worker, reached through that host\'s engine over TLS', async () => {
  const info = await engine.inspect(web);
  assert.equal(info?.host, hn(2));
  assert.equal(info?.hostAddress, ad(2));
});

test('logs of the remote instance: collected exactly once across a restart of the collector, searchable', async () => {
  const path = join(dir, 'logs.db');
  const source = { containerId: web, app: 'shop', env: 'prod', service: 'web', instance: 'web-0', running: true };
  const collect = (store: LogStore): LogCollector => new LogCollector({ engine: engine as unknown as EngineContainers & EngineTelemetry /* watch() is not used by the collector */, store, listContainers: async () => [source], logger, clock, flushIntervalMs: 50 });
  const ticks = (store: LogStore): number[] => store.search({ service: 'web', text: 'tick', limit: 10_000 }).lines.map((l) => Number(l.text.split(' ')[1]));
  let store = new LogStore(path, { clock });
  let c = collect(store);
  await c.sync();
  await waitFor(() => (ticks(store).length >= 5 ? true : undefined), { timeoutMs: 30_000, intervalMs: 100, what: 'ticks collected' });
  await c.close();
  const before = ticks(store);
  store.close();
  // Berth is down for a while: the instance keeps writing; the collector resumes from its checkpoint.
  await new Promise((r) => setTimeout(r, 1200));
  store = new LogStore(path, { clock });
  c = collect(store);
  await c.sync();
  const wanted = Math.max(...before) + 8;
  await waitFor(() => (Math.max(...ticks(store)) >= wanted ? true : undefined), { timeoutMs: 30_000, intervalMs: 100, what: `tick ${wanted} collected` });
  await c.close();
  const all = ticks(store).sort((a, b) => a - b);
  assert.deepEqual(all, Array.from({ length: all.length }, (_, i) => i + 1), 'every tick once, none missing, none twice');
  const boot = store.search({ service: 'web', text: 'boot', limit: 1000 }).lines.map((l) => l.text).sort();
  assert.equal(boot.length, BOOT);
  assert.equal(new Set(boot).size, BOOT);
  assert.equal(store.search({ service: 'web', text: '"boot line 17"' }).lines.length, 1);
  store.close();
});

test('stats of the remote instance: in the metrics store and /metrics; its host engine up', async () => {
  const metrics = new MetricsStore(join(dir, 'metrics.db'), { clock });
  const sampler = new StatsSampler({ engine, store: metrics, clock, logger, listInstances: () => [{ app: 'shop', env: 'prod', service: 'web', id: 'web-0', containerId: web }] });
  await sampler.sampleOnce();
  const [s] = sampler.latest();
  assert.ok(s, 'a sample of the remote instance');
  assert.ok(s.stats.memoryBytes > 0, `memory ${s.stats.memoryBytes}`);
  const mem = metrics.query({ kind: 'memory', app: 'shop', from: Date.now() - 60_000, to: Date.now() + 1000 });
  assert.equal(mem.series.length, 1);
  const text = renderMetrics({ samples: sampler.latest(), services: [], http: { routes: new Map() } as never, extra: () => hostEngineFamilies(dp.engines.health()) });
  assert.match(text, /berth_container_memory_bytes\{app="shop",env="prod",service="web",instance="web-0"\} [1-9]\d*/);
  assert.match(text, /berth_container_cpu_percent\{app="shop",env="prod",service="web",instance="web-0"\} [\d.]+/);
  assert.match(text, new RegExp(`berth_host_engine_up\\{host="${hn(2)}",endpoint="tcp://${ad(2).replace(/\./g, '\\.')}:2376"\\} 1`));
  metrics.close();
});

test('a SIGHUP reaches the remote instance (reload by signal); exec runs in it', async () => {
  await engine.kill(web, 'SIGHUP');
  const hup = await waitFor(async () => {
    const lines: string[] = [];
    await engine.logs(web, { follow: false, tail: 200 }, (l) => lines.push(l.text));
    return lines.includes('got-HUP') ? lines : undefined;
  }, { timeoutMs: 15_000, intervalMs: 200, what: 'got-HUP in the logs' });
  assert.ok(hup.length > 0);
  assert.equal((await engine.inspect(web))?.running, true, 'a HUP is not a stop');
  const out: string[] = [];
  const r = await engine.exec(web, ['sh', '-c', 'echo exec-ok; hostname >&2; exit 3'], {
    stdout: (b) => out.push(`out:${Buffer.from(b).toString()}`), stderr: (b) => out.push(`err:${Buffer.from(b).toString()}`),
  });
  assert.equal(r.exitCode, 3);
  assert.ok(out.includes('out:exec-ok\n'), out.join('|'));
});

test('attacker: the engine\'s TCP endpoint refuses plain TCP, TLS without a client certificate, and another CA\'s certificate', async () => {
  // Plain HTTP to the TLS port: no Docker API answer.
  const plain = await new Promise<string>((res) => {
    const s = netConnect({ host: ad(2), port: 2376 }, () => s.write('GET /containers/json HTTP/1.0\r\n\r\n'));
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('close', () => res(got));
    s.on('error', () => res(got));
    s.setTimeout(5000, () => s.destroy());
  });
  assert.doesNotMatch(plain, /"Id"|HTTP\/1\.[01] 200/);
  const tlsAttempt = (opts: { cert?: string; key?: string }): Promise<string> => new Promise((res) => {
    const s = tlsConnect({ host: ad(2), port: 2376, ca: ca.caPem, ...opts }, () => s.write('GET /containers/json HTTP/1.0\r\n\r\n'));
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('close', () => res(got || 'closed'));
    s.on('error', (e) => res(`error: ${e.message}`));
    s.setTimeout(5000, () => s.destroy());
  });
  assert.doesNotMatch(await tlsAttempt({}), /HTTP\/1\.[01] 200/);
  const foreign = (await ClusterCa.create()).ca.clientMaterial();
  assert.doesNotMatch(await tlsAttempt({ cert: foreign.certPem, key: foreign.keyPem }), /HTTP\/1\.[01] 200/);
  // A Docker client with another CA's client certificate gets nothing; Berth's gets the containers.
  const intruder = new Docker({ host: ad(2), port: 2376, protocol: 'https', ca: ca.caPem, cert: foreign.certPem, key: foreign.keyPem } as Docker.DockerOptions);
  await assert.rejects(intruder.listContainers());
  const mine = ca.clientMaterial();
  const berth = new Docker({ host: ad(2), port: 2376, protocol: 'https', ca: mine.caPem, cert: mine.certPem, key: mine.keyPem } as Docker.DockerOptions);
  assert.ok((await berth.listContainers()).length >= 1);
  // And Berth does not talk to an engine whose certificate is not from its CA (a host impersonated).
  const other = (await ClusterCa.create()).ca;
  const wrongCa = new Docker({ host: ad(2), port: 2376, protocol: 'https', ca: other.caPem, cert: mine.certPem, key: mine.keyPem } as Docker.DockerOptions);
  await assert.rejects(wrongCa.ping());
});

test('through the server: an app on a remote host — logs searchable and exactly once across a Berth restart, stats and host engine in /metrics, reload by signal, exec', async () => {
  await h.startServer();
  const file = join(dir, 'dapp.yaml');
  await writeFile(file, `name: dapp
services:
  web:
    image: berth/busybox:latest
    command: ["sh", "-c", "trap 'echo got-HUP' HUP; mkdir -p /tmp/w && echo ok > /tmp/w/index.html && httpd -p $$PORT -h /tmp/w; n=0; while true; do n=$$((n+1)); echo \\"dtick $$n\\"; sleep 0.3; done"]
    deploy:
      placement:
        constraints: ["node.hostname==${hn(3)}"]
    stop_grace_period: 1s
    x-berth:
      port: 8080
      health:
        http: {path: /, interval: 500ms}
      update:
        signal: SIGHUP
        deadline: 90s
`);
  const d = await h.cli(['deploy', '-f', file], { timeoutMs: 150_000 });
  assert.equal(d.code, 0, d.stderr + d.stdout);
  const inst = (await h.status('dapp')).services.flatMap((s: { instances: unknown[] }) => s.instances) as Array<{ id: string; host: string }>;
  assert.deepEqual(inst.map((i) => i.host), [hn(3)]);
  const ticks = async (): Promise<number[]> => ((await h.api('GET', '/v1/apps/dapp/logs?env=prod&grep=dtick&limit=5000')).json.lines as Array<{ text: string }>)
    .map((l) => Number(l.text.split(' ')[1]));
  await waitFor(async () => ((await ticks()).length >= 5 ? true : undefined), { timeoutMs: 30_000, intervalMs: 250, what: 'remote logs collected by the server' });
  // Stats of the remote instance and its host's engine in /metrics.
  const metrics = await waitFor(async () => {
    const r = await fetch(`http://127.0.0.1:${h.apiPort}/metrics`, { headers: { authorization: `Bearer ${await h.token()}` } });
    const text = await r.text();
    return /berth_container_memory_bytes\{app="dapp",env="prod",service="web"[^}]*\} [1-9]/.test(text) ? text : undefined;
  }, { timeoutMs: 30_000, intervalMs: 500, what: 'remote stats in /metrics' });
  assert.match(metrics, new RegExp(`berth_host_engine_up\\{host="${hn(3)}",endpoint="tcp://${ad(3).replace(/\./g, '\\.')}:2376"\\} 1`));
  // Reload by signal reaches the remote container; exec runs in it.
  const r = await h.cli(['reload', 'dapp', 'web'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  await waitFor(async () => ((await h.api('GET', '/v1/apps/dapp/logs?env=prod&grep=got-HUP')).json.lines.length === 1 ? true : undefined),
    { timeoutMs: 20_000, intervalMs: 250, what: 'got-HUP in the searchable logs' });
  const x = await h.cli(['exec', 'dapp/web', '--', 'sh', '-c', 'echo exec-ok; exit 4'], { timeoutMs: 30_000 });
  assert.equal(x.code, 4, x.stderr);
  assert.match(x.stdout, /exec-ok/);
  // Berth restarts (killed): the collector resumes from its checkpoint, nothing twice, nothing missing;
  // the restarted server adopts the remote instance (the same instance, Swarm service and container, never restarted).
  const view = async (): Promise<Array<{ id: string; host: string; containerId?: string }>> => (await h.status('dapp')).services.flatMap((s: { instances: unknown[] }) => s.instances);
  const remote = async (): Promise<string> => (await th.docker(3, 'ps', '-q', '--no-trunc', '--filter', 'label=io.berth.app=dapp')).trim();
  const [adopted] = await view();
  const containerBefore = await remote();
  const startedBefore = (await th.docker(3, 'inspect', '-f', '{{.State.StartedAt}}', containerBefore)).trim();
  const before = Math.max(...(await ticks()));
  await h.killServer();
  await new Promise((res) => setTimeout(res, 1000));
  await h.startServer();
  assert.deepEqual((await view()).map((i) => [i.id, i.host, i.containerId]), [[adopted!.id, hn(3), adopted!.containerId]], 'the same instance and Swarm service');
  assert.equal(await remote(), containerBefore, 'the same container on the remote host');
  assert.equal((await th.docker(3, 'inspect', '-f', '{{.State.StartedAt}}', containerBefore)).trim(), startedBefore, 'not restarted');
  await waitFor(async () => (Math.max(...(await ticks())) >= before + 8 ? true : undefined), { timeoutMs: 30_000, intervalMs: 250, what: 'ticks after the restart' });
  const all = (await ticks()).sort((a, b) => a - b);
  assert.deepEqual(all, Array.from({ length: all.length }, (_, i) => all[0]! + i), 'every tick once, no gap');
  assert.equal(all[0], 1);
});

/** The Swarm secrets (id, file target) the app's services on the manager use. */
async function swarmSecretsOf(app: string): Promise<Array<{ id: string; target: string }>> {
  const ids = (await th.docker(1, 'service', 'ls', '-q', '--filter', `label=io.berth.app=${app}`)).trim().split('\n').filter(Boolean);
  const out: Array<{ id: string; target: string }> = [];
  for (const id of ids) {
    const refs = JSON.parse((await th.docker(1, 'service', 'inspect', id, '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Secrets}}')).trim() || 'null') as
      Array<{ SecretID: string; File: { Name: string } }> | null;
    for (const r of refs ?? []) out.push({ id: r.SecretID, target: r.File.Name });
  }
  return out;
}

test('through the server: a secret changed rolls out to the instance on a remote host, which reads the new value; the old Swarm secret is removed', async () => {
  const file = join(dir, 'sapp.yaml');
  await writeFile(file, `name: sapp
services:
  web:
    image: berth/busybox:latest
    command: ["sh", "-c", "exec httpd -f -p $$PORT -h /run/secrets"]
    secrets: [api_key]
    deploy:
      placement:
        constraints: ["node.hostname==${hn(3)}"]
    stop_grace_period: 1s
    x-berth:
      port: 8080
      health:
        http: {path: /api_key, interval: 500ms}
      update:
        deadline: 90s
secrets:
  api_key:
    external: true
`);
  if (!h.proc || h.proc.exitCode !== null) await h.startServer();
  const V1 = `key-one-${randomBytes(6).toString('hex')}`;
  const V2 = `key-two-${randomBytes(6).toString('hex')}`;
  const s1 = await h.cli(['secret', 'set', 'sapp', 'API_KEY', '--env', 'prod', '--create'], { input: V1, timeoutMs: 60_000 });
  assert.equal(s1.code, 0, s1.stderr + s1.stdout);
  const d = await h.cli(['deploy', '-f', file], { timeoutMs: 150_000 });
  assert.equal(d.code, 0, d.stderr + d.stdout);
  const one = async (): Promise<{ id: string; host: string; address: string; port: number; state: string }> => {
    const all = ((await h.status('sapp')).services.flatMap((x: { instances: unknown[] }) => x.instances) as Array<{ id: string; host: string; address: string; port: number; state: string }>)
      .filter((i) => i.state === 'running');
    assert.equal(all.length, 1, JSON.stringify(all));
    return all[0]!;
  };
  const first = await one();
  assert.equal(first.host, hn(3));
  assert.equal(await (await fetch(`http://${first.address}:${first.port}/api_key`, { signal: AbortSignal.timeout(5000) })).text(), V1);
  const before = await swarmSecretsOf('sapp');
  const oldKey = before.find((x) => x.target === '/run/secrets/api_key');
  assert.ok(oldKey, `the key is a Swarm secret of the service: ${JSON.stringify(before)}`);
  // Changed: `secret set` rolls it out (a new release, a new instance with a new Swarm secret: they are immutable) and waits.
  const s2 = await h.cli(['secret', 'set', 'sapp', 'API_KEY', '--env', 'prod'], { input: V2, timeoutMs: 150_000 });
  assert.equal(s2.code, 0, s2.stderr + s2.stdout);
  const second = await waitFor(async () => {
    const i = await one().catch(() => undefined);
    return i && i.id !== first.id ? i : undefined;
  }, { timeoutMs: 60_000, intervalMs: 250, what: 'the new instance alone' });
  assert.equal(second.host, hn(3));
  assert.equal(await (await fetch(`http://${second.address}:${second.port}/api_key`, { signal: AbortSignal.timeout(5000) })).text(), V2);
  const after = await swarmSecretsOf('sapp');
  const newKey = after.find((x) => x.target === '/run/secrets/api_key');
  assert.ok(newKey && newKey.id !== oldKey.id, 'a new Swarm secret for the new value');
  // The old value's Swarm secret went with the old instance's service; nothing of the app keeps it.
  const left = (await th.docker(1, 'secret', 'ls', '-q')).trim().split('\n');
  await waitFor(async () => (!(await th.docker(1, 'secret', 'ls', '-q')).includes(oldKey.id) ? true : undefined),
    { timeoutMs: 30_000, intervalMs: 250, what: `the old secret ${oldKey.id} removed (${left.length} secrets)` });
  assert.ok((await th.docker(1, 'secret', 'ls', '-q')).includes(newKey.id));
  // The value is in no service spec or secret inspect output on the manager.
  const specs = await th.docker(1, 'service', 'inspect', ...(await th.docker(1, 'service', 'ls', '-q', '--filter', 'label=io.berth.app=sapp')).trim().split('\n'));
  assert.ok(!specs.includes(V2) && !specs.includes(V1));
  assert.ok(!(await th.docker(1, 'secret', 'inspect', newKey.id)).includes(V2));
  const rmd = await h.cli(['rm', 'sapp'], { timeoutMs: 120_000 });
  assert.equal(rmd.code, 0, rmd.stderr);
});

test('through the server: a remote instance\'s engine-run health and its death reach Berth from that host\'s engine events', async () => {
  // A Compose healthcheck runs in the remote host's engine: the Swarm manager never says a task's
  // health, so only that host's events (and its listing at connect) can make these instances healthy.
  const file = join(dir, 'eapp.yaml');
  await writeFile(file, `name: eapp
services:
  web:
    image: berth/busybox:latest
    command: ["sh", "-c", "mkdir -p /tmp/w && echo ok > /tmp/w/index.html && touch /tmp/ok && exec httpd -f -p $$PORT -h /tmp/w"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ok"]
      interval: 1s
      timeout: 10s
      retries: 1
    deploy:
      replicas: 2
      restart_policy: {condition: none}
      placement:
        constraints: ["node.hostname==${hn(3)}"]
    stop_grace_period: 1s
    x-berth:
      port: 8080
      routes: [eapp.test/]
      update: {deadline: 120s}
`);
  const d = await h.cli(['deploy', '-f', file], { timeoutMs: 180_000 });
  assert.equal(d.code, 0, d.stderr + d.stdout);
  type Inst = { id: string; host: string; port: number; health: string; state: string; containerId: string };
  const insts = async (): Promise<Inst[]> => (await h.status('eapp')).services[0].instances;
  const [a, b] = await insts();
  assert.deepEqual((await insts()).map((i) => [i.host, i.health]), [[hn(3), 'healthy'], [hn(3), 'healthy']]);
  const dig = async (): Promise<number[]> => (await execFileP('dig', ['@127.0.0.1', '-p', String(h.dnsPort), '+time=1', '+tries=1', '_web._tcp.eapp.prod.berth', 'SRV', '+short'])).stdout
    .split('\n').filter(Boolean).map((l) => Number(l.split(/\s+/)[2])).sort();
  const routed = async (i: Inst): Promise<[boolean, boolean]> => [(await h.nginxBackends()).includes(`${ad(3)}:${i.port}`), (await dig()).includes(i.port)];
  assert.deepEqual(await routed(a!), [true, true]);
  assert.deepEqual(await routed(b!), [true, true]);
  const container = async (i: Inst): Promise<string> => (await th.docker(3, 'ps', '-aq', '--no-trunc', '--filter', `label=com.docker.swarm.service.id=${i.containerId}`)).trim();
  const [ca1, cb1] = [await container(a!), await container(b!)];
  assert.match(ca1, /^[0-9a-f]{64}$/);
  // What the server logged of that host's engine events (pino JSON lines).
  const hostEvent = (action: string, cid: string): boolean => h.serverLog.split('\n').some((l) => l.includes('"host engine event"') &&
    l.includes(`"host":"${hn(3)}"`) && l.includes(`"action":"${action}"`) && l.includes(`"container":"${cid.slice(0, 12)}"`));
  const events = async (inst: string): Promise<string[]> => ((await h.api('GET', '/v1/events?app=eapp&limit=500')).json.events as Array<{ kind: string; instance: string }>)
    .filter((e) => e.instance === inst).map((e) => e.kind);

  // The health flip happens on the remote host (its check's file removed): Berth unroutes the instance.
  await th.docker(3, 'exec', ca1, 'rm', '/tmp/ok');
  await waitFor(async () => ((await events(a!.id)).includes('health.unhealthy') ? true : undefined), { timeoutMs: 60_000, intervalMs: 250, what: 'health.unhealthy of the remote instance' });
  assert.ok(hostEvent('health_status: unhealthy', ca1), `the server heard ${hn(3)}'s health_status event:\n${h.serverLog.slice(-3000)}`);
  await waitFor(async () => ((await routed(a!)).some(Boolean) ? undefined : true), { timeoutMs: 30_000, intervalMs: 250, what: 'the unhealthy instance out of nginx and DNS' });

  // The other one's container killed through that host's engine: its die event is what Berth acts on.
  await th.docker(3, 'kill', cb1);
  await waitFor(async () => ((await insts()).find((i) => i.id === b!.id)?.state === 'exited' ? true : undefined), { timeoutMs: 60_000, intervalMs: 250, what: 'the killed remote instance exited' });
  assert.ok(hostEvent('die', cb1), `the server heard ${hn(3)}'s die event:\n${h.serverLog.slice(-3000)}`);
  assert.ok((await events(b!.id)).includes('instance.exited'));
  await waitFor(async () => ((await routed(b!)).some(Boolean) ? undefined : true), { timeoutMs: 30_000, intervalMs: 250, what: 'the killed instance out of nginx and DNS' });
});

test('a host whose engine cannot be reached: stats and signals fail fast naming the host; the metric says 0', async () => {
  await th.kill(2);
  const t0 = Date.now();
  await assert.rejects(engine.stats(web), (e: unknown) => {
    assert.ok(e instanceof EngineUnavailable, String(e));
    assert.match((e as Error).message, new RegExp(`host ${hn(2)}.*(tcp://${ad(2).replace(/\./g, '\\.')}:2376|is down)`));
    return true;
  });
  assert.ok(Date.now() - t0 < 10_000, `failed after ${Date.now() - t0} ms`);
  await assert.rejects(engine.kill(web, 'SIGHUP'), EngineUnavailable);
  const health = await dp.checkHosts();
  assert.deepEqual(health.map((h) => [h.host, h.up]), [[hn(1), true], [hn(2), false], [hn(3), true]]);
  assert.match(renderFamilies(hostEngineFamilies(health)), new RegExp(`berth_host_engine_up\\{host="${hn(2)}",[^}]*\\} 0`));
});
