/**
 * What a deployment may take from the host, decided by the server: bind sources and build contexts
 * resolve (symlinks followed) under the server's allowed roots, never the Docker socket or Berth's
 * data directory, whether the spec comes from the CLI or straight to the API. And what a container
 * may do: no NET_RAW (raw sockets on the host network would read its loopback traffic),
 * no-new-privileges, the service's user, read_only, capabilities and tmpfs honoured.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Harness, docker } from './helpers/harness.ts';
import { waitFor } from '../src/lib/backoff.ts';

const IMAGE = 'berth/busybox:latest';

describe('host paths and container security', () => {
  let h: Harness;
  let allowed: string;
  let app: string;
  before(async () => {
    // Two allowed roots: the app's directory, and the temp directory that holds the server's data
    // directory (which must be refused even so).
    allowed = await mkdtemp(join(tmpdir(), 'berth-binds-'));
    app = join(allowed, 'app');
    h = await Harness.create({ portRange: '18300-18399', env: { BERTH_ALLOWED_BIND_ROOTS: `${allowed}:${tmpdir()}` } });
    await mkdir(join(app, 'data'), { recursive: true });
    await mkdir(join(app, 'web'), { recursive: true });
    await writeFile(join(app, 'data', 'hello.txt'), 'hello from the host\n');
    await writeFile(join(app, 'web', 'Dockerfile'), `FROM ${IMAGE}\nCMD ["sleep", "3600"]\n`);
    await symlink('/', join(app, 'rootlink'));
    await symlink('/var/run/docker.sock', join(app, 'dsock'));
    await symlink(h.dataDir, join(app, 'datalink'));
    await symlink(join(app, 'data'), join(app, 'datalink-ok'));
    await h.startServer();
  });
  after(async () => {
    if (process.exitCode) console.error(h.serverLog.slice(-5000));
    await h.cleanup();
    await rm(allowed, { recursive: true, force: true });
  });

  const svc = (o: Record<string, unknown>) => ({
    name: 'web', image: IMAGE, command: ['sleep', '3600'], environment: {}, ports: [], health: { type: 'none' }, replicas: 1, limits: {},
    restart: { condition: 'any', delayMs: 1000 }, labels: {}, stopSignal: 'SIGTERM', stopGracePeriodMs: 1000, volumes: [], dependsOn: [], routes: [],
    ...o,
  });
  const bind = (source: string) => ({ type: 'bind', source, target: '/host', readOnly: true });
  const nothingRecorded = async (what: string) => {
    assert.deepEqual((await h.api('GET', '/v1/apps')).json.apps, [], `${what}: no app recorded`);
    assert.deepEqual((await h.api('GET', '/v1/events')).json.events, [], `${what}: not even a deployment record`);
    assert.deepEqual(await h.containers(), [], `${what}: no container`);
  };

  test('the API refuses /, the Docker socket, /etc, a symlink out of an allowed root and the data dir: 400 naming each volume, nothing created', async () => {
    const cases: Array<[string, RegExp]> = [
      ['/', /cannot bind-mount "\/": it contains Berth's data directory/],
      ['/var/run/docker.sock', /cannot bind-mount "\/var\/run\/docker\.sock".*: it is the Docker Engine's socket/],
      ['/etc', /cannot bind-mount "\/etc": it is outside the directories this server allows .*BERTH_ALLOWED_BIND_ROOTS=DIR\[:DIR\.\.\.\] or --allowed-bind-roots/],
      [join(app, 'rootlink'), /rootlink" \(it resolves to "\/"\): it contains Berth's data directory/],
      [join(app, 'dsock'), /dsock" \(it resolves to "\/run\/docker\.sock"\): it is the Docker Engine's socket/],
      [h.dataDir, /: it is Berth's data directory .*; Berth never allows it, whatever the allowed directories/],
      [join(app, 'datalink'), /datalink" \(it resolves to ".*"\): it is Berth's data directory/],
    ];
    for (const [source, re] of cases) {
      for (const q of ['', '?dry_run=true']) {
        const r = await h.api('POST', `/v1/apps/evil/deployments${q}`, { env: 'prod', spec: { name: 'evil', services: { web: svc({ volumes: [bind(source)] }) } } });
        assert.equal(r.status, 400, `${source}${q}: ${JSON.stringify(r.json)}`);
        assert.equal(r.json.error.code, 'invalid_input');
        assert.match(r.json.error.message, /^spec\.services\.web\.volumes\[0\]: /, source);
        assert.match(r.json.error.message, re, source);
        assert.deepEqual(r.json.error.details.refused.map((x: { path: string }) => x.path), ['services.web.volumes[0]']);
      }
    }
    // All at once: every refusal is reported, by volume, and a good bind beside them changes nothing.
    const all = await h.api('POST', '/v1/apps/evil/deployments', { env: 'prod', spec: { name: 'evil', services: { web: svc({
      volumes: [bind(join(app, 'data')), ...cases.map(([s]) => bind(s))],
    }) } } });
    assert.equal(all.status, 400);
    assert.deepEqual(all.json.error.details.refused.map((x: { path: string }) => x.path), cases.map((_, i) => `services.web.volumes[${i + 1}]`));
    await nothingRecorded('API');
  });

  test('the CLI shows the server\'s refusals at file:line:col of the same Compose file, exit 2', async () => {
    const file = join(app, 'compose.yaml');
    await writeFile(file, [
      'name: evil',
      'services:',
      '  web:',
      `    image: ${IMAGE}`,
      '    command: [sleep, "3600"]',
      '    volumes:',
      '      - ./data:/data:ro',
      '      - ./rootlink:/host',
      '      - ./dsock:/var/run/docker.sock',
      '      - /etc:/host-etc',
      '      - type: bind',
      '        source: ./datalink',
      '        target: /berth',
      '',
    ].join('\n'));
    const r = await h.cli(['deploy', '-f', file]);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.split('\n').filter((l) => l.includes(`${file}:`));
    assert.equal(lines.length, 4, r.stderr);
    assert.match(lines[0]!, /compose\.yaml:8:9: services\.web\.volumes\[1\]: cannot bind-mount ".*\/rootlink" \(it resolves to "\/"\)/);
    assert.match(lines[1]!, /compose\.yaml:9:9: services\.web\.volumes\[2\]: cannot bind-mount ".*\/dsock" \(it resolves to "\/run\/docker\.sock"\): it is the Docker Engine's socket/);
    assert.match(lines[2]!, /compose\.yaml:10:9: services\.web\.volumes\[3\]: cannot bind-mount "\/etc": it is outside the directories this server allows/);
    assert.match(lines[3]!, /compose\.yaml:12:17: services\.web\.volumes\[4\]\.source: cannot bind-mount ".*\/datalink" .*Berth's data directory/);
    assert.doesNotMatch(r.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
    await nothingRecorded('CLI');
  });

  test('build.context is held to the same rule: outside the allowed roots or through a symlink, refused before anything is built', async () => {
    const file = join(app, 'build.yaml');
    await writeFile(file, 'name: evil\nservices:\n  web:\n    build:\n      context: /etc\n  up:\n    build: ./rootlink\n');
    const r = await h.cli(['deploy', '-f', file]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /build\.yaml:5:16: services\.web\.build\.context: cannot build from "\/etc": it is outside the directories this server allows .*; or push the app with git/);
    assert.match(r.stderr, /build\.yaml:7:12: services\.up\.build: cannot build from ".*\/rootlink" \(it resolves to "\/"\): it contains Berth's data directory/);
    const api = await h.api('POST', '/v1/apps/evil/deployments', { env: 'prod', spec: { name: 'evil', services: { web: svc({ image: 'berth-evil/web:latest', build: { context: '/', dockerfile: 'Dockerfile', args: {} } }) } } });
    assert.equal(api.status, 400);
    assert.match(api.json.error.message, /^spec\.services\.web\.build\.context: cannot build from "\/": it contains Berth's data directory/);
    await nothingRecorded('build');
    assert.equal(await docker('images', '-q', '--filter', 'reference=berth-evil/*'), '', 'nothing was built');
  });

  test('containers: no NET_RAW, no-new-privileges by default; user, read_only, tmpfs, cap_drop, cap_add and an allowed bind honoured', async () => {
    const file = join(app, 'secure.yaml');
    await writeFile(file, [
      'name: sec',
      'services:',
      '  plain:',
      '    build: ./web',
      // On the host's network, where a raw socket would read the host's loopback traffic.
      '    network_mode: host',
      '  locked:',
      `    image: ${IMAGE}`,
      '    command: [sleep, "3600"]',
      '    user: "65534:65534"',
      '    read_only: true',
      '    tmpfs: [/tmp]',
      '    cap_drop: [ALL]',
      '    volumes: [./datalink-ok:/data:ro]',
      '  raw:',
      `    image: ${IMAGE}`,
      '    command: [sleep, "3600"]',
      '    cap_add: [NET_RAW]',
      '    security_opt: ["no-new-privileges:false"]',
      // plain is built (by the build controller, with the image checks) FROM the only busybox tag there is.
      'x-berth:',
      '  pipeline:',
      '    checks:',
      '      warn_only: [pinned-from]',
      '',
    ].join('\n'));
    // no-new-privileges:false is refused by the default guardrail policy: raw gets an exemption for it in prod.
    const ex = await h.cli(['policy', 'exempt', 'sec/raw', 'security_opt', '--env', 'prod', '--reason', 'ping is setuid in this image', '--expires', '1d']);
    assert.equal(ex.code, 0, ex.stderr);
    const d = await h.cli(['deploy', '-f', file, '--timeout', '120'], { timeoutMs: 150_000 });
    assert.equal(d.code, 0, d.stderr);
    const containerOf = async (service: string) => {
      const inst = (await h.api('GET', '/v1/apps/sec')).json.services.find((s: { name: string }) => s.name === service).instances[0];
      assert.ok(inst, `${service} has an instance`);
      return (await h.containers('sec')).find((c) => c.instance === inst.id)!.id;
    };
    const inspect = async (id: string) => JSON.parse(await docker('inspect', id))[0];
    const exec = async (id: string, ...argv: string[]) => docker('exec', id, ...argv).then((out) => ({ ok: true, out }), (err: Error) => ({ ok: false, out: err.message }));
    const NET_RAW_BIT = 1n << 13n;

    const plain = await containerOf('plain');
    const pi = await inspect(plain);
    assert.deepEqual([...pi.HostConfig.CapDrop].sort(), ['AUDIT_WRITE', 'MKNOD', 'NET_RAW', 'SETFCAP', 'SYS_CHROOT']);
    assert.deepEqual(pi.HostConfig.SecurityOpt, ['no-new-privileges']);
    assert.equal(pi.HostConfig.NetworkMode, 'host');
    // The guardrail policy's pids limit and default memory limit (the service sets neither).
    assert.equal(pi.HostConfig.PidsLimit, 4096);
    assert.equal(pi.HostConfig.Memory, 1024 ** 3);
    assert.equal(pi.HostConfig.Privileged, false);
    const ping = await exec(plain, 'ping', '-c', '1', '-W', '1', '127.0.0.1');
    assert.equal(ping.ok, false, 'no raw socket on the host network');
    assert.match(ping.out, /permission denied/);
    const status = (await exec(plain, 'cat', '/proc/1/status')).out;
    assert.equal(BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(status)![1]}`) & NET_RAW_BIT, 0n);
    assert.match(status, /NoNewPrivs:\s*1/);
    assert.equal((await exec(plain, 'id', '-u')).out, '0', 'the image\'s user (root) when the service names none');

    const locked = await containerOf('locked');
    const li = await inspect(locked);
    assert.equal(li.Config.User, '65534:65534');
    assert.equal(li.HostConfig.ReadonlyRootfs, true);
    assert.deepEqual(li.HostConfig.Tmpfs, { '/tmp': '' });
    assert.deepEqual(li.HostConfig.CapDrop, ['ALL']);
    assert.equal((await exec(locked, 'id', '-u')).out, '65534');
    assert.equal((await exec(locked, 'touch', '/x')).ok, false, 'the root filesystem is read-only');
    assert.equal((await exec(locked, 'touch', '/tmp/x')).ok, true, 'the tmpfs is writable');
    assert.match((await exec(locked, 'cat', '/proc/1/status')).out, /CapEff:\s*0000000000000000/);
    // The bind went through a symlink inside the allowed root: the container mounts what was checked.
    const mount = li.Mounts.find((m: { Destination: string }) => m.Destination === '/data');
    assert.equal(mount.Source, join(app, 'data'));
    assert.equal((await exec(locked, 'cat', '/data/hello.txt')).out, 'hello from the host');

    const raw = await containerOf('raw');
    const ri = await inspect(raw);
    assert.deepEqual(ri.HostConfig.CapAdd, ['NET_RAW']);
    assert.ok(!ri.HostConfig.CapDrop.includes('NET_RAW'));
    assert.deepEqual(ri.HostConfig.SecurityOpt ?? [], []);
    assert.equal((await exec(raw, 'ping', '-c', '1', '-W', '1', '127.0.0.1')).ok, true, 'cap_add gives NET_RAW back');
    assert.match((await exec(raw, 'cat', '/proc/1/status')).out, /NoNewPrivs:\s*0/);
  });

  test('a bind source swapped for a symlink after the deploy: the next container is not created', async () => {
    // The release holds the resolved path (app/data); replace that directory with a link to /.
    await rename(join(app, 'data'), join(app, 'data.real'));
    await symlink('/', join(app, 'data'));
    const before = (await h.containers('sec')).length;
    const r = await h.cli(['scale', 'sec', 'locked=2']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => (await h.api('GET', '/v1/events?app=sec&limit=1000')).json.events.some((e: { kind: string; message: string }) =>
      e.kind === 'instance.refused' && /app\/data" \(it resolves to "\/"\)/.test(e.message)), { timeoutMs: 30_000, what: 'the refusal event' });
    assert.equal((await h.containers('sec')).length, before, 'no container for the new instance');
  });
});
