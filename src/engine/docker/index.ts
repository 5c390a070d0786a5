/**
 * engine/docker: the Engine over one local Docker Engine API (dockerode on a unix socket). It creates
 * host-networked containers with berth's labels, json-file log rotation and no engine restart policy
 * (berth's reconcilers restart), builds images from local contexts (never pulls), streams demuxed logs
 * and turns Docker events into EngineEvents, reconnecting with backoff when the engine goes away.
 * Connection failures surface as EngineUnavailable naming the socket and how to start the engine.
 *
 * Builds go through dockerd's built-in BuildKit over the plain HTTP API (uncompressed tar context, no
 * session, host network for RUN steps), its progress decoded from the protobuf trace into
 * `--progress=plain` lines; memory limits are put on the cgroup all BuildKit RUN steps share
 * (build-memory.ts). The classic builder remains as a fallback.
 */
export { DockerEngine, type DockerEngineOptions } from './docker-engine.ts';
export { LogDemuxer, LineSplitter, splitTimestamp } from './log-demux.ts';
export { listContextFiles } from './build-context.ts';
export { BuildkitProgressPrinter, decodeTrace, decodeStatusResponse } from './buildkit-trace.ts';
export { HostEngines, SwarmDataPlane, withHostEngines, engineEndpoint, endpointUrl, ENGINE_TLS_PORT, type EngineTls, type EngineEndpoint, type HostEngineHealth } from './host-engines.ts';
export { swarmShipping, pickClusterRef, secretName, type SwarmShipping, type ShippedFile, type SwarmRegistryAuth } from './swarm-shipping.ts';
