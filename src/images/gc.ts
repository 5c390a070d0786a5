import type { Logger } from '../core/ports.ts';
import { parseDigestRef } from './image-push.ts';
import type { LocalRegistry } from './registry-process.ts';

export interface GcResult {
  deleted: { repo: string; digest: string }[];
  kept: { repo: string; digest: string; why: 'referenced' | 'recent' }[];
  /** Output of `docker-registry garbage-collect` (empty when nothing was deleted). */
  output: string;
}

/** Digests (per repo) that the given image references (release `image` fields) point at in this registry. */
export function referencedDigests(registryHost: string, images: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const img of images) {
    const p = parseDigestRef(img);
    if (p && p.host === registryHost) out.add(`${p.repo}@${p.digest}`);
  }
  return out;
}

/**
 * Registry garbage collection. Per repository (`APP/SERVICE`): every manifest a release references
 * is kept; of the others, the `keep` most recent (image config `created`) are kept too (quick
 * promotion/rollback material) and the rest are deleted through the registry API
 * (`DELETE /v2/REPO/manifests/DIGEST`, their tags go with them). Then, only if something was deleted,
 * `docker-registry garbage-collect` frees the blobs — with the registry process STOPPED for that run
 * (distribution's requirement: no writes during GC), pushes waiting on the registry's lock, and the
 * registry started again right after.
 */
export async function collectGarbage(o: {
  registry: LocalRegistry;
  /** Image references of all releases Berth keeps (any status: rollback needs them). */
  releaseImages: Iterable<string>;
  /** Unreferenced manifests kept per repository. */
  keep: number;
  logger?: Logger;
  /** Only these repositories (default: the whole catalog). */
  repos?: string[];
}): Promise<GcResult> {
  const { registry } = o;
  const refs = referencedDigests(registry.host, o.releaseImages);
  const res: GcResult = { deleted: [], kept: [], output: '' };
  for (const repo of o.repos ?? (await registry.catalog())) {
    const digests = new Set<string>();
    for (const tag of await registry.tags(repo)) {
      const d = await registry.manifestDigest(repo, tag);
      if (d) digests.add(d);
    }
    const loose: { digest: string; created: number }[] = [];
    for (const digest of digests) {
      if (refs.has(`${repo}@${digest}`)) res.kept.push({ repo, digest, why: 'referenced' });
      else loose.push({ digest, created: await registry.createdAt(repo, digest) });
    }
    loose.sort((a, b) => b.created - a.created);
    for (const [i, l] of loose.entries()) {
      if (i < o.keep) {
        res.kept.push({ repo, digest: l.digest, why: 'recent' });
      } else if (await registry.deleteManifest(repo, l.digest)) {
        res.deleted.push({ repo, digest: l.digest });
        o.logger?.info({ repo, digest: l.digest }, 'registry manifest deleted');
      }
    }
  }
  if (res.deleted.length > 0) res.output = await registry.garbageCollect();
  return res;
}
