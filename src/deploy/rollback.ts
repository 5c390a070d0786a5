import { NotFound, Conflict } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import type { ReleaseRecord, ServiceKey, DesiredStateStore, EventStore } from '../core/store.ts';
import type { RollbackPort } from '../core/deployments.ts';

/** The last release of a service that became healthy before `before` (the one to go back to). */
export function previousGoodRelease(store: DesiredStateStore, k: ServiceKey, before: ReleaseRecord): ReleaseRecord | undefined {
  return store.listReleases({ app: k.app, env: k.env, service: k.service })
    .filter((r) => r.id !== before.id && r.seq < before.seq && r.status === 'healthy')
    .sort((a, b) => b.seq - a.seq)[0];
}

/**
 * Makes `target` the desired release again (desired state only; the reconciler does the rest). With
 * blue-green and the previous set still idle, that is one upstream switch.
 */
export function rollbackTo(store: DesiredStateStore & EventStore, clock: Clock, k: ServiceKey, target: ReleaseRecord, why: string): void {
  const svc = store.getService(k);
  if (!svc) throw new NotFound(`no service ${k.service} in ${k.app}/${k.env}`);
  const cur = store.getRelease(svc.releaseId);
  if (cur?.id === target.id) throw new Conflict(`${k.service} already runs release ${target.seq}`);
  if (cur && cur.status === 'progressing') store.updateRelease(cur.id, { status: 'superseded', finishedAt: clock.now(), message: `rolled back to release ${target.seq}` });
  store.updateService(k, { releaseId: target.id, failures: 0, nextStartAt: 0 });
  store.updateRelease(target.id, { status: 'progressing', message: `rollback from release ${cur?.seq ?? '?'}: ${why}` });
  store.addEvent({ ...k, instance: '', kind: 'release.rollback', message: `${k.service}: rolling back from release ${cur?.seq ?? '?'} to ${target.seq} (${why})` });
}

/** Resolves `--to` (a release seq or id) or defaults to the previous good release. */
export function rollbackTarget(store: DesiredStateStore, k: ServiceKey, to?: string): ReleaseRecord {
  const svc = store.getService(k);
  if (!svc) throw new NotFound(`no service ${k.service} in ${k.app}/${k.env}`);
  const releases = store.listReleases({ app: k.app, env: k.env, service: k.service });
  if (to !== undefined) {
    const t = releases.find((r) => r.id === to || String(r.seq) === to);
    if (!t) throw new NotFound(`no release "${to}" of ${k.service}: releases are ${releases.map((r) => r.seq).join(', ')} (see \`berth releases ${k.app}\`)`);
    return t;
  }
  const cur = store.getRelease(svc.releaseId);
  const prev = cur && previousGoodRelease(store, k, cur);
  if (!prev) throw new NotFound(`${k.service} has no earlier healthy release to roll back to`);
  return prev;
}

/** The API's rollback port over the store. */
export function rollbacks(store: DesiredStateStore & EventStore, clock: Clock): RollbackPort {
  return {
    target: (k, to) => rollbackTarget(store, k, to),
    rollback: (k, target, why) => rollbackTo(store, clock, k, target, why),
  };
}
