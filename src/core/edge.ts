/*
 * The ingress on edge hosts (issue 13 item 4): what an edge agent fetches from the control plane, and
 * the pure rules of it. An edge agent (`berth edge`, src/ingress/edge-agent.ts) runs beside nginx on
 * each edge host, long-polls `GET /v1/edge/config` with its host's token and applies the route table
 * with the same writer as the control host's nginx (render, `nginx -t`, swap, Lua push).
 */
import type { IngressRoute } from './ports.ts';

/** What `GET /v1/edge/config` answers: the route table edge hosts serve, and its version. */
export interface EdgeConfig {
  /** Random per control-plane start: generations of another start are not comparable. */
  epoch: string;
  /** Bumped on every change of `routes` within one epoch. */
  generation: number;
  routes: IngressRoute[];
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
}

/** The control plane's edge feed as the API uses it (src/ingress/edge-feed.ts implements it). */
export interface EdgeFeedPort {
  current(): EdgeConfig;
  /** The current config once it differs from `have` (at once if it does), or after `timeoutMs` unchanged. */
  wait(have: { epoch?: string; generation?: number }, timeoutMs: number, signal?: AbortSignal): Promise<EdgeConfig>;
  contact(host: string, r: { address: string; applied?: number; appliedEpoch?: string; error?: string }): void;
  hosts(): EdgeHostState[];
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
  return /^127\./.test(address) || address === '::1' || address === 'localhost';
}

/**
 * The route table as edge hosts serve it. Backends registered on the control host's loopback (one-host
 * mode: `127.0.0.1:PORT`) mean nothing on another host: they become `controlAddress` (the address the
 * edge hosts reach the control host at), or are left out when there is none. Certificates are files on
 * the control host: edge routes are HTTP only (`tls` dropped). Everything else is as the control host's
 * nginx gets it, so both render the same config.
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
export function edgeUnit(o: { control: string; tokenFile: string; port: number; berthBin?: string }): string {
  return [
    '[Unit]',
    'Description=Berth edge agent (nginx ingress fed by the Berth control plane)',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    `ExecStart=${o.berthBin ?? '/usr/local/bin/berth'} edge --control ${o.control} --token-file ${o.tokenFile} --port ${o.port} --data-dir /var/lib/berth-edge`,
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
