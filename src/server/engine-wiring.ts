import type { Engine, Logger } from '../core/ports.ts';
import { DockerEngine, HostEngines, SwarmDataPlane } from '../engine/docker/index.ts';
import type { ClusterCa } from '../tls/index.ts';
import type { RegistryLogins } from '../config/index.ts';
import { LocalRegistry } from '../images/registry-process.ts';
import { scopedEngine } from './host-setup.ts';
import { HostPathGuard } from './host-paths.ts';
import type { ServerConfig } from './config.ts';

// The container engine (Docker, scoped to this server's cluster label), Berth's own image registry
// whose credentials the engine pushes and pulls with, and the guard on host paths given to containers.

export interface EngineParts {
  /** The unscoped Docker engine: also serves `berth exec` for containers the API picks from the server's own records. */
  docker: DockerEngine;
  /** The engine every controller uses: what it creates and lists carries the cluster label. */
  engine: Engine;
  imageRegistry: LocalRegistry;
}

export function makeEngine(cfg: ServerConfig, scope: Record<string, string>, registryLogins: RegistryLogins, logger: Logger): EngineParts {
  // Berth's image registry requires credentials (generated at its start): the engine pushes and pulls with them.
  const imageRegistry = new LocalRegistry({ dataDir: cfg.dataDir, port: cfg.registryPort, logger });
  const docker = new DockerEngine({
    socketPath: cfg.dockerSocket, builder: cfg.builder, logger: logger.child({ component: 'engine' }), scope,
    // Berth's own registry's, or those of a `berth registry login`: decrypted per request, never written out.
    registryAuth: (host) => (host === imageRegistry.host ? imageRegistry.credentials : registryLogins.credentials(host)),
    networkPool: cfg.networkPool,
  });
  return { docker, engine: scopedEngine(docker, scope), imageRegistry };
}

/**
 * Starts Berth's image registry: like nginx it outlives the server (adopted on restart). Without it
 * (docker-registry not installed) builds deploy their local tags; returns whether it runs.
 */
export async function startImageRegistry(imageRegistry: LocalRegistry, logger: Logger): Promise<boolean> {
  return imageRegistry.start().then(() => true, (err: Error) => {
    logger.error({ err: err.message }, 'image registry not started: builds are deployed by local tag, promotion by image id');
    return false;
  });
}

/** Host paths that reach containers or builds: only under the admin's roots, never Berth's own state or a handle on the container engine. */
export function hostPathGuard(cfg: ServerConfig): HostPathGuard {
  return new HostPathGuard({
    allowedRoots: cfg.allowedBindRoots,
    forbidden: [
      { path: cfg.dataDir, what: `Berth's data directory (${cfg.dataDir}: its database, admin token and secret key)` },
      { path: cfg.runDir, what: `Berth's run directory (${cfg.runDir}: every app's decrypted configuration)` },
      ...[...new Set([cfg.dockerSocket, '/var/run/docker.sock'])].map((p) => ({ path: p, what: `the Docker Engine's socket (${p}), which controls every container on this host` })),
      { path: '/run/containerd', what: "containerd's directory (/run/containerd), whose socket controls every container on this host" },
    ],
  });
}

/** How often every host's engine is pinged in cluster mode (the `berth_host_engine_up` gauge also covers hosts without instances). */
const HOST_ENGINES_CHECK_MS = 15_000;

/**
 * Cluster mode: logs, stats, signals and exec of instances on other hosts go to those hosts' engines
 * over TCP + mutual TLS with Berth's client certificate from the cluster CA (opened on first use, so
 * a one-host server makes no CA until it needs one). Returns stop() of the periodic reachability check.
 */
export function wireHostEngines(docker: DockerEngine, clusterCa: () => Promise<ClusterCa>, logger: Logger): { stop(): void } {
  docker.useDataPlane(async (manager, name) => {
    const m = (await clusterCa()).clientMaterial();
    return new SwarmDataPlane(manager, name, new HostEngines({ tls: { ca: m.caPem, cert: m.certPem, key: m.keyPem }, logger }));
  });
  const timer = setInterval(() => {
    docker.checkHostEngines().catch((err: unknown) => logger.warn({ err: String(err) }, 'host engines not checked'));
  }, HOST_ENGINES_CHECK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
