/**
 * images: Berth's own image registry (Debian's `docker-registry`, a managed child process on loopback,
 * adopted across restarts like nginx), pushes by digest, and garbage collection — the retention rule
 * itself is pure, in core/image-retention.ts; the ImageJanitor decides when it runs.
 */
export { LocalRegistry, stopLocalRegistry, MANIFEST_TYPES, type LocalRegistryOptions } from './registry-process.ts';
export { pushImage, splitRef, parseDigestRef } from './image-push.ts';
export { collectGarbage, removeLocalImage, reposOf, type CollectResult, type ManifestRegistry, type RetentionFacts } from './gc.ts';
export { ImageJanitor, type ImageJanitorOptions, type JanitorRegistry } from './image-janitor.ts';
export { ClusterRegistry, stopClusterRegistry, clusterRef, renderClusterRegistryConfig, type ClusterRegistryOptions } from './cluster-registry.ts';
