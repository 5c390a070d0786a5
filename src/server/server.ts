import { chmod, mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LABEL, systemClock, type Engine, type Ingress, type Logger } from '../core/ports.ts';
import type { Store } from '../core/store.ts';
import { SqliteAuditStore, SqliteAuthStore, SqliteStore } from '../store/index.ts';
import { DockerEngine } from '../engine/docker/index.ts';
import { NginxIngress } from '../ingress/index.ts';
import { ControllerManager, type Controller } from '../reconcile/index.ts';
import type { InstanceRecord, ReleaseRecord, ServiceKey } from '../core/store.ts';
import { DeploymentController, DeploymentService, Resync, ServiceReconciler, deploymentKey, parseServiceKey, serviceKey, volumeName, watchEngineEvents } from '../deploy/index.ts';
import { AppPurger, appRemains, parsePurgeKey, purgeKey } from '../purge/index.ts';
import { registerRemoveRoutes } from '../api/remove-routes.ts';
import { purgeSteps } from './purge-steps.ts';
import { clusterId, makePrivate, scopedEngine } from './host-setup.ts';
import { HealthMonitor, Registry, buildRouteTable, checkInstance } from '../registry/index.ts';
import { registerRegistryRoutes } from '../api/registry-routes.ts';
import { startDns } from './dns-wiring.ts';
import { TemplateRenderer } from '../templates/index.ts';
import { registerTemplateRoutes } from '../api/template-routes.ts';
import { registerConfigRoutes } from '../api/config-routes.ts';
import { ConfigStore, FileMountRoot, RegistryLogins, SecretBox, SpecFiles, externalKeys, loadSecretKey, mountsOf, startConfigRollout, sweepConfigFiles, writeConfigFiles } from '../config/index.ts';
import { buildApi } from '../api/index.ts';
import { knownApps } from '../api/known.ts';
import { Authenticator, ensureAdminToken } from '../auth/index.ts';
import { LogCollector, LogStore } from '../logs/index.ts';
import { AccessLogReader, MetricsStore, StatsSampler } from '../metrics/index.ts';
import { ACCESS_LOG_FILE } from '../ingress/render.ts';
import { registerMetricsRoutes } from '../api/metrics-routes.ts';
import { AlertEvaluator, WebhookNotifier } from '../alerts/index.ts';
import { registerAlertRoutes } from '../api/alert-routes.ts';
import { registerGitRoutes } from '../api/git-routes.ts';
import { parseAppSpec } from '../api/spec-schema.ts';
import { BuildController, BuildLog, GitRepos, PushPipeline, WebhookDeliveries, isFinished, type BuildRecord } from '../build/index.ts';
import { registerPromoteRoutes } from '../api/promote-routes.ts';
import { registerImageRoutes } from '../api/image-routes.ts';
import { registerRegistryLoginRoutes } from '../api/registry-login-routes.ts';
import { registerVolumeRoutes } from '../api/volume-routes.ts';
import { registerPortalRoutes } from '../api/portal-routes.ts';
import { PortalLogins } from '../auth/index.ts';
import { ImageJanitor } from '../images/image-janitor.ts';
import { LocalRegistry } from '../images/registry-process.ts';
import { registerWebhookRoutes } from '../api/webhook-routes.ts';
import { hostPortChecker } from '../lib/host-ports.ts';
import { shortId } from '../lib/ids.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { VERSION } from '../core/version.ts';
import type { ServerConfig } from './config.ts';
import { HostPathGuard } from './host-paths.ts';
import { AcmeIssuer, CertManager, CertStore, ChallengeDir } from '../tls/index.ts';
import { registerCertRoutes } from '../api/cert-routes.ts';
import { ApiTls } from './api-tls.ts';
import { readFile } from 'node:fs/promises';
import { allows } from '../core/auth.ts';


/** What `berth server` writes so that a CLI on the same machine finds it. */
export interface ServerInfo {
  url: string;
  pid: number;
  ingressPort: number;
  version: string;
}

export interface RunningServer {
  url: string;
  token: string;
  close(): Promise<void>;
}

const RESYNC_MS = 10_000;

/** The signals between the control plane's parts (ControllerManager events). */
type ServerEvents = {
  /** The health monitor saw an instance's health change. */
  'instance.health': [inst: InstanceRecord];
  /** A release of app/env/service finished rolling out (healthy, failed or superseded). */
  'release.finished': [k: ServiceKey];
  /** A build ended (succeeded, failed or cancelled). */
  'build.finished': [rec: BuildRecord];
};

/**
 * The composition root: picks the concrete store, engine and ingress, wires controllers and loops,
 * and starts the API. Closing stops the control plane only: containers and nginx keep serving.
 */
export async function startServer(cfg: ServerConfig, logger: Logger): Promise<RunningServer> {
  // Everything the server (and nginx, the registry, git it starts) creates is private to root: the
  // data directory holds databases with Compose environment values, logs, builds and repositories.
  // What containers must read (resolv.conf, configuration files) is opened up explicitly.
  process.umask(0o077);
  await makePrivate(cfg.dataDir);
  const clock = systemClock;
  const store: Store = new SqliteStore(join(cfg.dataDir, 'berth.db'), clock);
  const token = await ensureAdminToken(store, join(cfg.dataDir, 'admin.token'));
  const authStore = new SqliteAuthStore(join(cfg.dataDir, 'auth.db'));
  const authenticator = new Authenticator({ store: authStore, adminTokens: store, clock });
  const secretBox = SecretBox.fromLoaded(loadSecretKey({ dataDir: cfg.dataDir, fromEnv: cfg.secretKey }));
  const config = new ConfigStore(join(cfg.dataDir, 'config.db'), secretBox, clock);
  const audit = new SqliteAuditStore(join(cfg.dataDir, 'audit.db'));
  const pruneAudit = () => {
    if (cfg.auditRetentionMs <= 0) return;
    const n = audit.prune(clock.now() - cfg.auditRetentionMs);
    if (n) logger.info({ removed: n }, 'audit entries past their retention removed');
  };
  pruneAudit();
  const auditPruner = setInterval(pruneAudit, 6 * 3_600_000);
  auditPruner.unref();
  // Credentials of private image registries (`berth registry login`), sealed with the same key.
  const registryLogins = new RegistryLogins(join(cfg.dataDir, 'registry-logins.json'), secretBox, clock);
  const keyProblem = config.keyProblem();
  if (keyProblem) logger.warn(keyProblem);
  const cluster = await clusterId(cfg.dataDir);
  const scope = { [LABEL.cluster]: cluster };
  /** App-network instances' container address and native port: the ingress reaches them there (kept by the service reconciler). */
  const directAddresses = new Map<string, { address: string; port: number }>();
  // Decrypted configuration files for containers: only root may look in; each app/env's directory is
  // mounted into its containers, which read it through the config group (configGid).
  await mkdir(join(cfg.runDir, cluster), { recursive: true, mode: 0o700 });
  await chmod(join(cfg.runDir, cluster), 0o700);
  const configRoot = join(cfg.runDir, cluster, 'config');
  const configGid = process.getuid?.() === 0 ? cfg.configGid : process.getgid?.();
  // Compose secrets and configs: values sealed in config.db, files written on a tmpfs of Berth's own.
  const specFiles = new SpecFiles(config);
  const fileRoot = new FileMountRoot(join(cfg.runDir, cluster, 'secrets'));
  const fileRootProblem = await fileRoot.prepare();
  if (fileRootProblem) logger.warn(fileRootProblem);
  const writeReleaseFiles = (rel: ReleaseRecord) => fileRoot.write(rel.app, rel.env, rel.id,
    mountsOf(rel.spec).map((f) => ({ ...f, value: specFiles.valueOf(rel.app, rel.env, f.mount, rel.spec.configVersion ?? 0) })));
  /** Configuration keys the app/env mounts as external secrets or configs: not also environment variables. */
  const mountedKeys = (app: string, env: string) =>
    externalKeys(store.listServices({ app, env }).map((s) => store.getRelease(s.releaseId)?.spec).filter((x) => x !== undefined));
  const containerConfig = (app: string, env: string, version: number) => {
    const values = config.resolved(app, env, version).env;
    for (const k of mountedKeys(app, env)) delete values[k];
    return values;
  };
  /** Configuration files of environments with nothing left in them (no service, no instance) go; so do secret files of releases nothing runs. */
  const sweepConfig = () => {
    const live = new Set([...store.listServices(), ...store.listInstances()].map((x) => `${x.app}/${x.env}`));
    try {
      for (const gone of sweepConfigFiles(configRoot, live)) logger.info({ appEnv: gone }, 'configuration files removed: nothing runs there any more');
      const liveReleases = new Set([...store.listServices().map((x) => ({ ...x, r: x.releaseId })), ...store.listInstances().map((x) => ({ ...x, r: x.releaseId }))]
        .map((x) => `${x.app}/${x.env}/${x.r}`));
      fileRoot.sweep(liveReleases);
    } catch (err) {
      logger.warn({ err: String(err) }, 'could not remove configuration files of removed apps');
    }
  };
  // After a reboot the tmpfs is empty: the files of every release with instances are written again
  // before any container needs them (running containers keep the files they mounted).
  for (const relId of new Set(store.listInstances().map((i) => i.releaseId))) {
    const rel = store.getRelease(relId);
    if (!rel || mountsOf(rel.spec).length === 0) continue;
    try {
      writeReleaseFiles(rel);
    } catch (err) {
      logger.warn({ app: rel.app, env: rel.env, release: rel.id, err: (err as Error).message }, 'could not write the secret files of a release');
    }
  }
  // Host paths that reach containers or builds: only under the admin's roots, never Berth's own state
  // or a handle on the container engine.
  const hostPaths = new HostPathGuard({
    allowedRoots: cfg.allowedBindRoots,
    forbidden: [
      { path: cfg.dataDir, what: `Berth's data directory (${cfg.dataDir}: its database, admin token and secret key)` },
      { path: cfg.runDir, what: `Berth's run directory (${cfg.runDir}: every app's decrypted configuration)` },
      ...[...new Set([cfg.dockerSocket, '/var/run/docker.sock'])].map((p) => ({ path: p, what: `the Docker Engine's socket (${p}), which controls every container on this host` })),
      { path: '/run/containerd', what: "containerd's directory (/run/containerd), whose socket controls every container on this host" },
    ],
  });
  // Berth's image registry requires credentials (generated at its start): the engine pushes and pulls with them.
  const imageRegistry = new LocalRegistry({ dataDir: cfg.dataDir, port: cfg.registryPort, logger });
  // `docker` also serves `berth exec` (api's ExecPort) for containers the API picks from this server's own records.
  const docker = new DockerEngine({
    socketPath: cfg.dockerSocket, builder: cfg.builder, logger: logger.child({ component: 'engine' }),
    // Berth's own registry's, or those of a `berth registry login`: decrypted per request, never written out.
    registryAuth: (host) => (host === imageRegistry.host ? imageRegistry.credentials : registryLogins.credentials(host)),
    networkPool: cfg.networkPool,
  });
  const engine: Engine = scopedEngine(docker, scope);
  // Certificates (tls/): keys sealed in tls.db with the secrets' key; the files nginx reads are
  // root-only (0700 directory, 0600 files) under the run directory, a tmpfs on a normal system, so
  // no key lies in clear on disk. HTTP-01 answers are files nginx serves from its prefix.
  const acmeChallenges = new ChallengeDir(join(cfg.dataDir, 'nginx', 'acme'));
  const certStore = new CertStore(join(cfg.dataDir, 'tls.db'), secretBox);
  const routeChanges: { apply?: () => void } = {};
  const certs = new CertManager({
    store: certStore, fileDir: join(cfg.runDir, cluster, 'tls'), events: store, clock, logger,
    routes: () => buildRouteTable(store, directAddresses), changed: () => routeChanges.apply?.(), retryBaseMs: cfg.acmeRetryBaseMs,
    ...(cfg.acme ? {
      issuer: new AcmeIssuer({
        directoryUrl: cfg.acme.directoryUrl, ...(cfg.acme.email ? { email: cfg.acme.email } : {}),
        ...(cfg.acme.caFile ? { caPem: await readFile(cfg.acme.caFile, 'utf8') } : {}),
        accountKey: (create) => certStore.accountKey(cfg.acme!.directoryUrl, create), challenges: acmeChallenges, logger,
      }),
    } : {}),
  });
  // The key files nginx reads live on a tmpfs of their own (like secret files): in clear only in memory.
  const tlsTmpfsProblem = await new FileMountRoot(join(cfg.runDir, cluster, 'tls')).prepare();
  if (tlsTmpfsProblem) logger.warn(`${tlsTmpfsProblem}; certificate keys for nginx go to root-only (0600) files on disk instead`);
  await certs.start();
  const ingress: Ingress = new NginxIngress({
    prefix: join(cfg.dataDir, 'nginx'), listenPort: cfg.ingressPort, listenAddress: cfg.ingressAddress, adminPort: cfg.ingressAdminPort,
    ...(cfg.ingressHttpsPort !== undefined ? { httpsPort: cfg.ingressHttpsPort } : {}), acmeChallengeDir: acmeChallenges.dir,
    nginxBin: cfg.nginxBin, logger: logger.child({ component: 'ingress' }),
    // A route the ingress leaves out is that app's problem, reported to it; the others stay live.
    onRoutesRefused: (problems) => {
      for (const p of problems) {
        const o = p.owner ?? { app: '', env: '', service: '' };
        store.addEvent({ app: o.app, env: o.env, service: o.service, instance: '', kind: 'route.refused',
          message: `route ${p.host ?? '(any host)'}${p.path}${o.service ? ` of ${o.service}` : ''} is not served: ${p.message}` });
      }
    },
  });
  // Adopt the running nginx (or start one) with the table the store already knows: instances keep
  // their last known health, so a restart of Berth never empties the upstreams.
  await ingress.start();
  // Berth's image registry: like nginx it outlives the server (adopted on restart). Without it
  // (docker-registry not installed) builds deploy their local tags as before.
  const imageRegistryUp = await imageRegistry.start().then(() => true, (err: Error) => {
    logger.error({ err: err.message }, 'image registry not started: builds are deployed by local tag, promotion by image id');
    return false;
  });
  const registry = new Registry(store, clock, logger.child({ component: 'registry' }));
  registry.start();
  const dns = await startDns(cfg, registry, store, logger);
  const templates = new TemplateRenderer({
    store, clock, logger: logger.child({ component: 'templates' }),
    sources: {
      healthy: (service, env, app) => registry.healthy(env, service, app),
      appsOnly: (env, service) => registry.appsOnly(env, service),
      key: (app, env, key) => config.resolved(app, env).env[key],
    },
  });
  registry.onChange(() => templates.schedule());
  templates.schedule();
  // apply() is coalesced (a burst of health flips is one reload); flush() waits until nginx serves it.
  // The registry (DNS, watchers) follows the same changes.
  const applyRoutes = () => {
    registry.refresh();
    ingress.apply(certs.decorate(buildRouteTable(store, directAddresses)));
    // A new host may want a certificate (coalesced; cheap when nothing is due).
    certs.wake();
  };
  routeChanges.apply = applyRoutes;
  const routesChanged = async () => {
    applyRoutes();
    await ingress.flush();
  };
  await routesChanged();
  // nginx answers HTTP-01 challenges from here on.
  certs.run();

  // Set once builds, repositories and the registry exist; purge keys are queued from then on.
  const purging: { purger?: AppPurger } = {};
  // Made after the builds that call it.
  const late: { imageJanitor?: ImageJanitor | undefined } = {};
  // The controllers on one work queue, with typed keys; the signals between them are typed events,
  // connected below in one place (who wakes whom).
  const manager = new ControllerManager<ServerEvents>(logger.child({ component: 'queue' }), 8);
  const serviceController: Controller<ServiceKey> = { name: 'services', key: serviceKey, parse: parseServiceKey, reconcile: (k) => services.reconcile(k) };
  const deploymentController: Controller<string> = {
    name: 'deployments', key: deploymentKey, parse: (q) => (q.startsWith('deploy/') ? q.slice('deploy/'.length) : undefined), reconcile: (id) => deployments.reconcile(id),
  };
  const wakeService = manager.register(serviceController);
  const wakeDeployment = manager.register(deploymentController);
  const wakePurge = manager.register<string>({ name: 'purges', key: purgeKey, parse: parsePurgeKey, reconcile: async (app) => purging.purger?.reconcile(app) });
  const enqueueService = (app: string, env: string, service: string) => wakeService({ app, env, service });
  // A health flip: the routes follow, and the service's reconciler looks again.
  manager.on('instance.health', (inst) => {
    applyRoutes();
    enqueueService(inst.app, inst.env, inst.service);
  });
  // A build ended: the deployment waiting for its images looks again.
  manager.on('build.finished', (rec) => {
    if (rec.deploymentId) wakeDeployment(rec.deploymentId);
  });
  // A release finished: the deployments rolling out in that environment look again.
  manager.on('release.finished', (k) => {
    for (const dep of store.listDeployments({ status: ['rolling'] })) if (dep.app === k.app && dep.env === k.env) wakeDeployment(dep.id);
  });
  // Followers of a deployment (the push pipeline) wake on each write of its record, not on a timer.
  const unwatchDeployments = store.watch((c) => {
    if (c.kind === 'deployment') deploymentService.changed(c.id);
  });

  const health = new HealthMonitor(store, clock, logger.child({ component: 'health' }), (inst) => manager.emit('instance.health', inst));
  const services = new ServiceReconciler({
    store, engine, clock, logger: logger.child({ component: 'reconciler' }), newId: () => shortId(10), hostAddress: '127.0.0.1', networkScope: cluster, directAddresses,
    portRange: cfg.portRange, isPortFree: hostPortChecker(), routesChanged, resolvConf: dns.resolvConf, hostPaths,
    instancesChanged: () => {
      health.refresh();
      registry.refresh();
      syncLogs();
      sweepConfig();
    },
    releaseDeadlineMs: cfg.releaseDeadlineMs,
    configEnv: containerConfig,
    fileMounts: writeReleaseFiles,
    configDirOf: (app, env) => join(configRoot, app, env),
    ...(configGid !== undefined ? { configGid } : {}),
    configFiles: (app, env, version) => {
      const dir = join(configRoot, app, env);
      writeConfigFiles(dir, containerConfig(app, env, version), configGid !== undefined ? { gid: configGid } : {});
      return dir;
    },
    probe: (inst, h) => (h.type === 'http' || h.type === 'tcp' ? checkInstance(inst, h) : Promise.resolve({ ok: false, text: `no ${h.type} probe` })),
    releaseFinished: (k) => manager.emit('release.finished', k),
  });
  // The one deploy path: the API's deploy route, promotion and the push pipeline call it in-process.
  const deploymentService = new DeploymentService({
    store, specFiles, clock, newId: () => shortId(10), hostPaths, enqueue: (id) => wakeDeployment(id), parseSpec: parseAppSpec,
  });
  const buildLog = new BuildLog(join(cfg.dataDir, 'builds'));
  // Builds: the routes submit and follow; the controller runs the pipeline off any request.
  const repos = new GitRepos(cfg.dataDir, cfg.childEnv);
  // Non-secret configuration values are variables for pushed Compose files and promotions (secrets never are).
  const configValues = (app: string, env: string): Record<string, string> =>
    Object.fromEntries(config.list(app, env).filter((e) => e.kind === 'value' && e.value !== undefined).map((e) => [e.key, e.value!]));
  const pipeline = new PushPipeline({
    mayDeploy: (subject, app, env) => {
      const team = authStore.appTeam(app);
      if (!allows(authenticator.grantsOf(subject), 'app.deploy', { app, team, env })) return `the pusher may not deploy ${app} to ${env}: it needs the deployer role there (nothing was built)`;
      if (team !== undefined && authStore.requiresApproval(team, env)) {
        return `${env} of team ${team} requires a second person's approval: push to another environment's branch, then \`berth promote ${app} --to ${env}\` and have it approved (nothing was built)`;
      }
      return undefined;
    },
    repos, builds: buildLog, engine, clock, logger: logger.child({ component: 'build' }), deployments: deploymentService, configValues,
    buildConcurrency: cfg.buildConcurrency, buildMemoryBytes: cfg.buildMemoryBytes, ...(imageRegistryUp ? { registry: imageRegistry } : {}),
    // `berth deploy` builds: the deployment's spec, its host contexts checked again right before the build.
    deploymentSpec: (id) => store.getDeployment(id)?.spec, hostPaths,
  });
  const builds = new BuildController({
    builds: buildLog, repos, pipeline, clock, logger: logger.child({ component: 'builds' }), newId: () => shortId(10),
    remoteOf: async (a) => (await repos.source(a))?.remote,
    // A failed or cancelled build leaves no image behind on the engine: what it built and tagged
    // locally is removed (removeImage refuses images a container uses; pushed ones go with the registry's GC).
    afterFailure: (rec) => {
      for (const ref of Object.values(rec.images)) {
        if (ref.includes('@')) continue;
        void engine.removeImage(ref).then((gone) => {
          if (gone) logger.info({ build: rec.id, image: ref }, 'image of a failed build removed');
        }, (err: Error) => logger.warn({ build: rec.id, image: ref, err: err.message }, 'could not remove the image of a failed build'));
      }
    },
    // The deployment a build made images for looks again (a deploy build's, or a push's once deployed).
    finished: (rec) => manager.emit('build.finished', rec),
    // Registry retention for the app, off the build's path (the janitor never throws into it).
    afterSuccess: (rec) => {
      void late.imageJanitor?.afterBuild(rec.app);
      void engine.pruneBuildCache(cfg.buildCacheKeepBytes).then((freed) => {
        if (freed > 0) logger.info({ freedBytes: freed }, 'build cache trimmed');
      }, (err: Error) => logger.warn({ err: err.message }, 'build cache prune failed'));
    },
  });
  const deployments = new DeploymentController({
    store, engine, clock, logger: logger.child({ component: 'deployments' }), newId: () => shortId(10), enqueueService, applyRoutes,
    configVersion: (app, env) => config.version(app, env), builds, releaseDeadlineMs: cfg.releaseDeadlineMs, pullTimeoutMs: cfg.pullTimeoutMs,
    loggedIn: (host) => registryLogins.has(host),
  });

  const logStore = new LogStore(join(cfg.dataDir, 'logs.db'), { clock });
  const logs = new LogCollector({
    engine, store: logStore, clock, logger,
    listContainers: async () => store.listInstances().filter((i) => i.containerId).map((i) => ({
      containerId: i.containerId!, app: i.app, env: i.env, service: i.service, instance: i.id, running: i.state === 'running',
    })),
    retention: { maxAgeMs: cfg.logMaxAgeMs, maxBytes: cfg.logMaxBytes },
  });
  const metrics = new MetricsStore(join(cfg.dataDir, 'metrics.db'), { clock });
  let lastPrune = 0;
  const sampler = new StatsSampler({
    engine, store: metrics, clock, logger: logger.child({ component: 'metrics' }), intervalMs: cfg.metricsIntervalMs,
    listInstances: () => store.listInstances().filter((i) => i.state === 'running' && i.containerId)
      .map((i) => ({ app: i.app, env: i.env, service: i.service, id: i.id, containerId: i.containerId! })),
    afterRound: () => {
      metrics.rollup();
      if (clock.now() - lastPrune > 60_000) {
        lastPrune = clock.now();
        metrics.prune();
      }
    },
  });
  // The access log names routes by upstream (`app.env.service.index`, core/spec/routes.ts), which the reader splits itself.
  const accessLog = new AccessLogReader({
    path: join(cfg.dataDir, 'nginx', 'logs', ACCESS_LOG_FILE), store: metrics, clock, logger: logger.child({ component: 'access-log' }),
    intervalMs: Math.min(cfg.metricsIntervalMs, 2000),
  });
  sampler.start();
  accessLog.start();
  const notifier = new WebhookNotifier(logger.child({ component: 'alerts' }));
  const alerts = new AlertEvaluator({
    store, clock, logger: logger.child({ component: 'alerts' }), dataDir: cfg.dataDir, intervalMs: cfg.alertIntervalMs,
    notify: (url, n) => notifier.notify(url, n),
    http: (q) => metrics.httpTotals(q),
  });
  alerts.start();
  const syncLogs = () => void logs.sync().catch((err) => logger.warn({ err: String(err) }, 'log collection sync failed'));

  const resync = new Resync({
    store, engine, logger, wakeService, wakeDeployment, wakePurge, intervalMs: RESYNC_MS,
    periodic: () => {
      health.refresh();
      syncLogs();
      sweepConfig();
    },
  });
  // Container events wake their service; a regained engine resyncs everything.
  const unwatch = watchEngineEvents({
    engine, cluster, events: store, logger,
    serviceChanged: (k, action) => {
      wakeService(k);
      if (action === 'start') syncLogs();
    },
    reachable: () => void resync.all(),
  });

  health.refresh();
  await resync.all();
  syncLogs();
  sweepConfig();
  resync.start();

  const known = knownApps({ store, config, listings: [() => buildLog.list(), () => repos.apps()] });
  // TLS for the API when a certificate is configured (BERTH_API_TLS_CERT/KEY), re-read when the files change.
  const apiTls = cfg.apiTls ? await ApiTls.load(cfg.apiTls, logger.child({ component: 'api-tls' })) : undefined;
  const portalLogins = new PortalLogins(clock);
  const api = buildApi({
    ...(apiTls ? { https: apiTls.options() } : {}),
    store, clock, logger: logger.child({ component: 'api' }), newId: () => shortId(10), version: VERSION,
    deployments: deploymentService, enqueueService,
    logs: { search: (q) => logStore.search(q), tail: (f, onLine) => logs.tail(f, onLine) }, ingressPort: cfg.ingressPort, known,
    hostMemoryBytes: cfg.hostMemoryBytes, exec: docker, auth: authenticator, authStore, audit, buildApp: (id) => builds.get(id)?.app,
  });
  registerPortalRoutes(api, { logins: portalLogins, auth: authenticator, clock, webDir: cfg.webDir, logger: logger.child({ component: 'portal' }) });
  registerRegistryRoutes(api, { store, registry, clock, newId: () => shortId(10) });
  registerTemplateRoutes(api, { store, clock, changed: () => templates.schedule() });
  registerMetricsRoutes(api, { store, metrics, clock, known, latestSamples: () => sampler.latest(), httpCounters: () => accessLog.counters });
  registerAlertRoutes(api, { store, clock, changed: () => void alerts.evaluate() });
  registerConfigRoutes(api, {
    config, clock, known,
    onConfigChanged: (app, env, change) => {
      templates.schedule();
      return startConfigRollout({ store, clock, newId: () => shortId(10), enqueueDeployment: (id) => wakeDeployment(id) }, app, env, change);
    },
  });
  registerGitRoutes(api, { repos, builds, logger, known });
  registerPromoteRoutes(api, { store, deployments: deploymentService, known, configValues });
  // Registry garbage collection (images/image-janitor.ts): after each build, periodically, on demand.
  // Images of builds still running are pinned: pushed, but in no release yet.
  const imageJanitor = late.imageJanitor = imageRegistryUp ? new ImageJanitor({
    registry: imageRegistry, engine, store, clock, logger, keep: cfg.registryKeep, intervalMs: cfg.registryGcIntervalMs,
    statePath: join(imageRegistry.dir, 'gc-state.json'),
    // A deploy build's images are in no release until its deployment has made them: pinned till then too.
    inFlightImages: () => [...builds.list().filter((b) => !isFinished(b.status)).flatMap((b) => Object.values(b.images)),
      ...store.listDeployments({ status: ['pending', 'building'] }).flatMap((d) => Object.values((d.buildId && builds.get(d.buildId)?.images) || {}))],
  }) : undefined;
  registerImageRoutes(api, { images: imageJanitor, known });
  registerRegistryLoginRoutes(api, { logins: registryLogins });
  // `berth volumes`: sizes from the engine (Docker's disk usage), users from the store.
  registerVolumeRoutes(api, { store, known, volumeName, usage: engine });
  imageJanitor?.start();

  // `berth rm` says what it leaves; `berth rm --purge` removes it, step by step (purge/).
  const remains = (app: string) => appRemains({
    store, config, builds: buildLog, git: repos, logs: logStore, metrics, volumeName, ...(imageJanitor ? { images: imageJanitor } : {}),
  }, app);
  const unfinishedBuilds = (app: string) => builds.list(app).filter((b) => !isFinished(b.status));
  purging.purger = new AppPurger({
    store, engine, clock, logger: logger.child({ component: 'purge' }), enqueueService,
    steps: purgeSteps({ builds, buildLog, repos, config, logStore, metrics, engine, store, configRoot, fileRoot, dns, unfinishedBuilds, ...(imageJanitor ? { imageJanitor } : {}) }),
  });
  registerRemoveRoutes(api, {
    store, clock, known, enqueueService, enqueuePurge: (app) => wakePurge(app), remains,
    unfinishedBuilds: (app) => unfinishedBuilds(app).map((b) => ({ id: b.id, status: b.status, ...(b.stage ? { stage: b.stage } : {}) })),
  });
  for (const p of store.listPurges()) if (p.state === 'purging') wakePurge(p.app);
  registerCertRoutes(api, { certs });
  const scheme = apiTls ? 'https' : 'http';
  registerWebhookRoutes(api, { repos, builds, deliveries: new WebhookDeliveries(repos.root), now: () => clock.now(), serverUrl: () => `${scheme}://${cfg.listenHost === '0.0.0.0' ? '127.0.0.1' : cfg.listenHost}:${cfg.listenPort}` });
  await api.listen({ host: cfg.listenHost, port: cfg.listenPort });
  apiTls?.watch(api.server as unknown as import('node:tls').Server);
  const host = cfg.listenHost.includes(':') ? `[${cfg.listenHost}]` : cfg.listenHost;
  const url = `${scheme}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${cfg.listenPort}`;
  const info: ServerInfo = { url, pid: process.pid, ingressPort: cfg.ingressPort, version: VERSION };
  await writeFileAtomic(join(cfg.dataDir, 'server.json'), JSON.stringify(info, null, 2) + '\n');
  await builds.recover();
  logger.info({ url, ingressPort: cfg.ingressPort, dataDir: cfg.dataDir }, 'berth server ready');

  return {
    url,
    token,
    async close() {
      resync.stop();
      unwatchDeployments();
      unwatch();
      builds.close();
      manager.stop();
      health.close();
      registry.close();
      templates.close();
      await imageJanitor?.stop();
      apiTls?.close();
      await api.close();
      await dns.close();
      await certs.close();
      certStore.close();
      await manager.idle();
      await ingress.close();
      await logs.close();
      alerts.stop();
      notifier.close();
      await sampler.stop();
      await accessLog.stop();
      metrics.close();
      logStore.close();
      store.close();
      authStore.close();
      clearInterval(auditPruner);
      audit.close();
      config.close();
      await unlink(join(cfg.dataDir, 'server.json')).catch(() => undefined);
    },
  };
}
