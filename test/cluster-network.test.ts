/**
 * App networks across hosts (issue 13: "an app-network app (web + database by name) spanning two
 * hosts works"), on a real Swarm of two test hosts (slot from BERTH_TESTHOSTS_SLOT) under a real
 * `berth server` whose engine is the manager: the app network is an attachable Swarm overlay (VXLAN
 * between the hosts' namespaces), web's two replicas forced onto host 1 and the db onto host 2. Web
 * answers through the ingress (host-mode published port on its task's host) with what it read from
 * `db:5432` over the overlay; the db's container resolves `web` to both web replicas (dnsrr) and a
 * `.berth` name through Berth's DNS on the cluster address; prod and pre are isolated (pre reaches its
 * own db by name, never prod's by name or address); a restart of Berth adopts the overlay and the tasks
 * (same network id, same containers); `rm --purge` removes the overlay.
 * Ports: instances 21200-21379, the cluster registry 21390 (this file's range is 21200-21399).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../src/lib/backoff.ts';
import { Harness, viaIngress } from './helpers/harness.ts';
import { startTestHosts, type TestHosts } from './helpers/swarm-hosts.ts';

const APP = 'ovl';

describe('app networks across hosts (Swarm overlays)', () => {
  let th: TestHosts;
  let h: Harness;
  let dir: string;
  let cluster: string;
  let setupS = 0;
  const hn = (i: number): string => th.hosts[i - 1]!.name;

  /** web (2 replicas, host 1) serves `ENV | <what db:5432 answered>`; db (host 2) answers `db-ENV`. */
  const compose = (): string => `name: ${APP}
services:
  web:
    image: berth/busybox:latest
    command: ["sh", "-c", "mkdir -p /www; while true; do a=$$(nc -w 2 db 5432 </dev/null); echo \\"$$BERTH_ENV | $$a\\" > /www/i.tmp; mv /www/i.tmp /www/index.html; sleep 1; done & exec httpd -f -p 8000 -h /www"]
    ports: ["8000"]
    deploy:
      replicas: 2
      placement: {constraints: ["node.hostname == ${hn(1)}"]}
    stop_grace_period: 1s
    x-berth:
      routes: ["ovl-\${BERTH_ENV}.test/"]
      health: {http: {path: /, interval: 500ms}}
  db:
    image: berth/busybox:latest
    command: ["sh", "-c", "while true; do echo db-$$BERTH_ENV | nc -l -p 5432; done"]
    deploy:
      placement: {constraints: ["node.hostname == ${hn(2)}"]}
    stop_grace_period: 1s
`;

  before(async () => {
    const t0 = Date.now();
    th = await startTestHosts(2);
    const bridge = th.hosts[0]!.address.replace(/\.\d+$/, '.1');
    dir = await mkdtemp(join(tmpdir(), 'berth-cluster-network-'));
    h = await Harness.create({
      portRange: '21200-21379', containerDns: `127.0.${Math.floor(Math.random() * 200) + 20}.58`,
      env: { BERTH_DOCKER_SOCKET: th.manager, BERTH_CLUSTER_ADDRESS: bridge, BERTH_CLUSTER_REGISTRY_PORT: '21390' },
    });
    await h.startServer();
    cluster = (await readFile(join(h.dataDir, 'cluster-id'), 'utf8')).trim();
    setupS = (Date.now() - t0) / 1000;
  });

  after(async () => {
    if (process.exitCode) console.error(h?.serverLog.slice(-6000));
    // The server and its local leftovers, and the test hosts: independent, so both at once.
    await Promise.all([h?.cleanup(), th?.down()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const deploy = async (env: string): Promise<void> => {
    const file = join(dir, `compose-${env}.yaml`);
    await writeFile(file, compose());
    const d = await h.cli(['deploy', '-f', file, '--env', env], { timeoutMs: 180_000 });
    assert.equal(d.code, 0, d.stdout + d.stderr);
  };
  /** The app's networks on the manager: `id name driver scope`. */
  const networks = async (): Promise<string[]> => (await th.docker(1, 'network', 'ls', '--filter', `label=io.berth.cluster=${cluster}`, '--format', '{{.ID}} {{.Name}} {{.Driver}} {{.Scope}}'))
    .split('\n').filter(Boolean).sort();
  /** Running task containers of a service on host i. */
  const tasks = async (i: number, env: string, service: string): Promise<string[]> => (await th.docker(i, 'ps', '-q', '--filter', `label=io.berth.app=${APP}`,
    '--filter', `label=io.berth.env=${env}`, '--filter', `label=io.berth.service=${service}`)).split('\n').filter(Boolean).sort();
  const sh = async (i: number, id: string, script: string): Promise<string> => (await th.docker(i, 'exec', id, 'sh', '-c', script)).trim();
  const overlayIp = async (i: number, id: string): Promise<string> => (await th.docker(i, 'inspect', id, '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}'))
    .trim().split(' ').find((a) => a.startsWith('10.2'))!;

  test('web on host 1 reads db on host 2 by name over the overlay, served through the ingress; dnsrr gives every replica; .berth names resolve; prod and pre isolated', async (t) => {
    const t0 = Date.now();
    await Promise.all([deploy('prod'), deploy('pre')]);
    t.diagnostic(`setup (two test hosts, the server) ${setupS.toFixed(1)} s`);
    t.diagnostic(`two environments deployed across two hosts in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // One attachable overlay per app and environment, in Swarm scope, on Berth's pool.
    const nets = await networks();
    assert.deepEqual(nets.map((l) => l.split(' ').slice(1).join(' ')).sort(), [`berth_${cluster}_${APP}_pre_default overlay swarm`, `berth_${cluster}_${APP}_prod_default overlay swarm`]);
    const subnet = (await th.docker(1, 'network', 'inspect', `berth_${cluster}_${APP}_prod_default`, '--format', '{{.Attachable}} {{range .IPAM.Config}}{{.Subnet}}{{end}}')).trim();
    assert.match(subnet, /^true 10\.(20[89]|21\d|22[0-3])\.\d+\.0\/24$/, 'attachable, a /24 of BERTH_NETWORK_POOL');
    // Where Berth says they run: web on host 1, db on host 2.
    for (const env of ['prod', 'pre']) {
      const st = (await h.api('GET', `/v1/apps/${APP}?env=${env}`)).json.services as Array<{ name: string; instances: Array<{ host: string }> }>;
      assert.deepEqual(st.find((s) => s.name === 'web')!.instances.map((i) => i.host), [hn(1), hn(1)]);
      assert.deepEqual(st.find((s) => s.name === 'db')!.instances.map((i) => i.host), [hn(2)]);
    }
    // Through the ingress (host-mode published port on host 1), with db's answer read over the overlay from host 2.
    for (const env of ['prod', 'pre']) {
      await waitFor(async () => ((await viaIngress(h.ingressPort, `ovl-${env}.test`)) === `${env} | db-${env}` ? true : undefined),
        { timeoutMs: 30_000, intervalMs: 300, what: `${env}'s web answering with its db's word` });
    }
    const [preWeb] = await tasks(1, 'pre', 'web');
    const [prodDb] = await tasks(2, 'prod', 'db');
    const [preDb] = await tasks(2, 'pre', 'db');
    assert.ok(preWeb && prodDb && preDb);
    // By name on the native port, across hosts; prod's db neither by name nor by address.
    // db answers one connection at a time (`nc -l` in a loop) and both web replicas read it every
    // second: a connection between two of its answers is refused, so the read is retried.
    const byName = await waitFor(async () => (await sh(1, preWeb, 'nc -w 3 db 5432 </dev/null')) || undefined,
      { timeoutMs: 15_000, intervalMs: 200, what: 'pre\'s db read by name from pre\'s web' });
    assert.equal(byName, 'db-pre');
    const prodDbIp = await overlayIp(2, prodDb);
    assert.notEqual(prodDbIp, await overlayIp(2, preDb));
    assert.equal(await sh(1, preWeb, `nc -w 2 ${prodDbIp} 5432 </dev/null; echo "exit $?"`), 'exit 1', 'pre cannot reach prod\'s db by address');
    assert.doesNotMatch(await sh(1, preWeb, 'nslookup db. 2>&1 || true'), new RegExp(prodDbIp.replace(/\./g, '\\.')));
    // `web` from the db's host: every replica's overlay address (dnsrr; a VIP needs IPVS, absent here).
    const webIps = await Promise.all((await tasks(1, 'prod', 'web')).map((id) => overlayIp(1, id)));
    assert.equal(webIps.length, 2);
    const answer = await sh(2, prodDb, 'nslookup web. 2>&1 || true');
    for (const ip of webIps) assert.match(answer, new RegExp(`Address:\\s+${ip.replace(/\./g, '\\.')}`), answer);
    // Berth's names (`.berth`) from an overlay container on another host: Berth's DNS on the cluster address.
    const berthName = await waitFor(async () => {
      const t = await sh(2, prodDb, `nslookup web.${APP}.prod.berth 2>&1 || true`);
      if (/Address:\s+\d+\.\d+\.\d+\.\d+/.test(t.split(/Name:/)[1] ?? '')) return t;
      throw new Error(`nslookup said: ${JSON.stringify(t)}`); // (the timeout's message keeps the last answer)
    }, { timeoutMs: 20_000, intervalMs: 500, what: `web.${APP}.prod.berth from the db container` });
    assert.match(berthName.split(/Name:/)[1]!, new RegExp(th.hosts[0]!.address.replace(/\./g, '\\.')), 'it names web\'s host address');
  });

  test('a restart of Berth adopts the overlay and the tasks: same network, same containers, still served', async () => {
    const netsBefore = await networks();
    const before = [...(await tasks(1, 'prod', 'web')), ...(await tasks(2, 'prod', 'db'))];
    await h.killServer('SIGKILL');
    await h.startServer();
    // A reconcile round has seen everything (the status answers with both services running).
    await waitFor(async () => {
      const st = (await h.api('GET', `/v1/apps/${APP}?env=prod`)).json.services as Array<{ instances: Array<{ state: string; health: string }> }>;
      return st.flatMap((s) => s.instances).every((i) => i.state === 'running') ? true : undefined;
    }, { timeoutMs: 30_000, intervalMs: 300, what: 'instances running after the restart' });
    assert.equal(await viaIngress(h.ingressPort, 'ovl-prod.test'), 'prod | db-prod');
    assert.deepEqual(await networks(), netsBefore);
    assert.deepEqual([...(await tasks(1, 'prod', 'web')), ...(await tasks(2, 'prod', 'db'))], before, 'no container restarted or replaced');
  });

  test('rm --purge removes the overlays', async () => {
    const p = await h.cli(['rm', APP, '--purge'], { timeoutMs: 120_000 });
    assert.equal(p.code, 0, p.stdout + p.stderr);
    assert.match(p.stdout + p.stderr, new RegExp(`network\\(s\\) [^\\n]*berth_${cluster}_${APP}_`));
    // The Swarm's network objects go at once; a host's own copy of an overlay goes when its last task there has stopped.
    await waitFor(async () => ((await networks()).length === 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 300, what: 'the overlays gone from the manager' });
    assert.equal((await th.docker(1, 'service', 'ls', '-q', '--filter', `label=io.berth.app=${APP}`)).trim(), '');
  });
});
