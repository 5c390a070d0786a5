import { Coalesced } from '../lib/coalesce.ts';
import { join } from 'node:path';
import type { Clock, Engine, HostState, Logger, NetworkInfo } from '../core/ports.ts';
import type { InstanceRecord, ServiceKey, Store } from '../core/store.ts';
import { DeploymentController, ServiceReconciler } from '../deploy/index.ts';
import { HealthMonitor, checkInstance } from '../registry/index.ts';
import type { ConfigStore, RegistryLogins } from '../config/index.ts';
import type { BuildController } from '../build/index.ts';
import { hostPortChecker } from '../lib/host-ports.ts';
import { shortId } from '../lib/ids.ts';
import type { HostPathGuard } from './host-paths.ts';
import type { ContainerFiles } from './secrets-wiring.ts';
import type { ServerConfig } from './config.ts';

// The reconcilers that make desired state real: the service reconciler (instances, networks,
// volumes, files), the deployment controller (releases from deployments) and the health monitor.

export interface Reconcilers {
  health: HealthMonitor;
  services: ServiceReconciler;
  deployments: DeploymentController;
}

export function wireReconcilers(cfg: ServerConfig, d: {
  store: Store; engine: Engine; clock: Clock; logger: Logger;
  /** The cluster id: the prefix of this server's networks. */
  cluster: string;
  /** App-network instances' container address and native port, kept by the service reconciler for the ingress. */
  directAddresses: Map<string, { address: string; port: number }>;
  files: ContainerFiles; config: ConfigStore; registryLogins: RegistryLogins; builds: BuildController; hostPaths: HostPathGuard;
  resolvConf: (app: string, env: string) => string | undefined;
  networkDns?: (env: string, network: NetworkInfo) => Promise<{ servers: string[]; search: string[] } | undefined>;
  applyRoutes(): void;
  /** Applies the routes and waits until nginx serves them. */
  routesChanged(): Promise<void>;
  /** Instances were created or removed: whatever follows them (besides health) looks again. */
  instancesChanged(): void;
  enqueueService(app: string, env: string, service: string): void;
  healthChanged(inst: InstanceRecord): void;
  /** A healthy instance turned unhealthy because it is unreachable from here (its host died, its link is cut). */
  unreachable?(inst: InstanceRecord): void;
  releaseFinished(k: ServiceKey): void;
  /** A host's last known state (HostMonitor): lost and draining hosts' instances are moved. */
  hostState?(host: string): HostState | undefined;
}): Reconcilers {
  const { store, engine, clock, logger, files } = d;
  const health = new HealthMonitor(store, clock, logger.child({ component: 'health' }), d.healthChanged, d.unreachable);
  // Each reads every instance: the rounds of one turn of the event loop share one pass.
  const instancesChanged = new Coalesced(() => {
    health.refresh();
    d.instancesChanged();
  });
  const services = new ServiceReconciler({
    store, engine, clock, logger: logger.child({ component: 'reconciler' }), newId: () => shortId(10), hostAddress: '127.0.0.1', networkScope: d.cluster,
    directAddresses: d.directAddresses, portRange: cfg.portRange, isPortFree: hostPortChecker(), routesChanged: d.routesChanged, resolvConf: d.resolvConf, ...(d.networkDns ? { networkDns: d.networkDns } : {}),
    hostPaths: d.hostPaths,
    instancesChanged: () => instancesChanged.schedule((err) => logger.error({ err: String(err) }, 'could not follow the instance set')),
    configEnv: files.containerConfig,
    fileMounts: files.writeReleaseFiles,
    configDirOf: (app, env) => join(files.configRoot, app, env),
    ...(files.configGid !== undefined ? { configGid: files.configGid } : {}),
    configFiles: files.configFiles,
    probe: (inst, h) => (h.type === 'http' || h.type === 'tcp' ? checkInstance(inst, h) : Promise.resolve({ ok: false, text: `no ${h.type} probe` })),
    releaseFinished: d.releaseFinished,
    pendingBoundMs: cfg.pendingBoundMs,
    hosts: () => engine.hosts(),
    ...(d.hostState ? { hostState: d.hostState } : {}),
  });
  const deployments = new DeploymentController({
    store, engine, clock, logger: logger.child({ component: 'deployments' }), newId: () => shortId(10), enqueueService: d.enqueueService, applyRoutes: d.applyRoutes,
    configVersion: (app, env) => d.config.version(app, env), builds: d.builds, pullTimeoutMs: cfg.pullTimeoutMs,
    loggedIn: (host) => d.registryLogins.has(host),
  });
  return { health, services, deployments };
}
