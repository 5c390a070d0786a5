/**
 * Typed calls of sessions, users, teams, grants, API tokens, approvals and the audit log. A password
 * or a token only ever travels in a request body or comes back once in an answer. Every type here is
 * the API document's (api-types.ts, `npm run gen:api`).
 */
import { ApiError, target, type BerthClient, type Body, type Ok } from './client.ts';

export type SessionView = Ok<'/v1/session', 'get'>;
export type GrantView = SessionView['grants'][number];
export type UserView = Ok<'/v1/users', 'get'>['users'][number];
export type TeamView = Ok<'/v1/teams', 'get'>['teams'][number];
/** A grant as listed: to a user (`user`) or an API token (`token`). */
export type GrantRecordView = Ok<'/v1/grants', 'get'>['grants'][number];
export type TokenView = Ok<'/v1/tokens', 'get'>['tokens'][number];
export type Role = Body<'/v1/grants', 'post'>['role'];
/** What a grant or a token's scope names: a role on a team (and optionally one app and environment). */
export interface Scope {
  role: Role;
  team: string;
  app?: string;
  env?: string;
}

/** `berth login`: a bearer session token for the CLI. */
export async function login(c: BerthClient, user: string, password: string) {
  const r = await c.call('post', '/v1/session', { body: { user, password, client: 'cli' } });
  if (!('token' in r)) throw new ApiError(200, 'bad_response', 'the server answered a CLI login without a token');
  return r;
}

export function whoami(c: BerthClient) {
  return c.call('get', '/v1/session', {});
}

export function logout(c: BerthClient) {
  return c.call('delete', '/v1/session', {});
}

export function listUsers(c: BerthClient) {
  return c.call('get', '/v1/users', {});
}

/** Without a password the server makes one and returns it (once). */
export function addUser(c: BerthClient, name: string, password?: string) {
  return c.call('post', '/v1/users', { body: { name, ...(password !== undefined ? { password } : {}) } });
}

export function removeUser(c: BerthClient, name: string) {
  return c.call('delete', '/v1/users/{name}', { path: { name } });
}

export function setPassword(c: BerthClient, name: string, password: string) {
  return c.call('put', '/v1/users/{name}/password', { path: { name }, body: { password } });
}

export function listTeams(c: BerthClient) {
  return c.call('get', '/v1/teams', {});
}
export function addTeam(c: BerthClient, name: string) {
  return c.call('post', '/v1/teams', { body: { name } });
}
export function removeTeam(c: BerthClient, team: string) {
  return c.call('delete', '/v1/teams/{team}', { path: { team } });
}
export function assignApp(c: BerthClient, team: string, app: string) {
  return c.call('put', '/v1/teams/{team}/apps/{app}', { path: { team, app } });
}
export function unassignApp(c: BerthClient, team: string, app: string) {
  return c.call('delete', '/v1/teams/{team}/apps/{app}', { path: { team, app } });
}
export function listGrants(c: BerthClient, filter: { team?: string; user?: string } = {}) {
  return c.call('get', '/v1/grants', { query: filter });
}
export function addGrant(c: BerthClient, user: string, scope: Scope) {
  return c.call('post', '/v1/grants', { body: { user, ...scope } });
}
export function removeGrant(c: BerthClient, id: string) {
  return c.call('delete', '/v1/grants/{id}', { path: { id } });
}
export function listTokens(c: BerthClient) {
  return c.call('get', '/v1/tokens', {});
}
/** The answer's `token` is the secret: shown once, never again. */
export function createToken(c: BerthClient, name: string, grants: Scope[], expires?: string) {
  return c.call('post', '/v1/tokens', { body: { name, grants, ...(expires ? { expires } : {}) } });
}
export function revokeToken(c: BerthClient, id: string) {
  return c.call('delete', '/v1/tokens/{id}', { path: { id } });
}

/** An audit log entry as the API answers it. */
export type AuditEntryView = Ok<'/v1/audit', 'get'>['entries'][number];

export interface AuditFilterArgs {
  actor?: string;
  app?: string;
  action?: string;
  since?: number;
  until?: number;
  limit?: number;
}

export function audit(c: BerthClient, f: AuditFilterArgs = {}) {
  return c.call('get', '/v1/audit', { query: f });
}

/** The address of the audit log as JSON lines, one entry per line (an export; a browser link). */
export function auditJsonlPath(f: AuditFilterArgs = {}): string {
  return target('/v1/audit', { query: { ...f, format: 'jsonl' } });
}

/** JSON lines, one entry per line (an export). */
export async function auditJsonl(c: BerthClient, f: AuditFilterArgs = {}): Promise<string> {
  const res = await c.raw('GET', auditJsonlPath(f));
  const text = await res.text();
  if (!res.ok) {
    const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error ?? {};
    throw new ApiError(res.status, e.code ?? 'error', e.message ?? `HTTP ${res.status}`);
  }
  return text;
}

export function auditVerify(c: BerthClient) {
  return c.call('get', '/v1/audit/verify', {});
}

export type ApprovalView = Ok<'/v1/approvals', 'get'>['approvals'][number];
export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'failed';

export function listApprovals(c: BerthClient, status?: ApprovalStatus) {
  return c.call('get', '/v1/approvals', { query: { status } });
}
/** Approving carries the request out as its requester: `status`/`result` are what it answered. */
export function approve(c: BerthClient, id: string) {
  return c.call('post', '/v1/approvals/{id}/approve', { path: { id } });
}
export function deny(c: BerthClient, id: string) {
  return c.call('post', '/v1/approvals/{id}/deny', { path: { id } });
}
export function setPolicy(c: BerthClient, team: string, env: string, requireApproval: boolean) {
  return c.call('put', '/v1/teams/{team}/policies/{env}', { path: { team, env }, body: { requireApproval } });
}
export function listPolicies(c: BerthClient, team: string) {
  return c.call('get', '/v1/teams/{team}/policies', { path: { team } });
}

/** A single sign-on provider as owners see it (the secret only as `secretSet`). */
export type { SsoProviderView } from '../core/sso.ts';

/** `berth sso list`. */
export function ssoProviders(c: BerthClient) {
  return c.call('get', '/v1/sso/providers', {});
}

/** `berth sso set`: the body of a provider (core/sso.ts providerBodySchema); a secret left out keeps the stored one. */
export function putSsoProvider(c: BerthClient, name: string, body: Record<string, unknown>) {
  // Assembled by `berth sso set` from flags and files: the server checks it field by field.
  return c.call('put', '/v1/sso/providers/{name}', { path: { name }, body: body as Body<'/v1/sso/providers/{name}', 'put'> });
}

export function removeSsoProvider(c: BerthClient, name: string) {
  return c.call('delete', '/v1/sso/providers/{name}', { path: { name } });
}

/** The enabled providers, as the login page shows them (no credential needed). */
export function ssoOptions(c: BerthClient) {
  return c.call('get', '/v1/sso/options', {});
}

/** Where a browser starts an OIDC login: for the portal (`back`: a path) or for a CLI waiting on 127.0.0.1:`port`. */
export function ssoStartPath(name: string, o: { returnTo?: string; port?: number; challenge?: string }): string {
  const q = new URLSearchParams();
  if (o.returnTo) q.set('return', o.returnTo);
  if (o.port !== undefined) q.set('port', String(o.port));
  if (o.challenge) q.set('challenge', o.challenge);
  const s = q.toString();
  return `/v1/sso/${encodeURIComponent(name)}/start${s ? `?${s}` : ''}`;
}

/** `berth login --sso`: spends the code the callback handed to the CLI, with the verifier behind its challenge. */
export function ssoCliSession(c: BerthClient, code: string, verifier: string) {
  return c.call('post', '/v1/sso/cli-session', { body: { code, verifier } });
}
