/**
 * engine/docker: the Engine over one local Docker Engine API (dockerode on a unix socket). It creates
 * host-networked containers with berth's labels, json-file log rotation and no engine restart policy
 * (berth's reconcilers restart), builds images from local contexts (never pulls), streams demuxed logs
 * and turns Docker events into EngineEvents, reconnecting with backoff when the engine goes away.
 * Connection failures surface as EngineUnavailable naming the socket and how to start the engine.
 */
export { DockerEngine, type DockerEngineOptions } from './docker-engine.ts';
export { LogDemuxer, LineSplitter, splitTimestamp } from './log-demux.ts';
export { listContextFiles } from './build-context.ts';
