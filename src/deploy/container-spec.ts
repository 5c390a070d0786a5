import { LABEL, type ContainerNetworking, type ContainerSpec } from '../core/ports.ts';
import { placementOfService } from '../core/pool-admission.ts';
import { capabilitySets } from '../core/spec/security.ts';
import type { InstanceRecord, ReleaseRecord } from '../core/store.ts';

/** Docker names volumes per app and environment so that `data` of two apps never collide. */
export function volumeName(app: string, env: string, name: string): string {
  return `berth_${app}_${env}_${name}`;
}

/**
 * The Docker network of a Compose network of an app in an environment. `scope` (the installation's
 * cluster id) keeps two Berth installations on one engine apart.
 */
export function networkName(scope: string, app: string, env: string, name: string): string {
  return `berth_${scope}_${app}_${env}_${name}`;
}

/** App-network mode: the networks an instance joins (service name and aliases on each) and what it publishes. */
export function networkingFor(rel: ReleaseRecord, inst: InstanceRecord, scope: string): ContainerNetworking | undefined {
  const s = rel.spec;
  if (s.networkMode !== 'app') return undefined;
  const networks = (s.networks ?? [{ name: 'default', aliases: [] }]).map((n) => ({
    name: networkName(scope, inst.app, inst.env, n.name), aliases: [s.name, ...n.aliases.filter((a) => a !== s.name)],
  }));
  const publish: ContainerNetworking['publish'] = [];
  // The routed/checked port: on an allocated port of loopback, where the ingress, checks and discovery reach it.
  if (s.port !== undefined) publish.push({ target: s.port, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: inst.port });
  for (const p of s.publish ?? []) {
    if (p.published !== undefined) publish.push({ target: p.target, protocol: p.protocol, hostIp: p.hostIp ?? '0.0.0.0', hostPort: p.published });
    else if (p.target !== s.port || p.protocol !== 'tcp') publish.push({ target: p.target, protocol: p.protocol, hostIp: p.hostIp ?? '127.0.0.1', hostPort: 0 });
  }
  return { networks, publish };
}

export function containerName(i: InstanceRecord): string {
  return `berth-${i.app}-${i.env}-${i.id}`;
}

/**
 * The container for one instance of a release: host network and allocated PORT, or app networks with
 * published ports (`networkingFor`); Berth labels, the
 * service's user and capabilities (Berth's defaults unless it says otherwise); with `resolvConf`, the
 * container's /etc/resolv.conf points at Berth's DNS so `web` (its own app's) and
 * `web.shop.prod.berth` resolve.
 */
export function containerSpecFor(rel: ReleaseRecord, inst: InstanceRecord, extra: {
  resolvConf?: string; configEnv?: Record<string, string>; configDir?: string; configGid?: number; bindSources?: Record<string, string>;
  fileMounts?: Array<{ source: string; target: string }>;
  /** The installation's cluster id (app networks are named with it). */
  scope?: string;
  /** An app-network container's DNS servers and search domains (Berth's DNS on its network's gateway). */
  dns?: { servers: string[]; search: string[] };
} = {}): ContainerSpec {
  const s = rel.spec;
  const network = networkingFor(rel, inst, extra.scope ?? 'local');
  const spec: ContainerSpec = {
    name: containerName(inst),
    image: rel.imageId,
    labels: {
      ...s.labels,
      [LABEL.app]: inst.app,
      [LABEL.env]: inst.env,
      [LABEL.service]: inst.service,
      [LABEL.release]: rel.id,
      [LABEL.instance]: inst.id,
      [LABEL.port]: String(inst.port),
      ...(s.restartGeneration ? { [LABEL.restart]: String(s.restartGeneration) } : {}),
    },
    env: {
      ...s.environment,
      ...extra.configEnv,
      // App network: the process listens on its native port (PORT says which, when the service has one).
      ...(network ? (s.port !== undefined ? { PORT: String(s.port) } : {}) : { PORT: String(inst.port) }),
      BERTH_APP: inst.app,
      BERTH_ENV: inst.env,
      BERTH_SERVICE: inst.service,
      BERTH_INSTANCE: inst.id,
      BERTH_RELEASE: rel.id,
    },
    stopSignal: s.stopSignal,
    stopTimeoutS: Math.ceil(s.stopGracePeriodMs / 1000),
    mounts: s.volumes.map((v) => ({
      // An anonymous volume is a volume without a name: Docker makes one per container.
      type: v.type === 'anonymous' ? 'volume' as const : v.type,
      source: v.type === 'volume' ? volumeName(inst.app, inst.env, v.source) : v.type === 'anonymous' ? '' : extra.bindSources?.[v.source] ?? v.source,
      target: v.target,
      readOnly: v.readOnly,
    })),
  };
  if (extra.configDir) {
    spec.mounts.push({ type: 'bind', source: extra.configDir, target: '/run/berth/config', readOnly: true });
    // The files are 0640 root:GID: the process reads them through this group, whatever its user.
    if (extra.configGid !== undefined) spec.groupAdd = [String(extra.configGid)];
  }
  // Secret and config files, one read-only bind each from Berth's tmpfs (the values never touch the spec).
  for (const f of extra.fileMounts ?? []) spec.mounts.push({ type: 'bind', source: f.source, target: f.target, readOnly: true });
  if (network) spec.network = network;
  // On an app network, names resolve through the engine's DNS (service names, aliases), which a
  // bind-mounted resolv.conf would bypass.
  if (extra.resolvConf && !network) spec.mounts.push({ type: 'bind', source: extra.resolvConf, target: '/etc/resolv.conf', readOnly: true });
  // The engine's DNS forwards what it does not know (`web.prod.berth`) to these servers.
  if (network && extra.dns?.servers.length) spec.dns = { servers: [...extra.dns.servers], search: [...extra.dns.search] };
  if (s.command) spec.cmd = s.command;
  if (s.entrypoint) spec.entrypoint = s.entrypoint;
  if (s.limits.nanoCpus !== undefined) spec.nanoCpus = s.limits.nanoCpus;
  if (s.limits.memoryBytes !== undefined) spec.memoryBytes = s.limits.memoryBytes;
  if (s.shmSizeBytes !== undefined) spec.shmSizeBytes = s.shmSizeBytes;
  const caps = capabilitySets(s);
  spec.capAdd = caps.capAdd;
  spec.capDrop = caps.capDrop;
  spec.noNewPrivileges = s.noNewPrivileges !== false;
  if (s.user !== undefined) spec.user = s.user;
  if (s.readOnly) spec.readOnlyRootfs = true;
  if (s.tmpfs) spec.tmpfs = { ...s.tmpfs };
  if (s.init) spec.init = true;
  if (s.workingDir !== undefined) spec.workingDir = s.workingDir;
  if (s.ulimits) spec.ulimits = s.ulimits.map((u) => ({ ...u }));
  if (s.sysctls) spec.sysctls = { ...s.sysctls };
  if (s.extraHosts) spec.extraHosts = [...s.extraHosts];
  if (s.limits.pids !== undefined && s.limits.pids > 0) spec.pidsLimit = s.limits.pids;
  // Present only when the deploy passed the guardrail policy with an exemption for them.
  if (s.privileged) spec.privileged = true;
  if (s.hostNamespaces?.length) spec.hostNamespaces = [...s.hostNamespaces];
  if (s.devices?.length) spec.devices = s.devices.map((d) => ({ ...d }));
  if (s.unconfined?.length) spec.unconfined = [...s.unconfined];
  spec.placement = placementOfService(s);
  if (s.health.type === 'command') {
    const h = s.health;
    spec.healthcheck = { test: h.test, intervalMs: h.intervalMs, timeoutMs: h.timeoutMs, retries: h.retries, startPeriodMs: h.startPeriodMs };
  }
  return spec;
}
