/**
 * Typed calls of sessions, users (and, with issue 14, teams, grants and tokens). A password or a
 * token only ever travels in a request body or comes back once in an answer.
 */
import type { BerthClient } from './client.ts';
import type { Grant } from '../core/auth.ts';

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
