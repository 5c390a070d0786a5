/** Unit tests of the guardrail policy (core/guard.ts): layering, every refusal, exemptions, tightening. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BUILTIN_POLICY, checkGuardrails, effectivePolicy, expiredExemptions, loosens, policyFor, policyProblems, type Exemption, type GuardPolicy, type PolicyLayer,
} from './guard.ts';
import { parseAppSpec } from './spec/parse.ts';
import type { AppSpec } from './spec/types.ts';

const NOW = 1_700_000_000_000;
const DAY = 86_400_000;

function specOf(yaml: string): AppSpec {
  return parseAppSpec(yaml, { file: 'compose.yaml', baseDir: '/srv/apps/shop', appName: 'shop', env: {}, readFile: () => undefined }).spec;
}
const layer = (team: string, env: string, policy: GuardPolicy, version = 1): PolicyLayer => ({ team, env, version, policy, setBy: 'owner', setAt: 0 });
const check = (spec: AppSpec, o: { layers?: PolicyLayer[]; team?: string; env?: string; exemptions?: Exemption[]; now?: number } = {}) =>
  checkGuardrails(spec, { env: o.env ?? 'prod', ...(o.team ? { team: o.team } : {}), effective: policyFor(o.layers ?? [], o.team, o.env ?? 'prod'), exemptions: o.exemptions ?? [], now: o.now ?? NOW });
const exemption = (key: Exemption['key'], o: Partial<Exemption> = {}): Exemption => ({
  id: `ex-${key}`, app: 'shop', service: '*', env: 'prod', key, reason: 'needed for the test', createdBy: 'lead', createdAt: NOW - DAY, expiresAt: NOW + DAY, revokedAt: 0, ...o,
});

const RISKY = `
services:
  db:
    image: postgres
    privileged: true
    pid: host
    ipc: host
    uts: host
    userns_mode: host
    cgroup: host
    cap_add: [SYS_ADMIN, CHOWN]
    devices: [/dev/fuse]
    security_opt: ["no-new-privileges:false", "seccomp=unconfined", "apparmor:unconfined"]
    sysctls: {net.core.somaxconn: "1024"}
    pids_limit: -1
    volumes: ["/srv/data:/data"]
`;

test('the built-in policy refuses each risky key by name, with the narrow option and the exemption command', () => {
  const r = check(specOf(RISKY), { team: 'web' });
  const keys = r.violations.map((v) => `${v.path} ${v.key}`);
  assert.deepEqual(keys, [
    'services.db.cap_add[0] cap_add', 'services.db.cgroup cgroup', 'services.db.devices[0] devices', 'services.db.ipc ipc', 'services.db.pid pid',
    'services.db.pids_limit pids_limit', 'services.db.privileged privileged', 'services.db.security_opt security_opt', 'services.db.security_opt security_opt',
    'services.db.security_opt security_opt', 'services.db.userns_mode userns_mode', 'services.db.uts uts',
  ]);
  const priv = r.violations.find((v) => v.key === 'privileged')!;
  assert.match(priv.message, /^refused by Berth's built-in policy \(app shop of team web in env prod\): privileged containers are not allowed/);
  assert.match(priv.message, /bigger \/dev\/shm with `shm_size: 1g`/);
  assert.match(priv.message, /berth policy exempt shop\/db privileged --env prod --reason/);
  assert.match(r.violations.find((v) => v.key === 'ipc')!.message, /shm_size: 1g/);
  assert.match(r.violations.find((v) => v.key === 'cap_add')!.message, /SYS_ADMIN is not in the allowed list/);
  // Binds under the server's roots, net.* sysctls and CHOWN are fine by default.
  assert.ok(!keys.some((k) => k.includes('volumes') || k.includes('sysctls') || k.includes('cap_add[1]')));
});

test('a plain service passes and gets the pids limit and the default memory limit; its own limits stay', () => {
  const r = check(specOf('services: {web: {image: x, deploy: {resources: {limits: {memory: 256m, pids: 100}}}}, api: {image: y}}'));
  assert.deepEqual(r.violations, []);
  assert.deepEqual(r.spec.services.api!.limits, { pids: 4096, memoryBytes: 1024 ** 3 });
  assert.deepEqual(r.spec.services.web!.limits, { pids: 100, memoryBytes: 256 * 1024 ** 2 });
  const over = check(specOf('services: {web: {image: x, pids_limit: 10000}}'));
  assert.match(over.violations[0]!.message, /a 10000 pids limit is more than the 4096 allowed/);
});

test('layers: the most specific wins field by field, and the refusal names the layer that set it', () => {
  const layers = [
    layer('', '', { readOnly: true, pidsLimit: 2048 }),
    layer('web', '', { pidsLimit: 1024 }),
    layer('', 'prod', { binds: false }),
    layer('web', 'prod', { readOnly: false, sysctls: [] }),
  ];
  const e = policyFor(layers, 'web', 'prod');
  assert.equal(e.policy.readOnly, false);
  assert.equal(e.from.readOnly, 'policy of team web (env prod)');
  assert.equal(e.policy.pidsLimit, 1024);
  assert.equal(e.from.pidsLimit, 'policy of team web');
  assert.equal(e.from.binds, 'policy of env prod');
  assert.equal(e.from.privileged, "Berth's built-in policy");
  // Another team in prod: the installation's read_only applies.
  const spec = specOf('services: {web: {image: x, volumes: ["/srv/a:/a"], sysctls: {net.core.somaxconn: 1}}}');
  const data = check(spec, { layers, team: 'data' });
  assert.deepEqual(data.violations.map((v) => `${v.path}: ${v.message.split(':')[0]}`), [
    'services.web.read_only: refused by policy of the installation (app shop of team data in env prod)',
    'services.web.volumes[0]: refused by policy of env prod (app shop of team data in env prod)',
  ]);
  const web = check(spec, { layers, team: 'web' });
  assert.deepEqual(web.violations.map((v) => v.key), ['sysctls', 'volumes']);
  // In test (no env layer) web's team layer gives 1024 pids; the read_only requirement holds.
  assert.deepEqual(check(spec, { layers, team: 'web', env: 'test' }).violations.map((v) => v.key), ['read_only']);
  assert.equal(check(spec, { layers, team: 'web', env: 'test' }).spec.services.web!.limits.pids, 1024);
});

test('bind roots narrower than the server\'s; app-networks-only refuses the host network', () => {
  const layers = [layer('', '', { bindRoots: ['/srv/apps'], hostNetwork: false })];
  const r = check(specOf('services: {web: {image: x, x-berth: {port: 8080}, volumes: ["/srv/apps/shop:/a", "/srv/other:/b"]}, db: {image: y, networks: [default]}}'), { layers });
  assert.deepEqual(r.violations.map((v) => v.path), ['services.web.network_mode', 'services.web.volumes[1]']);
  assert.match(r.violations[1]!.message, /\/srv\/other is not under the directories allowed for binds \(\/srv\/apps\)/);
});

test('an exemption lets exactly its key through, for its app, service and env, until it expires or is revoked', () => {
  const spec = specOf(RISKY.replace('pids_limit: -1', 'pids_limit: 100'));
  const all = check(spec).violations.length;
  const ex = exemption('privileged', { service: 'db' });
  const r = check(spec, { exemptions: [ex] });
  assert.equal(r.violations.length, all - 1);
  assert.ok(!r.violations.some((v) => v.key === 'privileged'));
  assert.deepEqual(r.spec.services.db!.exemptions, [{ id: 'ex-privileged', key: 'privileged', expiresAt: NOW + DAY }]);
  // Not in another environment, not for another service, not once expired or revoked.
  assert.ok(check(spec, { exemptions: [ex], env: 'test' }).violations.some((v) => v.key === 'privileged'));
  assert.ok(check(spec, { exemptions: [{ ...ex, service: 'web' }] }).violations.some((v) => v.key === 'privileged'));
  assert.ok(check(spec, { exemptions: [ex], now: NOW + DAY }).violations.some((v) => v.key === 'privileged'));
  assert.ok(check(spec, { exemptions: [{ ...ex, revokedAt: NOW - 1 }] }).violations.some((v) => v.key === 'privileged'));
  assert.ok(check(spec, { exemptions: [{ ...ex, app: 'other' }] }).violations.some((v) => v.key === 'privileged'));
  // Status warns once it no longer holds (and not while another live one covers the key).
  const services = [r.spec.services.db!];
  assert.deepEqual(expiredExemptions(services, () => true, NOW + 2 * DAY), []);
  assert.match(expiredExemptions(services, () => false, NOW + 2 * DAY)[0]!, /db runs with an exemption for privileged \(ex-privileged\) that has expired: the running containers are not stopped/);
});

test('team admins may tighten, not loosen', () => {
  const inherited = effectivePolicy([]).policy;
  assert.deepEqual(loosens({ readOnly: true, pidsLimit: 100, capabilities: ['CHOWN'], sysctls: ['net.core.somaxconn'], privileged: false }, inherited), []);
  assert.deepEqual(loosens({ privileged: true, noNewPrivileges: false, pidsLimit: 0, capabilities: ['SYS_ADMIN'], sysctls: ['kernel.*'] }, inherited),
    ['privileged', 'noNewPrivileges', 'pidsLimit', 'capabilities', 'sysctls']);
  assert.deepEqual(loosens({ bindRoots: ['/'] }, { ...BUILTIN_POLICY, bindRoots: ['/srv'] }), ['bindRoots']);
  assert.deepEqual(loosens({ bindRoots: ['/srv/a'] }, { ...BUILTIN_POLICY, bindRoots: ['/srv'] }), []);
  assert.deepEqual(policyProblems({ capabilities: ['NET_RWA'], bindRoots: ['srv'], sysctls: ['net.$x'] }).length, 3);
});
