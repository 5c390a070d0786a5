/**
 * A three-tier app as people write it, end to end on app networks (real server, Docker, nginx, and
 * PostgreSQL 15 and Redis 7 from Debian's packages: berth/debian-services, built by
 * scripts/debian-services.sh): a Node web server that ignores PORT and listens on 8000 (on SIGTERM it
 * finishes its requests and exits, as a real one does: node as PID 1 would otherwise ignore the signal
 * and each replaced replica would wait out its stop grace period), a worker
 * writing to the database and counting in the cache, PostgreSQL whose password is read from
 * /run/secrets/db_password (a Compose secret, also the worker's), Redis — reached as `db:5432` and
 * `cache:6379`. Deployed to prod and pre at once: each served through the ingress with its own
 * count; a container of pre reaches neither prod's database by name (its own answers) nor by address.
 * The web service scaled to 3 on its fixed port; a rolling release under load: 0 failed; a killed
 * replica replaced; the server SIGKILLed and restarted: containers and networks adopted, none restarted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, docker, hey, viaIngress } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const APP = 'tier';
const IMAGE = 'berth/debian-services:bookworm';

/** The web tier: GET / answers `ENV VERSION jobs=N` with N read from Redis (RESP over a socket), on 8000 whatever PORT says. */
const WEB = `
const net = require('net');
const get = () => new Promise((ok, ko) => {
  const s = net.connect(6379, 'cache'); let b = '';
  s.on('connect', () => s.write('*2\\r\\n$3\\r\\nGET\\r\\n$4\\r\\njobs\\r\\n'));
  s.on('data', (d) => { b += d; const m = /^\\$(-1|\\d+)\\r\\n(.*)\\r\\n/s.exec(b); if (b.startsWith('$-1')) { s.end(); ok('0'); } else if (m) { s.end(); ok(m[2]); } });
  s.on('error', ko); s.setTimeout(2000, () => s.destroy(new Error('redis timeout')));
});
const srv = require('http').createServer(async (q, r) => {
  if (q.url === '/healthz') return r.end('ok');
  try { r.end(process.env.BERTH_ENV + ' ' + process.env.VERSION + ' jobs=' + (await get())); }
  catch (e) { r.statusCode = 503; r.end(String(e)); }
}).listen(8000);
process.on('SIGTERM', () => srv.close(() => process.exit(0)));
`;

function compose(version: string, webReplicas: number): string {
  return `name: ${APP}
services:
  web:
    image: berth/node:20
    command: ["node", "-e", ${JSON.stringify(WEB.replace(/\$/g, '$$$$'))}]
    environment: {VERSION: ${version}}
    ports: ["8000"]
    deploy: {replicas: ${webReplicas}}
    stop_grace_period: 2s
    depends_on: [cache]
    x-berth:
      routes: ["tier-\${BERTH_ENV}.test/"]
      health: {http: {path: /healthz, interval: 1s}}
  worker:
    image: ${IMAGE}
    command: ["bash", "-c", "export PGPASSWORD=$$(cat /run/secrets/db_password); until psql -qtA -h db -U postgres -c 'create table if not exists jobs (id serial)' >/dev/null; do sleep 0.5; done; while true; do psql -qtA -h db -U postgres -c 'insert into jobs default values' >/dev/null && redis-cli -h cache incr jobs >/dev/null; sleep 0.5; done"]
    secrets: [db_password]
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started}
  db:
    image: ${IMAGE}
    user: postgres
    command: ["bash", "-c", "initdb -D /tmp/pg -U postgres --pwfile=/run/secrets/db_password -A scram-sha-256 >/dev/null && echo 'host all all 0.0.0.0/0 scram-sha-256' >> /tmp/pg/pg_hba.conf && exec postgres -D /tmp/pg -c listen_addresses=* -k /tmp"]
    secrets: [db_password]
    healthcheck: {test: ["CMD", "pg_isready", "-q", "-h", "127.0.0.1"], interval: 1s, retries: 60}
  cache:
    image: ${IMAGE}
    command: ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", ""]
secrets:
  db_password:
    file: ./db_password.txt
`;
}

describe('a three-tier app on app networks (PostgreSQL and Redis from Debian packages)', { skip: process.env.BERTH_SKIP_DEBIAN_SERVICES === '1' }, () => {
  let h: Harness;
  let dir: string;
  let file: string;
  let cluster: string;
  before(async () => {
    // The image is built once per machine by scripts/debian-services.sh (npm test's images stage).
    await docker('image', 'inspect', IMAGE).catch(() => assert.fail(`${IMAGE} is missing: run bash scripts/debian-services.sh`));
    h = await Harness.create({ portRange: '30700-30799' });
    await h.startServer();
    dir = await mkdtemp(join(tmpdir(), 'berth-tier-'));
    file = join(dir, 'compose.yaml');
    await writeFile(join(dir, 'db_password.txt'), `pw-${Math.random().toString(36).slice(2)}\n`);
    cluster = (await readFile(join(h.dataDir, 'cluster-id'), 'utf8')).trim();
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-8000));
    await h.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  const deploy = async (env: string, version: string, replicas = 1) => {
    await writeFile(file, compose(version, replicas));
    const d = await h.cli(['deploy', '-f', file, '--env', env], { timeoutMs: 240_000 });
    assert.equal(d.code, 0, d.stdout + d.stderr);
  };
  const running = (env: string, service: string) => h.runningIds(APP, env, service);
  const jobs = async (env: string) => Number(/jobs=(\d+)$/.exec(await viaIngress(h.ingressPort, `tier-${env}.test`))?.[1] ?? -1);

  test('prod and pre at once: web → cache, worker → db (password from /run/secrets) and cache, each env isolated', async () => {
    await Promise.all([deploy('prod', 'v1'), deploy('pre', 'v1')]);
    for (const env of ['prod', 'pre']) {
      await waitFor(async () => (await jobs(env)) >= 2, { timeoutMs: 60_000, intervalMs: 500, what: `${env}: the worker's jobs counted` });
    }
    const [preWorker] = await running('pre', 'worker');
    const [prodDb] = await running('prod', 'db');
    assert.ok(preWorker && prodDb);
    // The worker's rows are in its own environment's database, reached as db:5432 with the secret.
    const rows = async (id: string) => Number(await docker('exec', id, 'bash', '-c', 'PGPASSWORD=$(cat /run/secrets/db_password) psql -qtA -h db -U postgres -c "select count(*) from jobs"'));
    assert.ok((await rows(preWorker)) >= 2);
    // A wrong password is refused: the database really uses the secret.
    assert.match(await docker('exec', preWorker, 'bash', '-c', 'PGPASSWORD=wrong psql -qtA -h db -U postgres -c "select 1" 2>&1; true'), /password authentication failed/);
    // prod's database by its address, from pre: nothing routes there.
    const prodDbIp = (await docker('inspect', prodDb, '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}')).trim().split(' ')[0]!;
    assert.match(prodDbIp, /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(await docker('exec', preWorker, 'bash', '-c', `timeout 3 bash -c '</dev/tcp/${prodDbIp}/5432' 2>/dev/null && echo reached || echo unreachable`), 'unreachable');
    assert.equal(await docker('exec', prodDb, 'bash', '-c', `timeout 3 bash -c '</dev/tcp/${prodDbIp}/5432' 2>/dev/null && echo reached || echo unreachable`), 'reached', 'it does listen there');
    // The secret's value is in no container's environment or labels.
    const pw = (await readFile(join(dir, 'db_password.txt'), 'utf8')).trim();
    assert.ok(!(await docker('inspect', prodDb)).includes(pw), 'the password is not in docker inspect');
  });

  test('web scaled to 3 on its fixed port, a rolling release under load: 0 failed; a killed replica replaced; server SIGKILLed: all adopted', async () => {
    await deploy('prod', 'v1', 3);
    const traffic = hey(h.ingressPort, '/', { seconds: 12, concurrency: 4, qps: 40, host: 'tier-prod.test' });
    await new Promise((r) => setTimeout(r, 1000));
    await deploy('prod', 'v2', 3);
    const r = await traffic.finish();
    assert.equal(r.failed, 0, `rolling release: ${r.failed} of ${r.total} failed\n${r.raw.slice(-1500)}`);
    assert.ok(r.total >= 150, `only ${r.total} requests`);
    assert.match(await viaIngress(h.ingressPort, 'tier-prod.test'), /^prod v2 jobs=\d+$/);

    const webs = await running('prod', 'web');
    assert.equal(webs.length, 3);
    await docker('kill', webs[0]!);
    await waitFor(async () => {
      const now = await running('prod', 'web');
      const st = (await h.api('GET', `/v1/apps/${APP}?env=prod`)).json.services.find((s: { name: string }) => s.name === 'web');
      return now.length === 3 && !now.includes(webs[0]!) && st.instances.filter((i: { health: string }) => i.health === 'healthy').length === 3;
    }, { timeoutMs: 60_000, intervalMs: 250, what: 'the killed replica replaced' });

    const snapshot = async () => {
      const ids = (await docker('ps', '-q', '--no-trunc', '--filter', `label=io.berth.cluster=${cluster}`)).split('\n').filter(Boolean).sort();
      return `${ids.join(',')}|${await docker('inspect', '--format', '{{.Id}} {{.State.StartedAt}}', ...ids)}`;
    };
    const nets = () => docker('network', 'ls', '--filter', `label=io.berth.cluster=${cluster}`, '--format', '{{.ID}} {{.Name}}');
    const before = await snapshot();
    const netsBefore = await nets();
    assert.equal(netsBefore.split('\n').length, 2, 'one network per environment (the default one)');
    await h.killServer('SIGKILL');
    await h.startServer();
    const countBefore = await jobs('prod');
    await waitFor(async () => (await jobs('prod')) > countBefore, { timeoutMs: 30_000, intervalMs: 500, what: 'the worker still counting after the restart' });
    await new Promise((res) => setTimeout(res, 3000));
    assert.equal(await snapshot(), before, 'same containers, same start times');
    assert.equal(await nets(), netsBefore, 'same networks');
  });
});
