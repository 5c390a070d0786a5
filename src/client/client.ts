/**
 * A typed client of the Berth HTTP API, used by the CLI (and later the web portal).
 */
import type { AppSpec, SpecWarning } from '../core/spec/types.ts';
import type { SpecSource } from '../core/spec/source.ts';
import type { AlertView, BuildView, CertView, MetricSeriesView, RegistryEntryView, ReleaseView, ServiceStatus as ServiceView, TemplateView, TopView } from '../core/views.ts';
import type { EventRecord as EventView, PurgeRecord, ReleaseRecord } from '../core/store.ts';
import type { AppRemains } from '../core/app-remains.ts';
import { takeSseFrames } from '../core/sse.ts';

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details?: unknown) {
    super(message);
  }
}

/** The server could not be reached at all. */
export class Unreachable extends Error {}

export interface ClientOptions {
  /** The server's address; '' in the web portal (same origin). */
  url: string;
  /** A bearer token; none: the request carries only what `headers` adds (a browser's session). */
  token?: string;
  /** Extra headers of every request (e.g. a CSRF header of a cookie session). */
  headers?: () => Record<string, string>;
}

export class BerthClient {
  constructor(private readonly o: ClientOptions) {}

  get url(): string {
    return this.o.url;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, body);
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new ApiError(res.status, 'bad_response', `unexpected response from ${this.o.url}${path}: ${text.slice(0, 200)}`);
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string; details?: unknown } }).error ?? {};
      throw new ApiError(res.status, e.code ?? 'error', e.message ?? `HTTP ${res.status}`, e.details);
    }
    return json as T;
  }

  async raw(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { ...(this.o.token ? { authorization: `Bearer ${this.o.token}` } : {}), ...this.o.headers?.() };
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await fetch(this.o.url + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), ...(signal ? { signal } : {}) });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new Unreachable(`cannot reach the Berth server at ${this.o.url} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}): start it with \`berth server\` or \`bash scripts/up.sh\``);
    }
  }

  /**
   * A streaming answer (NDJSON, text, server-sent events): the response once the server accepted
   * the request, else its error as an ApiError (the same as `request` throws).
   */
  async stream(method: string, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
    const res = await this.raw(method, path, body, signal);
    if (res.ok && res.body) return res;
    const e = ((await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string; details?: unknown } }).error ?? {};
    throw new ApiError(res.status, e.code ?? 'error', e.message ?? `HTTP ${res.status}`, e.details);
  }

  ping() {
    return this.request<{ ok: boolean; version: string; ingressPort: number; ingressBackendUpdates?: { mode: 'lua' | 'reload'; reason?: string } }>('GET', '/v1/ping');
  }
  /** `source`: the Compose text and variables the spec was parsed from, kept by the server for `promote`. */
  deploy(app: string, env: string, spec: AppSpec, warnings: SpecWarning[], source?: SpecSource) {
    // An environment that requires approval answers with a pending approval instead of a deployment.
    return this.request<{ deployment: DeploymentView; approval?: undefined } | PendingApproval>('POST', `/v1/apps/${enc(app)}/deployments`,
      { env, spec, warnings, ...(source ? { source } : {}) });
  }
  deployment(id: string) {
    // A service not yet given a release shows only its name and status 'pending'.
    return this.request<DeploymentState>('GET', `/v1/deployments/${enc(id)}`);
  }
  apps() {
    return this.request<{ apps: AppView[] }>('GET', '/v1/apps');
  }
  /** A rolling restart of every service of app/env (or one): new releases, same spec and image. */
  restart(app: string, env: string, service?: string) {
    return this.request<{ restarts: { service: string; from: number; release: number; id: string }[] }>('POST', `/v1/apps/${enc(app)}/restart`,
      { env, ...(service ? { service } : {}) });
  }
  app(app: string, env?: string) {
    return this.request<{ app: string; services: ServiceView[] }>('GET', `/v1/apps/${enc(app)}${env ? `?env=${enc(env)}` : ''}`);
  }
  scale(app: string, env: string, service: string, replicas: number) {
    return this.request<{ service: string; from: number; to: number }>('POST', `/v1/apps/${enc(app)}/scale`, { env, service, replicas });
  }
  /** Several services at once, all or nothing; `force` scales past the host's memory. */
  scaleServices(app: string, env: string, services: Record<string, number>, o: { force?: boolean } = {}) {
    return this.request<{ scaled: { service: string; from: number; to: number }[] }>('POST', `/v1/apps/${enc(app)}/scale`,
      { env, services, ...(o.force ? { force: true } : {}) });
  }
  /** Takes the app's services out; the answer says what Berth still keeps of it. */
  remove(app: string, env?: string) {
    return this.request<{ removed: string[]; remains: AppRemains }>('DELETE', `/v1/apps/${enc(app)}${env ? `?env=${enc(env)}` : ''}`);
  }
  /** `rm --purge`: asks for the purge of the whole app (follow it with purgeStatus). */
  purge(app: string) {
    return this.request<{ purge: PurgeRecord; removed: string[]; remains: AppRemains }>('DELETE', `/v1/apps/${enc(app)}?purge=true`);
  }
  purgeStatus(app: string) {
    return this.request<{ purge: PurgeRecord }>('GET', `/v1/apps/${enc(app)}/purge`);
  }
  releases(app: string, q: { env?: string; service?: string } = {}) {
    const p = new URLSearchParams();
    if (q.env) p.set('env', q.env);
    if (q.service) p.set('service', q.service);
    return this.request<{ releases: ReleaseView[] }>('GET', `/v1/apps/${enc(app)}/releases?${p}`);
  }
  rollback(app: string, body: { env: string; service?: string; to?: string }) {
    return this.request<{ rollbacks: { service: string; to: number; release: string }[] }>('POST', `/v1/apps/${enc(app)}/rollback`, body);
  }
  reload(app: string, env: string, service: string) {
    return this.request<{ service: string; requestedAt: number }>('POST', `/v1/apps/${enc(app)}/reload`, { env, service });
  }

  /** One release with the events of its rollout. */
  release(app: string, id: string) {
    return this.request<{ release: ReleaseRecord; events: EventView[] }>('GET', `/v1/apps/${enc(app)}/releases/${enc(id)}`);
  }
  /** A one-time login link's code for the web portal (`path`: append to the server's URL). */
  portalCode() {
    return this.request<{ code: string; expiresAt: number; path: string }>('POST', '/v1/portal/codes');
  }
  /** The portal's password login: a cookie session (HttpOnly) for the browser; the answer holds its CSRF token. */
  portalLogin(user: string, password: string) {
    return this.request<{ user: string; expiresAt: number; csrf: string }>('POST', '/v1/session', { user, password, client: 'portal' });
  }
  /** Spends a login code (no credential needed): the browser gets a cookie session; the answer holds its CSRF token. */
  portalSession(code: string) {
    return this.request<{ user: string; expiresAt: number; csrf: string }>('POST', '/v1/portal/session', { code });
  }
  /** The OpenAPI 3.1 document of this server's API. */
  openApi() {
    return this.request<Record<string, unknown>>('GET', '/v1/openapi.json');
  }
  /** Deploys the images that run (healthy) in `from` to `to`. */
  promote(app: string, from: string, to: string) {
    return this.request<{ deployment: { id: string; app: string; env: string; from: string }; images: Record<string, string>; approval?: undefined } | PendingApproval>(
      'POST', `/v1/apps/${enc(app)}/promote`, { from, to });
  }
  /** Runs a command in an instance's container: NDJSON frames `{stream, data}` (base64), then `{exit}` or `{error}`. */
  exec(app: string, body: { env: string; service: string; cmd: string[]; instance?: string }, signal: AbortSignal) {
    return this.stream('POST', `/v1/apps/${enc(app)}/exec`, body, signal);
  }
  /** A page of log lines (JSON `{lines, next?}`), or with `follow: 'true'` an NDJSON tail. */
  logs(app: string, q: Record<string, string | undefined>, signal: AbortSignal) {
    return this.stream('GET', `/v1/apps/${enc(app)}/logs?${query(q)}`, undefined, signal);
  }
  builds(q: { app?: string; limit?: number } = {}) {
    return this.request<{ builds: BuildView[] }>('GET', `/v1/builds?${query({ app: q.app, limit: q.limit === undefined ? undefined : String(q.limit) })}`);
  }
  build(id: string) {
    return this.request<{ build: BuildView }>('GET', `/v1/builds/${enc(id)}`);
  }
  cancelBuild(id: string) {
    return this.request<{ build: BuildView }>('POST', `/v1/builds/${enc(id)}/cancel`);
  }
  /** A build's output as text; `follow`: until the build ends. */
  buildLogs(id: string, o: { follow?: boolean }, signal: AbortSignal) {
    return this.stream('GET', `/v1/builds/${enc(id)}/logs${o.follow ? '?follow=true' : ''}`, undefined, signal);
  }
  templates() {
    return this.request<{ templates: TemplateView[] }>('GET', '/v1/templates');
  }
  setTemplate(name: string, t: { source: string; dest: string; check?: string[]; reload?: string[] }) {
    return this.request<{ name: string; dest: string }>('PUT', `/v1/templates/${enc(name)}`, t);
  }
  removeTemplate(name: string) {
    return this.request<Record<string, never>>('DELETE', `/v1/templates/${enc(name)}`);
  }
  alerts() {
    return this.request<{ alerts: AlertView[] }>('GET', '/v1/alerts');
  }
  /** `window` and `for` are durations (`5m`, `1m30s`). */
  setAlert(name: string, rule: { metric: string; threshold: number; window?: string; for?: string; app?: string; env?: string; service?: string; webhook?: string }) {
    return this.request<{ name: string; rule: AlertView['rule'] }>('PUT', `/v1/alerts/${enc(name)}`, rule);
  }
  removeAlert(name: string) {
    return this.request<Record<string, never>>('DELETE', `/v1/alerts/${enc(name)}`);
  }
  /** Certificates of routes' hosts and what Berth is doing about each. */
  certs() {
    return this.request<{ certs: CertView[] }>('GET', '/v1/certs');
  }
  /** Uploads a PEM chain (the host's certificate first) and its unencrypted PEM key; checked by the server before anything is stored. */
  uploadCert(host: string, cert: string, key: string) {
    return this.request<CertView>('PUT', `/v1/certs/${enc(host)}`, { cert, key });
  }
  removeCert(host: string) {
    return this.request<Record<string, never>>('DELETE', `/v1/certs/${enc(host)}`);
  }
  /** Asks for an ACME renewal now; follow it with `certs()`. */
  renewCert(host: string) {
    return this.request<CertView>('POST', `/v1/certs/${enc(host)}/renew`);
  }
  /** CPU, memory and the last minute of requests per instance, service and route. */
  top(q: { app?: string; env?: string } = {}) {
    const qs = query(q);
    return this.request<TopView>('GET', `/v1/top${qs ? `?${qs}` : ''}`);
  }
  /** A metric series (`kind`: cpu, memory, http, ...) over a time range (`from`/`to`: durations before now, ISO times or epoch ms). */
  metrics(q: { kind: string; app?: string; env?: string; service?: string; target?: string; from?: string; to?: string; step?: number; group?: 'series' | 'service' }) {
    return this.request<{ kind: string; from: number; to: number; resolutionMs: number; stepMs: number; series: MetricSeriesView[] }>('GET',
      `/v1/metrics/query?${query({ ...q, step: q.step === undefined ? undefined : String(q.step) })}`);
  }
  /** Connects a git remote to the app (webhook builds); the answer holds the secret and the hook URLs. */
  setSource(app: string, remote: string, secret?: string) {
    return this.request<{ app: string; remote: string; secret: string; webhooks: string[] }>('PUT', `/v1/apps/${enc(app)}/source`, { remote, ...(secret ? { secret } : {}) });
  }
  registry() {
    return this.request<{ index: number; entries: RegistryEntryView[] }>('GET', '/v1/registry');
  }
  /** A service's healthy instances; `index` + `wait` long-poll for a change. */
  registryService(env: string, service: string, q: { app?: string; index?: number; wait?: string } = {}) {
    return this.request<{ index: number; env: string; service: string; app?: string; instances: RegistryEntryView[] }>('GET',
      `/v1/registry/${enc(env)}/${enc(service)}?${query({ app: q.app, index: q.index === undefined ? undefined : String(q.index), wait: q.wait })}`);
  }
  /** Server-sent events of a service's healthy instances. */
  registryStream(env: string, service: string, q: { app?: string }, signal: AbortSignal) {
    return this.stream('GET', `/v1/registry/${enc(env)}/${enc(service)}/stream?${query(q)}`, undefined, signal);
  }
  registerExternal(env: string, service: string, body: { address: string; port: number; ttl?: string; check?: { http: string; interval?: string } | { tcp: true; interval?: string } }) {
    return this.request<{ id: string; key: string }>('POST', `/v1/registry/${enc(env)}/${enc(service)}`, body);
  }
  heartbeat(id: string) {
    return this.request<{ id: string; ttlMs: number | null }>('PUT', `/v1/registry/external/${enc(id)}/heartbeat`);
  }
  deregister(id: string) {
    return this.request<Record<string, never>>('DELETE', `/v1/registry/external/${enc(id)}`);
  }

  /** Follows the server-sent event stream until the signal aborts. */
  async streamEvents(q: { app?: string; env?: string; service?: string; after?: number }, onEvent: (e: EventView) => void, signal: AbortSignal): Promise<void> {
    await this.sse(`/v1/events/stream${qs(q)}`, (_name, data) => onEvent(data as EventView), signal).catch((err: Error) => {
      if (err.name !== 'AbortError') throw err;
    });
  }

  /**
   * Follows a deployment over one request: its app/env's events after `after` and its state on every
   * change (the body of `deployment(id)`). Resolves when the server ends the stream (after the
   * deployment's outcome, or when the connection drops); rejects with AbortError when `signal` aborts.
   */
  followDeployment(id: string, after: number | undefined, on: FollowHandlers<DeploymentState>, signal: AbortSignal): Promise<void> {
    return this.sse(`/v1/deployments/${enc(id)}/stream${qs({ after })}`, dispatch(on), signal);
  }

  /** Follows an app (one environment, or all): its events after `after` and its services (the body of `app()`) on every change, until `signal` aborts. */
  followApp(app: string, q: { env?: string; after?: number }, on: FollowHandlers<{ app: string; services: ServiceView[] }>, signal: AbortSignal): Promise<void> {
    return this.sse(`/v1/apps/${enc(app)}/stream${qs(q)}`, dispatch(on), signal);
  }

  /** Follows a purge: its record on every change; resolves when the server ends the stream (the purge is done, or the connection dropped). */
  followPurge(app: string, onState: (s: { purge: PurgeRecord }) => void, signal: AbortSignal): Promise<void> {
    return this.sse(`/v1/apps/${enc(app)}/purge/stream`, dispatch({ state: onState }), signal);
  }

  /**
   * A server-sent event stream: `onMessage(event name, parsed data)` for each message, in order.
   * Resolves when the server ends it; an `error` message from the server rejects with an ApiError.
   */
  async sse(path: string, onMessage: (name: string, data: unknown) => void, signal: AbortSignal): Promise<void> {
    const res = await this.stream('GET', path, undefined, signal);
    const dec = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      const { frames, rest } = takeSseFrames(buf + dec.decode(chunk, { stream: true }));
      buf = rest;
      for (const { event: name, data } of frames) {
        const parsed = JSON.parse(data) as unknown;
        if (name === 'error') {
          const e = parsed as { code?: string; message?: string };
          throw new ApiError(500, e.code ?? 'internal', e.message ?? 'the stream failed');
        }
        onMessage(name, parsed);
      }
    }
  }

  /** The newest `limit` events (oldest first) and `last`, the id of the newest event of any app (a cursor for streamEvents). */
  events(q: { app?: string; env?: string; service?: string; after?: number; since?: string; limit?: number }) {
    const p = new URLSearchParams();
    if (q.app) p.set('app', q.app);
    if (q.env) p.set('env', q.env);
    if (q.service) p.set('service', q.service);
    if (q.after) p.set('after', String(q.after));
    if (q.since) p.set('since', q.since);
    if (q.limit) p.set('limit', String(q.limit));
    return this.request<{ events: EventView[]; last: number }>('GET', `/v1/events?${p}`);
  }
}

/** What a follow stream calls: each timeline event, each new state. */
export interface FollowHandlers<S> {
  event?: (e: EventView) => void;
  state: (s: S) => void;
}

function dispatch<S>(on: FollowHandlers<S>): (name: string, data: unknown) => void {
  return (name, data) => {
    if (name === 'event') on.event?.(data as EventView);
    else if (name === 'state') on.state(data as S);
  };
}

/** A deployment and its services, as `deployment(id)` answers and `followDeployment` streams. */
export type DeploymentState = { deployment: DeploymentView; services: (Partial<ServiceView> & { name: string; status: string })[] };

function enc(s: string): string {
  return encodeURIComponent(s);
}

/**
 * The lines of a streamed answer (NDJSON or text) as they arrive, without their newlines; empty
 * lines and an unterminated last line are skipped (an NDJSON stream cut off mid-line), unless
 * `text` (a text log, where an empty line is a line and the last one may lack its newline).
 * An abort ends it with the AbortError.
 */
export async function* responseLines(res: Response, o: { text?: boolean } = {}): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line || o.text) yield line;
    }
  }
  buf += dec.decode();
  if (o.text && buf) yield buf;
}

/** A query string of the parameters that are set. */
function query(q: Record<string, string | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') p.set(k, v);
  return p.toString();
}

/** `?a=1&b=2` of the parameters that are set, or '' when none is. */
function qs(q: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') p.set(k, String(v));
  const text = p.toString();
  return text ? `?${text}` : '';
}

export type { AlertView, BuildView, CertView, MetricPointView, MetricSeriesView, RegistryEntryView, ReleaseView, TemplateView, TopView } from '../core/views.ts';

export interface AppView {
  name: string;
  envs: string[];
  services: ServiceView[];
  /** The newest deployment of the app in any environment. */
  lastDeployment?: { id: string; env: string; status: string; message: string; createdAt: number };
}

export interface DeploymentView {
  id: string;
  app: string;
  env: string;
  status: string;
  message: string;
  createdAt: number;
  services: string[];
  releases: Record<string, string>;
  warnings: SpecWarning[];
  /** The build whose images the services with a build section run (`berth build logs ID`). */
  buildId?: string;
}

/** A service's status as the API computes it (shared with the API, see core/views.ts). */
export type { ServiceStatus as ServiceView, InstanceStatus as InstanceView } from '../core/views.ts';


/** An entry of the event timeline. */
export type { EventRecord as EventView } from '../core/store.ts';

/** A deploy or promotion kept for a second person's approval (`berth approve ID`). */
export interface PendingApproval {
  approval: { id: string; app: string; env: string; team: string; action: string; requestedBy: string; status: string; createdAt: number };
  message: string;
  deployment?: undefined;
}
