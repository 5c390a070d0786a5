/**
 * App-network mode end to end (real server, Docker, nginx): one Compose file as people write it — a
 * web server on its fixed port 8000 that ignores PORT, a "database" reached as `db:5432` (and by an
 * alias), Compose `networks` front/back — deployed to prod and pre at once. Each environment is
 * served through the ingress; a container of pre reaches its own db by name, never prod's (not by
 * name, not by address); a front-only service cannot reach the back network. The web service scaled
 * to 3 on its fixed port (each replica published on an allocated port of 127.0.0.1); a rolling
 * release under load with 0 failed requests; a killed replica replaced; the server SIGKILLed and
 * restarted: containers and networks adopted, none restarted; a fixed host port already taken is a
 * clear error (and that other app reaches shop's db neither by name nor by address); `rm --purge`
 * removes the app's networks. HTTP request metrics are counted for the
 * app-network service as for a host-mode one. Drain before stop in both modes, side by side: a request
 * in flight when its instance is replaced completes, and no request reaches an instance after its stop
 * signal (the app answers those 500, which the ingress does not retry).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resolver } from 'node:dns/promises';
import { Harness, docker, freePort, get, hey, viaIngress } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const APP = 'shop';

/**
 * The web server answers `ENV VERSION INSTANCE` on /, on port 8000 whatever PORT says. PID 1 of each
 * service ignores SIGTERM (httpd, sh, sleep: no handler), so every stop takes the whole grace period:
 * short ones here (the default 10 s made each purge wait 10 s per container).
 */
function compose(version: string, webReplicas = 1): string {
  return `name: ${APP}
services:
  web:
    image: berth/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && echo \\"$$BERTH_ENV $$VERSION $$BERTH_INSTANCE\\" > /www/index.html && exec httpd -f -p 8000 -h /www"]
    environment: {VERSION: ${version}}
    ports: ["8000"]
    networks: [front, back]
    deploy: {replicas: ${webReplicas}}
    stop_grace_period: 2s
    x-berth:
      routes: ["shop-\${BERTH_ENV}.test/"]
      health: {http: {path: /, interval: 1s}}
  db:
    image: berth/busybox:latest
    command: ["sh", "-c", "echo db-$$BERTH_ENV listening; while true; do echo db-$$BERTH_ENV | nc -l -p 5432; done"]
    networks:
      back: {aliases: [database]}
    stop_grace_period: 1s
  probe:
    image: berth/busybox:latest
    command: ["sh", "-c", "exec sleep 100000"]
    networks: [front]
    stop_grace_period: 1s
networks:
  front: {}
  back: {}
`;
}

describe('app networks', () => {
  let h: Harness;
  let dir: string;
  let file: string;
  let cluster: string;
  before(async () => {
    h = await Harness.create({
      portRange: '30500-30599', env: { BERTH_METRICS_INTERVAL_MS: '1000' }, containerDns: `127.0.${Math.floor(Math.random() * 200) + 20}.54`,
    });
    await h.startServer();
    dir = await mkdtemp(join(tmpdir(), 'berth-appnet-'));
    file = join(dir, 'compose.yaml');
    cluster = (await readFile(join(h.dataDir, 'cluster-id'), 'utf8')).trim();
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-8000));
    await h.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  const deploy = async (env: string, version: string, replicas = 1) => {
    await writeFile(file, compose(version, replicas));
    const d = await h.cli(['deploy', '-f', file, '--env', env], { timeoutMs: 180_000 });
    assert.equal(d.code, 0, d.stdout + d.stderr);
  };
  /** Running containers of a service in an env. */
  const containersOf = (env: string, service: string) => h.runningIds(APP, env, service);
  const sh = (id: string, script: string) => docker('exec', id, 'sh', '-c', script);
  const networks = async () => (await docker('network', 'ls', '--filter', `label=io.berth.cluster=${cluster}`, '--format', '{{.ID}} {{.Name}}'))
    .split('\n').filter(Boolean).sort();

  test('prod and pre at once: each served through the ingress, each reaching its own db by name and alias, never the other', async () => {
    await deploy('prod', 'v1');
    await deploy('pre', 'v1');
    assert.match(await viaIngress(h.ingressPort, 'shop-prod.test'), /^prod v1 \w+$/);
    assert.match(await viaIngress(h.ingressPort, 'shop-pre.test'), /^pre v1 \w+$/);
    // One Docker network per app, environment and Compose network.
    assert.deepEqual((await networks()).map((l) => l.split(' ')[1]).sort(), ['back', 'front'].flatMap((n) => [`berth_${cluster}_${APP}_pre_${n}`, `berth_${cluster}_${APP}_prod_${n}`]).sort());

    const [preWeb] = await containersOf('pre', 'web');
    const [prodDb] = await containersOf('prod', 'db');
    const [preProbe] = await containersOf('pre', 'probe');
    assert.ok(preWeb && prodDb && preProbe);
    // Service name and alias on the native port, over the app's own network.
    assert.equal(await sh(preWeb, 'nc -w 3 db 5432 </dev/null'), 'db-pre');
    assert.equal(await sh(preWeb, 'nc -w 3 database 5432 </dev/null'), 'db-pre');
    // PORT is the native port: the web server never read it.
    assert.equal(await sh(preWeb, 'echo $PORT'), '8000');
    // prod's db by its address: nothing routes between the two environments' networks.
    const prodDbIp = await docker('inspect', prodDb, '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}');
    assert.match(prodDbIp, /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(await sh(prodDb, 'nc -w 3 127.0.0.1 5432 </dev/null'), 'db-prod', 'prod\'s db answers on its own network');
    assert.equal(await sh(preWeb, `nc -w 2 ${prodDbIp} 5432 </dev/null; echo "exit $?"`), 'exit 1', 'pre cannot reach prod\'s db by address');
    // A front-only service does not see the back network (Compose's frontend/backend isolation).
    assert.match(await sh(preProbe, 'nc -w 2 db 5432 </dev/null 2>&1; echo "exit $?"'), /exit 1$/);
    assert.match(await sh(preProbe, 'nc -w 3 web 8000 </dev/null >/dev/null 2>&1 & sleep 0; echo -e "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 web 8000 | tail -n 1'), /^pre v1 /);

    // The ingress reaches the instance on its bridge address and native port (no docker-proxy in the way).
    const preWebIp = await docker('inspect', preWeb, '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}');
    await waitFor(async () => (await h.nginxBackends()).some((b) => preWebIp.trim().split(' ').some((ip) => b === `${ip}:8000`)),
    { timeoutMs: 15_000, intervalMs: 200, what: 'nginx upstream at the container address' });
    // Logs and per-container network counters work the same on an app network (counted there, unlike host mode).
    await waitFor(async () => (await h.cli(['logs', `${APP}/db`, '--env', 'pre'])).stdout.includes('db-pre listening'),
      { timeoutMs: 20_000, intervalMs: 500, what: 'the db\'s log line collected' });
    await waitFor(async () => {
      const text = await fetch(`http://127.0.0.1:${h.apiPort}/metrics`, { headers: { authorization: `Bearer ${await h.token()}` } }).then((r) => r.text());
      const m = new RegExp(`^berth_container_network_receive_bytes_total\\{[^}]*app="${APP}",env="pre",service="db"[^}]*\\} (\\d+)`, 'm').exec(text)
        ?? new RegExp(`^berth_container_network_receive_bytes_total\\{[^}]*service="db"[^}]*env="pre"[^}]*\\} (\\d+)`, 'm').exec(text);
      return m !== null && Number(m[1]) > 0;
    }, { timeoutMs: 30_000, intervalMs: 1000, what: 'network bytes counted for the db container' });
    // Each web instance's port is its container port 8000, published on the allocated port on loopback only.
    const st = (await h.api('GET', `/v1/apps/${APP}?env=pre`)).json.services.find((s: { name: string }) => s.name === 'web');
    const inst = st.instances[0] as { port: number; address: string };
    assert.equal(inst.address, '127.0.0.1');
    assert.equal(await docker('port', preWeb, '8000/tcp').then((p) => p.split('\n').some((l) => l === `127.0.0.1:${inst.port}` || l.endsWith(`:${inst.port}`))), true);
  });

  /** The gateway of one of the app's networks (Berth's DNS listens there). */
  const gatewayOf = async (env: string, net: string) => docker('network', 'inspect', `berth_${cluster}_${APP}_${env}_${net}`, '--format', '{{(index .IPAM.Config 0).Gateway}}');
  /** `nslookup NAME` inside a container: its output and exit code (never throws). */
  const nslookup = (id: string, name: string) => sh(id, `nslookup ${name} 2>&1; echo "exit $?"`);
  /** The IPv4 answers of an nslookup output (after the server's own lines). */
  const answers = (out: string) => out.split('\n\n').slice(1).join('\n').split('\n')
    .flatMap((l) => /^Address:\s*(\d+\.\d+\.\d+\.\d+)$/.exec(l.trim())?.[1] ?? []).sort();

  test('.berth names resolve inside app-network containers (Berth\'s DNS on the network gateway), network names still win, out-of-zone refused', async () => {
    // An external service `web` of prod (another party's), and the instances of another app's service.
    const ext = await h.api('POST', '/v1/registry/prod/web', { address: '127.0.0.77', port: 7777, ttl: '1h' });
    assert.equal(ext.status, 201, JSON.stringify(ext.json));
    const [preWeb] = await containersOf('pre', 'web');
    const [prodProbe] = await containersOf('prod', 'probe');
    assert.ok(preWeb && prodProbe);
    // The container's DNS: its first network's gateway, search ENV.berth berth (behind Docker's own DNS).
    const gw = await gatewayOf('pre', 'front');
    assert.match(gw, /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(await docker('inspect', preWeb, '--format', '{{json .HostConfig.Dns}} {{json .HostConfig.DnsSearch}}'), `["${gw}"] ["pre.berth","berth"]`);
    // From inside: the external service, and prod's web of this app by its full name (its instances' addresses).
    const ext1 = await nslookup(prodProbe, 'web.prod.berth');
    assert.deepEqual(answers(ext1), ['127.0.0.77'], ext1);
    assert.match(ext1, /exit 0$/, ext1);
    const preWebIps = (await h.api('GET', `/v1/registry`)).json.entries
      .filter((e: { service: string; env: string; app?: string }) => e.service === 'web' && e.env === 'pre' && e.app === APP).map((e: { address: string }) => e.address).sort();
    assert.ok(preWebIps.length > 0, 'pre\'s web is in the registry');
    const full = await nslookup(prodProbe, `web.${APP}.pre.berth`);
    assert.deepEqual(answers(full), preWebIps, full);
    // The app network's own names still resolve to the peer on the network: the libc resolver asks the
    // bare name first (ndots:0) and the engine's DNS answers it (busybox nslookup would only try the
    // search domains, so `nc` resolves it here).
    assert.deepEqual((await sh(preWeb, 'cat /etc/resolv.conf')).split('\n').filter((l) => !l.startsWith('#')),
      ['search pre.berth berth', 'nameserver 127.0.0.11', 'options ndots:0']);
    assert.equal(await sh(preWeb, 'nc -w 3 db 5432 </dev/null'), 'db-pre');
    // Out of the zone: no answer (Berth refuses, no upstream is configured: nothing leaves the machine).
    const out = await nslookup(prodProbe, 'example.com');
    assert.doesNotMatch(out, /exit 0$/, out);
    assert.deepEqual(answers(out), [], out);
    // Berth's DNS on the gateway itself: the same zone, REFUSED outside it.
    const r = new Resolver({ timeout: 2000, tries: 1 });
    r.setServers([gw]);
    assert.deepEqual(await r.resolve4('web.prod.berth'), ['127.0.0.77']);
    await assert.rejects(r.resolve4('example.com'), (e: NodeJS.ErrnoException) => e.code === 'EREFUSED');
    assert.equal((await h.api('DELETE', `/v1/registry/external/${ext.json.id}`)).status, 204);
  });

  test('web scaled to 3 on its fixed port, a rolling release under load: 0 failed; a killed replica replaced', async () => {
    await deploy('prod', 'v1', 3);
    const seen = new Set<string>();
    await waitFor(async () => {
      seen.add((await viaIngress(h.ingressPort, 'shop-prod.test')).split(' ')[2] ?? '');
      return seen.size === 3;
    }, { timeoutMs: 30_000, intervalMs: 20, what: 'three replicas behind the ingress' });
    const traffic = hey(h.ingressPort, '/', { seconds: 12, concurrency: 4, qps: 60, host: 'shop-prod.test' });
    await new Promise((r) => setTimeout(r, 1000));
    await deploy('prod', 'v2', 3);
    const r = await traffic.finish();
    assert.equal(r.failed, 0, `rolling release: ${r.failed} of ${r.total} failed\n${r.raw.slice(-1500)}`);
    assert.ok(r.total >= 200, `only ${r.total} requests`);
    assert.match(await viaIngress(h.ingressPort, 'shop-prod.test'), /^prod v2 /);
    // The requests are counted for the service, as in host mode (the access log names the route; the sampler the containers).
    let text = '';
    await waitFor(async () => {
      text = await fetch(`http://127.0.0.1:${h.apiPort}/metrics`, { headers: { authorization: `Bearer ${await h.token()}` } }).then((res) => res.text());
      const counted = [...text.matchAll(new RegExp(`^berth_http_requests_total\\{app="${APP}",env="prod",service="web",route="[^"]+",status_class="2xx"\\} (\\d+)$`, 'gm'))]
        .reduce((a, m) => a + Number(m[1]), 0);
      return counted >= r.ok * 0.9;
    }, { timeoutMs: 30_000, intervalMs: 500, what: `${r.ok} requests counted for shop/prod/web` });
    assert.match(text, new RegExp(`^berth_container_memory_bytes\\{app="${APP}",env="prod",service="web",instance="[^"]+"\\} [1-9]`, 'm'));

    const before = await containersOf('prod', 'web');
    assert.equal(before.length, 3);
    await docker('kill', before[0]!);
    await waitFor(async () => {
      const now = await containersOf('prod', 'web');
      const st = (await h.api('GET', `/v1/apps/${APP}?env=prod`)).json.services.find((s: { name: string }) => s.name === 'web');
      return now.length === 3 && !now.includes(before[0]!) && st.instances.filter((i: { health: string }) => i.health === 'healthy').length === 3;
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'the killed replica replaced' });
  });

  test('server SIGKILLed and restarted: containers and networks adopted, none restarted', async () => {
    const snapshot = async () => (await docker('ps', '-q', '--no-trunc', '--filter', `label=io.berth.cluster=${cluster}`)).split('\n').filter(Boolean).sort()
      .join(',') + '|' + (await docker('inspect', '--format', '{{.State.StartedAt}}', ...(await docker('ps', '-q', '--filter', `label=io.berth.cluster=${cluster}`)).split('\n').filter(Boolean)));
    const beforeContainers = await snapshot();
    const beforeNetworks = await networks();
    await h.killServer('SIGKILL');
    await h.startServer();
    // Give the reconcilers a full round on every key, then nothing may have changed.
    await waitFor(async () => (await h.api('GET', '/v1/apps')).status === 200, { timeoutMs: 30_000, what: 'API back' });
    await waitFor(async () => {
      const st = (await h.api('GET', `/v1/apps/${APP}?env=pre`)).json;
      return st.services.every((s: { instances: { health: string }[] }) => s.instances.every((i) => i.health === 'healthy'));
    }, { timeoutMs: 30_000, intervalMs: 200, what: 'every instance healthy after the restart' });
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(await snapshot(), beforeContainers, 'same containers, same start times');
    assert.deepEqual(await networks(), beforeNetworks, 'same networks (ids and names)');
    assert.match(await viaIngress(h.ingressPort, 'shop-pre.test'), /^pre v1 /);
    // Berth's DNS listens on the adopted networks' gateways again: a `.berth` name resolves inside.
    const [preWeb] = await containersOf('pre', 'web');
    const lookup = await nslookup(preWeb!, `web.${APP}.pre.berth`);
    assert.match(lookup, /exit 0$/, lookup);
  });

  test('a fixed host port: published as written (one container, releases stop first); already taken → a clear error naming it', async () => {
    const port = await freePort();
    // The second app cannot start: a short deadline makes its deploy fail fast (the first has time to start on a busy machine).
    const fixed = (app: string) => `services:\n  api:\n    image: berth/busybox:latest\n    command: ["sh", "-c", "echo ${app} > /i && exec httpd -f -p 80 -h /"]\n` +
      `    ports: ["127.0.0.1:${port}:80"]\n    stop_grace_period: 1s\n    x-berth: {health: {http: /i}, update: {deadline: ${app === 'one' ? '120s' : '6s'}}}\n`;
    const f = join(dir, 'fixed.yaml');
    await writeFile(f, fixed('one'));
    const one = await h.cli(['deploy', '-f', f, '--app', 'one'], { timeoutMs: 120_000 });
    assert.equal(one.code, 0, one.stdout + one.stderr);
    assert.match(one.stderr + one.stdout, new RegExp(`host port ${port} can be held by one container at a time: releases stop the old container before starting the new one`));
    assert.equal((await fetch(`http://127.0.0.1:${port}/i`).then((r) => r.text())).trim(), 'one', 'served on the fixed host port');
    // Apps are isolated from each other as environments are: app one reaches shop's db neither by name nor by address.
    const [oneApi] = await h.runningIds('one', 'prod', 'api');
    const [shopDb] = await containersOf('prod', 'db');
    assert.ok(oneApi && shopDb);
    const shopDbIp = (await docker('inspect', shopDb, '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}')).trim().split(' ')[0]!;
    assert.match(shopDbIp, /^\d+\.\d+\.\d+\.\d+$/);
    assert.match(await sh(oneApi, 'nc -w 2 db 5432 </dev/null 2>&1; echo "exit $?"'), /exit 1$/, 'shop\'s db by name');
    assert.equal(await sh(oneApi, `nc -w 2 ${shopDbIp} 5432 </dev/null; echo "exit $?"`), 'exit 1', 'shop\'s db by address');
    // A second app wanting the same host port: its instance cannot start, and says why.
    await writeFile(f, fixed('two'));
    const two = await h.cli(['deploy', '-f', f, '--app', 'two'], { timeoutMs: 120_000 });
    assert.notEqual(two.code, 0, 'the release cannot become healthy');
    assert.match(two.stdout + two.stderr, new RegExp(`host port ${port} on 127\\.0\\.0\\.1 is already in use on this host \\(by another program or container\\): free it, or publish another port`));
    assert.equal((await fetch(`http://127.0.0.1:${port}/i`).then((r) => r.text())).trim(), 'one', 'the first app still serves');
    for (const app of ['one', 'two']) assert.equal((await h.cli(['rm', app, '--purge'], { timeoutMs: 60_000 })).code, 0);
  });

  test('rm --purge removes the app\'s networks', async () => {
    const p = await h.cli(['rm', APP, '--purge'], { timeoutMs: 120_000 });
    assert.equal(p.code, 0, p.stdout + p.stderr);
    await waitFor(async () => !(await networks()).some((l) => l.includes(`_${APP}_`)), { timeoutMs: 60_000, intervalMs: 250, what: 'the app\'s networks removed' });
  });

  test('drain before stop, app network and host network side by side: an in-flight request completes, none arrives after the stop signal', async () => {
    // Listens on PORT (the native port 8000 on the app network, the allocated one on the host's); after
    // SIGTERM it finishes what it has and answers anything new 500 (not retried by the ingress: a failure).
    const server = `
      let stopping = false;
      const server = require('http').createServer((q, r) => {
        if (stopping) { r.statusCode = 500; return r.end('arrived after SIGTERM'); }
        if (q.url.startsWith('/slow')) return setTimeout(() => r.end(process.env.VERSION + ' slow'), 4000);
        r.end(process.env.VERSION);
      }).listen(Number(process.env.PORT));
      process.on('SIGTERM', () => { stopping = true; server.close(() => process.exit(0)); });`.replace(/\$/g, '$$$$');
    // appnet: on the app's network, its port under `ports`; hostnet: Berth's host mode (x-berth.port).
    const svc = (name: string, version: string) => `  ${name}:
    image: berth/node:20
    command: ["node", "-e", ${JSON.stringify(server)}]
    environment: {VERSION: ${version}}
    stop_grace_period: 15s
${name === 'appnet' ? '    ports: ["8000"]\n' : ''}    x-berth:
${name === 'hostnet' ? '      port: 3000\n' : ''}      routes: ["${name}.drain.test/"]
      health: {http: {path: /, interval: 1s}}
`;
    const f = join(dir, 'drain.yaml');
    const release = async (version: string) => {
      await writeFile(f, `name: drain\nservices:\n${svc('appnet', version)}${svc('hostnet', version)}`);
      const d = await h.cli(['deploy', '-f', f], { timeoutMs: 180_000 });
      assert.equal(d.code, 0, d.stdout + d.stderr);
    };
    await release('v1');
    const modes = ['appnet', 'hostnet'];
    for (const m of modes) assert.equal(await viaIngress(h.ingressPort, `${m}.drain.test`), 'v1');
    const [appC] = await h.runningIds('drain', 'prod', 'appnet');
    const [hostC] = await h.runningIds('drain', 'prod', 'hostnet');
    assert.match(await docker('inspect', appC!, '--format', '{{.HostConfig.NetworkMode}}'), /^berth_/);
    assert.equal(await docker('inspect', hostC!, '--format', '{{.HostConfig.NetworkMode}}'), 'host');

    const slow = modes.map((m) => get(h.ingressPort, '/slow', 30_000, { host: `${m}.drain.test` }));
    const traffic = modes.map((m) => hey(h.ingressPort, '/', { seconds: 10, concurrency: 2, qps: 30, host: `${m}.drain.test` }));
    await new Promise((res) => setTimeout(res, 500));
    await release('v2');
    for (const [i, m] of modes.entries()) {
      const r = await traffic[i]!;
      assert.equal(r.failed, 0, `${m}: ${r.failed} of ${r.total} failed (${JSON.stringify(r.statuses)})\n${r.raw.slice(-1000)}`);
      assert.ok(r.total >= 100, `${m}: only ${r.total} requests`);
      assert.deepEqual(await slow[i], { status: 200, body: 'v1 slow' }, `${m}: the request in flight during the release completed on the old instance`);
      assert.equal(await viaIngress(h.ingressPort, `${m}.drain.test`), 'v2');
    }
    assert.equal((await h.cli(['rm', 'drain', '--purge'], { timeoutMs: 120_000 })).code, 0);
  });
});
