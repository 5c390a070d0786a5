/**
 * The API as a contract: an OpenAPI 3.1 document of every route the server registered, generated
 * from the routes' zod schemas (`z.toJSONSchema`) and the one table below. `buildApi` records each
 * route as fastify registers it (an onRoute hook) and serves the document at `GET /v1/openapi.json`
 * (authenticated like every route: the portal and other clients hold a token). A route missing from
 * ROUTE_DOCS still appears (with a generic operation); the unit test refuses that, so a new route
 * cannot ship undocumented.
 */
import { z } from 'zod';
import {
  appSpecSchema, appStreamQuery, deployBodySchema, followQuery, eventsQuery, eventsStreamQuery, execBodySchema, failoverBodySchema, instanceRestartBodySchema, logsQuery, reloadBodySchema, restartBodySchema, rollbackBodySchema,
  scaleBodySchema,
} from './spec-schema.ts';
import { body as alertBody } from './alert-routes.ts';
import { uploadBody as certUploadBody } from './cert-routes.ts';
import { body as templateBody } from './template-routes.ts';
import { envQuery, getQuery, setBody, unsetBody } from './config-routes.ts';
import { gcBody, listQuery as imageListQuery } from './image-routes.ts';
import { loginBody as registryLoginBody } from './registry-login-routes.ts';
import { bodySchema as promoteBody } from './promote-routes.ts';
import { registerBody } from './registry-routes.ts';
import { removeQuery } from './remove-routes.ts';
import { volumesQuery } from './volume-routes.ts';
import { edgeConfigQuery, edgeTokenBody } from './edge-routes.ts';
import { quotaBodyDoc } from './pool-routes.ts';
import { drainBody, initBody, joinQuery, labelsBody, removeQuery as hostRemoveQuery } from './host-routes.ts';
import { loginBody, passwordBody, userBody } from './auth-routes.ts';
import { auditQueryDoc } from './audit.ts';
import { approvalsQuery, policyBody } from './approval-routes.ts';
import { exemptionBody, exemptionsQuery, policyQuery, policySetBody } from './policy-routes.ts';
import { grantBody, grantsQuery, teamBody, tokenBody } from './team-routes.ts';
import { exchangeBody } from './portal-routes.ts';
import { cliSessionBody, providerBodySchema, startQuery } from './sso-routes.ts';
import { sourceBody } from './webhook-routes.ts';
import { metricsQuery } from './metrics-routes.ts';
import { RESPONSES, STREAM_MESSAGES } from './responses.ts';

/**
 * How a route is authorized: the bearer token (every route but these), the pre-receive hook's token, a
 * webhook signature, a one-time login code (the portal's exchange), an edge host's token (edge-routes.ts), or nobody (login, the portal's files).
 */
export type RouteAuth = 'token' | 'hook' | 'signature' | 'code' | 'public' | 'edge';

export interface RouteDoc {
  summary: string;
  /** The JSON body, validated by this schema. */
  body?: z.ZodType;
  /** The query string, validated by this object schema. */
  query?: z.ZodObject;
  /** Default: the bearer token. */
  auth?: RouteAuth;
  /** The success status (default 200) and content type (default application/json). */
  status?: number;
  contentType?: string;
}

/** Every route of the API, keyed `METHOD /path` exactly as registered with fastify. */
export const ROUTE_DOCS: Record<string, RouteDoc> = {
  'POST /v1/session': { summary: 'Log in: a cookie session and CSRF token (portal) or a bearer session token (client: cli)', body: loginBody, status: 201, auth: 'public' },
  'GET /v1/session': { summary: 'Who the caller is and the grants they hold' },
  'DELETE /v1/session': { summary: 'Log out (end this session)' },
  'GET /v1/sso/providers': { summary: 'Single sign-on providers (OpenID Connect, LDAP) with their group → team mappings; secrets only as whether one is set (owners)' },
  'PUT /v1/sso/providers/:name': { summary: 'Create (201) or replace a single sign-on provider; a secret left out keeps the stored one (owners)', body: providerBodySchema },
  'DELETE /v1/sso/providers/:name': { summary: 'Remove a provider: the grants it gave go, the sessions of its users end (owners)' },
  'GET /v1/sso/options': { summary: 'The enabled providers, for the login page', auth: 'public' },
  'GET /v1/sso/:name/start': { summary: 'Start an OpenID Connect login: a redirect (302) to the provider; ?return=PATH for the portal, ?port&challenge for `berth login --sso`', query: startQuery, status: 302, auth: 'public' },
  'GET /v1/sso/:name/callback': { summary: "The provider's redirect back: a cookie session and a redirect to the portal, or a one-time code to the waiting CLI (302)", status: 302, auth: 'public' },
  'POST /v1/sso/cli-session': { summary: "`berth login --sso`: spend the one-time code with the CLI's verifier for a bearer session", body: cliSessionBody, status: 201, auth: 'public' },
  'GET /v1/users': { summary: 'Users and their grants (owners)' },
  'POST /v1/users': { summary: 'Add a user (owners); without a password one is generated and shown once', body: userBody, status: 201 },
  'DELETE /v1/users/:name': { summary: 'Remove a user, their sessions, grants and tokens (owners)', status: 204 },
  'GET /v1/teams': { summary: 'Teams the caller has a role in (owners: all), with the apps they own' },
  'POST /v1/teams': { summary: 'Make a team (owners)', body: teamBody, status: 201 },
  'DELETE /v1/teams/:team': { summary: 'Remove a team that owns no app, with its grants (owners)', status: 204 },
  'PUT /v1/teams/:team/apps/:app': { summary: 'Give an app to a team (owners)' },
  'DELETE /v1/teams/:team/apps/:app': { summary: 'Take an app from its team: only owners may touch it then (owners)', status: 204 },
  'GET /v1/grants': { summary: 'Grants the caller may see: their own, those of teams they administer (owners: all)', query: grantsQuery },
  'POST /v1/grants': { summary: 'Give a user a role on a team, app and environment (owners; team admins within what they hold)', body: grantBody, status: 201 },
  'DELETE /v1/grants/:id': { summary: 'Take a role away', status: 204 },
  'GET /v1/tokens': { summary: "The caller's API tokens (owners: all); never their secrets" },
  'POST /v1/tokens': { summary: 'Make a scoped, expiring API token out of roles the caller holds; its secret is shown once', body: tokenBody, status: 201 },
  'DELETE /v1/tokens/:id': { summary: 'Revoke an API token' },
  'GET /v1/approvals': { summary: 'Deploys and promotions waiting for (or decided by) a second person, of apps the caller sees', query: approvalsQuery },
  'POST /v1/approvals/:id/approve': { summary: 'Approve (a second person who deploys there): the request is carried out as its requester' },
  'POST /v1/approvals/:id/deny': { summary: 'Deny a pending deploy or promotion' },
  'GET /v1/teams/:team/policies': { summary: "A team's environment policies" },
  'GET /v1/policies': { summary: 'Container guardrail policies: the layers the caller sees, and (with team, env or app) what applies there and from which layer', query: policyQuery },
  'PUT /v1/policies': { summary: 'Set a guardrail policy layer (a new version): owners any; team admins tighten their team\'s', body: policySetBody },
  'GET /v1/exemptions': { summary: 'Guardrail exemptions of the apps the caller sees (active, expired, revoked)', query: exemptionsQuery },
  'POST /v1/exemptions': { summary: 'Exempt one key of an app (or service) in one environment from the guardrails: reasoned, expiring (the app\'s admins there)', body: exemptionBody },
  'DELETE /v1/exemptions/:id': { summary: 'Revoke an exemption (running containers keep running; the next deploy is checked)' },
  'PUT /v1/teams/:team/policies/:env': { summary: 'Require (or not) a second person for deploys and promotions to an environment (team admins)', body: policyBody },
  'GET /v1/audit': { summary: 'The audit log, oldest first within the page (owners); ?format=jsonl: JSON lines', query: auditQueryDoc },
  'GET /v1/audit/verify': { summary: "Check the audit log's hash chain: the first edited, removed or inserted row (owners)" },
  'PUT /v1/users/:name/password': { summary: "Set a user's password (owners); ends their sessions", body: passwordBody },
  'GET /v1/ping': { summary: 'Server version and ingress port' },
  'GET /v1/openapi.json': { summary: 'This document' },
  'POST /v1/apps/:app/deployments': { summary: 'Deploy an app spec to an environment (?dry_run=true: validate only)', body: deployBodySchema, status: 202 },
  'GET /v1/deployments/:id': { summary: 'A deployment and the status of its services' },
  'GET /v1/deployments/:id/stream': {
    summary: 'A deployment as it goes: its events (`event`) and its state on each change (`state`) as server-sent events; ends after its outcome',
    query: followQuery, contentType: 'text/event-stream',
  },
  'GET /v1/apps': { summary: 'Every app with its services and its last deployment' },
  'GET /v1/apps/:app': { summary: "An app's services (optionally of one environment)", query: z.object({ env: z.string().optional() }) },
  'GET /v1/apps/:app/stream': {
    summary: "An app's events (`event`) and services on each change (`state`) as server-sent events, until the client closes",
    query: appStreamQuery, contentType: 'text/event-stream',
  },
  'GET /v1/apps/:app/releases': { summary: "An app's releases", query: z.object({ env: z.string().optional(), service: z.string().optional() }) },
  'GET /v1/apps/:app/releases/:id': { summary: 'One release and the events of its rollout' },
  'POST /v1/apps/:app/scale': { summary: 'Scale one service or several (all or nothing)', body: scaleBodySchema, status: 202 },
  'POST /v1/apps/:app/rollback': { summary: 'Roll services back to a previous release', body: rollbackBodySchema, status: 202 },
  'POST /v1/apps/:app/reload': { summary: 'Ask a service to reload (its update signal)', body: reloadBodySchema, status: 202 },
  'POST /v1/apps/:app/restart': { summary: 'Restart services: new releases with the same spec and image', body: restartBodySchema, status: 202 },
  'POST /v1/apps/:app/instances/:instance/restart': {
    summary: 'Restart one instance: a new one replaces it (start-first under rolling and blue-green), the others are untouched', body: instanceRestartBodySchema, status: 202,
  },
  'POST /v1/apps/:app/failover': {
    summary: 'Move a stateful service (pinned to its host by named volumes) to another host; its volumes start empty there', body: failoverBodySchema, status: 202,
  },
  'POST /v1/apps/:app/exec': { summary: "Run a command in an instance's container (NDJSON frames)", body: execBodySchema, contentType: 'application/x-ndjson' },
  'POST /v1/apps/:app/promote': { summary: "Deploy one environment's releases to another", body: promoteBody, status: 202 },
  'DELETE /v1/apps/:app': { summary: "Remove an app's services (?purge=true: everything Berth keeps of it)", query: removeQuery, status: 202 },
  'GET /v1/apps/:app/purge': { summary: 'The state of a purge' },
  'GET /v1/apps/:app/purge/stream': { summary: 'A purge as it goes: its record on each change (server-sent `state` events) until done', contentType: 'text/event-stream' },
  'GET /v1/apps/:app/logs': { summary: "Search an app's logs, newest first (?follow=true: NDJSON tail)", query: logsQuery },
  'GET /v1/events': { summary: 'The event timeline', query: eventsQuery },
  'GET /v1/events/stream': { summary: 'The event timeline as server-sent events', query: eventsStreamQuery, contentType: 'text/event-stream' },
  'GET /v1/apps/:app/config': { summary: 'Config values and secrets of app/env (secrets hidden)', query: envQuery },
  'PUT /v1/apps/:app/config': { summary: 'Set config values or secrets', body: setBody },
  'DELETE /v1/apps/:app/config': { summary: 'Unset config keys', body: unsetBody },
  'GET /v1/apps/:app/config/:key': { summary: 'One config entry (?reveal=true shows a secret)', query: getQuery },
  'GET /v1/apps/:app/config-history': { summary: "The versions of app/env's config", query: envQuery },
  'PUT /v1/apps/:app/source': { summary: 'Connect a git remote and webhook secret to the app', body: sourceBody },
  'POST /v1/hooks/:provider/:app': { summary: 'Webhook of a git host (GitHub, Gitea, GitLab): build the pushed commit', auth: 'signature', status: 202 },
  'GET /git/*': { summary: "Git smart HTTP: clone or fetch an app's repository", contentType: 'application/octet-stream' },
  'POST /git/*': { summary: "Git smart HTTP: push to an app's repository (builds and deploys)", contentType: 'application/octet-stream' },
  'POST /v1/git/hooks/pre-receive': { summary: "The repository's pre-receive hook: build and deploy a push", auth: 'hook', contentType: 'text/plain' },
  'GET /v1/builds': { summary: 'Builds, newest first', query: z.object({ app: z.string().optional(), limit: z.coerce.number().int().min(1).max(1000).default(50) }) },
  'GET /v1/builds/:id': { summary: 'One build' },
  'POST /v1/builds/:id/cancel': { summary: 'Cancel a build' },
  'GET /v1/builds/:id/logs': { summary: "A build's log (?follow=true: until it ends)", query: z.object({ follow: z.enum(['true', 'false', '1', '0']).optional() }), contentType: 'text/plain' },
  'GET /v1/images': { summary: "Images in Berth's registry and why each is kept", query: imageListQuery },
  'POST /v1/images/gc': { summary: 'Collect images the retention rule does not keep', body: gcBody },
  'GET /v1/registry-logins': { summary: 'Private image registries Berth has credentials for: hosts and users, never passwords' },
  'PUT /v1/registry-logins/:host': { summary: "Store (sealed) the credentials of an image registry for deployments' pulls", body: registryLoginBody },
  'DELETE /v1/registry-logins/:host': { summary: "Forget an image registry's credentials", status: 204 },
  'GET /v1/volumes': { summary: 'Named volumes of apps: size and who mounts them', query: volumesQuery },
  'GET /v1/hosts': { summary: 'Hosts: one-host or Swarm mode; address, pool, labels, state, capacity, reservations, instances' },
  'PUT /v1/hosts/:host/labels': { summary: "Set or remove a host's labels (io.berth.pool: its pool)", body: labelsBody },
  'POST /v1/hosts/:host/drain': { summary: 'Drain a host (nothing new lands; Berth moves its instances), or make it ready again', body: drainBody },
  'DELETE /v1/hosts/:host': { summary: 'Remove a host that is down or drained (?force=true: anyway)', query: hostRemoveQuery, status: 204 },
  'POST /v1/cluster/init': { summary: "Cluster mode: make this engine's host the manager of a new Swarm", body: initBody },
  'GET /v1/pools': { summary: 'Pools: hosts, capacity, reservations, desired usage, quota, granted teams (non-owners: the pools open to them)' },
  'PUT /v1/pools/:pool/quota': { summary: "Set a pool's quota (cpus, memory, instances; null removes one, absent keeps it); makes the pool", body: quotaBodyDoc },
  'POST /v1/pools/:pool/grants/:team': { summary: 'Grant a team (or * for every team) the pool: its apps may deploy there', status: 201 },
  'DELETE /v1/pools/:pool/grants/:team': { summary: "Revoke a team's grant of the pool (running apps stay; new deploys and growth are refused)" },
  'GET /v1/cluster/join': { summary: 'What a new host runs to join (the join token is a credential)', query: joinQuery },
  'GET /v1/edge/config': { summary: "An edge agent's long poll: the edge route table once it differs from the generation the agent serves (its host's edge token)", query: edgeConfigQuery, auth: 'edge' },
  'GET /v1/edge/hosts': { summary: 'Edge hosts: the generation each one serves and its last contact' },
  'POST /v1/edge/tokens': { summary: "An edge host's token (a credential for its edge config only) and the systemd unit of its agent (owners)", body: edgeTokenBody, status: 201 },
  'GET /metrics': { summary: 'Prometheus metrics of the server and the instances', contentType: 'text/plain' },
  'GET /v1/metrics/query': { summary: 'A metric series over a time range', query: metricsQuery },
  'GET /v1/top': { summary: 'CPU and memory of every instance now', query: z.object({ app: z.string().optional(), env: z.string().optional() }) },
  'PUT /v1/alerts/:name': { summary: 'Create or replace an alert rule', body: alertBody },
  'GET /v1/alerts': { summary: 'Alert rules and their states' },
  'DELETE /v1/alerts/:name': { summary: 'Delete an alert rule', status: 204 },
  'GET /v1/certs': { summary: "Certificates of routes' hosts: source, issuer, expiry, status" },
  'PUT /v1/certs/:host': { summary: 'Upload a certificate and key for a host (checked: key matches, covers the host, current)', body: certUploadBody },
  'DELETE /v1/certs/:host': { summary: "Remove a host's certificate (ACME gets a new one if a route still asks)", status: 204 },
  'POST /v1/certs/:host/renew': { summary: 'Renew an ACME certificate now', status: 202 },
  'PUT /v1/templates/:name': { summary: 'Create or replace a config template', body: templateBody },
  'GET /v1/templates': { summary: 'Config templates and their last render' },
  'DELETE /v1/templates/:name': { summary: 'Delete a config template', status: 204 },
  'GET /v1/registry': { summary: 'The whole service registry and its index' },
  'GET /v1/registry/:env/:service': { summary: "A service's healthy instances (?index=&wait=: long poll; ?app=: one app's)",
    query: z.object({ index: z.coerce.number().int().min(0).optional(), wait: z.string().optional(), app: z.string().optional() }) },
  'GET /v1/registry/:env/:service/stream': { summary: "A service's healthy instances as server-sent events", query: z.object({ app: z.string().optional() }),
    contentType: 'text/event-stream' },
  'POST /v1/registry/:env/:service': { summary: 'Register an external endpoint (with an optional check)', body: registerBody, status: 201 },
  'PUT /v1/registry/external/:id/heartbeat': { summary: "An external endpoint's heartbeat" },
  'DELETE /v1/registry/external/:id': { summary: 'Deregister an external endpoint', status: 204 },
  'POST /v1/portal/codes': { summary: 'A one-time login link to the web portal for the caller (works once, for 5 minutes; not for API tokens)', status: 201 },
  'POST /v1/portal/session': { summary: "Exchange a login link's code for a cookie session (and its CSRF token)", body: exchangeBody, auth: 'code', status: 201 },
  'GET /': { summary: 'The web portal', auth: 'public', contentType: 'text/html' },
  'GET /*': { summary: "The web portal's files; a client-side route answers with the portal's page", auth: 'public', contentType: 'text/html' },
};

export interface RegisteredRoute {
  method: string;
  url: string;
}

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', enum: ['invalid_spec', 'invalid_input', 'unauthorized', 'forbidden', 'not_found', 'conflict', 'engine_unavailable', 'internal'] },
        message: { type: 'string', description: 'What is wrong and what would be right (a field path for invalid input)' },
        details: {},
      },
    },
  },
};

/**
 * A zod schema as JSON Schema: the input side for what a client sends, the output side for what it
 * gets back (refinements and transforms are not representable).
 */
function jsonSchema(s: z.ZodType, io: 'input' | 'output' = 'input'): Record<string, unknown> {
  const out = z.toJSONSchema(s, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

/** `/v1/apps/:app/config/:key` → `/v1/apps/{app}/config/{key}`; fastify's `*` is the parameter `path`. */
export function openApiPath(url: string): { path: string; params: string[] } {
  const params: string[] = [];
  const path = url.split('/').map((seg) => {
    if (seg.startsWith(':')) {
      params.push(seg.slice(1));
      return `{${seg.slice(1)}}`;
    }
    if (seg === '*') {
      params.push('path');
      return '{path}';
    }
    return seg;
  }).join('/');
  return { path, params };
}

/**
 * The body of a route's success answer: its JSON schema (api/responses.ts); for a server-sent event
 * stream, each message's schema by event name under `x-berth-events`; else (text, NDJSON) untyped.
 */
function responseContent(key: string): Record<string, unknown> {
  const body = RESPONSES[key];
  if (body) return { schema: jsonSchema(body, 'output') };
  const stream = STREAM_MESSAGES[key];
  if (stream) {
    return { schema: { type: 'string' }, 'x-berth-events': Object.fromEntries(Object.entries(stream).map(([name, m]) => [name, jsonSchema(m, 'output')])) };
  }
  return { schema: {} };
}

/** The OpenAPI 3.1 document of the registered routes (HEAD routes fastify adds for GETs are left out). */
export function openApiDocument(routes: RegisteredRoute[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const seen = new Set<string>();
  for (const r of routes) {
    const method = r.method;
    {
      if (method === 'HEAD' || seen.has(`${method} ${r.url}`)) continue;
      seen.add(`${method} ${r.url}`);
      const key = `${method} ${r.url}`;
      const doc = ROUTE_DOCS[key];
      const { path, params } = openApiPath(r.url);
      const parameters: Record<string, unknown>[] = params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
      if (doc?.query) {
        const q = jsonSchema(doc.query) as { properties?: Record<string, unknown>; required?: string[] };
        for (const [name, schema] of Object.entries(q.properties ?? {})) {
          parameters.push({ name, in: 'query', required: q.required?.includes(name) ?? false, schema });
        }
      }
      const auth = doc?.auth ?? 'token';
      const status = String(doc?.status ?? 200);
      const op: Record<string, unknown> = {
        operationId: `${method.toLowerCase()}${path.replace(/[{}]/g, '').split(/[^A-Za-z0-9]+/).map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('')}`,
        summary: doc?.summary ?? `${method} ${r.url}`,
        ...(parameters.length ? { parameters } : {}),
        ...(doc?.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(doc.body) } } } } : {}),
        ...(auth === 'token' ? {} : { security: [], 'x-berth-auth': auth }),
        responses: {
          [status]: status === '204' ? { description: 'Done, no body' } : status === '302' ? { description: 'A redirect: see the Location header', headers: { location: { schema: { type: 'string' } } } } : { description: 'OK', content: { [doc?.contentType ?? 'application/json']: responseContent(key) } },
          400: { $ref: '#/components/responses/Error' },
          ...(auth === 'token' ? { 401: { $ref: '#/components/responses/Error' } } : {}),
          404: { $ref: '#/components/responses/Error' },
          409: { $ref: '#/components/responses/Error' },
        },
      };
      (paths[path] ??= {})[method.toLowerCase()] = op;
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Berth API', version, description: 'The HTTP API of `berth server`. Every route needs `Authorization: Bearer TOKEN` unless it says otherwise.' },
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      responses: { Error: { description: 'A client error (4xx) or a server error', content: { 'application/json': { schema: errorSchema } } } },
      schemas: { AppSpec: jsonSchema(appSpecSchema) },
    },
  };
}
