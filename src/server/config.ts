import { totalmem } from 'node:os';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidInput } from '../core/errors.ts';

/** Everything the server needs to know, parsed once from flags and environment. */
export interface ServerConfig {
  readonly dataDir: string;
  readonly listenHost: string;
  readonly listenPort: number;
  readonly ingressPort: number;
  readonly ingressAddress: string;
  readonly ingressAdminPort: number;
  readonly dockerSocket: string;
  readonly portRange: { readonly min: number; readonly max: number };
  readonly logLevel: string;
  readonly nginxBin: string;
  /** Berth's DNS for people and tools (`dig @127.0.0.1 -p 8600 web.shop.prod.berth`); undefined: off. */
  readonly dnsListen?: { readonly host: string; readonly port: number };
  /** Loopback address where a second DNS listener answers on port 53 for containers (their resolv.conf); undefined: off. */
  readonly dnsContainerAddress?: string;
  readonly dnsZone: string;
  readonly dnsUpstream?: { readonly address: string; readonly port: number };
  /** Base64 AES-256 key for secrets (BERTH_SECRET_KEY); undefined: DATA_DIR/secret.key (created, 0600). */
  readonly secretKey: string | undefined;
  /** Where decrypted configuration files for containers live (tmpfs on a normal system). */
  readonly runDir: string;
  /**
   * BERTH_CONFIG_GID: the group owning those files (0640); every container that mounts them gets it as
   * a supplementary group. Default 65533: Debian reserves 65000–65533 and hands none of them out, so no
   * account of the host is in it, and it stays below 65536 (rootless Docker maps 65536 ids).
   */
  readonly configGid: number;
  /** Log retention: by age and by total size of the log database. */
  readonly logMaxAgeMs: number;
  readonly logMaxBytes: number;
  /** How often container stats are sampled (and the access log read, at most every 2 s). */
  readonly metricsIntervalMs: number;
  /** How often alert rules are evaluated. */
  readonly alertIntervalMs: number;
  /** The build queue: how many builds at once, and the memory each may use. */
  readonly buildConcurrency: number;
  readonly buildMemoryBytes: number;
  /** BERTH_BUILDER: dockerd's BuildKit (default) or its classic builder. */
  readonly builder: 'buildkit' | 'legacy';
  /** BERTH_BUILD_CACHE_MB: the build cache is trimmed to this after each build. */
  readonly buildCacheKeepBytes: number;
  /** Berth's image registry (docker-registry) on 127.0.0.1:PORT. */
  readonly registryPort: number;
  /**
   * BERTH_CLUSTER_ADDRESS: this host's address on the cluster network, which every host reaches (many
   * hosts). Set, Berth serves its registry there (read-only, TLS from the cluster CA, on
   * clusterRegistryPort) and its DNS on port 53 for containers on other hosts. Unset: neither.
   */
  readonly clusterAddress?: string;
  /** BERTH_CLUSTER_REGISTRY_PORT (default 5443): the registry's port on the cluster address. */
  readonly clusterRegistryPort: number;
  /** Registry garbage collection: releases kept per service as rollback material, and newest other images per service (≥ 1). */
  readonly registryKeep: number;
  /** How often the registry's blobs are collected (when images were deleted); 0: only on demand and after builds. */
  readonly registryGcIntervalMs: number;
  /** BERTH_PULL_TIMEOUT_S: how long one image pull from a registry may take in all (default 600 s). */
  readonly pullTimeoutMs: number;
  /** BERTH_PENDING_TIMEOUT_S: how long a started instance may wait to be placed/run (many hosts) before its release fails (default 60 s). */
  readonly pendingBoundMs: number;
  /** BERTH_HOST_MEMORY_MB: memory the instances' limits may add up to (`berth scale` refuses more); default the host's total. */
  readonly hostMemoryBytes: number;
  /**
   * BERTH_ALLOWED_BIND_ROOTS / --allowed-bind-roots: host directories under which bind-mount sources and
   * build contexts may lie (symlinks resolved). Empty: none. The Docker socket, the data and run
   * directories are refused whatever this says.
   */
  readonly allowedBindRoots: readonly string[];
  /**
   * BERTH_INGRESS_HTTPS_PORT (default 8443; `off`: none): where nginx serves hosts that have a
   * certificate. Plain HTTP stays on ingressPort (ACME's HTTP-01 and redirects).
   */
  readonly ingressHttpsPort?: number;
  /**
   * ACME (any RFC 8555 CA): BERTH_ACME_DIRECTORY (e.g. https://acme-v02.api.letsencrypt.org/directory;
   * unset: no ACME, uploaded certificates only), BERTH_ACME_EMAIL, BERTH_ACME_CA_FILE (PEM of CAs the
   * ACME client alone trusts for the directory's TLS: a private or test CA; never the system store).
   */
  readonly acme?: { readonly directoryUrl: string; readonly email?: string; readonly caFile?: string };
  /** BERTH_ACME_RETRY_S: backoff after a failed ACME attempt starts here and doubles (default 60 s, at most 6 h). */
  readonly acmeRetryBaseMs: number;
  /**
   * TLS for the API: BERTH_API_TLS_CERT and BERTH_API_TLS_KEY (PEM files, both or neither). Re-read
   * when they change, so a renewal by any tool needs no restart.
   */
  readonly apiTls?: { readonly certFile: string; readonly keyFile: string };
  /** BERTH_AUDIT_RETENTION_DAYS: how long audit entries are kept (default 365; 0: forever). */
  readonly auditRetentionMs: number;
  /** Addresses of app networks: each gets a /24 of this IPv4 block (BERTH_NETWORK_POOL, default 10.208.0.0/12: 4096 networks). */
  readonly networkPool: string;
  /**
   * BERTH_PUBLIC_URL: the address people's browsers reach the API at (e.g. https://berth.example.com),
   * from which single sign-on builds its callback URL (register `URL/v1/sso/NAME/callback` at the
   * provider). Unset: the callback is built from each request's own address (Host header).
   */
  readonly publicUrl?: string;
  /**
   * BERTH_EDGE_ADDRESS: this host's address as edge hosts reach it. Instances registered on loopback
   * (one-host mode) are sent to edge agents at this address; unset, edge hosts get no such backend.
   */
  readonly edgeAddress?: string;
  /** BERTH_WEB_DIR: the portal's built bundle (default: web/dist of this checkout); undefined: none found. */
  readonly webDir: string | undefined;
  /** The environment the programs Berth runs with extra variables (git) start from: the server's own, read once here. */
  readonly childEnv: Readonly<Record<string, string>>;
  /**
   * BERTH_NICE: the server's CPU priority (nice, -20..19; default -5, 0 leaves it as started). Its one
   * event loop answers DNS, health checks, the balancer feed and the API for every app on the host,
   * so on a busy host it runs ahead of the apps, builds and CLI calls (nginx, which it starts, too).
   */
  readonly nice: number;
}

export interface ServerFlags {
  dataDir?: string;
  listen?: string;
  ingressPort?: string;
  ingressAdminPort?: string;
  dockerSocket?: string;
  portRange?: string;
  logLevel?: string;
  dnsListen?: string;
  dnsContainerAddress?: string;
  allowedBindRoots?: string;
}

export const DEFAULT_DATA_DIR = '/var/lib/berth';
export const DEFAULT_LISTEN = '127.0.0.1:7070';

export function loadConfig(flags: ServerFlags, env: NodeJS.ProcessEnv): ServerConfig {
  const listen = flags.listen ?? env.BERTH_LISTEN ?? DEFAULT_LISTEN;
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m) throw new InvalidInput(`--listen "${listen}" is not HOST:PORT: write e.g. 127.0.0.1:7070`);
  const range = flags.portRange ?? env.BERTH_PORT_RANGE ?? '20000-29999';
  const r = /^(\d+)-(\d+)$/.exec(range);
  if (!r || Number(r[1]) >= Number(r[2]) || Number(r[1]) < 1024 || Number(r[2]) > 65535) {
    throw new InvalidInput(`--port-range "${range}" is not LOW-HIGH within 1024-65535: write e.g. 20000-29999`);
  }
  return Object.freeze({
    dataDir: resolve(flags.dataDir ?? env.BERTH_DATA_DIR ?? DEFAULT_DATA_DIR),
    listenHost: m[1]!.replace(/^\[|\]$/g, ''),
    listenPort: port('--listen', m[2]!),
    ingressPort: port('--ingress-port', flags.ingressPort ?? env.BERTH_INGRESS_PORT ?? '8080'),
    ingressAddress: env.BERTH_INGRESS_ADDRESS ?? '0.0.0.0',
    ingressAdminPort: port('--ingress-admin-port', flags.ingressAdminPort ?? env.BERTH_INGRESS_ADMIN_PORT ?? '7071'),
    dockerSocket: flags.dockerSocket ?? env.BERTH_DOCKER_SOCKET ?? '/var/run/docker.sock',
    portRange: Object.freeze({ min: Number(r[1]), max: Number(r[2]) }),
    logLevel: parseLogLevel(flags.logLevel, env.BERTH_LOG_LEVEL),
    nginxBin: env.BERTH_NGINX ?? 'nginx',
    ...dnsConfig(flags, env),
    secretKey: env.BERTH_SECRET_KEY,
    runDir: resolve(env.BERTH_RUN_DIR ?? '/run/berth'),
    configGid: wholeNumber('BERTH_CONFIG_GID', env.BERTH_CONFIG_GID ?? '65533', 1),
    logMaxAgeMs: wholeNumber('BERTH_LOG_MAX_AGE_HOURS', env.BERTH_LOG_MAX_AGE_HOURS ?? String(24 * 7), 1) * 3_600_000,
    logMaxBytes: wholeNumber('BERTH_LOG_MAX_MB', env.BERTH_LOG_MAX_MB ?? '1024', 1) * 1024 * 1024,
    metricsIntervalMs: wholeNumber('BERTH_METRICS_INTERVAL_MS', env.BERTH_METRICS_INTERVAL_MS ?? '10000', 100),
    alertIntervalMs: wholeNumber('BERTH_ALERT_INTERVAL_MS', env.BERTH_ALERT_INTERVAL_MS ?? '5000', 100),
    buildConcurrency: wholeNumber('BERTH_BUILD_CONCURRENCY', env.BERTH_BUILD_CONCURRENCY ?? '1', 1),
    buildMemoryBytes: wholeNumber('BERTH_BUILD_MEMORY_MB', env.BERTH_BUILD_MEMORY_MB ?? '1024', 6) * 1024 * 1024,
    builder: builder(env.BERTH_BUILDER ?? 'buildkit'),
    buildCacheKeepBytes: wholeNumber('BERTH_BUILD_CACHE_MB', env.BERTH_BUILD_CACHE_MB ?? '2048', 0) * 1024 * 1024,
    registryPort: port('BERTH_REGISTRY_PORT', env.BERTH_REGISTRY_PORT ?? '5000'),
    ...clusterAddress(env.BERTH_CLUSTER_ADDRESS),
    clusterRegistryPort: port('BERTH_CLUSTER_REGISTRY_PORT', env.BERTH_CLUSTER_REGISTRY_PORT ?? '5443'),
    networkPool: networkPool(env.BERTH_NETWORK_POOL ?? '10.208.0.0/12'),
    registryKeep: wholeNumber('BERTH_REGISTRY_KEEP', env.BERTH_REGISTRY_KEEP ?? '5', 1),
    allowedBindRoots: Object.freeze(bindRoots(flags.allowedBindRoots ?? env.BERTH_ALLOWED_BIND_ROOTS ?? '')),
    registryGcIntervalMs: wholeNumber('BERTH_REGISTRY_GC_INTERVAL_MS', env.BERTH_REGISTRY_GC_INTERVAL_MS ?? String(6 * 3_600_000), 0),
    pullTimeoutMs: wholeNumber('BERTH_PULL_TIMEOUT_S', env.BERTH_PULL_TIMEOUT_S ?? '600', 1) * 1000,
    pendingBoundMs: wholeNumber('BERTH_PENDING_TIMEOUT_S', env.BERTH_PENDING_TIMEOUT_S ?? '60', 1) * 1000,
    hostMemoryBytes: env.BERTH_HOST_MEMORY_MB ? wholeNumber('BERTH_HOST_MEMORY_MB', env.BERTH_HOST_MEMORY_MB, 1) * 1024 * 1024 : totalmem(),
    ...tlsConfig(env),
    auditRetentionMs: wholeNumber('BERTH_AUDIT_RETENTION_DAYS', env.BERTH_AUDIT_RETENTION_DAYS ?? '365', 0) * 86_400_000,
    webDir: env.BERTH_WEB_DIR ? resolve(env.BERTH_WEB_DIR) : defaultWebDir(),
    ...publicUrl(env.BERTH_PUBLIC_URL),
    ...edgeAddress(env.BERTH_EDGE_ADDRESS),
    childEnv: Object.freeze(Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined))),
    nice: niceness(env.BERTH_NICE ?? '-5'),
  });
}

function clusterAddress(v: string | undefined): Pick<ServerConfig, 'clusterAddress'> {
  if (v === undefined || v.trim() === '') return {};
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v.trim());
  if (!m || m.slice(1).some((x) => Number(x) > 255) || m[1] === '127' || v.trim() === '0.0.0.0') {
    throw new InvalidInput(`BERTH_CLUSTER_ADDRESS "${v}" is not an IPv4 address of this host that the other hosts reach (not loopback, not 0.0.0.0): write e.g. 10.0.0.5`);
  }
  return { clusterAddress: v.trim() };
}

function networkPool(v: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(v);
  if (!m || m.slice(1, 5).some((x) => Number(x) > 255) || Number(m[5]) < 8 || Number(m[5]) > 24) {
    throw new InvalidInput(`BERTH_NETWORK_POOL "${v}" is not an IPv4 block of /8 to /24: write e.g. 10.208.0.0/12 (each app network takes a /24 of it)`);
  }
  return v;
}

function dnsConfig(flags: ServerFlags, env: NodeJS.ProcessEnv): Pick<ServerConfig, 'dnsListen' | 'dnsContainerAddress' | 'dnsZone' | 'dnsUpstream'> {
  const listen = flags.dnsListen ?? env.BERTH_DNS_LISTEN ?? '127.0.0.1:8600';
  const container = flags.dnsContainerAddress ?? env.BERTH_DNS_CONTAINER_ADDRESS ?? '127.0.0.153';
  const upstream = env.BERTH_DNS_UPSTREAM;
  const hostPort = (flag: string, v: string) => {
    const m = /^(.*):(\d+)$/.exec(v);
    if (!m) throw new InvalidInput(`${flag} "${v}" is not HOST:PORT (or "off"): write e.g. 127.0.0.1:8600`);
    return { host: m[1]!, port: port(flag, m[2]!) };
  };
  if (container !== 'off' && !/^127\.\d+\.\d+\.\d+$/.test(container)) {
    throw new InvalidInput(`--dns-container-address "${container}" must be a loopback address such as 127.0.0.153 (or "off")`);
  }
  const out: Pick<ServerConfig, 'dnsListen' | 'dnsContainerAddress' | 'dnsZone' | 'dnsUpstream'> = { dnsZone: env.BERTH_DNS_ZONE ?? 'berth' };
  if (listen !== 'off') Object.assign(out, { dnsListen: Object.freeze(hostPort('--dns-listen', listen)) });
  if (container !== 'off') Object.assign(out, { dnsContainerAddress: container });
  if (upstream) {
    const u = hostPort('BERTH_DNS_UPSTREAM', upstream);
    Object.assign(out, { dnsUpstream: Object.freeze({ address: u.host, port: u.port }) });
  }
  return out;
}

function edgeAddress(raw: string | undefined): Pick<ServerConfig, 'edgeAddress'> {
  const v = raw?.trim();
  if (!v) return {};
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v);
  if (!m || m.slice(1).some((x) => Number(x) > 255) || v.startsWith('127.') || v === '0.0.0.0') {
    throw new InvalidInput(`BERTH_EDGE_ADDRESS "${v}" is not an IPv4 address of this host that edge hosts reach (not loopback, not 0.0.0.0): write e.g. 10.0.0.5`);
  }
  return { edgeAddress: v };
}

function publicUrl(raw: string | undefined): Pick<ServerConfig, 'publicUrl'> {
  const v = raw?.trim();
  if (!v) return {};
  let u: URL | undefined;
  try {
    u = new URL(v);
  } catch {
    u = undefined;
  }
  if (!u || !/^https?:$/.test(u.protocol) || u.search || u.hash || u.username) {
    throw new InvalidInput(`BERTH_PUBLIC_URL "${v}" is not the address of this server: write it like https://berth.example.com (no query, no credentials)`);
  }
  return { publicUrl: u.href.replace(/\/+$/, '') };
}

function tlsConfig(env: NodeJS.ProcessEnv): Pick<ServerConfig, 'ingressHttpsPort' | 'acme' | 'acmeRetryBaseMs' | 'apiTls'> {
  const out: Pick<ServerConfig, 'ingressHttpsPort' | 'acme' | 'acmeRetryBaseMs' | 'apiTls'> = {
    acmeRetryBaseMs: wholeNumber('BERTH_ACME_RETRY_S', env.BERTH_ACME_RETRY_S ?? '60', 1) * 1000,
  };
  const https = env.BERTH_INGRESS_HTTPS_PORT ?? '8443';
  if (https !== 'off') Object.assign(out, { ingressHttpsPort: port('BERTH_INGRESS_HTTPS_PORT', https) });
  const dir = env.BERTH_ACME_DIRECTORY?.trim();
  if (dir) {
    let u: URL | undefined;
    try {
      u = new URL(dir);
    } catch {
      u = undefined;
    }
    if (!u || u.protocol !== 'https:') throw new InvalidInput(`BERTH_ACME_DIRECTORY "${dir}" is not an https URL: write the CA's directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory`);
    const caFile = env.BERTH_ACME_CA_FILE?.trim();
    if (caFile && !isAbsolute(caFile)) throw new InvalidInput(`BERTH_ACME_CA_FILE "${caFile}" must be an absolute path to a PEM file`);
    const email = env.BERTH_ACME_EMAIL?.trim();
    if (email && !/^[^@\s]+@[^@\s]+$/.test(email)) throw new InvalidInput(`BERTH_ACME_EMAIL "${email}" is not an email address`);
    Object.assign(out, { acme: Object.freeze({ directoryUrl: u.href, ...(email ? { email } : {}), ...(caFile ? { caFile } : {}) }) });
  }
  const cert = env.BERTH_API_TLS_CERT?.trim();
  const key = env.BERTH_API_TLS_KEY?.trim();
  if (cert || key) {
    if (!cert || !key) throw new InvalidInput('BERTH_API_TLS_CERT and BERTH_API_TLS_KEY go together: set both (PEM files) for TLS on the API, or neither');
    for (const [n, f] of [['BERTH_API_TLS_CERT', cert], ['BERTH_API_TLS_KEY', key]] as const) {
      if (!isAbsolute(f)) throw new InvalidInput(`${n} "${f}" must be an absolute path to a PEM file`);
    }
    Object.assign(out, { apiTls: Object.freeze({ certFile: cert, keyFile: key }) });
  }
  return out;
}

function bindRoots(v: string): string[] {
  const roots = v.split(':').map((r) => r.trim()).filter((r) => r !== '');
  for (const r of roots) {
    if (!isAbsolute(r)) throw new InvalidInput(`--allowed-bind-roots / BERTH_ALLOWED_BIND_ROOTS: "${r}" is not an absolute path: write absolute directories separated by ":", e.g. /srv/data:/opt/apps`);
  }
  return roots.map((r) => normalize(r).replace(/(.)\/$/, '$1'));
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** `--log-level` or BERTH_LOG_LEVEL (the server's and the edge agent's): one of pino's levels, info by default. */
export function parseLogLevel(flag: string | undefined, v: string | undefined): string {
  const level = flag ?? v ?? 'info';
  if (!LOG_LEVELS.includes(level)) throw new InvalidInput(`${flag !== undefined ? '--log-level' : 'BERTH_LOG_LEVEL'} "${level}" is not a log level: use one of ${LOG_LEVELS.join(', ')} (info is the default)`);
  return level;
}

function builder(v: string): 'buildkit' | 'legacy' {
  if (v === 'buildkit') return 'buildkit';
  if (v === 'classic' || v === 'legacy') return 'legacy';
  throw new InvalidInput(`BERTH_BUILDER "${v}" is not a builder: use buildkit (the default) or classic`);
}

/** BERTH_NICE's value (the server's and the edge agent's): -20..19. */
export function niceness(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < -20 || n > 19) {
    throw new InvalidInput(`BERTH_NICE "${v}" is not a nice value: write a whole number from -20 (first) to 19 (last); -5 is the default, 0 keeps the priority the server was started with`);
  }
  return n;
}

function wholeNumber(name: string, v: string, min: number): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new InvalidInput(`${name} "${v}" must be a whole number of at least ${min}`);
  return n;
}

function port(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidInput(`${flag} "${v}" is not a port number (1-65535)`);
  return n;
}

/**
 * web/dist of the checkout this code runs from: src/server/config.ts under tsx, dist/*.mjs when run
 * from the CLI's bundle. The first candidate holding a built page wins; none: the portal is not built.
 */
function defaultWebDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  return [join(here, '..', '..', 'web', 'dist'), join(here, '..', 'web', 'dist')].find((d) => existsSync(join(d, 'index.html')))
    ?? join(here, '..', '..', 'web', 'dist');
}
