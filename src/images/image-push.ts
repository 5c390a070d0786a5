import type { EngineImages } from '../core/ports.ts';

/** `host/repo:tag` → `{ repo: 'host/repo', tag }`. */
export function splitRef(ref: string): { repo: string; tag: string } {
  const i = ref.lastIndexOf(':');
  if (i <= ref.lastIndexOf('/')) return { repo: ref, tag: 'latest' };
  return { repo: ref.slice(0, i), tag: ref.slice(i + 1) };
}

/** `127.0.0.1:5000/app/web@sha256:…` → `{ host, repo: 'app/web', digest }` (pure: lives in core, shared with retention). */
export { parseDigestRef } from '../core/image-retention.ts';

/**
 * Tags the local image `localRef` as `registryRef` (`127.0.0.1:PORT/APP/SERVICE:TAG`) and pushes it
 * through the engine; returns the manifest digest and the by-digest reference to deploy.
 */
export async function pushImage(engine: Pick<EngineImages, 'tag' | 'push'>, localRef: string, registryRef: string, onProgress?: (line: string) => void, signal?: AbortSignal): Promise<{ digest: string; ref: string }> {
  const { repo, tag } = splitRef(registryRef);
  await engine.tag(localRef, repo, tag);
  const { digest } = await engine.push(registryRef, onProgress, signal);
  return { digest, ref: `${repo}@${digest}` };
}
