/*
 * The ingress on edge hosts (issue 13 item 4): what an edge agent fetches from the control plane, and
 * the pure rules of it. An edge agent (`berth edge`, src/ingress/edge-agent.ts) runs beside nginx on
 * each edge host, long-polls `GET /v1/edge/config` with its host's token and applies the route table
 * with the same writer as the control host's nginx (render, `nginx -t`, swap, Lua push).
 */
import type { IngressRoute } from './ports.ts';

/** A certificate an edge host serves, named by host and SHA-256 fingerprint (lowercase hex, of the leaf). */
export interface EdgeCertRef {
  host: string;
  fingerprint: string;
}

/** A certificate with its chain and private key (PEM): only ever sent over TLS (edge-routes.ts). */
export interface EdgeCert extends EdgeCertRef {
  certPem: string;
  keyPem: string;
}

/** An ACME HTTP-01 answer every edge host serves at `/.well-known/acme-challenge/TOKEN` (public by design). */
export interface EdgeChallenge {
  token: string;
  keyAuthorization: string;
}

/**
 * The control plane's edge table: routes, which certificates their hosts have (by fingerprint: the
 * keys stay in tls.db until a poll over TLS asks), and the ACME challenges open now.
 */
export interface EdgeTable {
  /** Random per control-plane start: generations of another start are not comparable. */
  epoch: string;
  /** Bumped on every change of routes, certificates or challenges within one epoch. */
  generation: number;
  routes: IngressRoute[];
  certs: EdgeCertRef[];
  challenges: EdgeChallenge[];
  /** Backends found unreachable lately (kept UNREACHABLE_KEEP_MS, at most UNREACHABLE_MAX): edge agents cut their nginx's connections to them. */
  unreachable: EdgeUnreachable[];
}

/**
 * A backend the control plane found unreachable (no TCP connection at all: its host died or its link
 * is cut), so its instance left the table. An edge agent cuts its nginx's connections to it once it is
 * out of the table it serves (`edgeCutTargets`): idempotent requests in flight there are retried on
 * another backend instead of waiting for the read timeout. A backend that left for any other reason (a
 * rolling update's old instance draining) is never named here.
 */
export interface EdgeUnreachable {
  address: string;
  port: number;
  /** When it was found unreachable (control plane's ms): with the address, what an agent cuts once. */
  at: number;
}

/** How long an unreachable backend stays in the feed (an agent behind by longer missed nothing: its requests there timed out). */
export const UNREACHABLE_KEEP_MS = 60_000;
/** At most this many in the feed (the oldest go first). */
export const UNREACHABLE_MAX = 256;

/**
 * What an edge agent cuts: the unreachable backends that are not in the table its nginx serves now
 * (never one it still routes to), not on its own loopback or addresses (an instance of the edge host
 * itself is not behind a dead link), valid IP addresses and ports only, each (address, port, at) once
 * (`done` holds the keys cut before; the caller adds the returned ones).
 */
export function edgeCutTargets(unreachable: readonly EdgeUnreachable[], routes: readonly IngressRoute[], local: ReadonlySet<string>, done: ReadonlySet<string>):
  { cut: EdgeUnreachable[]; keys: string[] } {
  const served = new Set(routes.flatMap((r) => r.backends.map((b) => `${b.address}:${b.port}`)));
  const cut: EdgeUnreachable[] = [];
  const keys: string[] = [];
  for (const u of unreachable) {
    if (!isIpLiteral(u.address) || !Number.isInteger(u.port) || u.port < 1 || u.port > 65535) continue;
    const key = `${u.address}:${u.port}@${u.at}`;
    if (done.has(key) || keys.includes(key)) continue;
    if (served.has(`${u.address}:${u.port}`) || isLoopback(u.address) || local.has(u.address) || isUnspecified(u.address)) continue;
    cut.push(u);
    keys.push(key);
  }
  return { cut, keys };
}

/** An IPv4 dotted quad or an IPv6 literal (the caller's `cutFilter` checks it again with node:net before `ss` sees it). */
export function isIpLiteral(a: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(a);
  if (v4) return v4.slice(1).every((x) => Number(x) <= 255 && (x === '0' || !x.startsWith('0')));
  return a.length <= 45 && a.includes(':') && /^[0-9A-Fa-f:.]+$/.test(a);
}

function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || /^::ffff:(127\.|0\.0\.0\.0$)/i.test(address);
}

/** What `GET /v1/edge/config` answers: the route table edge hosts serve, and its version. */
export interface EdgeConfig {
  epoch: string;
  generation: number;
  routes: IngressRoute[];
  /** The certificates (with keys) of the routes' hosts: only in an answer over TLS. */
  certs?: EdgeCert[];
  /** Why the answer has no certificates although routes' hosts have some (the poll came over plain HTTP). */
  certsWithheld?: string;
  /** ACME HTTP-01 answers open now. */
  challenges?: EdgeChallenge[];
  /** Backends found unreachable lately: the agent cuts its nginx's connections to those out of the table. */
  unreachable?: EdgeUnreachable[];
}

/** An edge agent's report of one cut (sent with its next poll): the backend and how many connections `ss -K` destroyed. */
export interface EdgeCutReport {
  address: string;
  port: number;
  connections: number;
}

/** At most this many cuts in one poll's report (the rest wait for the next poll). */
export const CUT_REPORT_MAX = 16;
/** The `cut` query parameter of a poll: `ADDRESS:PORT=N` joined by commas. */
export const CUT_REPORT_RE = /^[0-9A-Fa-f:.]{2,45}:\d{1,5}=\d{1,6}(,[0-9A-Fa-f:.]{2,45}:\d{1,5}=\d{1,6}){0,15}$/;
export const CUT_REPORT_RULE = 'ADDRESS:PORT=CONNECTIONS, comma-separated (at most 16), e.g. 10.0.0.7:20001=2';

export function formatCutReport(cuts: readonly EdgeCutReport[]): string {
  return cuts.slice(0, CUT_REPORT_MAX).map((c) => `${c.address}:${c.port}=${c.connections}`).join(',');
}

/** The cuts of a `cut` parameter that matched CUT_REPORT_RE (entries with a bad address or port are left out). */
export function parseCutReport(text: string): EdgeCutReport[] {
  const out: EdgeCutReport[] = [];
  for (const part of text.split(',')) {
    const eq = part.lastIndexOf('=');
    const colon = part.lastIndexOf(':', eq);
    const address = part.slice(0, colon);
    const port = Number(part.slice(colon + 1, eq));
    const connections = Number(part.slice(eq + 1));
    if (!isIpLiteral(address) || !Number.isInteger(port) || port < 1 || port > 65535 || !Number.isInteger(connections)) continue;
    out.push({ address, port, connections });
  }
  return out;
}

/** What the control plane knows of an edge host (in memory: its agent reports at every poll). */
export interface EdgeHostState {
  host: string;
  /** Address the agent's last request came from. */
  address: string;
  /** When the agent last asked (ms). */
  lastContact: number;
  /** The generation (of `appliedEpoch`) its nginx serves; undefined: none yet. */
  applied?: number;
  appliedEpoch?: string;
  /** True when it serves the current generation of this epoch. */
  inSync: boolean;
  /** The agent's last failure to apply, if any. */
  error?: string;
  /** Its last poll came over plain HTTP: no certificate keys were sent, its routes with certificates are HTTP only there. */
  certsWithheld?: boolean;
}

/** What an edge agent's poll reports (recorded by the feed). */
export interface EdgeContact {
  address: string;
  applied?: number;
  appliedEpoch?: string;
  error?: string;
  certsWithheld?: boolean;
}

/** The control plane's edge feed as the API uses it (src/ingress/edge-feed.ts implements it). */
export interface EdgeFeedPort {
  current(): EdgeTable;
  /** The current table once it differs from `have` (at once if it does), or after `timeoutMs` unchanged. */
  wait(have: { epoch?: string; generation?: number }, timeoutMs: number, signal?: AbortSignal): Promise<EdgeTable>;
  contact(host: string, r: EdgeContact): void;
  hosts(): EdgeHostState[];
  /** An edge agent reports cuts: those of backends the feed names unreachable now are recorded (the rest ignored). */
  reportCuts(host: string, cuts: readonly EdgeCutReport[]): void;
}

/**
 * The answer to an edge agent's poll: the table, with the certificates' keys (opened by `certificates`)
 * only when the poll came over TLS, else a note that they were withheld.
 */
export function edgeAnswer(t: EdgeTable, overTls: boolean, certificates: ((refs: EdgeCertRef[]) => EdgeCert[]) | undefined): EdgeConfig {
  const out: EdgeConfig = { epoch: t.epoch, generation: t.generation, routes: t.routes };
  if (t.certs.length > 0) {
    if (overTls && certificates) out.certs = certificates(t.certs);
    else out.certsWithheld = CERTS_WITHHELD;
  }
  if (t.challenges.length > 0) out.challenges = t.challenges;
  if (t.unreachable.length > 0) out.unreachable = t.unreachable;
  return out;
}

/** Why a poll over plain HTTP gets no certificates (the agent logs it, `berth hosts` shows it). */
export const CERTS_WITHHELD = 'certificate keys are never sent over plain HTTP: this edge host serves its routes with certificates over HTTP only; '
  + 'serve the API over TLS (BERTH_API_TLS_CERT/KEY) and run berth edge with --control https://…';

/**
 * The routes with the certificate files an edge host wrote, for routes whose host has one and asks
 * for it: the rule of the control host's CertManager.decorate, so both render the same config.
 */
export function withCertFiles(routes: readonly IngressRoute[], files: ReadonlyMap<string, { certFile: string; keyFile: string }>): IngressRoute[] {
  return routes.map((r) => {
    const f = r.host === undefined ? undefined : files.get(r.host);
    if (!f || r.https?.wantsCert === false) return r;
    return { ...r, tls: { certFile: f.certFile, keyFile: f.keyFile } };
  });
}

/** The file name (without .crt/.key) of a host's certificate: by host and fingerprint, so a new certificate is a new config. */
export function certFileBase(host: string, fingerprint: string): string {
  return `${host.replace(/^\*/, '_wildcard')}.${fingerprint.slice(0, 16)}`;
}

/** Host names in tokens: what Docker and Swarm accept as a node's hostname. */
export const EDGE_HOST_RE = /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/;
export const EDGE_HOST_RULE = 'a host name: letters, digits, "." and "-" (at most 63), like edge-1';

const TOKEN_PREFIX = 'berth-edge.';

/** An edge host's token: its name and a secret only the control plane can derive (an HMAC of its key). */
export function edgeToken(host: string, secret: string): string {
  return `${TOKEN_PREFIX}${host}.${secret}`;
}

/** The host and secret of an edge token, or undefined when it is not one. */
export function parseEdgeToken(token: string): { host: string; secret: string } | undefined {
  if (!token.startsWith(TOKEN_PREFIX)) return undefined;
  const rest = token.slice(TOKEN_PREFIX.length);
  const dot = rest.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const host = rest.slice(0, dot);
  const secret = rest.slice(dot + 1);
  if (!EDGE_HOST_RE.test(host) || !/^[0-9a-f]{64}$/.test(secret)) return undefined;
  return { host, secret };
}

export function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || address === 'localhost' || /^::ffff:127\./i.test(address);
}

/**
 * The route table as edge hosts serve it. Backends registered on the control host's loopback (one-host
 * mode: `127.0.0.1:PORT`) mean nothing on another host: they become `controlAddress` (the address the
 * edge hosts reach the control host at), or are left out when there is none. Certificate file paths
 * are the control host's (`tls` dropped): an edge agent writes the certificates it gets to its own
 * tmpfs and decorates the routes again (`withCertFiles`). Everything else (`https`: redirect, HSTS) is
 * as the control host's nginx gets it, so both render the same config.
 */
export function edgeRoutes(routes: readonly IngressRoute[], controlAddress: string | undefined): IngressRoute[] {
  return routes.map((r) => {
    const { tls: _tls, ...rest } = r;
    const backends = [];
    for (const b of r.backends) {
      if (!isLoopback(b.address)) backends.push({ ...b });
      else if (controlAddress !== undefined) backends.push({ ...b, address: controlAddress });
    }
    return { ...rest, backends };
  });
}

/**
 * When an agent's poll should be answered at once: it has nothing yet, or what it has is of another
 * control-plane start or an older generation. Otherwise the answer waits for the next change.
 */
export function isBehind(have: { epoch?: string; generation?: number }, current: { epoch: string; generation: number }): boolean {
  return have.epoch !== current.epoch || have.generation === undefined || have.generation !== current.generation;
}

/** The systemd unit that runs an edge agent (what `berth host add --pool edge` prints). */
export function edgeUnit(o: { control: string; tokenFile: string; port: number; httpsPort?: number; berthBin?: string }): string {
  return [
    '[Unit]',
    'Description=Berth edge agent (nginx ingress fed by the Berth control plane)',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    `ExecStart=${o.berthBin ?? '/usr/local/bin/berth'} edge --control ${o.control} --token-file ${o.tokenFile} --port ${o.port} --https-port ${o.httpsPort ?? 443} --data-dir /var/lib/berth-edge`,
    'Restart=always',
    'RestartSec=2',
    // nginx is daemonized and must outlive the agent (a restart adopts it): do not kill it with the unit.
    'KillMode=process',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
