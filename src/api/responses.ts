/**
 * What each route answers, as zod schemas: the OpenAPI document (api/openapi.ts) publishes them as
 * its response bodies, so a client generated from /v1/openapi.json (the portal's) reads the same
 * shapes the CLI's typed client does. They mirror the wire types of core/views.ts and core/store.ts:
 * the type checks at the end of this file fail the build when one side changes without the other,
 * and the in-process route tests validate every JSON answer of every route they call against its
 * schema (test/helpers/api-inject.ts), strict: a field the schema does not declare fails them.
 */
import { z } from 'zod';
import { GUARD_KEYS } from '../core/guard.ts';
import { guardPolicySchema } from './policy-routes.ts';
import type { AppRemains } from '../core/app-remains.ts';
import type { HostInfo } from '../core/ports.ts';
import type { PoolView } from '../core/pools.ts';
import type { approvalView as approvalViewOf } from './authorize.ts';
import type { Grant, Principal, ROLES } from '../core/auth.ts';
import type { AuditEntry, AuditVerification } from '../core/audit.ts';
import type { SsoProviderView } from '../core/sso.ts';
import type { CheckResult, CrashRecord, EventRecord, PurgeRecord, TemplateRecord } from '../core/store.ts';
import type { AlertView, BuildView, CertView, ConfigEntryView, InstanceStatus, MetricSeriesView, RegistryEntryView, ReleaseView, ServiceStatus, TopView, VolumeView } from '../core/views.ts';
import type { GcReportView, ImageListView } from '../core/image-retention.ts';
import type { StoredLine } from '../logs/index.ts';

const o = z.strictObject;
const num = z.number();
const str = z.string();

export const checkResult = o({ ok: z.boolean(), text: str, since: num });
export const crashRecord = o({
  at: num, instance: str, releaseId: str, exitCode: num.optional(), oomKilled: z.boolean().optional(), ranMs: num, output: z.array(str), lastError: str.optional(),
});
export const instanceStatus = o({
  id: str, release: num, state: str, health: str, host: str, address: str, port: num, containerId: str.optional(), startedAt: num.optional(),
  reason: str.optional(), check: checkResult.optional(), pinned: str.optional(),
});
export const serviceStatus = o({
  app: str, env: str, name: str, desired: num, healthy: num, running: num, status: str, detail: str,
  release: o({ id: str, seq: num, status: str, message: str, image: str, imageId: str, createdAt: num }),
  routes: z.array(o({ host: str.optional(), path: str })), failures: num, nextStartAt: num.optional(), strategy: str, strategyReason: str.optional(),
  pinned: o({ host: str, volumes: z.array(str), text: str }).optional(), routedRelease: num.optional(),
  reload: o({ requestedAt: num, doneAt: num }), lastCrash: crashRecord.optional(), instances: z.array(instanceStatus), warnings: z.array(str).optional(),
});
export const eventRecord = o({ id: num, ts: num, app: str, env: str, service: str, instance: str, kind: str, message: str });
/** A release as stored: its service spec is the stored spec (see the deploy body's schema for its fields). */
export const releaseRecord = o({
  id: str, app: str, env: str, service: str, seq: num, spec: z.record(str, z.unknown()), specHash: str, image: str, imageId: str,
  status: z.enum(['progressing', 'healthy', 'failed', 'superseded']), message: str, createdAt: num, createdBy: str, finishedAt: num.optional(),
});
const { spec: _spec, ...releaseFields } = releaseRecord.shape;
export const releaseView = o({ ...releaseFields, status: str, strategy: str, replicas: num, configVersion: num, current: z.boolean() });
const specWarning = z.record(str, z.unknown());
export const deploymentView = o({
  id: str, app: str, env: str, warnings: z.array(specWarning), status: z.enum(['pending', 'building', 'rolling', 'succeeded', 'failed']), message: str,
  createdAt: num, createdBy: str, releases: z.record(str, str), services: z.array(str), buildId: str.optional(),
});
/** A service of a deployment: its status once it has a release, else only its name and `pending`. */
export const deploymentState = o({ deployment: deploymentView, services: z.array(z.union([serviceStatus, o({ name: str, status: z.literal('pending') })])) });
export const appRemains = o({
  app: str, config: z.array(o({ env: str, values: num, secrets: num, versions: num })), releases: num, deployments: num, events: num, builds: num,
  repository: z.boolean(), webhookSource: z.boolean(), images: num.optional(), volumes: z.array(str), logSources: num, metricSeries: num,
});
export const purgeRecord = o({
  app: str, state: z.enum(['purging', 'done']), requestedAt: num, requestedBy: str, finishedAt: num.optional(), volumes: z.array(str),
  removed: z.record(str, str), waiting: str.optional(),
});
export const configEntry = o({ key: str, kind: z.enum(['value', 'secret']), version: num, updatedAt: num, updatedBy: str, value: str.optional() });
export const buildView = o({
  id: str, app: str, branch: str, env: str, commit: str, status: str, message: str, images: z.record(str, str), createdAt: num, startedAt: num.optional(),
  finishedAt: num.optional(), source: str.optional(), stage: str.optional(), timings: z.record(str, num).optional(),
});
/** A template as stored and listed (TemplateView is the part the CLI shows). */
export const templateRecord = o({ name: str, source: str, dest: str, check: z.array(str), reload: z.array(str), createdAt: num, renderedAt: num, lastError: str });
export const alertView = o({
  name: str, state: str, since: num, value: num.optional(),
  rule: o({ metric: str, threshold: num, windowMs: num.optional(), forMs: num.optional(), app: str.optional(), env: str.optional(), service: str.optional(), webhook: str.optional() }),
});
export const registryEntry = o({
  key: str, env: str, service: str, app: str.optional(), address: str, port: num, health: z.enum(['starting', 'healthy', 'unhealthy']),
  source: z.enum(['berth', 'external']), id: str, ttlMs: num.optional(), lastHeartbeatAt: num.optional(),
});
export const topView = o({
  at: num, windowMs: num,
  instances: z.array(o({ app: str, env: str, service: str, instance: str, containerId: str, sampledAt: num, cpuPercent: num, memoryBytes: num, memoryLimitBytes: num,
    netRxBytes: num, netTxBytes: num, blockReadBytes: num, blockWriteBytes: num })),
  services: z.array(o({ app: str, env: str, service: str, instances: num, desired: num.optional(), cpuPercent: num, memoryBytes: num })),
  routes: z.array(o({ app: str, env: str, service: str, route: str, requests: num, ratePerSec: num, s2xx: num, s3xx: num, s4xx: num, s5xx: num,
    p50: num.nullable(), p95: num.nullable(), p99: num.nullable() })),
});
const change = o({ service: str, from: num, to: num });
const configChange = o({ key: str, kind: z.enum(['value', 'secret']), op: z.enum(['set', 'unset']), old: str.optional(), new: str.optional() });
/** A configuration write: the version after it, what changed, and the rollout it started (when something changed and services run). */
const configWrite = o({ app: str, env: str, version: num, changed: z.boolean(), changes: z.array(configChange), deployment: str.optional() });
/** A stored log line as search and tail return it (logs/log-store.ts StoredLine). */
const logLine = o({
  id: str, time: str, ts: num, stream: z.enum(['stdout', 'stderr']), level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).nullable(), text: str,
  containerId: str, app: str, env: str, service: str, instance: str,
});
/** A request kept for a second person's approval (api/authorize.ts approvalView): the 202 of a deploy or promotion to such an environment. */
export const approvalView = o({
  id: str, app: str, env: str, team: str, action: str, requestedBy: str, status: str, createdAt: num, decidedBy: str.optional(), decidedAt: num.optional(),
  result: str.optional(),
});
const pendingApproval = o({ approval: approvalView, message: str });
const role = z.enum(['viewer', 'operator', 'deployer', 'maintainer', 'admin', 'owner']);
/** A grant as listed (api/team-routes.ts): to a user (by name) or an API token (by id). */
const grantView = z.union([
  o({ id: str, user: str, role, team: str, app: str, env: str, createdAt: num, createdBy: str }),
  o({ id: str, token: str, role, team: str, app: str, env: str, createdAt: num, createdBy: str }),
]);
const tokenFields = {
  id: str, name: str, createdBy: str, createdAt: num, expiresAt: num, revokedAt: num, lastUsedAt: num,
  grants: z.array(o({ role, team: str, app: str, env: str })),
};
const grantRecord = o({ id: str, subject: str, role, team: str, app: str, env: str, createdAt: num, createdBy: str });
const scope = o({ role, team: str, app: str, env: str });
export const auditEntry = o({
  ts: num, actor: str, actorName: str, ip: str, action: str, app: str, env: str, request: str, result: str, status: num, seq: num, prevHash: str, hash: str,
});
export const auditVerification = o({ ok: z.boolean(), checked: num, firstBad: o({ seq: num, reason: str }).optional(), retainedFrom: num });
/** Whether a team's environment needs a second person's approval for deploys and promotions. */
const envPolicy = o({ team: str, env: str, requireApproval: z.boolean() });
const policyLayer = o({ team: str, env: str, scope: str, version: num, policy: guardPolicySchema, setBy: str, setAt: num });
const exemptionView = o({
  id: str, app: str, service: str, env: str, key: z.enum(GUARD_KEYS), reason: str, createdBy: str, createdAt: num, expiresAt: num, revokedAt: num,
  status: z.enum(['active', 'expired', 'revoked']),
});

export const certView = o({
  host: str, status: z.enum(['valid', 'renewing', 'failed', 'expired', 'pending', 'no-acme', 'wildcard', 'unused']), source: z.enum(['acme', 'upload']).optional(),
  issuer: str.optional(), notBefore: num.optional(), notAfter: num.optional(), renewAt: num.optional(), fingerprint: str.optional(), routes: z.array(str),
  lastError: str.optional(), retryAt: num.optional(),
});
const resources = o({ nanoCpus: num, memoryBytes: num });
export const hostView = o({
  id: str, name: str, address: str, role: z.enum(['manager', 'worker']), pool: str, labels: z.record(str, str), state: z.enum(['ready', 'down', 'draining']),
  message: str.optional(), capacity: resources, reserved: resources, instances: num,
});
/** A route as edge hosts get it (core/ports.ts IngressRoute, without certificate files). */
const edgeRoute = o({
  upstream: str, host: str.optional(), path: str, backends: z.array(o({ address: str, port: num, instance: str })),
  owner: o({ app: str, env: str, service: str }).optional(), claimedAt: num.optional(),
  https: o({ wantsCert: z.boolean(), redirect: z.boolean(), hstsSeconds: num.optional() }).optional(),
});
const edgeHost = o({
  host: str, address: str, lastContact: num, applied: num.optional(), appliedEpoch: str.optional(), inSync: z.boolean(), error: str.optional(),
  certsWithheld: z.boolean().optional(),
});
const poolQuota = o({ nanoCpus: num.optional(), memoryBytes: num.optional(), instances: num.optional() });
export const poolView = o({
  name: str, hosts: z.array(str), capacity: resources, reserved: resources, used: o({ instances: num, nanoCpus: num, memoryBytes: num }),
  quota: poolQuota, quotaShown: str, teams: z.array(str),
});
export const volumeView = o({
  app: str, env: str, name: str, volume: str, exists: z.boolean(), sizeBytes: num.nullable(),
  services: z.array(o({ service: str, target: str, readOnly: z.boolean() })),
  containers: z.array(o({ service: str, instance: str, release: num, state: str, containerId: str.optional() })),
});
/** An image of Berth's registry and why the retention rule keeps it (core/image-retention.ts). */
const imageView = o({
  repo: str, digest: str, tags: z.array(str), createdAt: num, pushedAt: num.optional(), sizeBytes: num.optional(), compressedBytes: num.optional(),
  keep: z.boolean(), reasons: z.array(z.enum(['current', 'running', 'rollback', 'in-flight', 'recent'])),
  usedBy: z.array(o({ releaseId: str, env: str, service: str, seq: num, current: z.boolean(), running: z.boolean() })), app: str, service: str,
});
export const imageList = o({ keep: num, images: z.array(imageView) });
export const gcReport = o({
  dryRun: z.boolean(), keep: num, deleted: z.array(imageView), kept: z.array(imageView), localRemoved: z.array(str),
  blobs: o({ collected: z.boolean(), reclaimedBytes: num }), errors: z.array(str),
});
const metricPoint = o({
  ts: num, n: num, sum: num, avg: num, max: num, rate: num.optional(), s2xx: num.optional(), s3xx: num.optional(), s4xx: num.optional(), s5xx: num.optional(),
  p50: num.optional(), p95: num.optional(), p99: num.optional(),
});
export const metricSeries = o({ key: o({ kind: str, app: str, env: str, service: str, target: str }), points: z.array(metricPoint) });

/** A registry login as listed (config/registry-logins.ts): never its password. */
const registryLogin = o({ host: str, username: str, updatedAt: num });

/** A single sign-on provider as owners see it (core/sso.ts): its secret only as `secretSet`. */
const ssoMapping = o({ group: str, team: str, role, app: str, env: str });
export const ssoProviderView = o({
  name: str, kind: z.enum(['oidc', 'ldap']), displayName: str, enabled: z.boolean(),
  oidc: o({ issuer: str, clientId: str, scopes: z.array(str), groupsClaim: str, usernameClaim: str }).optional(),
  ldap: o({
    url: str, startTls: z.boolean(), caPem: str, userDn: str, userSearchBase: str, userSearchFilter: str, bindDn: str, groupSearchBase: str,
    groupSearchFilter: str, groupNameAttribute: str, mailAttribute: str,
  }).optional(),
  mappings: z.array(ssoMapping), allowedDomains: z.array(str), createdAt: num, updatedAt: num, updatedBy: str, secretSet: z.boolean(),
});

/** The success body of each route that answers JSON, keyed like ROUTE_DOCS. */
export const RESPONSES: Record<string, z.ZodType> = {
  'GET /v1/ping': o({ ok: z.boolean(), version: str, ingressPort: num, ingressBackendUpdates: o({ mode: z.enum(['lua', 'reload']), reason: str.optional() }).optional() }),
  'GET /v1/openapi.json': z.record(str, z.unknown()),
  'POST /v1/apps/:app/deployments': z.union([o({ deployment: deploymentView }), o({ valid: z.literal(true) }), pendingApproval]),
  'GET /v1/deployments/:id': deploymentState,
  'GET /v1/apps': o({ apps: z.array(o({
    name: str, envs: z.array(str), services: z.array(serviceStatus),
    lastDeployment: o({ id: str, env: str, status: str, message: str, createdAt: num }).optional(),
  })) }),
  'GET /v1/apps/:app': o({ app: str, services: z.array(serviceStatus) }),
  'GET /v1/apps/:app/releases': o({ releases: z.array(releaseView) }),
  'GET /v1/apps/:app/releases/:id': o({ release: releaseRecord, events: z.array(eventRecord) }),
  'POST /v1/apps/:app/scale': z.union([change, o({ scaled: z.array(change) })]),
  'POST /v1/apps/:app/rollback': o({ rollbacks: z.array(o({ service: str, to: num, release: str })) }),
  'POST /v1/apps/:app/reload': o({ service: str, requestedAt: num }),
  'POST /v1/apps/:app/restart': o({ restarts: z.array(o({ service: str, from: num, release: num, id: str })) }),
  'POST /v1/apps/:app/instances/:instance/restart': o({ instance: str, service: str, requestedAt: num }),
  'POST /v1/apps/:app/failover': o({ service: str, env: str, from: str, to: str, volumes: z.array(str), instances: z.array(str) }),
  'POST /v1/apps/:app/promote': z.union([o({ deployment: o({ id: str, app: str, env: str, from: str }), images: z.record(str, str) }), pendingApproval]),
  'DELETE /v1/apps/:app': z.union([
    o({ removed: z.array(str), remains: appRemains }),
    o({ purge: purgeRecord, removed: z.array(str), remains: appRemains }),
  ]),
  'GET /v1/apps/:app/purge': o({ purge: purgeRecord }),
  'GET /v1/apps/:app/logs': o({ lines: z.array(logLine), next: str.optional() }),
  'GET /v1/events': o({ events: z.array(eventRecord), last: num }),
  'GET /v1/apps/:app/config': o({ app: str, env: str, version: num, entries: z.array(configEntry) }),
  'GET /v1/apps/:app/config/:key': o({ app: str, env: str, entry: configEntry }),
  'PUT /v1/apps/:app/config': configWrite,
  'DELETE /v1/apps/:app/config': configWrite,
  'GET /v1/apps/:app/config-history': o({ app: str, env: str, versions: z.array(o({ version: num, who: str, at: num, changes: z.array(configChange) })) }),
  'GET /v1/builds': o({ builds: z.array(buildView) }),
  'GET /v1/builds/:id': o({ build: buildView }),
  'POST /v1/builds/:id/cancel': o({ build: buildView }),
  'GET /v1/top': topView,
  'PUT /v1/alerts/:name': o({ name: str, rule: alertView.shape.rule }),
  'GET /v1/alerts': o({ alerts: z.array(alertView) }),
  'PUT /v1/templates/:name': o({ name: str, dest: str }),
  'GET /v1/templates': o({ templates: z.array(templateRecord) }),
  'GET /v1/registry': o({ index: num, entries: z.array(registryEntry) }),
  'GET /v1/approvals': o({ approvals: z.array(approvalView) }),
  'POST /v1/approvals/:id/approve': o({ approval: approvalView, status: num, result: z.unknown() }),
  'POST /v1/approvals/:id/deny': o({ approval: approvalView }),
  'GET /v1/teams/:team/policies': o({ policies: z.array(envPolicy) }),
  'PUT /v1/teams/:team/policies/:env': envPolicy,
  'POST /v1/session': z.union([o({ user: str, expiresAt: num, token: str, provider: str.optional() }), o({ user: str, expiresAt: num, csrf: str, provider: str.optional() })]),
  'GET /v1/sso/providers': o({ providers: z.array(ssoProviderView) }),
  'PUT /v1/sso/providers/:name': o({ provider: ssoProviderView }),
  'DELETE /v1/sso/providers/:name': o({ name: str, grantsRevoked: num, sessionsEnded: num }),
  'GET /v1/sso/options': o({ providers: z.array(o({ name: str, kind: z.enum(['oidc', 'ldap']), displayName: str })) }),
  'POST /v1/sso/cli-session': o({ user: str, token: str, expiresAt: num }),
  'GET /v1/policies': o({
    layers: z.array(policyLayer),
    effective: o({ team: str, env: str, policy: guardPolicySchema.required(), from: z.record(str, str), shown: z.record(str, str) }).optional(),
  }),
  'PUT /v1/policies': o({ layer: policyLayer }),
  'GET /v1/exemptions': o({ exemptions: z.array(exemptionView) }),
  'POST /v1/exemptions': o({ exemption: exemptionView }),
  'DELETE /v1/exemptions/:id': o({ exemption: exemptionView, revoked: z.boolean() }),
  'GET /v1/session': o({
    subject: str, name: str, kind: z.enum(['admin', 'user', 'token']), via: z.enum(['admin-token', 'session', 'cookie', 'api-token', 'approval']),
    // A person's grants as stored; a token's or the admin's as scopes only.
    grants: z.array(z.union([grantRecord, scope])),
  }),
  'DELETE /v1/session': o({ loggedOut: z.boolean() }),
  'GET /v1/users': o({ users: z.array(o({ name: str, createdAt: num, createdBy: str, grants: z.array(grantRecord), sso: str.optional() })) }),
  'POST /v1/users': o({ name: str, password: str.optional() }),
  'PUT /v1/users/:name/password': o({ name: str, sessionsEnded: num }),
  'POST /v1/portal/codes': o({ code: str, expiresAt: num, path: str }),
  'POST /v1/portal/session': o({ user: str, expiresAt: num, csrf: str }),
  'GET /v1/audit': o({ entries: z.array(auditEntry) }),
  'GET /v1/audit/verify': auditVerification,
  'GET /v1/teams': o({ teams: z.array(o({ name: str, createdAt: num, createdBy: str, apps: z.array(str) })) }),
  'POST /v1/teams': o({ name: str }),
  'PUT /v1/teams/:team/apps/:app': o({ app: str, team: str, previous: str.optional() }),
  'GET /v1/grants': o({ grants: z.array(grantView) }),
  'POST /v1/grants': o({ grant: grantView }),
  'GET /v1/tokens': o({ tokens: z.array(o(tokenFields)) }),
  'POST /v1/tokens': o({ token: str, ...tokenFields }),
  'DELETE /v1/tokens/:id': o({ id: str, revoked: z.boolean(), message: str.optional() }),
  'GET /v1/certs': o({ certs: z.array(certView) }),
  'PUT /v1/certs/:host': certView,
  'POST /v1/certs/:host/renew': certView,
  'GET /v1/volumes': o({ volumes: z.array(volumeView) }),
  'GET /v1/hosts': o({ mode: z.enum(['single', 'swarm']), hosts: z.array(hostView) }),
  'PUT /v1/hosts/:host/labels': o({ host: hostView }),
  'POST /v1/hosts/:host/drain': o({ host: hostView }),
  'POST /v1/cluster/init': o({ mode: z.enum(['single', 'swarm']), hosts: z.array(hostView) }),
  'GET /v1/edge/config': o({
    epoch: str, generation: num, routes: z.array(edgeRoute),
    certs: z.array(o({ host: str, fingerprint: str, certPem: str, keyPem: str })).optional(), certsWithheld: str.optional(),
    challenges: z.array(o({ token: str, keyAuthorization: str })).optional(),
    unreachable: z.array(o({ address: str, port: num, at: num })).optional(),
  }),
  'GET /v1/edge/hosts': o({ epoch: str, generation: num, hosts: z.array(edgeHost) }),
  'POST /v1/edge/tokens': o({ host: str, token: str, control: str, command: str, steps: z.array(str), unit: str }),
  'GET /v1/pools': o({ pools: z.array(poolView) }),
  'PUT /v1/pools/:pool/quota': o({ pool: poolView, before: poolQuota }),
  'POST /v1/pools/:pool/grants/:team': o({ pool: poolView, team: str, granted: z.boolean() }),
  'DELETE /v1/pools/:pool/grants/:team': o({ pool: poolView, team: str, revoked: z.boolean() }),
  'GET /v1/cluster/join': o({ token: str, managers: z.array(str), command: str, steps: z.array(str) }),
  'GET /v1/registry-logins': o({ logins: z.array(registryLogin) }),
  'PUT /v1/registry-logins/:host': o({ login: registryLogin }),
  'GET /v1/images': imageList,
  'POST /v1/images/gc': gcReport,
  'GET /v1/metrics/query': o({ kind: str, from: num, to: num, resolutionMs: num, stepMs: num, series: z.array(metricSeries) }),
  'PUT /v1/apps/:app/source': o({ app: str, remote: str, secret: str, webhooks: z.array(str) }),
  // A push that builds (its build's id), or a delivery that was received and is not acted on.
  'POST /v1/hooks/:provider/:app': z.union([o({ accepted: z.literal(true), app: str, branch: str, commit: str, build: str }), o({ ignored: str })]),
  'GET /v1/registry/:env/:service': o({ index: num, service: str, env: str, app: str.optional(), instances: z.array(registryEntry) }),
  'POST /v1/registry/:env/:service': o({ id: str, key: str }),
  'PUT /v1/registry/external/:id/heartbeat': o({ id: str, ttlMs: num.nullable() }),
};

/** The messages of each server-sent event stream: `event: NAME` → its `data`. */
export const STREAM_MESSAGES: Record<string, Record<string, z.ZodType>> = {
  'GET /v1/events/stream': { '(event kind)': eventRecord },
  'GET /v1/deployments/:id/stream': { event: eventRecord, state: deploymentState },
  'GET /v1/apps/:app/stream': { event: eventRecord, state: o({ app: str, services: z.array(serviceStatus) }) },
  'GET /v1/apps/:app/purge/stream': { state: o({ purge: purgeRecord }) },
};

// The schemas and the wire types must agree both ways: a field added to one and not the other fails `tsc`.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const agree = <T extends true>(..._: T[]) => undefined;
agree<Same<z.infer<typeof checkResult>, CheckResult>>();
agree<Same<z.infer<typeof crashRecord>, CrashRecord>>();
agree<Same<z.infer<typeof instanceStatus>, InstanceStatus>>();
agree<Same<z.infer<typeof serviceStatus>, ServiceStatus>>();
agree<Same<z.infer<typeof eventRecord>, EventRecord>>();
agree<Same<z.infer<typeof appRemains>, AppRemains>>();
agree<Same<z.infer<typeof purgeRecord>, PurgeRecord>>();
agree<Same<z.infer<typeof configEntry>, ConfigEntryView>>();
agree<Same<z.infer<typeof buildView>, BuildView>>();
agree<Same<z.infer<typeof templateRecord>, TemplateRecord>>();
agree<Same<z.infer<typeof releaseView>, ReleaseView>>();
agree<Same<z.infer<typeof logLine>, StoredLine>>();
agree<Same<z.infer<typeof alertView>, AlertView>>();
agree<Same<z.infer<typeof registryEntry>, RegistryEntryView>>();
agree<Same<z.infer<typeof topView>, TopView>>();
agree<Same<z.infer<typeof role>, (typeof ROLES)[number]>>();
agree<Same<z.infer<typeof grantRecord>, Grant>>();
agree<Same<z.infer<typeof scope>, Principal['grants'][number]>>();
agree<Same<z.infer<typeof auditEntry>, AuditEntry>>();
agree<Same<z.infer<typeof auditVerification>, AuditVerification>>();
agree<Same<z.infer<typeof certView>, CertView>>();
agree<Same<z.infer<typeof volumeView>, VolumeView>>();
agree<Same<z.infer<typeof hostView>, HostInfo>>();
agree<Same<z.infer<typeof poolView>, PoolView>>();
agree<Same<z.infer<typeof ssoProviderView>, SsoProviderView>>();
agree<Same<z.infer<typeof imageList>, ImageListView>>();
agree<Same<z.infer<typeof gcReport>, GcReportView>>();
agree<Same<z.infer<typeof metricSeries>, MetricSeriesView>>();
// approvalView spreads its optional parts, so only one way: everything it can answer is declared.
agree<ReturnType<typeof approvalViewOf> extends z.infer<typeof approvalView> ? true : false>();
