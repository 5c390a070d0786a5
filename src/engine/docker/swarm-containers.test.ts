import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SwarmNode } from './docker-hosts.ts';
import { endpointSpec, poolConstraints, serviceSpec, toInfo } from './swarm-containers.ts';

const node = (id: string, state = 'ready'): SwarmNode => ({ ID: id, Version: { Index: 1 }, Spec: {}, Description: { Hostname: `h-${id}` }, Status: { State: state, Addr: `10.0.0.${id}` } });
const nodes = new Map([['1', node('1')], ['2', node('2', 'down')]]);
const svc = (replicas: number) => ({ ID: 's1', Version: { Index: 3 }, Spec: { Name: 'web-1', Labels: { a: 'b' }, Mode: { Replicated: { Replicas: replicas } }, TaskTemplate: { ContainerSpec: { Image: 'sha256:x' } } } });

test('a one-task service as a container: created, running with its node, lost on a down node, exited with the code', () => {
  assert.equal(toInfo(svc(0), [], nodes).state, 'created');
  const running = toInfo(svc(1), [{ ID: 't1', ServiceID: 's1', NodeID: '1', CreatedAt: '1', Status: { State: 'running', Timestamp: 'T' } }], nodes);
  assert.deepEqual([running.state, running.running, running.host, running.hostAddress, running.startedAt], ['running', true, 'h-1', '10.0.0.1', 'T']);
  assert.equal(toInfo(svc(1), [{ ID: 't1', ServiceID: 's1', NodeID: '2', Status: { State: 'running' } }], nodes).state, 'lost');
  assert.equal(toInfo(svc(1), [{ ID: 't1', ServiceID: 's1', NodeID: '1', Status: { State: 'orphaned' } }], nodes).state, 'lost');
  assert.equal(toInfo(svc(1), [{ ID: 't1', ServiceID: 's1', NodeID: '1', Status: { State: 'preparing' } }], nodes).state, 'created');
  // Started but not running: pending, with the scheduler's reason (the service reconciler bounds how long).
  assert.equal(toInfo(svc(1), [{ ID: 't1', ServiceID: 's1', NodeID: '1', Status: { State: 'preparing' } }], nodes).pending, 'task preparing');
  const stuck = toInfo(svc(1), [{ ID: 't1', ServiceID: 's1', Status: { State: 'pending', Err: 'no suitable node (host-mode port already in use on 3 nodes)' } }], nodes);
  assert.deepEqual([stuck.state, stuck.running, stuck.pending], ['created', false, 'no suitable node (host-mode port already in use on 3 nodes)']);
  assert.equal(toInfo(svc(1), [], nodes).pending, 'waiting for Swarm to create its task');
  assert.equal(toInfo(svc(0), [], nodes).pending, undefined, 'created, never started: not pending');
  const older = { ID: 't1', ServiceID: 's1', NodeID: '1', CreatedAt: '1', Status: { State: 'running' } };
  const died = toInfo(svc(1), [older, { ID: 't2', ServiceID: 's1', NodeID: '1', CreatedAt: '2', Status: { State: 'failed', Err: 'task: non-zero exit (3)', ContainerStatus: { ExitCode: 3 } } }], nodes);
  assert.deepEqual([died.state, died.running, died.exitCode, died.healthLog?.output], ['dead', false, 3, 'task: non-zero exit (3)'], 'the latest task counts');
  assert.equal(toInfo(svc(0), [{ ID: 't1', ServiceID: 's1', NodeID: '1', Status: { State: 'shutdown', ContainerStatus: { ExitCode: 0 } } }], nodes).state, 'exited');
});

test('the service of an instance: replicas 0, restart none, host network, pool constraint, reservations and limits', () => {
  const body = serviceSpec({
    name: 'web-1', image: 'sha256:x', labels: { l: '1' }, env: { PORT: '20001' }, cmd: ['node', 'server.js'], mounts: [], nanoCpus: 1e9, memoryBytes: 512e6,
    placement: { pool: 'a', constraints: ['node.labels.zone==z1'], spread: ['node.labels.zone'], maxReplicasPerNode: 2, reservation: { nanoCpus: 0.5e9, memoryBytes: 256e6 } },
  }, [], { logMaxSize: '10m', logMaxFile: 3 }) as { Mode: unknown; TaskTemplate: Record<string, unknown> };
  assert.deepEqual(body.Mode, { Replicated: { Replicas: 0 } });
  assert.deepEqual(body.TaskTemplate.RestartPolicy, { Condition: 'none' });
  assert.deepEqual(body.TaskTemplate.Networks, [{ Target: 'host' }]);
  assert.deepEqual(body.TaskTemplate.Placement, { Constraints: ['node.labels.io.berth.pool==a', 'node.labels.zone==z1'], Preferences: [{ Spread: { SpreadDescriptor: 'node.labels.zone' } }], MaxReplicas: 2 });
  assert.deepEqual(body.TaskTemplate.Resources, { Limits: { NanoCPUs: 1e9, MemoryBytes: 512e6 }, Reservations: { NanoCPUs: 0.5e9, MemoryBytes: 256e6 } });
  assert.deepEqual(poolConstraints('default', ['a', 'b']), ['node.labels.io.berth.pool!=a', 'node.labels.io.berth.pool!=b']);
});

test('guardrail fields on a Swarm service: pids, tmpfs size/mode, shm as a /dev/shm tmpfs, DNS, no-new-privileges; what Swarm cannot have is refused by name', () => {
  const base = { name: 'web-1', image: 'sha256:x', labels: {}, env: {}, mounts: [] };
  const body = serviceSpec({ ...base, pidsLimit: 200, tmpfs: { '/tmp': 'size=64m,mode=1777', '/run': '' }, shmSizeBytes: 128 * 1024 ** 2,
    dns: { servers: ['10.0.0.1'], search: ['prod.berth'] }, user: '1000:1000', readOnlyRootfs: true, capDrop: ['ALL'], ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }] },
  [], { logMaxSize: '10m', logMaxFile: 3 }) as { TaskTemplate: { ContainerSpec: Record<string, unknown>; Resources: { Limits: Record<string, unknown> } } };
  const c = body.TaskTemplate.ContainerSpec;
  assert.equal(body.TaskTemplate.Resources.Limits.Pids, 200);
  assert.deepEqual(c.Mounts, [
    { Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: 64 * 1024 ** 2, Mode: 0o1777 } },
    { Type: 'tmpfs', Target: '/run' },
    { Type: 'tmpfs', Target: '/dev/shm', TmpfsOptions: { SizeBytes: 128 * 1024 ** 2 } },
  ]);
  assert.deepEqual(c.DNSConfig, { Nameservers: ['10.0.0.1'], Search: ['prod.berth'] });
  assert.deepEqual(c.Privileges, { NoNewPrivileges: true });
  assert.deepEqual([c.User, c.ReadOnly, c.CapabilityDrop, c.Ulimits], ['1000:1000', true, ['ALL'], [{ Name: 'nofile', Soft: 1024, Hard: 2048 }]]);
  assert.throws(() => serviceSpec({ ...base, tmpfs: { '/tmp': 'noexec' } }, [], { logMaxSize: '1m', logMaxFile: 1 }), /tmpfs option "noexec" of \/tmp cannot be given to a Swarm service/);
  assert.throws(() => serviceSpec({ ...base, privileged: true, hostNamespaces: ['pid'], devices: [{ source: '/dev/fuse', target: '/dev/fuse', permissions: 'rwm' }], unconfined: ['seccomp'] },
    [], { logMaxSize: '1m', logMaxFile: 1 }), /instance web-1 cannot run in cluster mode: a Swarm service cannot have privileged, pid: host, devices, security_opt seccomp=unconfined/);
});

test('an app-network instance: its overlays with the service name and aliases, dnsrr (every replica by name, no IPVS VIP), host-mode ports on the allocated port', () => {
  const body = serviceSpec({
    name: 'web-1', image: 'sha256:x', labels: {}, env: { PORT: '8000' }, mounts: [],
    network: {
      networks: [{ name: 'berth_c_shop_prod_front', aliases: ['web', 'www'] }, { name: 'berth_c_shop_prod_back', aliases: ['web'] }],
      publish: [{ target: 8000, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 21234 }, { target: 9000, protocol: 'udp', hostIp: '127.0.0.1', hostPort: 0 }],
    },
    dns: { servers: ['10.77.0.1'], search: ['prod.berth', 'berth'] },
  }, [], { logMaxSize: '10m', logMaxFile: 3 }) as { TaskTemplate: { Networks: unknown; ContainerSpec: Record<string, unknown> }; EndpointSpec: unknown };
  assert.deepEqual(body.TaskTemplate.Networks, [
    { Target: 'berth_c_shop_prod_front', Aliases: ['web', 'www'] }, { Target: 'berth_c_shop_prod_back', Aliases: ['web'] },
  ]);
  assert.deepEqual(body.EndpointSpec, { Mode: 'dnsrr', Ports: [
    { Protocol: 'tcp', TargetPort: 8000, PublishedPort: 21234, PublishMode: 'host' },
    { Protocol: 'udp', TargetPort: 9000, PublishedPort: undefined, PublishMode: 'host' },
  ] });
  // Berth's DNS (the cluster address) behind Docker's embedded DNS, for `.berth` names.
  assert.deepEqual(body.TaskTemplate.ContainerSpec.DNSConfig, { Nameservers: ['10.77.0.1'], Search: ['prod.berth', 'berth'] });
  // Nothing published (a database reached by name only): still dnsrr, no ports.
  assert.deepEqual(endpointSpec({ networks: [{ name: 'n', aliases: ['db'] }], publish: [] }), { Mode: 'dnsrr' });
  // Host networking: no endpoint spec at all (as before).
  assert.equal((serviceSpec({ name: 'h', image: 'x', labels: {}, env: {}, mounts: [] }, [], { logMaxSize: '1m', logMaxFile: 1 }) as { EndpointSpec?: unknown }).EndpointSpec, undefined);
});
