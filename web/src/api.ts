/**
 * The portal's one way to the server: the typed client the CLI uses (src/client), same origin. The
 * browser holds the session as an HttpOnly cookie (the page never sees it); every request that changes
 * something carries the session's CSRF token in X-Berth-CSRF, read from its cookie (double submit).
 * No page writes a fetch of its own.
 */
import { ApiError, BerthClient, Unreachable, type LogLineView, type Ok } from '../../src/client/client.ts';
import { logout, ssoOptions, ssoStartPath, whoami, type SessionView } from '../../src/client/auth-client.ts';

export { ApiError, Unreachable };
export type { LogLineView, SessionView };

// What the pages show, typed from the API's OpenAPI document (src/client/api-types.ts, `npm run
// gen:api`): a field the server stops sending fails `tsc` on the page that shows it.
export type AppView = Ok<'/v1/apps', 'get'>['apps'][number];
export type ServiceView = Ok<'/v1/apps/{app}', 'get'>['services'][number];
export type InstanceView = ServiceView['instances'][number];
export type ReleaseView = Ok<'/v1/apps/{app}/releases', 'get'>['releases'][number];
export type ReleaseRecord = Ok<'/v1/apps/{app}/releases/{id}', 'get'>['release'];
export type EventView = Ok<'/v1/events', 'get'>['events'][number];
export type AlertView = Ok<'/v1/alerts', 'get'>['alerts'][number];
export type MetricSeriesView = Ok<'/v1/metrics/query', 'get'>['series'][number];
export type EdgeHostView = Ok<'/v1/edge/hosts', 'get'>['hosts'][number];

function csrf(): string | undefined {
  const m = /(?:^|;\s*)berth_csrf=([^;]*)/.exec(document.cookie);
  return m ? decodeURIComponent(m[1]!) : undefined;
}

/**
 * Whether this browser holds a session's CSRF cookie: set beside the HttpOnly session cookie with the
 * same lifetime and cleared with it at log-out, so without it there is no session to ask about.
 */
export function hasSessionCookie(): boolean {
  return csrf() !== undefined && csrf() !== '';
}

const client = new BerthClient({ url: '', headers: (): Record<string, string> => {
  const t = csrf();
  return t ? { 'x-berth-csrf': t } : {};
} });

export function api(): BerthClient {
  return client;
}

const inflight = new Map<string, Promise<unknown>>();

/**
 * One request for identical reads made while it is in flight: on a page load the navigation and
 * the page both list the apps. A read that starts after the answer came makes a new request (so a
 * reload after an event never gets an answer from before it).
 */
export function shared<T>(key: string, read: () => Promise<T>): Promise<T> {
  let p = inflight.get(key) as Promise<T> | undefined;
  if (!p) {
    p = read().finally(() => inflight.delete(key));
    inflight.set(key, p);
  }
  return p;
}

const primed = new Map<string, Promise<unknown>>();

/**
 * Starts a read as the script starts, before the first render: the reads of that render take its
 * answer (however late they ask: render and effects take a while on a busy machine), and
 * `endPriming` (after the first render's effects) makes every later read ask again.
 */
export function prime<T>(key: string, read: () => Promise<T>): void {
  const p = read();
  p.catch(() => undefined);
  primed.set(key, p);
}

/** The primed read of `key` if the first render is still taking them, else a new `read()`. */
export function primedOr<T>(key: string, read: () => Promise<T>): Promise<T> {
  return (primed.get(key) as Promise<T> | undefined) ?? read();
}

export function endPriming(): void {
  primed.clear();
}

/** The apps the person may see (`GET /v1/apps`), shared by the navigation and the page that load together. */
export function listApps(): ReturnType<BerthClient['apps']> {
  return primedOr('apps', () => shared('apps', () => client.apps()));
}

/** Who this browser is logged in as (undefined: nobody, or the session ended). */
export async function currentSession(): Promise<SessionView | undefined> {
  try {
    return await whoami(client);
  } catch (err) {
    if (isUnauthorized(err)) return undefined;
    throw err;
  }
}

/** Spends a login link's code for a cookie session. */
export async function logInWithCode(code: string): Promise<void> {
  await client.portalSession(code);
}

export async function logInWithPassword(user: string, password: string): Promise<void> {
  await client.portalLogin(user, password);
}

/** The single sign-on providers a person can pick on the login page (OpenID Connect: a button each). */
export async function signOnOptions(): Promise<{ name: string; kind: 'oidc' | 'ldap'; displayName: string }[]> {
  return (await ssoOptions(client).catch(() => ({ providers: [] }))).providers;
}

/** Where "Sign in with NAME" goes: a top-level navigation to the provider and back to `next`. */
export function signOnHref(name: string, next: string): string {
  return ssoStartPath(name, { returnTo: next });
}

export async function logOut(): Promise<void> {
  await logout(client).catch(() => undefined);
}

/** What to tell a person about a failed call: the API's own message (a refusal says why and what to do). */
export function message(err: unknown): string {
  if (err instanceof ApiError || err instanceof Unreachable) return err.message;
  return (err as Error)?.message ?? String(err);
}

export function isUnauthorized(err: unknown): boolean {
  return err instanceof ApiError && err.status === 401;
}

/** Who is logged in, as the page knows it: null until asked, undefined when nobody. */
let who: SessionView | undefined | null = null;
const watchers = new Set<() => void>();

export function knownSession(): SessionView | undefined | null {
  return who;
}

export function setKnownSession(s: SessionView | undefined): void {
  who = s;
  for (const w of watchers) w();
}

export function watchSession(w: () => void): () => void {
  watchers.add(w);
  return () => void watchers.delete(w);
}
