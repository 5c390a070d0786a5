import { Coalesced } from '../lib/coalesce.ts';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LABEL, systemClock, type Logger } from '../core/ports.ts';
import { DeploymentService, HostMonitor, Resync, watchEngineEvents } from '../deploy/index.ts';
import { Registry, RouteTable, buildRouteTable } from '../registry/index.ts';
import { EdgeFeed } from '../ingress/index.ts';
import { edgeRoutes } from '../core/edge.ts';
import { guardrails } from './guard-wiring.ts';
import { storePoolRules } from '../api/pool-routes.ts';
import { TemplateRenderer } from '../templates/index.ts';
import { parseAppSpec } from '../api/spec-schema.ts';
import { warmComposeSchema } from '../core/spec/index.ts';
import { shortId } from '../lib/ids.ts';
import { raiseProcessNice } from '../lib/priority.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { VERSION } from '../core/version.ts';
import type { ServerConfig } from './config.ts';
import { clusterId, makePrivate } from './host-setup.ts';
import { openStores } from './stores-wiring.ts';
import { prepareContainerFiles } from './secrets-wiring.ts';
import { hostPathGuard, makeEngine, startImageRegistry, wireHostEngines } from './engine-wiring.ts';
import { startTls } from './tls-wiring.ts';
import { cutUnreachable, recordEdgeCuts, remoteUnreachable, startIngress } from './ingress-wiring.ts';
import { startDns } from './dns-wiring.ts';
import { startClusterData } from './cluster-data-wiring.ts';
import { wireControllers } from './controller-wiring.ts';
import { startObservability } from './observability-wiring.ts';
import { wireBuilds } from './build-wiring.ts';
import { wireReconcilers } from './deploy-wiring.ts';
import { wirePurge } from './purge-wiring.ts';
import { ApiTls } from './api-tls.ts';
import { startApi } from './api-wiring.ts';

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
/** How often hosts' states are read (a Swarm node list; engine host events also trigger a read). */
const HOSTS_MS = 2000;
/** How long an ACME challenge waits for the edge hosts to serve it before the CA is told to validate. */
const EDGE_CHALLENGE_WAIT_MS = 10_000;

/**
 * The composition root: picks the concrete store, engine and ingress, wires controllers and loops,
 * and starts the API. Each part is made by a helper of server/ (`*-wiring.ts`); this file only says
 * in which order they start and stop. Closing stops the control plane only: containers and nginx
 * keep serving.
 */
export async function startServer(cfg: ServerConfig, logger: Logger): Promise<RunningServer> {
  // Everything the server (and nginx, the registry, git it starts) creates is private to root: the
  // data directory holds databases with Compose environment values, logs, builds and repositories.
  // What containers must read (resolv.conf, configuration files) is opened up explicitly.
  process.umask(0o077);
  raiseProcessNice(cfg.nice, logger, 'server');
  // Before anything serves: compiling the Compose schema holds the event loop for a few hundred ms.
  warmComposeSchema();
  await makePrivate(cfg.dataDir);
  const clock = systemClock;
  const stores = await openStores(cfg, clock, logger);
  const { store, config } = stores;
  const cluster = await clusterId(cfg.dataDir);
  /** App-network instances' container address and native port: the ingress reaches them there (kept by the service reconciler). */
  const directAddresses = new Map<string, { address: string; port: number }>();
  const files = await prepareContainerFiles(cfg, cluster, store, config, logger);
  const hostPaths = hostPathGuard(cfg);
  const { docker, engine, imageRegistry } = makeEngine(cfg, { [LABEL.cluster]: cluster }, stores.registryLogins, logger);
  const routeChanges: { apply?: () => void } = {};
  // Edge hosts' feed: routes, their certificates (by fingerprint) and open ACME challenges.
  const edge = new EdgeFeed(clock);
  // An edge host's report of its cuts (with its next poll) is an `ingress.cut` event naming it.
  recordEdgeCuts(edge, store);
  const tls = await startTls(cfg, cluster, {
    secretBox: stores.secretBox, events: store, clock, logger, routes: () => buildRouteTable(store, directAddresses), changed: () => routeChanges.apply?.(),
    // The CA may ask any edge host: it is told to validate once every edge host in contact has the answer.
    challengesChanged: async (open, added) => {
      edge.setChallenges(open);
      if (!added) return;
      const { behind } = await edge.waitApplied(EDGE_CHALLENGE_WAIT_MS);
      if (behind.length > 0) logger.warn({ behind }, 'ACME challenge: edge hosts did not confirm it in time; the CA may fail on them (retried with backoff)');
    },
  });
  const { certs } = tls;
  // Cluster mode: the hosts' engines over mutual TLS (logs, stats, signals, exec of instances there).
  const hostEngines = wireHostEngines(docker, tls.clusterCa, logger);
  // Adopt the running nginx (or start one) with the table the store already knows: instances keep
  // their last known health, so a restart of Berth never empties the upstreams.
  const ingress = await startIngress(cfg, store, tls.acmeChallengeDir, logger, stores.secretBox.mac('ingress admin token'));
  const imageRegistryUp = await startImageRegistry(imageRegistry, logger);
  // Many hosts: Berth's registry on the cluster address, and what other hosts' instances need.
  const clusterData = await startClusterData(cfg, cluster, { imageRegistry, imageRegistryUp, registryLogins: stores.registryLogins, logger, clusterCa: tls.clusterCa });
  if (clusterData) docker.useShipping(clusterData.shipping);
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
  // The table is read from every instance: the requests of one turn of the event loop (a burst of
  // reconcile rounds) share one rebuild (bench scale: one per round made the rounds O(n²)).
  // The tables follow the store's change feed: a change recomputes its service's routes only.
  const routeTable = new RouteTable(store, directAddresses);
  const edgeTable = new RouteTable(store);
  // Leading edge: a change after a quiet spell (a health flip) is published in a microtask, not after
  // the turn's other I/O; a burst still shares one run per turn.
  const publishRoutes = new Coalesced(() => {
    registry.refresh();
    ingress.apply(certs.decorate(routeTable.routes()));
    // Edge hosts get the same table, with backends they can reach (not the bridge addresses only
    // this host reaches; loopback ones at BERTH_EDGE_ADDRESS), and which certificates its hosts have.
    const edgeNow = edgeTable.routes();
    edge.publish(edgeRoutes(edgeNow, cfg.edgeAddress), certs.edgeRefs(edgeNow));
    // A new host may want a certificate (coalesced; cheap when nothing is due).
    certs.wake();
  }, { quietMs: 20 });
  const applyRoutes = () => publishRoutes.schedule((err) => logger.error({ err: String(err) }, 'route table not rebuilt'));
  routeChanges.apply = applyRoutes;
  const routesChanged = async () => {
    await publishRoutes.request();
    await ingress.flush();
  };
  await routesChanged();
  // nginx answers HTTP-01 challenges from here on.
  certs.run();

  // The controllers on one work queue; who wakes whom is in controller-wiring.ts.
  const loop = wireControllers(store, applyRoutes, logger);
  const { manager, wakeService, wakeDeployment, wakePurge, enqueueService } = loop;
  // The one deploy path: the API's deploy route, promotion and the push pipeline call it in-process.
  const deploymentService = new DeploymentService({
    store, specFiles: files.specFiles, clock, newId: () => shortId(10), hostPaths, enqueue: (id) => wakeDeployment(id), parseSpec: parseAppSpec,
    guard: guardrails(stores.authStore, clock),
    pools: storePoolRules({ authStore: stores.authStore, desired: store, auth: stores.authenticator }),
    // Many hosts: a deploy that does not fit its pools is refused before anything is written (core/pool-admission.ts).
    placement: { mode: () => docker.currentMode(), hosts: () => engine.hosts() },
  });
  const obs = startObservability(cfg, { store, engine, clock, logger, directAddresses });
  const builds = wireBuilds(cfg, {
    store, engine, clock, logger, authStore: stores.authStore, authenticator: stores.authenticator, config, deployments: deploymentService, hostPaths,
    imageRegistry: imageRegistryUp ? imageRegistry : undefined, finished: (rec) => manager.emit('build.finished', rec),
    secretValue: (app, env, m, v) => files.specFiles.valueOf(app, env, m, v),
  });
  // Hosts' states on the timeline (host.ready / down / draining / removed); a change wakes every
  // service (instances of a down host fail over, a draining host's move, a returned host's are checked).
  const hostMonitor = new HostMonitor({
    engine, events: store, logger: logger.child({ component: 'hosts' }), intervalMs: HOSTS_MS,
    changed: () => void resync.all(),
  });
  const { health, services, deployments } = wireReconcilers(cfg, {
    store, engine, clock, logger, cluster, directAddresses, files, config, registryLogins: stores.registryLogins, builds: builds.builds, hostPaths,
    resolvConf: dns.resolvConf, networkDns: dns.networkDns, applyRoutes, routesChanged, enqueueService,
    instancesChanged: () => {
      registry.refresh();
      obs.syncLogs();
      files.sweep();
    },
    healthChanged: (inst) => manager.emit('instance.health', inst),
    unreachable: (inst) => {
      cutUnreachable(inst, engine.hostName, store, logger.child({ component: 'ingress' }));
      // Edge hosts cut their nginx's connections to it too, once it is out of their table (ingress/edge-agent.ts).
      if (remoteUnreachable(inst, engine.hostName)) edge.unreachable(inst.address, inst.port, inst);
    },
    releaseFinished: (k) => manager.emit('release.finished', k),
    hostState: (host) => hostMonitor.stateOf(host),
  });
  loop.attach({ services, deployments, deploymentService });

  const resync = new Resync({
    store, engine, logger, wakeService, wakeDeployment, wakePurge, intervalMs: RESYNC_MS,
    periodic: () => {
      health.refresh();
      obs.syncLogs();
      files.sweep();
    },
  });
  // Container events wake their service; a regained engine resyncs everything.
  const unwatch = watchEngineEvents({
    engine, cluster, events: store, logger, hostChanged: () => void hostMonitor.check(),
    serviceChanged: (k, action) => {
      wakeService(k);
      if (action === 'start') obs.syncLogs();
    },
    reachable: () => void resync.all(),
    instanceDown: (instance, why) => health.down(instance, why),
  });

  health.refresh();
  // Berth's DNS on the gateways of the app networks there are (adopted after a restart).
  await engine.listNetworks({}).then((n) => dns.syncNetworks(n), (err: unknown) => logger.warn({ err: String(err) }, 'dns: app networks not listed; their gateways get a listener when a container is started'));
  await resync.all();
  obs.syncLogs();
  files.sweep();
  resync.start();
  hostMonitor.start();

  // TLS for the API when a certificate is configured: checked before anything of the API starts.
  const apiTls = cfg.apiTls ? await ApiTls.load(cfg.apiTls, logger.child({ component: 'api-tls' })) : undefined;
  const { imageJanitor } = builds;
  imageJanitor?.start();
  const purge = wirePurge({ store, engine, clock, logger, config, builds, obs, files, dns, enqueueService });
  loop.attach({ purger: purge.purger });
  for (const p of store.listPurges()) if (p.state === 'purging') wakePurge(p.app);
  const api = await startApi(cfg, {
    store, engine, clock, logger, apiTls, config, authenticator: stores.authenticator, authStore: stores.authStore, audit: stores.audit,
    registryLogins: stores.registryLogins, secretBox: stores.secretBox, docker, deployments: deploymentService, registry, templates, certs, builds, obs, purge,
    enqueueService, wakeDeployment, wakePurge, ingressBackendUpdates: () => ingress.backendUpdates, edge,
    engineTls: { issueEngine: async (o) => (await tls.clusterCa()).issueEngine(o) },
    registryTrust: () => clusterData?.registryTrust,
    pinTo: (k, host) => services.failoverTo(k, host),
    pinnedHost: (k) => services.pinnedHost(k),
  });
  const { url } = api;
  const info: ServerInfo = { url, pid: process.pid, ingressPort: cfg.ingressPort, version: VERSION };
  await writeFileAtomic(join(cfg.dataDir, 'server.json'), JSON.stringify(info, null, 2) + '\n');
  await builds.builds.recover();
  logger.info({ url, ingressPort: cfg.ingressPort, dataDir: cfg.dataDir }, 'berth server ready');

  return {
    url,
    token: stores.token,
    // The order matters: loops stop before what they write to; the databases close last.
    async close() {
      resync.stop();
      loop.unwatchDeployments();
      unwatch();
      hostMonitor.stop();
      hostEngines.stop();
      builds.builds.close();
      manager.stop();
      health.close();
      registry.close();
      routeTable.close();
      edgeTable.close();
      templates.close();
      await imageJanitor?.stop();
      // Edge agents' long polls answer now (unchanged), so the API closes at once; nginx there keeps serving.
      edge.close();
      await api.stop();
      await dns.close();
      await tls.stop();
      await manager.idle();
      await ingress.close();
      await obs.stop();
      stores.stop();
      await unlink(join(cfg.dataDir, 'server.json')).catch(() => undefined);
    },
  };
}

/** BERTH_NICE: the server (its event loop answers DNS and health checks for every app) runs ahead of the host's other work. */
