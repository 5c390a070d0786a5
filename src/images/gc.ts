import { planRetention, type ManifestDecision, type RetentionInput, type StoredManifest } from '../core/image-retention.ts';
import { LABEL, type Engine, type Logger } from '../core/ports.ts';

/** What garbage collection needs of the registry (LocalRegistry; a fake in unit tests). */
export interface ManifestRegistry {
  /** `127.0.0.1:PORT`: the registry part of image references. */
  readonly host: string;
  catalog(): Promise<string[]>;
  /** Every manifest of a repository, tagged or not. */
  inventory(repo: string): Promise<StoredManifest[]>;
  /** False when it was already gone. Only inside withDeletes. */
  deleteManifest(repo: string, digest: string): Promise<boolean>;
  /** Runs fn in a deletion window (the registry refuses deletes outside one; pushes wait during it). */
  withDeletes<T>(fn: () => Promise<T>): Promise<T>;
}

/** Everything but the registry's inventory that the retention rule looks at, read after the inventory. */
export type RetentionFacts = Pick<RetentionInput, 'releases' | 'services' | 'runningReleaseIds' | 'inFlightImages'>;

export interface CollectResult {
  /** Every manifest looked at, with its decision. */
  decisions: ManifestDecision[];
  deleted: ManifestDecision[];
  kept: ManifestDecision[];
  /** Local engine references removed along with deleted manifests. */
  localRemoved: string[];
  /** Failures that did not stop the run (one manifest or one local image). */
  errors: string[];
}

/** The repositories of one app (`APP/…`), or all of them. */
export function reposOf(all: string[], app?: string): string[] {
  return app === undefined ? all : all.filter((r) => r.startsWith(`${app}/`));
}

/**
 * One pass of registry garbage collection over manifests (core/image-retention.ts has the rule).
 * It plans from the registry's inventory, read FIRST, and the store's facts read after it (a manifest
 * pushed meanwhile is not in the inventory, a release created meanwhile is in the facts). When the
 * plan deletes something, it opens the registry's deletion window (deletes are refused outside it;
 * pushes wait), plans again in there — so what is deleted is decided with no push under way — and
 * deletes through the API (`DELETE /v2/REPO/manifests/DIGEST`). The engine's local tags of each
 * deleted image go after the window. Blobs are only freed later by `docker-registry
 * garbage-collect` (the ImageJanitor decides when). With dryRun nothing changes.
 */
export async function collectGarbage(o: {
  registry: ManifestRegistry;
  /** Local images to remove along with deleted manifests; without it the engine is not touched. */
  engine?: Pick<Engine, 'imageId' | 'imageInfo' | 'removeImage'>;
  keep: number;
  /** The store's facts for these apps (those of the repositories looked at) and every deployed service. */
  facts: (apps: string[]) => RetentionFacts;
  /** Only this app's repositories. */
  app?: string;
  dryRun?: boolean;
  logger?: Logger;
}): Promise<CollectResult> {
  const { registry } = o;
  const planNow = async () => {
    const manifests: StoredManifest[] = [];
    for (const repo of reposOf(await registry.catalog(), o.app)) manifests.push(...(await registry.inventory(repo)));
    const apps = [...new Set(manifests.map((m) => m.repo.split('/')[0]!))];
    return planRetention({ registryHost: registry.host, keep: o.keep, manifests, ...o.facts(apps) });
  };
  let plan = await planNow();
  const res: CollectResult = { decisions: plan.decisions, deleted: [], kept: [], localRemoved: [], errors: [] };
  if (o.dryRun || plan.decisions.every((d) => d.keep)) {
    for (const d of plan.decisions) (d.keep ? res.kept : res.deleted).push(d);
    return res;
  }
  await registry.withDeletes(async () => {
    plan = await planNow();
    res.decisions = plan.decisions;
    for (const d of plan.decisions) {
      if (d.keep) {
        res.kept.push(d);
        continue;
      }
      try {
        await registry.deleteManifest(d.repo, d.digest);
        res.deleted.push(d);
        o.logger?.info({ repo: d.repo, digest: d.digest, tags: d.tags }, 'registry manifest deleted');
      } catch (err) {
        res.errors.push(`deleting ${d.repo}@${d.digest}: ${(err as Error).message}`);
      }
    }
  });
  if (!o.engine) return res;
  for (const d of res.deleted) {
    try {
      res.localRemoved.push(...(await removeLocalImage(o.engine, registry.host, d, plan.protectedImageIds)));
    } catch (err) {
      res.errors.push(`removing the local image of ${d.repo}@${d.digest}: ${(err as Error).message}`);
    }
  }
  return res;
}

/**
 * Removes the engine's references to a deleted manifest's image: `HOST/REPO:TAG` and
 * `berth/REPO:TAG` for its registry tags and its commit's SHA12 (its tag may have moved to a rebuild
 * of the same commit: only references that still name this very image go), then `HOST/REPO@DIGEST`.
 * The engine deletes the image with its last reference. Nothing is removed while a container
 * (of any installation) uses the image, or when its id is one a kept release runs.
 */
export async function removeLocalImage(
  engine: Pick<Engine, 'imageId' | 'imageInfo' | 'removeImage'>,
  host: string,
  m: Pick<StoredManifest, 'repo' | 'digest' | 'tags'>,
  protectedImageIds: ReadonlySet<string>,
): Promise<string[]> {
  const byDigest = `${host}/${m.repo}@${m.digest}`;
  const info = await engine.imageInfo(byDigest);
  if (!info || protectedImageIds.has(info.id)) return [];
  const tags = new Set(m.tags);
  const commit = info.labels[LABEL.commit];
  if (commit) tags.add(commit.slice(0, 12));
  const refs = [...tags].flatMap((t) => [`${host}/${m.repo}:${t}`, `berth/${m.repo}:${t}`]);
  const present: string[] = [];
  for (const ref of [...refs, byDigest]) if ((await engine.imageId(ref)) === info.id) present.push(ref);
  for (const ref of present) {
    // Already gone: the engine deleted the image with its last tag (the digest reference goes with it).
    if ((await engine.imageId(ref)) !== info.id) continue;
    // False: a container uses the image (then no other reference goes either) or it vanished.
    if (!(await engine.removeImage(ref)) && (await engine.imageId(ref)) === info.id) break;
  }
  const removed: string[] = [];
  for (const ref of present) if ((await engine.imageId(ref)) !== info.id) removed.push(ref);
  return removed;
}
