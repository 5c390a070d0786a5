/**
 * Typed calls of sessions, users (and, with issue 14, teams, grants and tokens). A password or a
 * token only ever travels in a request body or comes back once in an answer.
 */
import { ApiError, type BerthClient } from './client.ts';
import type { Grant } from '../core/auth.ts';
import type { AuditEntry } from '../core/audit.ts';

export type GrantView = Pick<Grant, 'role' | 'team' | 'app' | 'env'> & Partial<Grant>;

export interface SessionView {
  subject: string;
  name: string;
  kind: 'admin' | 'user' | 'token';
  via: string;
  grants: GrantView[];
}

export interface UserView {
  name: string;
  createdAt: number;
  createdBy: string;
  grants: GrantView[];
  /** The single sign-on provider that made this user (no Berth password). */
  sso?: string;
}

/** `berth login`: a bearer session token for the CLI. */
export function login(c: BerthClient, user: string, password: string) {
  return c.request<{ user: string; token: string; expiresAt: number }>('POST', '/v1/session', { user, password, client: 'cli' });
}

export function whoami(c: BerthClient) {
  return c.request<SessionView>('GET', '/v1/session');
}

export function logout(c: BerthClient) {
  return c.request<{ loggedOut: boolean }>('DELETE', '/v1/session');
}

export function listUsers(c: BerthClient) {
  return c.request<{ users: UserView[] }>('GET', '/v1/users');
}

/** Without a password the server makes one and returns it (once). */
export function addUser(c: BerthClient, name: string, password?: string) {
  return c.request<{ name: string; password?: string }>('POST', '/v1/users', { name, ...(password !== undefined ? { password } : {}) });
}

export function removeUser(c: BerthClient, name: string) {
  return c.request<Record<string, never>>('DELETE', `/v1/users/${encodeURIComponent(name)}`);
}

export function setPassword(c: BerthClient, name: string, password: string) {
  return c.request<{ name: string; sessionsEnded: number }>('PUT', `/v1/users/${encodeURIComponent(name)}/password`, { password });
}

export interface TeamView {
  name: string;
  createdAt: number;
  createdBy: string;
  apps: string[];
}

export interface GrantRecordView {
  id: string;
  user?: string;
  token?: string;
  role: string;
  team: string;
  app: string;
  env: string;
  createdAt: number;
  createdBy: string;
}

export interface TokenView {
  id: string;
  name: string;
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number;
  lastUsedAt: number;
  grants: GrantView[];
}

export interface Scope {
  role: string;
  team: string;
  app?: string;
  env?: string;
}

export function listTeams(c: BerthClient) {
  return c.request<{ teams: TeamView[] }>('GET', '/v1/teams');
}
export function addTeam(c: BerthClient, name: string) {
  return c.request<{ name: string }>('POST', '/v1/teams', { name });
}
export function removeTeam(c: BerthClient, name: string) {
  return c.request<Record<string, never>>('DELETE', `/v1/teams/${encodeURIComponent(name)}`);
}
export function assignApp(c: BerthClient, team: string, app: string) {
  return c.request<{ app: string; team: string; previous?: string }>('PUT', `/v1/teams/${encodeURIComponent(team)}/apps/${encodeURIComponent(app)}`);
}
export function unassignApp(c: BerthClient, team: string, app: string) {
  return c.request<Record<string, never>>('DELETE', `/v1/teams/${encodeURIComponent(team)}/apps/${encodeURIComponent(app)}`);
}
export function listGrants(c: BerthClient, filter: { team?: string; user?: string } = {}) {
  const q = new URLSearchParams(filter as Record<string, string>).toString();
  return c.request<{ grants: GrantRecordView[] }>('GET', `/v1/grants${q ? `?${q}` : ''}`);
}
export function addGrant(c: BerthClient, user: string, scope: Scope) {
  return c.request<{ grant: GrantRecordView }>('POST', '/v1/grants', { user, ...scope });
}
export function removeGrant(c: BerthClient, id: string) {
  return c.request<Record<string, never>>('DELETE', `/v1/grants/${encodeURIComponent(id)}`);
}
export function listTokens(c: BerthClient) {
  return c.request<{ tokens: TokenView[] }>('GET', '/v1/tokens');
}
/** The answer's `token` is the secret: shown once, never again. */
export function createToken(c: BerthClient, name: string, grants: Scope[], expires?: string) {
  return c.request<TokenView & { token: string }>('POST', '/v1/tokens', { name, grants, ...(expires ? { expires } : {}) });
}
export function revokeToken(c: BerthClient, id: string) {
  return c.request<{ id: string; revoked: boolean }>('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
}

/** An audit log entry as the API answers it (the record itself: core/audit.ts). */
export type AuditEntryView = AuditEntry;

export interface AuditFilterArgs {
  actor?: string;
  app?: string;
  action?: string;
  since?: number;
  until?: number;
  limit?: number;
}

function auditQuery(f: AuditFilterArgs, format?: 'jsonl'): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v !== undefined) q.set(k, String(v));
  if (format) q.set('format', format);
  const s = q.toString();
  return `/v1/audit${s ? `?${s}` : ''}`;
}

export function audit(c: BerthClient, f: AuditFilterArgs = {}) {
  return c.request<{ entries: AuditEntryView[] }>('GET', auditQuery(f));
}

/** JSON lines, one entry per line (an export). */
export async function auditJsonl(c: BerthClient, f: AuditFilterArgs = {}): Promise<string> {
  const res = await c.raw('GET', auditQuery(f, 'jsonl'));
  const text = await res.text();
  if (!res.ok) {
    const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error ?? {};
    throw new ApiError(res.status, e.code ?? 'error', e.message ?? `HTTP ${res.status}`);
  }
  return text;
}

export function auditVerify(c: BerthClient) {
  return c.request<{ ok: boolean; checked: number; firstBad?: { seq: number; reason: string }; retainedFrom: number }>('GET', '/v1/audit/verify');
}

export interface ApprovalView {
  id: string;
  app: string;
  env: string;
  team: string;
  action: string;
  requestedBy: string;
  status: 'pending' | 'approved' | 'denied' | 'failed';
  createdAt: number;
  decidedBy?: string;
  decidedAt?: number;
  result?: string;
}

export function listApprovals(c: BerthClient, status?: ApprovalView['status']) {
  return c.request<{ approvals: ApprovalView[] }>('GET', `/v1/approvals${status ? `?status=${status}` : ''}`);
}
/** Approving carries the request out as its requester: `status`/`result` are what it answered. */
export function approve(c: BerthClient, id: string) {
  return c.request<{ approval: ApprovalView; status: number; result: unknown }>('POST', `/v1/approvals/${encodeURIComponent(id)}/approve`);
}
export function deny(c: BerthClient, id: string) {
  return c.request<{ approval: ApprovalView }>('POST', `/v1/approvals/${encodeURIComponent(id)}/deny`);
}
export function setPolicy(c: BerthClient, team: string, env: string, requireApproval: boolean) {
  return c.request<{ team: string; env: string; requireApproval: boolean }>('PUT', `/v1/teams/${encodeURIComponent(team)}/policies/${encodeURIComponent(env)}`, { requireApproval });
}
export function listPolicies(c: BerthClient, team: string) {
  return c.request<{ policies: { team: string; env: string; requireApproval: boolean }[] }>('GET', `/v1/teams/${encodeURIComponent(team)}/policies`);
}

/** A single sign-on provider as owners see it (the secret only as `secretSet`). */
export type { SsoProviderView } from '../core/sso.ts';

/** `berth sso list`. */
export function ssoProviders(c: BerthClient) {
  return c.request<{ providers: import('../core/sso.ts').SsoProviderView[] }>('GET', '/v1/sso/providers');
}

/** `berth sso set`: the body of a provider (core/sso.ts providerBodySchema); a secret left out keeps the stored one. */
export function putSsoProvider(c: BerthClient, name: string, body: Record<string, unknown>) {
  return c.request<{ provider: import('../core/sso.ts').SsoProviderView }>('PUT', `/v1/sso/providers/${encodeURIComponent(name)}`, body);
}

export function removeSsoProvider(c: BerthClient, name: string) {
  return c.request<{ name: string; grantsRevoked: number; sessionsEnded: number }>('DELETE', `/v1/sso/providers/${encodeURIComponent(name)}`);
}

/** The enabled providers, as the login page shows them (no credential needed). */
export function ssoOptions(c: BerthClient) {
  return c.request<{ providers: { name: string; kind: 'oidc' | 'ldap'; displayName: string }[] }>('GET', '/v1/sso/options');
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
  return c.request<{ user: string; token: string; expiresAt: number }>('POST', '/v1/sso/cli-session', { code, verifier });
}
