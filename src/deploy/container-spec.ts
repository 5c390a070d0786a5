import { LABEL, type ContainerSpec } from '../core/ports.ts';
import { capabilitySets } from '../core/spec/security.ts';
import type { InstanceRecord, ReleaseRecord } from '../core/store.ts';

/** Docker names volumes per app and environment so that `data` of two apps never collide. */
export function volumeName(app: string, env: string, name: string): string {
  return `berth_${app}_${env}_${name}`;
}

export function containerName(i: InstanceRecord): string {
  return `berth-${i.app}-${i.env}-${i.id}`;
}

/**
 * The container for one instance of a release: host network, allocated PORT, Berth labels, the
 * service's user and capabilities (Berth's defaults unless it says otherwise); with `resolvConf`, the
 * container's /etc/resolv.conf points at Berth's DNS so `web` (its own app's) and
 * `web.shop.prod.berth` resolve.
 */
export function containerSpecFor(rel: ReleaseRecord, inst: InstanceRecord, extra: { resolvConf?: string; configEnv?: Record<string, string>; configDir?: string; configGid?: number; bindSources?: Record<string, string>;
  fileMounts?: Array<{ source: string; target: string }> } = {}): ContainerSpec {
  const s = rel.spec;
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
      PORT: String(inst.port),
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
  if (extra.resolvConf) spec.mounts.push({ type: 'bind', source: extra.resolvConf, target: '/etc/resolv.conf', readOnly: true });
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
  if (s.health.type === 'command') {
    const h = s.health;
    spec.healthcheck = { test: h.test, intervalMs: h.intervalMs, timeoutMs: h.timeoutMs, retries: h.retries, startPeriodMs: h.startPeriodMs };
  }
  return spec;
}
