import type { Server } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import type { Clock, Engine, EngineTlsPort, Logger } from '../core/ports.ts';
import type { ServiceKey, Store } from '../core/store.ts';
import { VERSION } from '../core/version.ts';
import { buildApi } from '../api/index.ts';
import { knownApps } from '../api/known.ts';
import { registerPortalRoutes } from '../api/portal-routes.ts';
import { registerRegistryRoutes } from '../api/registry-routes.ts';
import { registerTemplateRoutes } from '../api/template-routes.ts';
import { registerMetricsRoutes } from '../api/metrics-routes.ts';
import { hostEngineFamilies, renderMetrics, serviceStates } from '../metrics/index.ts';
import { registerAlertRoutes } from '../api/alert-routes.ts';
import { registerConfigRoutes } from '../api/config-routes.ts';
import { registerGitRoutes } from '../api/git-routes.ts';
import { registerPromoteRoutes } from '../api/promote-routes.ts';
import { registerImageRoutes } from '../api/image-routes.ts';
import { registerRegistryLoginRoutes } from '../api/registry-login-routes.ts';
import { registerVolumeRoutes } from '../api/volume-routes.ts';
import { registerHostRoutes } from '../api/host-routes.ts';
import { registerEdgeRoutes } from '../api/edge-routes.ts';
import type { EdgeFeed } from '../ingress/index.ts';
import { registerPoolRoutes } from '../api/pool-routes.ts';
import { registerFailoverRoutes } from '../api/failover-routes.ts';
import { registerRemoveRoutes } from '../api/remove-routes.ts';
import { registerCertRoutes } from '../api/cert-routes.ts';
import { registerWebhookRoutes } from '../api/webhook-routes.ts';
import { Authenticator, PortalLogins } from '../auth/index.ts';
import type { SqliteAuditStore, SqliteAuthStore } from '../store/index.ts';
import { startConfigRollout, type ConfigStore, type RegistryLogins, type SecretBox } from '../config/index.ts';
import { wireSso } from './sso-wiring.ts';
import { rollbacks, volumeName, type DeploymentService } from '../deploy/index.ts';
import type { Registry } from '../registry/index.ts';
import type { TemplateRenderer } from '../templates/index.ts';
import type { CertManager } from '../tls/index.ts';
import type { DockerEngine } from '../engine/docker/index.ts';
import { serveGitHttp, webhooksPort } from '../build/index.ts';
import { shortId } from '../lib/ids.ts';
import type { ApiTls } from './api-tls.ts';
import type { BuildParts } from './build-wiring.ts';
import type { Observability } from './observability-wiring.ts';
import type { PurgeParts } from './purge-wiring.ts';
import type { ServerConfig } from './config.ts';

// The API: every route module registered with the narrow parts it needs, then listening (HTTPS when
// a certificate is configured, BERTH_API_TLS_CERT/KEY, re-read when the files change: server/api-tls.ts).

export interface RunningApi {
  api: FastifyInstance;
  /** How a CLI on this machine reaches it. */
  url: string;
  stop(): Promise<void>;
}

export async function startApi(cfg: ServerConfig, d: {
  store: Store; engine: Engine; clock: Clock; logger: Logger;
  /** TLS for the API, loaded (and checked) by the caller before anything else of the API. */
  apiTls: ApiTls | undefined;
  config: ConfigStore; authenticator: Authenticator; authStore: SqliteAuthStore; audit: SqliteAuditStore; registryLogins: RegistryLogins;
  /** The secrets' key: single sign-on providers' secrets are sealed with it. */
  secretBox: SecretBox;
  docker: DockerEngine; deployments: DeploymentService; registry: Registry; templates: TemplateRenderer; certs: CertManager;
  builds: BuildParts; obs: Observability; purge: PurgeParts;
  enqueueService(app: string, env: string, service: string): void;
  wakeDeployment(id: string): void;
  wakePurge(app: string): void;
  /** How backend changes reach nginx (`GET /v1/ping`, shown by `berth status`). */
  ingressBackendUpdates(): { mode: 'lua' | 'reload'; reason?: string };
  /** The edge route table and the edge agents' polls. */
  edge: EdgeFeed;
  /** Issues new hosts' engine certificates (`berth host add --address`). */
  engineTls: EngineTlsPort;
  /** Berth's registry on the cluster network and its CA (many hosts), for `berth host add`. */
  registryTrust?: () => { host: string; caPem: string } | undefined;
  /** `berth failover`: re-pins a stateful service (the service reconciler's pins). */
  pinTo(k: ServiceKey, host: string): void;
  /** The host a stateful service is pinned to (status shows it). */
  pinnedHost(k: ServiceKey): string | undefined;
}): Promise<RunningApi> {
  const { store, clock, logger, config, builds: b, obs } = d;
  const newId = () => shortId(10);
  const known = knownApps({ store, config, listings: [() => b.buildLog.list(), () => b.repos.apps()] });
  const { apiTls } = d;
  const api = buildApi({
    ...(apiTls ? { https: apiTls.options() } : {}),
    store, clock, logger: logger.child({ component: 'api' }), newId, version: VERSION,
    deployments: d.deployments, rollback: rollbacks(store, clock), enqueueService: d.enqueueService,
    logs: { search: (q) => obs.logStore.search(q), tail: (f, onLine) => obs.logs.tail(f, onLine) }, ingressPort: cfg.ingressPort, known,
    ingressBackendUpdates: d.ingressBackendUpdates,
    hostMemoryBytes: cfg.hostMemoryBytes, exec: d.docker, pinnedHost: d.pinnedHost, auth: d.authenticator, authStore: d.authStore, audit: d.audit, buildApp: (id) => b.builds.get(id)?.app,
  });
  // Single sign-on (OpenID Connect, LDAP): providers in auth.db, their secrets sealed like secrets.
  wireSso(api, {
    store: d.authStore, secretBox: d.secretBox, auth: d.authenticator, audit: d.audit, clock, logger: logger.child({ component: 'sso' }), newId,
    ...(cfg.publicUrl ? { publicUrl: cfg.publicUrl } : {}),
  });
  registerPortalRoutes(api, { logins: new PortalLogins(clock), auth: d.authenticator, clock, webDir: cfg.webDir, logger: logger.child({ component: 'portal' }) });
  registerRegistryRoutes(api, { store, registry: d.registry, clock, newId });
  registerTemplateRoutes(api, { store, clock, changed: () => d.templates.schedule() });
  registerMetricsRoutes(api, {
    store, metrics: obs.metrics, clock, known, latestSamples: () => obs.sampler.latest(),
    prometheus: () => renderMetrics({
      samples: obs.sampler.latest(), services: serviceStates(store), http: obs.accessLog.counters,
      // Cluster mode: whether each host's engine answered (its instances' logs and stats come from there).
      extra: () => [...hostEngineFamilies(d.docker.hostEngineHealth()), ...obs.process.families()],
    }),
  });
  registerAlertRoutes(api, { store, clock, changed: () => void obs.alerts.evaluate() });
  registerConfigRoutes(api, {
    config, clock, known,
    onConfigChanged: (app, env, change) => {
      d.templates.schedule();
      return startConfigRollout({ store, clock, newId, enqueueDeployment: (id) => d.wakeDeployment(id) }, app, env, change);
    },
  });
  registerGitRoutes(api, {
    repos: b.repos, builds: b.builds, logger, known,
    serveGit: (x) => serveGitHttp({ ...x, projectRoot: b.repos.root, path: b.repos.env.PATH }),
  });
  registerPromoteRoutes(api, { store, deployments: d.deployments, known, configValues: b.configValues });
  registerImageRoutes(api, { images: b.imageJanitor, known });
  registerRegistryLoginRoutes(api, { logins: d.registryLogins });
  // `berth volumes`: sizes from the engine (Docker's disk usage), users from the store.
  registerVolumeRoutes(api, { store, known, volumeName, usage: d.engine });
  // `berth hosts`, `berth host …`, `berth cluster init`: the engine's hosts role (and the cluster CA for `host add --address`).
  registerHostRoutes(api, { hosts: d.engine, engineTls: d.engineTls, ...(d.registryTrust ? { registryTrust: d.registryTrust } : {}) });
  // Edge agents' long polls (their host's token: an HMAC of the key, never stored) and `berth host add --pool edge`.
  registerEdgeRoutes(api, {
    feed: d.edge, secretOf: (host) => d.secretBox.mac(`edge host ${host}`),
    certificates: (refs) => d.certs.edgeCerts(refs),
    controlUrl: () => cfg.publicUrl ?? `${apiTls ? 'https' : 'http'}://${cfg.edgeAddress ?? (cfg.listenHost === '0.0.0.0' ? '127.0.0.1' : cfg.listenHost)}:${cfg.listenPort}`,
  });
  // `berth pools`, `berth pool quota|grant|revoke`: pools as objects (quotas and grants in auth.db).
  registerPoolRoutes(api, { store: d.authStore, desired: store, hosts: d.engine, clock });
  registerFailoverRoutes(api, { store, clock, known, enqueueService: d.enqueueService, failover: { hosts: () => d.engine.hosts(), pinTo: d.pinTo } });
  registerRemoveRoutes(api, {
    store, clock, known, enqueueService: d.enqueueService, enqueuePurge: (app) => d.wakePurge(app), remains: d.purge.remains,
    unfinishedBuilds: (app) => d.purge.unfinishedBuilds(app).map((x) => ({ id: x.id, status: x.status, ...(x.stage ? { stage: x.stage } : {}) })),
  });
  registerCertRoutes(api, { certs: d.certs });
  const scheme = apiTls ? 'https' : 'http';
  registerWebhookRoutes(api, { repos: b.repos, builds: b.builds, webhooks: webhooksPort(b.repos.root), now: () => clock.now(), serverUrl: () => `${scheme}://${cfg.listenHost === '0.0.0.0' ? '127.0.0.1' : cfg.listenHost}:${cfg.listenPort}` });
  await api.listen({ host: cfg.listenHost, port: cfg.listenPort });
  apiTls?.watch(api.server as unknown as Server);
  const host = cfg.listenHost.includes(':') ? `[${cfg.listenHost}]` : cfg.listenHost;
  return {
    api, url: `${scheme}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${cfg.listenPort}`,
    async stop() {
      apiTls?.close();
      await api.close();
    },
  };
}
