/**
 * A data plane on every host (issue 13 item 4), on a real Swarm of two test hosts (slot from
 * BERTH_TESTHOSTS_SLOT): an image Berth built (`berth deploy` with a build section, pushed to its
 * registry) runs on a host that never had it, pulled by digest from Berth's registry on the cluster
 * address over TLS (the engine trusts the cluster CA through /etc/docker/certs.d, written by the join
 * step; a registry certificate of another CA is refused by the engine); the instance reads its secret
 * and config files (Swarm secrets, tmpfs on the node), resolves another service by Berth's DNS name,
 * answers the control plane's health check on hostAddress:port; a changed secret is a new Swarm
 * secret and the old one goes with the last instance that used it.
 * Ports: 20550-20599 (instances), 20650-20651 (cluster registry, a foreign-CA proxy).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as tlsServer, type Server } from 'node:tls';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import Docker from 'dockerode';
import { registryTrustCommand } from '../src/api/host-routes.ts';
import { RegistryLogins, SecretBox, loadSecretKey } from '../src/config/index.ts';
import { LABEL, type ContainerSpec } from '../src/core/ports.ts';
import { SwarmContainers } from '../src/engine/docker/swarm-containers.ts';
import { LocalRegistry } from '../src/images/index.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { checkInstance } from '../src/registry/health-monitor.ts';
import { loadConfig } from '../src/server/config.ts';
import { startClusterData, type ClusterDataParts } from '../src/server/cluster-data-wiring.ts';
import { ClusterCa } from '../src/tls/index.ts';
import { Harness, docker } from './helpers/harness.ts';
import { startTestHosts, type TestHosts } from './helpers/swarm-hosts.ts';

const exec = promisify(execFile);
const APP = 'creg';
const REGISTRY_PORT = 20650;
const FOREIGN_PORT = 20651;
const BASE = `berth-${APP}/busybox:1`;
const PW1 = `pw-one-${randomBytes(6).toString('hex')}`;
const PW2 = `pw-two-${randomBytes(6).toString('hex')}`;

let th: TestHosts;
let h: Harness;
let work: string;
let bridge: string;
let cluster: string;
let data: ClusterDataParts;
let swarm: SwarmContainers;
let foreign: Server | undefined;
const certDirs: string[] = [];
const hn = (i: number): string => th.hosts[i - 1]!.name;

const COMPOSE = `name: ${APP}
services:
  web:
    build: ./app
    stop_grace_period: 1s
    x-berth:
      port: 8080
    secrets:
      - source: pw
        target: /etc/app/pw
        uid: "1000"
        mode: 0400
    configs:
      - source: conf
        target: /etc/app/app.conf
  db:
    image: berth/busybox
    command: ["sh", "-c", "mkdir -p /tmp/w && echo db > /tmp/w/index.html && exec httpd -f -p $$PORT -h /tmp/w"]
    stop_grace_period: 1s
    x-berth:
      port: 5432
secrets:
  pw:
    environment: CREG_PW
configs:
  conf:
    content: "greeting = hello from the config file\\n"
`;

// The app: serves what it reads — its secret, its config file, and how it resolves `db` — refreshed every second.
const RUN_SH = `#!/bin/sh
mkdir -p /tmp/www
( while true; do
  cat /etc/app/pw > /tmp/www/pw 2>&1
  cat /etc/app/app.conf > /tmp/www/conf 2>&1
  nslookup db > /tmp/www/dns.tmp 2>&1; mv /tmp/www/dns.tmp /tmp/www/dns
  echo ok > /tmp/www/healthz
  sleep 1
done ) &
exec httpd -f -p "$PORT" -h /tmp/www
`;

async function get(address: string, port: number, path: string): Promise<string | undefined> {
  try {
    const r = await fetch(`http://${address}:${port}${path}`, { signal: AbortSignal.timeout(2000) });
    return r.ok ? await r.text() : undefined;
  } catch {
    return undefined;
  }
}

/** The spec the service reconciler made for the local instance of `service` (what it would hand to Swarm), bound to host 2. */
async function specOfLocal(service: string, name: string): Promise<{ spec: ContainerSpec; port: number; release: string }> {
  const id = await waitFor(async () => (await docker('ps', '-q', '--filter', `label=${LABEL.cluster}=${cluster}`, '--filter', `label=${LABEL.service}=${service}`)).split('\n')[0] || undefined,
    { timeoutMs: 30_000, intervalMs: 200, what: `local ${service}` });
  const c = JSON.parse(await docker('inspect', id))[0] as {
    Image: string; Config: { Env: string[]; Cmd: string[] | null; Entrypoint: string[] | null; Labels: Record<string, string> };
    Mounts: Array<{ Type: string; Source: string; Destination: string; RW: boolean }>;
  };
  const env = Object.fromEntries(c.Config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  return {
    port: Number(env.PORT), release: c.Config.Labels[LABEL.release]!,
    spec: {
      name, image: c.Image, labels: { [LABEL.managed]: 'true', [LABEL.cluster]: cluster, [LABEL.app]: APP, [LABEL.service]: service },
      env, ...(c.Config.Cmd ? { cmd: c.Config.Cmd } : {}), ...(c.Config.Entrypoint ? { entrypoint: c.Config.Entrypoint } : {}),
      mounts: c.Mounts.filter((m) => m.Type === 'bind').map((m) => ({ type: 'bind' as const, source: m.Source, target: m.Destination, readOnly: !m.RW })),
      stopTimeoutS: 1,
      placement: { pool: 'default', constraints: [`node.hostname==${hn(2)}`], spread: [], reservation: { nanoCpus: 0, memoryBytes: 0 } },
    },
  };
}

before(async () => {
  th = await startTestHosts(2);
  bridge = th.hosts[0]!.address.replace(/\.\d+$/, '.1');
  work = await mkdtemp(join(tmpdir(), 'berth-creg-'));
  await mkdir(join(work, 'app'));
  // A pinned base (Berth's image checks refuse FROM :latest): busybox under a version tag of this test's own.
  await docker('tag', 'berth/busybox', BASE);
  await writeFile(join(work, 'app', 'Dockerfile'), `FROM ${BASE}\nCOPY run.sh /app/run.sh\nCMD ["sh", "/app/run.sh"]\n`);
  await writeFile(join(work, 'app', 'run.sh'), RUN_SH);
  await writeFile(join(work, 'compose.yaml'), COMPOSE);
  h = await Harness.create({
    portRange: '20550-20599', containerDns: `127.0.${Math.floor(Math.random() * 200) + 20}.57`,
    env: { BERTH_CLUSTER_ADDRESS: bridge, BERTH_CLUSTER_REGISTRY_PORT: String(REGISTRY_PORT) },
  });
  await h.startServer();
  cluster = (await readFile(join(h.dataDir, 'cluster-id'), 'utf8')).trim();
  // The server's own wiring, run again in this process: it adopts the registries the server started.
  const cfg = loadConfig({}, h.env);
  const box = SecretBox.fromLoaded(loadSecretKey({ dataDir: h.dataDir }));
  const local = new LocalRegistry({ dataDir: h.dataDir, port: h.registryPort, logger: silentLogger });
  await local.start();
  data = (await startClusterData(cfg, cluster, {
    imageRegistry: local, imageRegistryUp: true, clusterCa: () => ClusterCa.open(join(h.dataDir, 'cluster-ca.json'), box), registryLogins: new RegistryLogins(join(h.dataDir, 'registry-logins.json'), box, { now: () => Date.now() }), logger: silentLogger,
  }))!;
  swarm = new SwarmContainers(new Docker({ socketPath: th.manager }), th.manager, hn(1), { logMaxSize: '1m', logMaxFile: 2, shipping: data.shipping });
});

after(async () => {
  if (process.exitCode) console.error(h?.serverLog.slice(-4000));
  foreign?.close();
  for (const d of certDirs) await rm(d, { recursive: true, force: true });
  // The server and its local leftovers, and the test hosts: independent, so both at once.
  await Promise.all([h?.cleanup(), th?.down()]);
  if (work) await rm(work, { recursive: true, force: true });
  await docker('image', 'rm', '-f', `berth-${APP}/web:latest`, BASE).catch(() => '');
});

test('an image Berth built runs on a host that never had it, pulled by digest over TLS that the engine verifies; files, DNS and health work there', async () => {
  const d = await h.cli(['deploy', '-f', join(work, 'compose.yaml'), '--timeout', '2m'], { env: { CREG_PW: PW1 }, timeoutMs: 180_000 });
  assert.equal(d.code, 0, d.stderr);
  const rels = (await h.api('GET', `/v1/apps/${APP}/releases?env=prod`)).json.releases as Array<{ service: string; image: string; current: boolean }>;
  const built = rels.find((r) => r.service === 'web' && r.current)!.image;
  assert.match(built, new RegExp(`^127\\.0\\.0\\.1:${h.registryPort}/${APP}/web@sha256:[0-9a-f]{64}$`));
  const ref = data.registry!.refFor(built)!;
  assert.equal(ref, `${bridge}:${REGISTRY_PORT}/${APP}/web@${built.split('@')[1]}`);
  // Host 2 never had it.
  assert.doesNotMatch(await th.docker(2, 'image', 'ls', '--digests'), new RegExp(built.split('@sha256:')[1]!.slice(0, 12)));

  // Without the join step the engine does not trust Berth's registry: TLS verification fails (no fallback to plain HTTP).
  await assert.rejects(th.docker(2, 'pull', ref), /x509|certificate signed by unknown authority/);
  // The registry is closed: a client trusting the CA but without Berth's account gets 401; read-only, it refuses pushes.
  assert.equal(await data.registry!.status(false), 401);
  assert.equal(await data.registry!.status(true), 200);

  // A registry on the cluster network whose certificate comes from another CA: refused by an engine that trusts Berth's CA for it.
  const other = (await ClusterCa.create()).ca;
  const otherCert = await other.issueEngine({ host: 'impostor', addresses: [bridge] });
  foreign = tlsServer({ cert: otherCert.certPem, key: otherCert.keyPem }, (s) => {
    const up = netConnect(h.registryPort, '127.0.0.1');
    s.pipe(up).pipe(s);
    up.on('error', () => s.destroy());
    s.on('error', () => up.destroy());
  });
  await new Promise<void>((res) => foreign!.listen(FOREIGN_PORT, bridge, res));
  const foreignDir = `/etc/docker/certs.d/${bridge}:${FOREIGN_PORT}`;
  certDirs.push(foreignDir);
  await mkdir(foreignDir, { recursive: true });
  await writeFile(join(foreignDir, 'ca.crt'), data.ca.caPem);
  await assert.rejects(th.docker(2, 'pull', `${bridge}:${FOREIGN_PORT}/${APP}/web@${built.split('@')[1]}`), /x509|certificate signed by unknown authority/);

  // The join step, as `berth host add` prints it, run on the host (certs.d is shared by the test hosts' engines).
  assert.ok(data.registryTrust);
  certDirs.push(`/etc/docker/certs.d/${data.registryTrust.host}`);
  await exec('bash', ['-c', registryTrustCommand(data.registryTrust)]);
  assert.equal(await readFile(`/etc/docker/certs.d/${data.registryTrust.host}/ca.crt`, 'utf8'), `${data.ca.caPem.trim()}\n`);

  // The instance the reconciler made locally, as a one-task Swarm service on host 2.
  const { spec, port, release } = await specOfLocal('web', `${APP}-web-r1-${cluster.slice(0, 6)}`);
  assert.ok(spec.mounts.some((m) => m.target === '/etc/app/pw' && m.source.startsWith('/run/berth/')), 'the local instance bind-mounts its secret from the tmpfs');
  const t0 = Date.now();
  const id = await swarm.create(spec);
  await swarm.start(id);
  const info = await waitFor(async () => {
    const i = await swarm.inspect(id);
    if (i?.state === 'dead') throw new Error(`task failed: ${i.healthLog?.output}`);
    return i?.running ? i : undefined;
  }, { timeoutMs: 90_000, intervalMs: 250, what: 'the instance running on host 2' });
  console.log(`# figures: pulled from Berth's registry over TLS and running on ${info.host} in ${Date.now() - t0} ms`);
  assert.equal(info.host, hn(2));
  assert.equal(info.image, ref, 'Swarm runs the registry reference by digest');
  assert.match(await th.docker(2, 'image', 'inspect', '-f', '{{join .RepoDigests " "}}', ref), new RegExp(`${bridge.replace(/\./g, '\\.')}:${REGISTRY_PORT}/${APP}/web@sha256:`));

  // Its secret and config file, as Swarm secrets on a tmpfs of the node, with the mode and owner asked for.
  const addr = info.hostAddress!;
  assert.equal(addr, th.hosts[1]!.address);
  assert.equal(await waitFor(() => get(addr, port, '/pw'), { timeoutMs: 20_000, intervalMs: 200, what: 'its secret over HTTP' }), PW1);
  assert.equal(await get(addr, port, '/conf'), 'greeting = hello from the config file\n');
  const cid = (await th.docker(2, 'ps', '-q', '--filter', `label=com.docker.swarm.service.id=${id}`)).trim();
  const mounts = await th.docker(2, 'exec', cid, 'sh', '-c', 'grep -E " /etc/app/(pw|app.conf) " /proc/mounts; ls -ln /etc/app/pw');
  assert.match(mounts, /^tmpfs \/etc\/app\/pw tmpfs ro/m);
  assert.match(mounts, /^tmpfs \/etc\/app\/app\.conf tmpfs ro/m);
  assert.match(mounts, /-r-------- +1 1000 /);
  // Not a bind mount of the control host's tmpfs: that path does not exist on another host.
  assert.doesNotMatch(await th.docker(2, 'inspect', '-f', '{{json .Mounts}}', cid), /\/run\/berth\//);

  // Berth's name for db resolves there through Berth's DNS on the cluster address.
  const dbAddr = (await h.api('GET', `/v1/registry/prod/db?app=${APP}`)).json;
  const dns = await waitFor(async () => {
    const t = await get(addr, port, '/dns');
    return t && /Address.*\d+\.\d+\.\d+\.\d+/.test(t.split(/Name:/)[1] ?? '') ? t : undefined;
  }, { timeoutMs: 20_000, intervalMs: 300, what: `db resolving on host 2 (registry: ${JSON.stringify(dbAddr)})` });
  assert.match(dns, new RegExp(`Server:\\s+${bridge.replace(/\./g, '\\.')}`));
  assert.match(dns, new RegExp(`Name:\\s+db\\.${APP}\\.prod\\.berth`));

  // The control plane's health check of the remote instance: hostAddress:port.
  const probe = await checkInstance({ address: addr, port }, { type: 'http', path: '/healthz', timeoutMs: 2000 } as never);
  assert.equal(probe.ok, true, probe.text);

  // A changed secret: a new release (Berth's rollout), a new Swarm secret; the old one goes with the last service that used it.
  const secretsBefore = await th.docker(1, 'secret', 'ls', '--filter', `label=${LABEL.cluster}=${cluster}`, '--format', '{{.ID}}');
  assert.ok(secretsBefore.trim().split('\n').length >= 3, `pw, app.conf, resolv.conf (and the config directory): ${secretsBefore}`);
  const d2 = await h.cli(['deploy', '-f', join(work, 'compose.yaml'), '--timeout', '2m'], { env: { CREG_PW: PW2 }, timeoutMs: 180_000 });
  assert.equal(d2.code, 0, d2.stderr);
  const next = await waitFor(async () => {
    const s = await specOfLocal('web', `${APP}-web-r2-${cluster.slice(0, 6)}`);
    return s.release !== release ? s : undefined;
  }, { timeoutMs: 30_000, intervalMs: 300, what: 'the new release running locally' });
  const id2 = await swarm.create(next.spec);
  await swarm.start(id2);
  await waitFor(async () => (await swarm.inspect(id2))?.running, { timeoutMs: 60_000, intervalMs: 250, what: 'the new instance running' });
  assert.equal(await waitFor(() => get(addr, next.port, '/pw'), { timeoutMs: 20_000, intervalMs: 200, what: 'the new secret' }), PW2);
  await swarm.stop(id, 1);
  await swarm.remove(id);
  const secretsAfter = (await th.docker(1, 'secret', 'ls', '--filter', `label=${LABEL.cluster}=${cluster}`, '--format', '{{.ID}}')).trim().split('\n');
  const gone = secretsBefore.trim().split('\n').filter((s) => !secretsAfter.includes(s));
  assert.equal(gone.length, 1, `only the old password's secret goes (the config and resolv.conf are shared): before ${secretsBefore}, after ${secretsAfter}`);
  assert.equal(secretsAfter.length, secretsBefore.trim().split('\n').length);
  await swarm.remove(id2);
  assert.equal((await th.docker(1, 'secret', 'ls', '--filter', `label=${LABEL.cluster}=${cluster}`, '-q')).trim(), '', 'no secret outlives its last instance');
});
