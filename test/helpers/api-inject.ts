/**
 * In-process harness of the API for `src/api/*.test.ts`: the whole route table (buildApi and
 * every route module, registered as server.ts does) over a real SQLite store and config store in a
 * temp dir, with fakes for everything that would touch Docker, git or the network. Requests go
 * through fastify's `inject()`: no port, no engine. Records what the routes enqueue in `calls`.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { SqliteAuditStore, SqliteAuthStore, SqliteStore } from '../../src/store/index.ts';
import { ConfigStore } from '../../src/config/config-store.ts';
import { SecretBox } from '../../src/config/secret-box.ts';
import { SpecFiles } from '../../src/config/spec-files.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { Authenticator, hashToken } from '../../src/auth/index.ts';
import { NotFound } from '../../src/core/errors.ts';
import type { ReleaseRecord, ServiceRecord } from '../../src/core/store.ts';
import type { ServiceSpec } from '../../src/core/spec/types.ts';
import type { BuildView } from '../../src/core/views.ts';
import { buildApi, type ApiDeps } from '../../src/api/app.ts';
import { parseAppSpec } from '../../src/api/spec-schema.ts';
import { DeploymentService } from '../../src/deploy/deployments.ts';
import { rollbacks } from '../../src/deploy/rollback.ts';
import { takeSseFrames } from '../../src/core/sse.ts';
import { KnownApps } from '../../src/api/known.ts';
import { registerAlertRoutes } from '../../src/api/alert-routes.ts';
import { registerConfigRoutes } from '../../src/api/config-routes.ts';
import { registerVolumeRoutes } from '../../src/api/volume-routes.ts';
import { registerHostRoutes } from '../../src/api/host-routes.ts';
import { registerEdgeRoutes } from '../../src/api/edge-routes.ts';
import { EdgeFeed } from '../../src/ingress/edge-feed.ts';
import type { EdgeCert } from '../../src/core/edge.ts';
import { storePoolRules, registerPoolRoutes } from '../../src/api/pool-routes.ts';
import { registerFailoverRoutes } from '../../src/api/failover-routes.ts';
import { FakeEngine } from '../../src/engine/fake/index.ts';
import { ClusterCa } from '../../src/tls/cluster-ca.ts';
import { registerGitRoutes } from '../../src/api/git-routes.ts';
import { registerImageRoutes } from '../../src/api/image-routes.ts';
import { registerRegistryLoginRoutes } from '../../src/api/registry-login-routes.ts';
import { RegistryLogins } from '../../src/config/index.ts';
import { registerMetricsRoutes } from '../../src/api/metrics-routes.ts';
import { MetricsStore, renderMetrics, serviceStates, type HttpCounters } from '../../src/metrics/index.ts';
import type { InstanceSample } from '../../src/core/metrics.ts';
import { registerPromoteRoutes } from '../../src/api/promote-routes.ts';
import { registerRegistryRoutes } from '../../src/api/registry-routes.ts';
import { registerRemoveRoutes } from '../../src/api/remove-routes.ts';
import { registerTemplateRoutes } from '../../src/api/template-routes.ts';
import { registerWebhookRoutes } from '../../src/api/webhook-routes.ts';
import { serveGitHttp, webhooksPort } from '../../src/build/index.ts';
import { registerCertRoutes } from '../../src/api/cert-routes.ts';
import { CertManager, CertStore, type CertIssuer } from '../../src/tls/index.ts';
import { buildRouteTable } from '../../src/registry/index.ts';
import { registerPortalRoutes } from '../../src/api/portal-routes.ts';
import { PortalLogins } from '../../src/auth/index.ts';
import { guardrails } from '../../src/core/guard.ts';
import { RESPONSES } from '../../src/api/responses.ts';
import { wireSso } from '../../src/server/sso-wiring.ts';
import type { SingleSignOn } from '../../src/auth/index.ts';

export const TOKEN = 'test-token';
export const NOW = 1_700_000_000_000;
export const HOOK_TOKEN = 'hook-token-of-the-test';
/** The secret of a host's edge token in the test API (the server derives it from its key). */
export const EDGE_SECRET = (host: string): string => createHash('sha256').update(`edge ${host}`).digest('hex');

/** A build as the build controller lists it (the wire type). */
export type FakeBuild = BuildView;

export interface TestApi {
  api: FastifyInstance;
  /** What `berth failover` asked the reconciler to pin (app/env/service → host). */
  pins: Array<{ service: string; host: string }>;
  /** The pins status reads (`app/env/service` → host): what the reconciler learned, or a failover set. */
  pinned: Map<string, string>;
  store: SqliteStore;
  /** Users, sessions, teams, grants, API tokens. */
  auth: SqliteAuthStore;
  authenticator: Authenticator;
  audit: SqliteAuditStore;
  /** Single sign-on (providers in `auth`). */
  sso: SingleSignOn;
  /** The temp directory holding the databases. */
  dir: string;
  config: ConfigStore;
  /** What the routes asked of the reconcilers and controllers, in order (`deployment ID`, `svc APP/ENV/SVC`, `purge APP`, ...). */
  calls: string[];
  /** The build controller's builds. */
  builds: FakeBuild[];
  /** The metrics store behind `/v1/metrics/query` and `/v1/top` (in memory, the test clock). */
  metrics: MetricsStore;
  /** The stats sampler's latest samples, as `/v1/top` and `/metrics` read them (tests push their own). */
  samples: InstanceSample[];
  /** The access log's counters as `/metrics` renders them (tests fill their own). */
  http: Required<HttpCounters>;
  /** `METHOD /route` of every request that got past authorization to its handler. */
  reached: string[];
  /** The real certificate manager (no timers, wall clock: certificates are made now), its ACME issuer a fake that records hosts. */
  certs: CertManager;
  /** A request with the token; `payload` is sent as JSON. */
  req(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown): Promise<LightMyRequestResponse>;
  /** A request without any token. */
  anon(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown): Promise<LightMyRequestResponse>;
  /** A running service with one healthy release (seq 1). */
  addService(app: string, env: string, name: string, o?: { replicas?: number; memoryBytes?: number; status?: ReleaseRecord['status']; routes?: ServiceSpec['routes']; volumes?: ServiceSpec['volumes'] }): ServiceRecord;
  /** Sizes the fake engine reports for volumes, by engine name (absent: the volume does not exist). */
  volumeSizes: Record<string, number>;
  /** The engine behind the host routes: a simulated Swarm of h1 (manager), h2, h3, in pool default (option singleHost: one host, solo). */
  engine: FakeEngine;
  /** The edge feed behind the edge routes (its epoch `e0`); edge tokens' secrets are `EDGE_SECRET(host)`. */
  edge: EdgeFeed;
  /**
   * Certificates (with keys) the edge routes open by host. A poll counts as over TLS when it carries
   * the header `x-test-over-tls: yes` (only here: the server looks at the socket).
   */
  edgeCerts: Map<string, EdgeCert>;
  close(): Promise<void>;
}

/** Runs `fn` with a fresh API and closes it, also when `fn` throws. */
export async function withTestApi(fn: (t: TestApi) => Promise<void>, o: { hostMemoryBytes?: number; webDir?: string; singleHost?: boolean } = {}): Promise<void> {
  const t = await testApi(o);
  try {
    await fn(t);
  } finally {
    await t.close();
  }
}

/** Asserts the status and, for an error, that the message matches (a field, what would be right). */
/** A user with a CLI session and these grants; returns a request function acting as them. */
export function actAs(t: TestApi, name: string, grants: { role: string; team: string; app?: string; env?: string }[] = []) {
  t.auth.addUser({ id: `u-${name}`, name, passwordHash: '', createdAt: 0, createdBy: 'admin' });
  for (const [i, g] of grants.entries()) {
    t.auth.addGrant({ id: `g-${name}-${i}`, subject: `user:u-${name}`, role: g.role as 'viewer', team: g.team, app: g.app ?? '*', env: g.env ?? '*', createdAt: 0, createdBy: 'admin' });
  }
  const s = `berths_${name}-session`;
  t.auth.addSession({ id: createHash('sha256').update(s).digest('hex'), userId: `u-${name}`, kind: 'cli', csrfHash: '', createdAt: 0, expiresAt: NOW + 1, ip: '' });
  return (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object): Promise<LightMyRequestResponse> =>
    t.api.inject({ method, url, headers: { authorization: `Bearer ${s}` }, ...(payload ? { payload } : {}) });
}

export async function expectError(res: Promise<LightMyRequestResponse>, status: number, message?: RegExp): Promise<void> {
  const r = await res;
  assert.equal(r.statusCode, status, r.body);
  const e = (r.json() as { error?: { code?: string; message?: string } }).error;
  assert.ok(e?.code && e.message, `an error body: ${r.body}`);
  if (message) assert.match(e.message, message);
}

/** A complete service spec (what the API stores after a deploy). */
export function serviceSpec(name: string, o: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name, image: 'berth/busybox', environment: {}, ports: [], health: { type: 'none' }, replicas: 1, limits: {},
    restart: { condition: 'any', delayMs: 1000 }, labels: {}, stopSignal: 'SIGTERM', stopGracePeriodMs: 10_000, volumes: [], dependsOn: [],
    routes: [], ...o,
  } as ServiceSpec;
}

/** `hostMemoryBytes`: the memory `berth scale` may fill (default: no check). */
/** `logs`: a real log store (the portal benchmark); default none. */
export async function testApi(o: { hostMemoryBytes?: number; webDir?: string; logs?: ApiDeps['logs']; /** The engine is one plain host (`solo`), not a simulated Swarm. */ singleHost?: boolean } = {}): Promise<TestApi> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-api-test-'));
  const clock = { now: () => NOW };
  const store = new SqliteStore(join(dir, 'berth.db'), clock);
  store.addToken(hashToken(TOKEN), 'admin');
  const auth = new SqliteAuthStore(join(dir, 'auth.db'));
  const authenticator = new Authenticator({ store: auth, adminTokens: store, clock });
  const audit = new SqliteAuditStore(join(dir, 'audit.db'));
  const config = new ConfigStore(join(dir, 'config.db'), new SecretBox(randomBytes(32)), clock);
  const calls: string[] = [];
  let ids = 0;
  const newId = () => `id${++ids}`;
  const known = new KnownApps({
    sources: [
      { has: (app, env) => store.hasApp(app, env), all: () => store.appEnvs() },
      { has: (app, env) => config.hasApp(app, env), all: () => config.appEnvs() },
    ],
    services: (app, env) => [...store.listServices({ app, ...(env ? { env } : {}) }).map((s) => s.name),
      ...store.listReleases({ app, ...(env ? { env } : {}) }).map((r) => r.service)],
  });
  const enqueueService = (a: string, e: string, s: string) => void calls.push(`svc ${a}/${e}/${s}`);
  // The real deployments service (the one deploy path), over this store; the controller's queue is `calls`.
  const deployments = new DeploymentService({
    store, clock, newId, enqueue: (id) => void calls.push(`deployment ${id}`), parseSpec: parseAppSpec, specFiles: new SpecFiles(config),
    hostPaths: { bindSource: async (path) => ({ path }), buildContext: async (path) => ({ path }) },
    guard: guardrails(auth, clock), pools: storePoolRules({ authStore: auth, desired: store, auth: authenticator }),
  });
  // The service reconciler's pins as `berth failover` sets them (the server's pinTo / pinnedHost).
  const pinned = new Map<string, string>();
  const api = buildApi({
    store, clock, logger: silentLogger, newId, version: 'test', deployments, rollback: rollbacks(store, clock), enqueueService,
    pinnedHost: (k) => pinned.get(`${k.app}/${k.env}/${k.service}`),
    logs: o.logs ?? { search: () => ({ lines: [] }), tail: () => () => undefined }, ingressPort: 0, known,
    ...(o.hostMemoryBytes !== undefined ? { hostMemoryBytes: o.hostMemoryBytes } : {}),
    auth: authenticator, authStore: auth, audit, buildApp: (id) => builds.find((b) => b.id === id)?.app,
  });
  // Route modules whose collaborators are outside the store get fakes that record what they were asked:
  // their in-process tests cover validation and authorization; the e2e suite (test/) covers the real thing.
  const registry = {
    currentIndex: 1, entries: () => [], healthy: () => [], appsOnly: () => [], waitFor: async (i: number) => i,
    refresh: () => void calls.push('registry'),
  };
  registerRegistryRoutes(api, { store, registry, clock, newId });
  registerTemplateRoutes(api, { store, clock, changed: () => void calls.push('templates') });
  // Metrics: a real store in memory (tests write points through `t.metrics`) and samples the tests set (`t.samples`).
  const metrics = new MetricsStore(':memory:', { clock });
  const samples: InstanceSample[] = [];
  const http: Required<HttpCounters> = { routes: new Map(), instances: new Map() };
  registerMetricsRoutes(api, {
    store, metrics, clock, known, latestSamples: () => samples,
    prometheus: () => renderMetrics({ samples, services: serviceStates(store), http }),
  });
  registerAlertRoutes(api, { store, clock, changed: () => void calls.push('alerts') });
  registerConfigRoutes(api, { config, clock, known, onConfigChanged: (app, env) => void calls.push(`config ${app}/${env}`) });
  // Builds the tests add (`t.builds.push(...)`): the controller's list, get, cancel (a finished build stays finished) and log.
  const builds: FakeBuild[] = [];
  const buildCtl = {
    list: (app?: string) => builds.filter((b) => !app || b.app === app), get: (id: string) => builds.find((b) => b.id === id),
    cancel: async (id: string) => {
      const b = builds.find((x) => x.id === id);
      if (!b) throw new NotFound(`no build ${id}`);
      if (b.status === 'queued' || b.status === 'running') b.status = 'cancelled';
      return b;
    },
    text: (id: string) => `log of ${id}\n`,
    // A webhook's build: recorded, not run.
    submit: async (r: { app: string; branch: string; commit: string; source: string }) => {
      calls.push(`build ${r.app} ${r.branch} ${r.commit.slice(0, 7)} (${r.source})`);
      return { id: `wh${calls.length}` };
    },
  } as never;
  // Repositories: none exists; the hook token is HOOK_TOKEN; creating one and setting its source are recorded
  // (a source set is kept, so a webhook for that app verifies against its secret).
  const sources = new Map<string, { remote: string; secret: string }>();
  const repos = {
    root: dir, env: {}, exists: () => false, token: async () => HOOK_TOKEN, source: async (a: string) => sources.get(a), quarantine: () => undefined,
    ensure: async (a: string) => void calls.push(`repo ${a}`),
    setSource: async (a: string, src: { remote: string; secret: string }) => {
      sources.set(a, src);
      calls.push(`source ${a}`);
    },
  } as never;
  registerGitRoutes(api, { repos, builds: buildCtl, logger: silentLogger, known, serveGit: (x) => serveGitHttp({ ...x, projectRoot: dir }) });
  registerPromoteRoutes(api, { store, deployments, known });
  registerImageRoutes(api, { images: undefined, known });
  registerRegistryLoginRoutes(api, { logins: new RegistryLogins(join(dir, 'registry-logins.json'), new SecretBox(randomBytes(32)), clock) });
  const volumeSizes: Record<string, number> = {};
  // Volume sizes as an engine would report them: `volumeSizes` by engine name (absent: the volume does not exist).
  registerVolumeRoutes(api, { store, known, volumeName: (a, e, n) => `berth_${a}_${e}_${n}`,
    usage: { volumeUsage: async (names) => Object.fromEntries(names.filter((n) => n in volumeSizes).map((n) => [n, { sizeBytes: volumeSizes[n]!, containers: 1 }])) } });
  const engine = o.singleHost ? new FakeEngine({ hostName: 'solo' }) : new FakeEngine({ hosts: [{ name: 'h1' }, { name: 'h2' }, { name: 'h3' }] });
  // A cluster CA made on first use (an EC key pair costs a few ms; most tests never add a host).
  let ca: Promise<ClusterCa> | undefined;
  registerHostRoutes(api, { hosts: engine, engineTls: { issueEngine: async (x) => (await (ca ??= ClusterCa.create().then((c) => c.ca))).issueEngine(x) } });
  const edge = new EdgeFeed(clock, 'e0');
  const edgeCerts = new Map<string, EdgeCert>();
  registerEdgeRoutes(api, {
    feed: edge, secretOf: EDGE_SECRET, controlUrl: () => 'https://berth.example:7070',
    certificates: (refs) => refs.flatMap((r) => (edgeCerts.has(r.host) ? [edgeCerts.get(r.host)!] : [])),
    overTls: (req) => req.headers['x-test-over-tls'] === 'yes',
  });
  registerPoolRoutes(api, { store: auth, desired: store, hosts: engine, clock });
  const pins: Array<{ service: string; host: string }> = [];
  registerFailoverRoutes(api, { store, clock, known, enqueueService, failover: { hosts: () => engine.hosts(), pinTo: (k, host) => {
    pins.push({ service: `${k.app}/${k.env}/${k.service}`, host });
    pinned.set(`${k.app}/${k.env}/${k.service}`, host);
  } } });
  registerRemoveRoutes(api, {
    store, clock, known, enqueueService, enqueuePurge: (a) => void calls.push(`purge ${a}`), unfinishedBuilds: () => [],
    remains: async (app) => ({ app, config: [], releases: 0, deployments: 0, events: 0, builds: 0, repository: false, webhookSource: false, images: 0,
      volumes: [], logSources: 0, metricSeries: 0 }),
  });
  registerWebhookRoutes(api, { repos, builds: buildCtl, webhooks: webhooksPort(join(dir, 'webhook-deliveries')), serverUrl: () => 'http://127.0.0.1:1', now: clock.now });
  const certStore = new CertStore(join(dir, 'tls.db'), new SecretBox(randomBytes(32)));
  const issuer: CertIssuer = { issue: async (host) => { calls.push(`acme ${host}`); throw new Error('the test has no CA'); } };
  const certs = new CertManager({
    store: certStore, issuer, fileDir: join(dir, 'tls'), events: store, clock: { now: () => Date.now() }, logger: silentLogger,
    routes: () => buildRouteTable(store), changed: () => void calls.push('ingress'),
  });
  await certs.start();
  registerCertRoutes(api, { certs });
  registerPortalRoutes(api, { logins: new PortalLogins(clock), auth: authenticator, clock, webDir: o.webDir, logger: silentLogger });
  const sso = wireSso(api, { store: auth, secretBox: new SecretBox(randomBytes(32)), auth: authenticator, audit, clock, logger: silentLogger, newId, timeoutMs: 3000 });
  // Registered after buildApi's hooks: runs only for requests authorization let through.
  const reached: string[] = [];
  api.addHook('preHandler', async (req) => void reached.push(`${req.method} ${req.routeOptions.url}`));
  // Every JSON success answer is checked against the schema its route declares (api/responses.ts,
  // published in /v1/openapi.json), strictly: a field the schema does not know fails the test too.
  const violations: string[] = [];
  api.addHook('preSerialization', async (req, reply, payload) => {
    const key = `${req.method} ${req.routeOptions.url}`;
    const schema = RESPONSES[key];
    if (reply.statusCode < 300 && schema) {
      const r = schema.safeParse(payload);
      if (!r.success) violations.push(`${key} answered what its declared response schema refuses: ${r.error.message}\n${JSON.stringify(payload).slice(0, 2000)}`);
    }
    return payload;
  });
  await api.ready();

  const send = (auth: boolean) => async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) => {
    const res = await api.inject({ method, url, ...(auth ? { headers: { authorization: `Bearer ${TOKEN}` } } : {}), ...(payload !== undefined ? { payload: payload as object } : {}) });
    if (violations.length) assert.fail(violations.splice(0).join('\n'));
    return res;
  };
  let seq = 0;
  return {
    api, store, auth, authenticator, audit, sso, dir, config, calls, builds, metrics, samples, http, reached, certs, req: send(true), anon: send(false), volumeSizes, engine, edge, edgeCerts, pins, pinned,
    addService(app, env, name, o = {}) {
      const rel: ReleaseRecord = {
        id: `r${++seq}`, app, env, service: name, seq: 1, spec: serviceSpec(name, { replicas: o.replicas ?? 1, limits: o.memoryBytes ? { memoryBytes: o.memoryBytes } : {}, ...(o.routes ? { routes: o.routes } : {}), ...(o.volumes ? { volumes: o.volumes } : {}) }),
        specHash: 'h', image: 'berth/busybox', imageId: 'sha256:x', status: o.status ?? 'healthy', message: '', createdAt: NOW - 1000, createdBy: 'admin',
      };
      const svc: ServiceRecord = { app, env, name, replicas: o.replicas ?? 1, releaseId: rel.id, failures: 0, nextStartAt: 0, updatedAt: NOW - 1000 };
      store.putService(svc, rel);
      return svc;
    },
    async close() {
      edge.close();
      // Streams a failed test left open would keep close() waiting.
      if (api.server.listening) api.server.closeAllConnections();
      await api.close();
      await certs.close();
      certStore.close();
      store.close();
      auth.close();
      audit.close();
      config.close();
      metrics.close();
      rmSync(dir, { recursive: true, force: true });
      // Answers of requests a test injected itself (with another principal's token) are checked too.
      if (violations.length) assert.fail(violations.splice(0).join('\n'));
    },
  };
}

/** One server-sent message as a stream test reads it. */
export interface SseMessage {
  event: string;
  id?: number;
  data: unknown;
  /** When it was read (performance.now()). */
  at: number;
}

/**
 * A live server-sent event stream of the test API over loopback (inject() only answers once a
 * response has ended, and a stream may not end): `next(pred)` resolves with the first message from
 * now on that matches, or rejects after `timeoutMs`; `ended` resolves when the server ends the stream.
 */
export async function openSse(t: TestApi, path: string, token = TOKEN): Promise<{
  next(pred?: (m: SseMessage) => boolean, timeoutMs?: number): Promise<SseMessage>;
  all: SseMessage[];
  ended: Promise<void>;
  status: number;
  close(): void;
}> {
  if (!t.api.server.listening) await t.api.listen({ host: '127.0.0.1', port: 0 });
  const addr = t.api.server.address() as { port: number };
  const ac = new AbortController();
  const res = await fetch(`http://127.0.0.1:${addr.port}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
  const all: SseMessage[] = [];
  let read = 0;
  let wake: () => void = () => {};
  const ended = (async () => {
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        const { frames, rest } = takeSseFrames(buf + dec.decode(chunk, { stream: true }));
        buf = rest;
        for (const f of frames) {
          all.push({ event: f.event, ...(f.id !== undefined ? { id: f.id } : {}), data: JSON.parse(f.data), at: performance.now() });
          wake();
        }
      }
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    } finally {
      wake();
    }
  })();
  let done = false;
  void ended.finally(() => (done = true));
  return {
    all, ended, status: res.status,
    close: () => ac.abort(),
    async next(pred = () => true, timeoutMs = 5000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        while (read < all.length) {
          const m = all[read++]!;
          if (pred(m)) return m;
        }
        if (done) throw new Error(`the stream ended without the message; read: ${JSON.stringify(all.map((m) => m.event))}`);
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`no such message within ${timeoutMs} ms; read: ${JSON.stringify(all.map((m) => m.event))}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
  };
}
