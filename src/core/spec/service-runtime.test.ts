import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidSpec } from '../errors.ts';
import { parseAppSpec, type ParseOptions } from './index.ts';

const OPTS: ParseOptions = { file: 'compose.yaml', env: {}, baseDir: '/srv/app', readFile: () => undefined };

test('init, working_dir, ulimits, sysctls (net.*), extra_hosts, pull_policy, build target/inline/secrets and anonymous volumes reach the spec', () => {
  const { spec, warnings } = parseAppSpec(`services:
  web:
    build:
      context: .
      target: runtime
      secrets: [npm_token, {source: gh, target: github}]
    init: true
    working_dir: /app
    ulimits: {nofile: {soft: 1024, hard: 4096}, nproc: 512}
    sysctls: [net.core.somaxconn=1024]
    extra_hosts: ["db.internal:10.0.0.5", "gw=host-gateway", "v6:::1"]
    pull_policy: if_not_present
    volumes: [/cache, {type: volume, target: /tmp/x}]
  tool:
    build: {context: ., dockerfile_inline: "FROM berth/busybox\\nCMD [\\"true\\"]"}
secrets:
  npm_token: {environment: NPM_TOKEN}
  gh: {file: ./gh.txt}
`, { ...OPTS, env: { NPM_TOKEN: 'n' }, readSecretFile: (p) => (p === '/srv/app/gh.txt' ? 'g' : undefined) });
  // Build secrets carry their values to the server (sealed there; the build reads them through a BuildKit session).
  assert.deepEqual(warnings.map((w) => w.path), []);
  const web = spec.services.web!;
  assert.deepEqual(web.build?.secrets?.map((x) => [x.source, x.target, x.mount?.target, x.mount?.from]),
    [['npm_token', 'npm_token', '/run/secrets/npm_token', 'environment'], ['gh', 'github', '/run/secrets/github', 'file']]);
  assert.deepEqual({ ...web.build, secrets: undefined }, { context: '/srv/app', dockerfile: 'Dockerfile', args: {}, target: 'runtime', secrets: undefined });
  assert.equal(web.init, true);
  assert.equal(web.workingDir, '/app');
  assert.deepEqual(web.ulimits, [{ name: 'nofile', soft: 1024, hard: 4096 }, { name: 'nproc', soft: 512, hard: 512 }]);
  assert.deepEqual(web.sysctls, { 'net.core.somaxconn': '1024' });
  assert.deepEqual(web.extraHosts, ['db.internal:10.0.0.5', 'gw:host-gateway', 'v6:::1']);
  assert.equal(web.pullPolicy, 'missing');
  assert.deepEqual(web.volumes, [{ type: 'anonymous', source: '', target: '/cache', readOnly: false }, { type: 'anonymous', source: '', target: '/tmp/x', readOnly: false }]);
  assert.equal(spec.services.tool!.build!.dockerfileInline, 'FROM berth/busybox\nCMD ["true"]');
  assert.equal(spec.services.tool!.init, undefined, 'unset fields stay out of the spec (release hashes unchanged)');
});

test('unsafe or wrong runtime settings are refused at file:line:col with what would be right', () => {
  try {
    parseAppSpec(`services:
  web:
    image: x
    sysctls: {kernel.shmmax: "1", net.ipv4.ip_forward: "1"}
    ulimits: {nofiles: 5, core: {soft: 10, hard: 5}}
    working_dir: app
    extra_hosts: ["db:not-an-ip"]
    build: {context: ., dockerfile: Dockerfile, dockerfile_inline: "FROM x", target: "bad stage"}
`, OPTS);
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof InvalidSpec);
    assert.deepEqual(e.issues.map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`), [
      '4:15 services.web.sysctls.kernel.shmmax: sysctl "kernel.shmmax" is refused: only network sysctls (net.*) are set per container; this one changes the host\'s kernel for every container — set it on the host if it is really needed',
      '5:15 services.web.ulimits.nofiles: unknown ulimit "nofiles": use one of core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack',
      '5:33 services.web.ulimits.core: soft limit 10 is above the hard limit 5: the soft limit must be at most the hard one',
      '6:18 services.web.working_dir: "app" is not an absolute path: write the directory inside the container, such as /app',
      '7:19 services.web.extra_hosts[0]: "not-an-ip" is not an IP address for "db": write an IPv4 or IPv6 address, or host-gateway',
      '8:68 services.web.build.dockerfile_inline: dockerfile and dockerfile_inline are both set: keep one of them',
      '8:86 services.web.build.target: "bad stage" is not a build stage name: write the name after `FROM ... AS`, e.g. runtime',
    ]);
  }
});

test('pull_policy outside Compose\'s values is refused by the schema check, at its line', () => {
  assert.throws(() => parseAppSpec('services:\n  web:\n    image: x\n    pull_policy: sometimes\n', OPTS),
    (e: unknown) => e instanceof InvalidSpec && e.issues.length === 1 && e.issues[0]!.line === 4 && /"sometimes" is invalid: must match pattern/.test(e.issues[0]!.message));
});
