import type { Clock } from '../core/ports.ts';
import type { ServiceSpec } from '../core/spec/types.ts';
import type { DesiredStateStore, InstanceRecord, InstanceStore, ServiceKey, ServiceRecord } from '../core/store.ts';
import { pinnedText } from '../core/failover.ts';
import { crashSummary } from '../core/health-notes.ts';
import { COMPLETED_REASON } from '../core/plan/index.ts';
import { waitingOn, type InstanceStatus, type ServiceStatus } from '../core/views.ts';

export type { InstanceStatus, ServiceStatus } from '../core/views.ts';

/**
 * Many hosts: the host a stateful service (named volumes) is pinned to — the service reconciler's pin,
 * learned from where its instances run or set by `berth failover`; undefined on one host.
 */
export type PinnedHost = (k: ServiceKey) => string | undefined;

/** A service's observable status, computed from the store (never from the engine in a request). */
export function serviceStatus(store: Pick<DesiredStateStore, 'getRelease'> & Pick<InstanceStore, 'listInstances'>, clock: Clock, s: ServiceRecord, all?: readonly Readonly<InstanceRecord>[], pinnedHost?: PinnedHost): ServiceStatus {
  const rel = store.getRelease(s.releaseId);
  const pin = pinOf(rel?.spec, pinnedHost?.({ app: s.app, env: s.env, service: s.name }));
  const insts = (all ?? store.listInstances({ app: s.app, env: s.env, service: s.name }))
    .filter((i) => i.app === s.app && i.env === s.env && i.service === s.name);
  // Release numbers by id, the service's own release's known already (each read parses a release's spec).
  const seqOf = new Map<string, number>(rel ? [[rel.id, rel.seq]] : []);
  const seq = (id: string) => {
    if (!seqOf.has(id)) seqOf.set(id, store.getRelease(id)?.seq ?? 0);
    return seqOf.get(id)!;
  };
  const current = insts.filter((i) => i.releaseId === s.releaseId && i.state === 'running');
  const healthy = current.filter((i) => i.health === 'healthy').length;
  const now = clock.now();
  const instances: InstanceStatus[] = insts.map((i) => ({
    id: i.id, release: seq(i.releaseId), state: i.state, health: i.health, host: i.host, address: i.address, port: i.port,
    ...(i.containerId ? { containerId: i.containerId } : {}), ...(i.startedAt ? { startedAt: i.startedAt } : {}),
    ...(i.reason ? { reason: i.reason } : {}), ...(i.check ? { check: i.check } : {}),
    ...(pin && i.state !== 'stopping' ? { pinned: pin.text } : {}),
  }));
  // Only a crash of the release being rolled out or run now says something about it.
  const crash = s.lastCrash && s.lastCrash.releaseId === s.releaseId && s.lastCrash.at >= (s.rolloutStartedAt ?? 0) ? s.lastCrash : undefined;
  const why = () => waitingOn({ healthy, desired: s.replicas, releaseSeq: rel?.seq ?? 0, instances, ...(crash ? { lastCrash: crash } : {}) }, now);
  let status = 'running';
  let detail = `${healthy}/${s.replicas} healthy`;
  if (s.failures >= 2 && healthy < s.replicas) {
    status = 'crash-looping';
    const wait = Math.max(0, s.nextStartAt - now);
    detail = `${s.failures} crashes in a row; ${wait > 0 ? `next start in ${Math.ceil(wait / 1000)}s (backing off)` : 'restarting now'}`;
    if (crash) detail += `; last ${crashSummary(crash)}`;
  } else if (rel?.status === 'failed') {
    status = 'failed';
    detail = `release ${rel.seq} failed: ${rel.message}`;
  } else if (rel?.spec.oneShot && insts.filter((i) => i.releaseId === s.releaseId && i.reason === COMPLETED_REASON).length >= s.replicas) {
    // A one-shot service (others wait for it with service_completed_successfully) has done its work.
    status = 'completed';
    detail = `release ${rel.seq} ran to completion (exit 0)`;
  } else if (s.replicas === 0) {
    status = 'stopped';
    detail = 'scaled to 0';
  } else if (rel?.status === 'progressing' || (insts.some((i) => i.releaseId !== s.releaseId) && rel?.spec.update?.strategy !== 'blue-green')) {
    status = 'deploying';
    detail = `release ${rel?.seq}: ${why()}`;
  } else if (healthy < s.replicas) {
    status = 'degraded';
    detail = why();
  } else if (insts.some((i) => i.releaseId !== s.releaseId)) {
    const until = (s.switchedAt ?? 0) + (rel?.spec.update?.keepPreviousMs ?? 0);
    detail += `; previous release idle for ${Math.max(0, Math.ceil((until - now) / 1000))}s more (rollback is one switch)`;
  }
  return {
    app: s.app, env: s.env, name: s.name, desired: s.replicas, healthy, running: current.length, status, detail,
    release: rel
      ? { id: rel.id, seq: rel.seq, status: rel.status, message: rel.message, image: rel.image, imageId: rel.imageId, createdAt: rel.createdAt }
      : { id: s.releaseId, seq: 0, status: 'missing', message: '', image: '', imageId: '', createdAt: 0 },
    routes: rel?.spec.routes ?? [],
    failures: s.failures,
    ...(s.nextStartAt > now ? { nextStartAt: s.nextStartAt } : {}),
    strategy: rel?.spec.update?.strategy ?? 'rolling',
    ...stopFirstReason(rel?.spec),
    ...(pin ? { pinned: pin } : {}),
    ...(s.routedReleaseId ? { routedRelease: seq(s.routedReleaseId) } : {}),
    reload: { requestedAt: s.reloadRequestedAt ?? 0, doneAt: s.reloadedAt ?? 0 },
    ...(crash ? { lastCrash: crash } : {}),
    instances,
  };
}

/** The pin as status shows it: its host, the named volumes that hold it there, and `pinned to HOST (volume data)`. */
function pinOf(spec: ServiceSpec | undefined, host: string | undefined): { host: string; volumes: string[]; text: string } | undefined {
  const volumes = spec?.volumes.filter((v) => v.type === 'volume').map((v) => v.source) ?? [];
  if (!host || volumes.length === 0) return undefined;
  return { host, volumes, text: pinnedText(host, volumes) };
}

/** A stop-first service that keeps data in named volumes says so (the parser chose recreate for it, or its author did). */
function stopFirstReason(spec: ServiceSpec | undefined): { strategyReason?: string } {
  if (spec?.update?.strategy !== 'recreate') return {};
  const data = spec.volumes.filter((v) => v.type === 'volume' && !v.readOnly).map((v) => v.source);
  return data.length ? { strategyReason: `releases stop the old container first: it keeps data in volume ${data.join(', ')}` } : {};
}
