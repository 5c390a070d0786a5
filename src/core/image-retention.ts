/**
 * Which images Berth's registry keeps: a pure decision over plain data (registry inventory, releases,
 * services, instances), so the rule can be tested with tables and shown to users exactly as it is
 * applied.
 *
 * The rule, per repository (`APP/SERVICE`), with `keep` = BERTH_REGISTRY_KEEP (default 5):
 *  (a) `current`   — the current release of a service in any environment (also blue-green's routed one);
 *  (b) `running`   — run by any instance, whatever its state (blue-green's idle previous set included);
 *  (c) `rollback`  — one of the last `keep` releases of each (app, env, service) still deployed:
 *                    what `berth rollback` may go back to;
 *  (d) `in-flight` — named by a build or deployment that has not finished (pushed, not released yet);
 *  (e) `recent`    — among the `keep` newest manifests (by push time) not kept for (a)–(d), of a
 *                    service still deployed in some environment: e.g. built for `pre` and not
 *                    promoted yet. A removed service or app (`berth rm`) has no `recent` images: once
 *                    no instance runs them, all its images may go.
 * Everything else is deleted. A release counts by the digest of its image reference
 * (`HOST/APP/SERVICE@sha256:…`), so a promoted digest is one manifest, kept once.
 */
import { InvalidInput } from './errors.ts';

/** `127.0.0.1:5000/app/web@sha256:…` → `{ host, repo: 'app/web', digest }`, or undefined for other references. */
export function parseDigestRef(ref: string): { host: string; repo: string; digest: string } | undefined {
  const m = /^([^/]+)\/(.+)@(sha256:[0-9a-f]{64})$/.exec(ref);
  return m ? { host: m[1]!, repo: m[2]!, digest: m[3]! } : undefined;
}

/** One manifest in Berth's registry. */
export interface StoredManifest {
  /** `APP/SERVICE` */
  repo: string;
  digest: string;
  /** Tags pointing at it (empty: untagged, e.g. its tag moved to a rebuild of the same commit). */
  tags: string[];
  /**
   * When the image was built (image config `created`), ms since epoch; 0 when unknown. A build that
   * hit the layer cache may carry an older time than an earlier build: "newest" goes by pushedAt.
   */
  createdAt: number;
  /** When the registry stored the manifest (last push of it), ms; absent or 0 when unknown (then createdAt counts). */
  pushedAt?: number;
  /**
   * The image's unpacked size: the same measure as the engine's (`docker images`, `docker image
   * inspect .Size`) and the image checks' size report. Absent when unknown (e.g. a layer format the
   * registry cannot read). Layers shared with other images count in each.
   */
  sizeBytes?: number;
  /** What the manifest's blobs take in the registry (compressed config + layers, as pushed). */
  compressedBytes?: number;
}

export interface RetentionRelease {
  id: string;
  app: string;
  env: string;
  service: string;
  seq: number;
  image: string;
  imageId: string;
}

export interface RetentionService {
  app: string;
  env: string;
  service: string;
  releaseId: string;
  routedReleaseId?: string;
}

export type KeepReason = 'current' | 'running' | 'rollback' | 'in-flight' | 'recent';

/** A release whose image is this manifest. */
export interface ManifestUse {
  releaseId: string;
  env: string;
  service: string;
  seq: number;
  current: boolean;
  running: boolean;
}

export interface ManifestDecision extends StoredManifest {
  keep: boolean;
  /** Why it is kept, strongest first; empty when it goes. */
  reasons: KeepReason[];
  /** Every release (any environment) whose image this manifest is, newest first. */
  usedBy: ManifestUse[];
}

export interface RetentionInput {
  /** `127.0.0.1:PORT`: only references to this registry count. */
  registryHost: string;
  /** ≥ 1 */
  keep: number;
  manifests: StoredManifest[];
  releases: RetentionRelease[];
  services: RetentionService[];
  /** Release ids that instances run (any state: a stopping or exited container still holds its image). */
  runningReleaseIds: Iterable<string>;
  /** Image references of builds and deployments that have not finished. */
  inFlightImages?: Iterable<string>;
}

export interface RetentionPlan {
  /** Per repository, newest first. */
  decisions: ManifestDecision[];
  /**
   * Image ids of the releases kept for (a)–(c). Local engine images with these ids must stay even if
   * some manifest of theirs goes: containers are created from release image ids.
   */
  protectedImageIds: Set<string>;
}

const REASON_ORDER: KeepReason[] = ['current', 'running', 'rollback', 'in-flight', 'recent'];

/** Rejects anything but a whole number ≥ 1: 0 would delete what a build just pushed before it is deployed. */
export function checkKeep(keep: number, what = 'keep'): number {
  if (!Number.isInteger(keep) || keep < 1) throw new InvalidInput(`${what} must be a whole number of at least 1 (got ${keep})`);
  return keep;
}

export function planRetention(input: RetentionInput): RetentionPlan {
  const keep = checkKeep(input.keep);
  const key = (repo: string, digest: string) => `${repo}@${digest}`;
  const reasons = new Map<string, Set<KeepReason>>();
  const mark = (image: string | undefined, why: KeepReason) => {
    const p = image ? parseDigestRef(image) : undefined;
    if (!p || p.host !== input.registryHost) return;
    const k = key(p.repo, p.digest);
    if (!reasons.has(k)) reasons.set(k, new Set());
    reasons.get(k)!.add(why);
  };
  const releases = new Map(input.releases.map((r) => [r.id, r]));
  const running = new Set(input.runningReleaseIds);
  const currentIds = new Set<string>();
  const protectedImageIds = new Set<string>();
  const protect = (r: RetentionRelease | undefined, why: KeepReason) => {
    if (!r) return;
    mark(r.image, why);
    if (r.imageId) protectedImageIds.add(r.imageId);
  };

  for (const s of input.services) {
    for (const id of [s.releaseId, s.routedReleaseId]) {
      if (!id) continue;
      currentIds.add(id);
      protect(releases.get(id), 'current');
    }
  }
  for (const id of running) protect(releases.get(id), 'running');
  // Rollback material only exists for services still deployed: `berth rm` leaves no rollback target.
  const deployed = new Set(input.services.map((s) => `${s.app}\0${s.env}\0${s.service}`));
  const history = new Map<string, RetentionRelease[]>();
  for (const r of input.releases) {
    const k = `${r.app}\0${r.env}\0${r.service}`;
    if (!deployed.has(k)) continue;
    if (!history.has(k)) history.set(k, []);
    history.get(k)!.push(r);
  }
  for (const list of history.values()) {
    list.sort((a, b) => b.seq - a.seq);
    for (const r of list.slice(0, keep)) protect(r, 'rollback');
  }
  for (const image of input.inFlightImages ?? []) mark(image, 'in-flight');

  const usedBy = new Map<string, ManifestUse[]>();
  for (const r of input.releases) {
    const p = parseDigestRef(r.image);
    if (!p || p.host !== input.registryHost) continue;
    const k = key(p.repo, p.digest);
    if (!usedBy.has(k)) usedBy.set(k, []);
    usedBy.get(k)!.push({ releaseId: r.id, env: r.env, service: r.service, seq: r.seq, current: currentIds.has(r.id), running: running.has(r.id) });
  }

  const byRepo = new Map<string, StoredManifest[]>();
  const seen = new Set<string>();
  for (const m of input.manifests) {
    // The same digest listed twice (by tag and from storage) is one manifest.
    if (seen.has(key(m.repo, m.digest))) continue;
    seen.add(key(m.repo, m.digest));
    if (!byRepo.has(m.repo)) byRepo.set(m.repo, []);
    byRepo.get(m.repo)!.push(m);
  }
  // Repositories (`APP/SERVICE`) of services deployed in some environment: only those keep spares.
  const deployedRepos = new Set(input.services.map((s) => `${s.app}/${s.service}`));
  const decisions: ManifestDecision[] = [];
  for (const repo of [...byRepo.keys()].sort()) {
    const age = (m: StoredManifest) => m.pushedAt || m.createdAt;
    const list = byRepo.get(repo)!.sort((a, b) => age(b) - age(a) || (a.digest < b.digest ? -1 : 1));
    let recent = 0;
    for (const m of list) {
      const k = key(m.repo, m.digest);
      const why = new Set(reasons.get(k) ?? []);
      if (why.size === 0 && recent < keep && deployedRepos.has(repo)) {
        why.add('recent');
        recent++;
      }
      const uses = (usedBy.get(k) ?? []).sort((a, b) => (a.env < b.env ? -1 : a.env > b.env ? 1 : b.seq - a.seq));
      decisions.push({ ...m, tags: [...m.tags].sort(), keep: why.size > 0, reasons: REASON_ORDER.filter((r) => why.has(r)), usedBy: uses });
    }
  }
  return { decisions, protectedImageIds };
}

/** One manifest as the API lists it. */
export interface ImageView extends ManifestDecision {
  app: string;
  service: string;
}

/** `GET /v1/images` */
export interface ImageListView {
  keep: number;
  images: ImageView[];
}

/** `POST /v1/images/gc`: what one collection did (or, with dryRun, would do). */
export interface GcReportView {
  dryRun: boolean;
  keep: number;
  deleted: ImageView[];
  kept: ImageView[];
  /** Local engine references removed (`berth/APP/SERVICE:SHA12`, `HOST/APP/SERVICE:SHA12`, by digest). */
  localRemoved: string[];
  /** Whether `docker-registry garbage-collect` ran, and the registry storage it freed. */
  blobs: { collected: boolean; reclaimedBytes: number };
  /** Problems that did not stop the collection (e.g. one manifest that could not be deleted). */
  errors: string[];
}

export function imageView(d: ManifestDecision): ImageView {
  const i = d.repo.indexOf('/');
  return { ...d, app: i < 0 ? d.repo : d.repo.slice(0, i), service: i < 0 ? '' : d.repo.slice(i + 1) };
}
