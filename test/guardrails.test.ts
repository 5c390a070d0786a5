/**
 * Container guardrails through the real server, CLI and Docker: every guardrail of the default (and
 * an environment's) policy refused at the file:line:col that asks for it, naming the policy, with
 * nothing created; an exemption lets exactly its key through, for its environment only (deploy and
 * promotion); its expiry re-refuses the next deploy while the running container keeps running and
 * `status` warns; a container shares the host's pid namespace only when exempted (docker inspect).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, docker } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const IMAGE = 'berth/busybox:latest';

describe('container guardrails', () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-guard-'));
    h = await Harness.create({ portRange: '30850-30899', env: { BERTH_ALLOWED_BIND_ROOTS: dir } });
    await h.startServer();
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-5000));
    await h.cleanup();
    await rm(dir, { recursive: true, force: true });
  });
  const inspectOf = async (app: string, service: string) => {
    const inst = (await h.api('GET', `/v1/apps/${app}`)).json.services.find((s: { name: string }) => s.name === service).instances[0];
    const c = (await h.containers(app)).find((x) => x.instance === inst.id)!;
    return JSON.parse(await docker('inspect', c.id))[0];
  };

  test('every guardrail is refused at its file:line:col, naming the key and the policy, with the narrow option; nothing is created', async () => {
    // prod's own layer (owners): read-only roots, no binds, app networks only, no sysctls.
    const set = await h.cli(['policy', 'set', '--env', 'prod', 'readOnly=true', 'binds=false', 'hostNetwork=false', 'sysctls=none']);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /policy of env prod is now version 1/);
    const file = join(dir, 'risky.yaml');
    await writeFile(file, [
      'name: risky',
      'services:',
      '  db:',
      `    image: ${IMAGE}`,
      '    privileged: true',
      '    pid: host',
      '    ipc: host',
      '    uts: host',
      '    userns_mode: host',
      '    cgroup: host',
      '    cap_add: [CHOWN, SYS_ADMIN]',
      '    devices: [/dev/fuse]',
      '    security_opt: ["no-new-privileges:false", "seccomp=unconfined"]',
      '    pids_limit: -1',
      `    volumes: ["${dir}:/data"]`,
      '    networks: [default]',
      '    sysctls: {net.core.somaxconn: "1024"}',
      '  web:',
      `    image: ${IMAGE}`,
      '    x-berth: {port: 8080}',
      '',
    ].join('\n'));
    const r = await h.cli(['deploy', '-f', file, '--timeout', '60']);
    assert.equal(r.code, 2, r.stderr);
    const expected: Array<[string, RegExp]> = [
      ['5:17 services.db.privileged', /refused by Berth's built-in policy \(app risky of no team in env prod\): privileged containers are not allowed .*a bigger \/dev\/shm with `shm_size: 1g`/],
      ['6:10 services.db.pid', /the host's pid namespace is not shared with containers; to reap zombies use `init: true` instead/],
      ['7:10 services.db.ipc', /ipc namespace .*for a bigger \/dev\/shm use `shm_size: 1g` instead/],
      ['8:10 services.db.uts', /uts namespace/],
      ['9:18 services.db.userns_mode', /userns namespace/],
      ['10:13 services.db.cgroup', /cgroup namespace/],
      ['11:22 services.db.cap_add[1]', /capability SYS_ADMIN is not in the allowed list/],
      ['12:15 services.db.devices[0]', /host device \/dev\/fuse is not given to containers/],
      ['13:19 services.db.security_opt', /no-new-privileges is required/],
      ['14:17 services.db.pids_limit', /no pids limit is more than the 4096 allowed/],
      ['15:15 services.db.volumes[0]', /refused by policy of env prod .*bind mounts of host directories .* use a named volume/],
      ['17:35 services.db.sysctls.net.core.somaxconn', /refused by policy of env prod .*sysctl net\.core\.somaxconn is not in the allowed list \(none\)/],
      ['4:5 services.db.read_only', /refused by policy of env prod .*read-only root filesystem is required/],
      ['20:21 services.web.x-berth.port', /refused by policy of env prod .*app's own network/],
    ];
    for (const [where, message] of expected) {
      const [pos, path] = where.split(' ') as [string, string];
      const line = r.stderr.split('\n').find((l) => l.includes(`${file}:${pos}: ${path}: refused`));
      assert.ok(line, `${file}:${pos}: ${path} refused:\n${r.stderr}`);
      assert.match(line, message);
      assert.match(line, /berth policy exempt risky\/(db|web) \w+ --env prod --reason/);
    }
    assert.equal((await h.api('GET', '/v1/apps')).json.apps.length, 0, 'no app recorded');
    assert.deepEqual(await h.containers(), [], 'no container');
    // The API answers the same refusals by spec path (400 invalid_input with details.refused).
    const api = await h.api('POST', '/v1/apps/risky/deployments', { env: 'test', spec: {
      name: 'risky', services: { db: {
        name: 'db', image: IMAGE, environment: {}, ports: [], health: { type: 'none' }, replicas: 1, limits: {}, restart: { condition: 'any', delayMs: 1000 },
        labels: {}, stopSignal: 'SIGTERM', stopGracePeriodMs: 1000, volumes: [], dependsOn: [], routes: [], privileged: true,
      } },
    } });
    assert.equal(api.status, 400);
    assert.deepEqual(api.json.error.details.refused.map((x: { path: string }) => x.path), ['services.db.privileged']);
    await h.cli(['policy', 'set', '--env', 'prod', '--replace']);
  });

  test('an exemption lets exactly that key through in that environment; promotion elsewhere, a second key and expiry are refused; the container keeps running and status warns', async () => {
    // A monitoring agent that reads the host's processes (pid: host): exempted in prod only.
    const file = join(dir, 'agent.yaml');
    const compose = (extra: string[]) => [
      'name: vendor', 'services:', '  app:', `    image: ${IMAGE}`, '    command: [sleep, "3600"]', '    pid: host', ...extra, '',
    ].join('\n');
    await writeFile(file, compose([]));
    const refused = await h.cli(['deploy', '-f', file, '--timeout', '60']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /agent\.yaml:6:10: services\.app\.pid: refused by Berth's built-in policy .*to reap zombies use `init: true` instead/);

    const bad = await h.cli(['policy', 'exempt', 'vendor/app', 'pid', '--env', 'prod', '--reason', 'x', '--expires', '7d']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /reason: say why/);
    // Exempt for a few seconds: long enough to deploy, short enough to see it expire.
    const ex = await h.cli(['policy', 'exempt', 'vendor/app', 'pid', '--env', 'prod', '--reason', 'the agent reads the host processes', '--expires', '40s', '--json']);
    assert.equal(ex.code, 0, ex.stderr);
    const exemption = JSON.parse(ex.stdout).exemption;
    const listed = await h.cli(['policy', 'exemptions', '--app', 'vendor', '--json']);
    assert.deepEqual(JSON.parse(listed.stdout).map((e: { id: string; status: string; reason: string }) => [e.id, e.status, e.reason]),
      [[exemption.id, 'active', 'the agent reads the host processes']]);

    // Exactly that key: adding privileged is refused (checked first: the exemption is short-lived).
    await writeFile(file, compose(['    privileged: true']));
    const more = await h.cli(['deploy', '-f', file, '--timeout', '60']);
    assert.equal(more.code, 2);
    assert.match(more.stderr, /services\.app\.privileged: refused .*privileged containers are not allowed/);
    assert.doesNotMatch(more.stderr, /\.pid: refused/);
    await writeFile(file, compose([]));
    const d = await h.cli(['deploy', '-f', file, '--timeout', '60']);
    assert.equal(d.code, 0, d.stderr);
    const ins = await inspectOf('vendor', 'app');
    assert.equal(ins.HostConfig.PidMode, 'host', 'exempted: the host\'s pid namespace');
    assert.equal(ins.HostConfig.Privileged, false);
    assert.ok(ins.HostConfig.SecurityOpt.includes('no-new-privileges'), 'other guardrails still hold');
    assert.equal(ins.HostConfig.PidsLimit, 4096);

    // The same file in another environment is refused; so is promoting it there.
    const other = await h.cli(['deploy', '-f', file, '--env', 'staging', '--timeout', '60']);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /services\.app\.pid: refused .*in env staging/);
    const promote = await h.cli(['promote', 'vendor', '--from', 'prod', '--to', 'staging']);
    assert.equal(promote.code, 2, promote.stderr);
    assert.match(promote.stderr, /pid: refused/);

    // Expiry: the next deploy is refused again; the running container is not touched; status warns.
    await waitFor(async () => Date.now() > exemption.expiresAt, { timeoutMs: 60_000, intervalMs: 500, what: 'the exemption to expire' });
    const expired = await h.cli(['deploy', '-f', file, '--timeout', '60']);
    assert.equal(expired.code, 2);
    assert.match(expired.stderr, /pid: refused/);
    const st = await h.api('GET', '/v1/apps/vendor');
    const svc = st.json.services.find((s: { name: string }) => s.name === 'app');
    assert.equal(svc.instances[0].state, 'running');
    assert.match(svc.warnings[0], /runs with an exemption for pid \(.*\) that has expired: the running containers are not stopped/);
    const status = await h.cli(['status', 'vendor']);
    assert.match(status.stdout + status.stderr, /warning: prod\/app runs with an exemption for pid/);
    assert.equal((await inspectOf('vendor', 'app')).State.Running, true);

    // Every change is in the audit log.
    const audit = (await h.api('GET', '/v1/audit?limit=1000')).json.entries.map((e: { action: string }) => e.action);
    for (const a of ['PUT /v1/policies', 'POST /v1/exemptions']) assert.ok(audit.some((x: string) => x.includes(a)), `${a} audited: ${audit.join(', ')}`);
  });
});
