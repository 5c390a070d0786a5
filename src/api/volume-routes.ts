import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { VolumeUsagePort } from '../core/ports.ts';
import { NAME_PATTERN } from '../core/spec/names.ts';
import type { DesiredStateStore, InstanceStore } from '../core/store.ts';
import type { VolumeView } from '../core/views.ts';
import type { KnownApps } from './known.ts';

export interface VolumeRouteDeps {
  store: Pick<DesiredStateStore, 'listReleases' | 'listServices' | 'getRelease' | 'listApps'> & Pick<InstanceStore, 'listInstances'>;
  /** Sizes and mount counts from the engine (Docker's disk usage). */
  usage: VolumeUsagePort;
  /** The engine's name of an app's volume (deploy/volumeName). */
  volumeName: (app: string, env: string, name: string) => string;
  known?: KnownApps;
}

const name = z.string().regex(NAME_PATTERN, 'lower-case letters, digits and dashes').max(63);
export const volumesQuery = z.object({ app: name.optional(), env: name.optional() });

/**
 * `GET /v1/volumes[?app=APP][&env=ENV]`: the named volumes of apps — every volume a release of the
 * app mounts (what `berth rm --purge` removes) — with size and users: the services whose current
 * release mounts it and the containers that do now.
 */
export function registerVolumeRoutes(api: FastifyInstance, d: VolumeRouteDeps): void {
  api.get('/v1/volumes', async (req) => {
    const q = volumesQuery.parse(req.query);
    if (q.app && q.env) d.known?.requireEnv(q.app, q.env);
    else if (q.app) d.known?.requireApp(q.app);
    // Without ?app=, only the apps the caller may see (a team member: its team's).
    const see = req.canSee ?? (() => true);
    const views = listVolumes(d, q).filter((v) => see(v.app));
    const usage = await d.usage.volumeUsage(views.map((v) => v.volume));
    for (const v of views) {
      const u = usage[v.volume];
      v.exists = u !== undefined;
      v.sizeBytes = u?.sizeBytes ?? null;
    }
    return { volumes: views };
  });
}

function listVolumes(d: VolumeRouteDeps, q: { app?: string | undefined; env?: string | undefined }): VolumeView[] {
  const filter = { ...(q.app ? { app: q.app } : {}), ...(q.env ? { env: q.env } : {}) };
  const byKey = new Map<string, VolumeView>();
  const view = (app: string, env: string, source: string): VolumeView => {
    const key = `${app}\0${env}\0${source}`;
    let v = byKey.get(key);
    if (!v) {
      v = { app, env, name: source, volume: d.volumeName(app, env, source), exists: false, sizeBytes: null, services: [], containers: [] };
      byKey.set(key, v);
    }
    return v;
  };
  const apps = q.app ? [q.app] : d.store.listApps().map((a) => a.name);
  for (const app of apps) {
    for (const r of d.store.listReleases({ app, ...(q.env ? { env: q.env } : {}) })) {
      for (const m of r.spec.volumes) if (m.type === 'volume') view(r.app, r.env, m.source);
    }
  }
  for (const s of d.store.listServices(filter)) {
    const rel = d.store.getRelease(s.releaseId);
    for (const m of rel?.spec.volumes ?? []) {
      if (m.type === 'volume') view(s.app, s.env, m.source).services.push({ service: s.name, target: m.target, readOnly: m.readOnly });
    }
  }
  const releases = new Map<string, ReturnType<VolumeRouteDeps['store']['getRelease']>>();
  for (const i of d.store.listInstances(filter)) {
    if (!releases.has(i.releaseId)) releases.set(i.releaseId, d.store.getRelease(i.releaseId));
    const rel = releases.get(i.releaseId);
    for (const m of rel?.spec.volumes ?? []) {
      if (m.type !== 'volume') continue;
      view(i.app, i.env, m.source).containers.push({ service: i.service, instance: i.id, release: rel!.seq, state: i.state,
        ...(i.containerId ? { containerId: i.containerId } : {}) });
    }
  }
  return [...byKey.values()].sort((a, b) => a.app.localeCompare(b.app) || a.env.localeCompare(b.env) || a.name.localeCompare(b.name));
}
