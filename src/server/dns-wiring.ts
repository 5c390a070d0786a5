import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger, NetworkInfo } from '../core/ports.ts';
import type { DesiredStateStore } from '../core/store.ts';
import { DnsServer, buildDnsSnapshot, normalizeZone, type DnsSnapshot } from '../dns/index.ts';
import type { Registry } from '../registry/index.ts';
import type { ServerConfig } from './config.ts';

/**
 * The DNS snapshot from the registry: healthy instances of each app's services (`service.app.env`)
 * and of external services (`service.env`).
 */
export function snapshotFromRegistry(registry: Registry, store: Pick<DesiredStateStore, 'listServices'>, zone: string): DnsSnapshot {
  return buildDnsSnapshot(zone, store.listServices(), registry.entries().map((e) => ({
    service: e.service, env: e.env, ...(e.source === 'berth' && e.app ? { app: e.app } : {}), id: e.id, address: e.address, port: e.port,
    healthy: e.health === 'healthy',
  })));
}

/**
 * Starts Berth's DNS: one listener for people and tools, and one on port 53 of a loopback address
 * for containers (their /etc/resolv.conf points there, so `web.shop.prod.berth` resolves inside them).
 */
export async function startDns(cfg: ServerConfig, registry: Registry, store: Pick<DesiredStateStore, 'listServices'>, logger: Logger): Promise<{
  resolvConf: (app: string, env: string) => string | undefined;
  /** Removes the app's resolv.conf files (every environment); returns how many there were. */
  removeResolvConfs: (app: string) => Promise<number>;
  /**
   * The DNS servers and search domains an app network's containers get: Berth's DNS on the bridge's
   * gateway (listening there once); on an overlay (cluster mode), Berth's DNS on the cluster address.
   */
  networkDns: (env: string, network: NetworkInfo) => Promise<{ servers: string[]; search: string[] } | undefined>;
  /** The app networks there are now (after a restart, after a purge): listens on each gateway, and on no other. */
  syncNetworks: (networks: NetworkInfo[]) => Promise<void>;
  close: () => Promise<void>;
}> {
  let snap = snapshotFromRegistry(registry, store, cfg.dnsZone);
  registry.onChange(() => {
    snap = snapshotFromRegistry(registry, store, cfg.dnsZone);
  });
  const servers: DnsServer[] = [];
  const common = { zone: cfg.dnsZone, logger: logger.child({ component: 'dns' }), snapshot: () => snap, ...(cfg.dnsUpstream ? { upstream: cfg.dnsUpstream } : {}) };
  if (cfg.dnsListen) servers.push(new DnsServer({ ...common, host: cfg.dnsListen.host, port: cfg.dnsListen.port }));
  if (cfg.dnsContainerAddress) servers.push(new DnsServer({ ...common, host: cfg.dnsContainerAddress, port: 53 }));
  // Many hosts: containers on other hosts get a resolv.conf naming this address (cluster-data-wiring.ts).
  if (cfg.dnsContainerAddress && cfg.clusterAddress) servers.push(new DnsServer({ ...common, host: cfg.clusterAddress, port: 53 }));
  for (const s of servers) await s.start();
  const dir = join(cfg.dataDir, 'dns');
  // One file per app and environment: the search path makes a short name mean the container's own
  // app (`web` → web.APP.ENV.ZONE), then an external service of its environment (`db` → db.ENV.ZONE).
  // Names have no dots, so `APP.ENV` in the file name is unambiguous.
  const resolvConf = (app: string, env: string): string | undefined => {
    if (!cfg.dnsContainerAddress) return undefined;
    const zone = normalizeZone(cfg.dnsZone);
    const path = join(dir, `resolv-${app}.${env}.conf`);
    const text = `# written by Berth: services of ${app} in ${env} resolve as SERVICE (or SERVICE.${app}.${env}.${zone}), ` +
      `external services of ${env} as SERVICE (or SERVICE.${env}.${zone})\n` +
      `nameserver ${cfg.dnsContainerAddress}\nsearch ${app}.${env}.${zone} ${env}.${zone} ${zone}\noptions ndots:1 timeout:1 attempts:2\n`;
    let cur = '';
    try {
      cur = readFileSync(path, 'utf8');
    } catch {
      mkdirSync(dir, { recursive: true });
    }
    if (cur !== text) {
      writeFileSync(path, text, { mode: 0o644 });
      // Bind-mounted as the containers' /etc/resolv.conf: every user in them must read it (the
      // server's umask would have made it 0600).
      chmodSync(path, 0o644);
    }
    return path;
  };
  // Berth's DNS on each app network's gateway: the engine's DNS inside the containers forwards the
  // names it does not know to it (from the host's side, so no traffic crosses the bridge).
  const gateways = new Map<string, Promise<DnsServer | undefined>>();
  const listenOn = (gateway: string): Promise<DnsServer | undefined> => {
    let p = gateways.get(gateway);
    if (!p) {
      const s = new DnsServer({ ...common, host: gateway, port: 53 });
      p = s.start().then(() => s, (err: unknown) => {
        // The container still runs (its network's names resolve); only `.berth` names do not.
        common.logger.warn({ gateway, err: String((err as Error).message ?? err) }, 'dns: cannot listen on an app network gateway; its containers do not resolve berth names');
        gateways.delete(gateway);
        return undefined;
      });
      gateways.set(gateway, p);
    }
    return p;
  };
  const networkDns = async (env: string, network: NetworkInfo): Promise<{ servers: string[]; search: string[] } | undefined> => {
    if (!cfg.dnsContainerAddress) return undefined;
    const zone = normalizeZone(cfg.dnsZone);
    const search = [`${env}.${zone}`, zone];
    // An overlay's gateway is on no host: its containers (on any host) ask Berth's DNS on the cluster
    // address, behind Docker's embedded DNS (which answers the overlay's names first), leaving by
    // their host's docker_gwbridge. Without a cluster address they resolve only the overlay's names.
    if (network.overlay) return cfg.clusterAddress ? { servers: [cfg.clusterAddress], search } : undefined;
    if (!network.gateway || !(await listenOn(network.gateway))) return undefined;
    return { servers: [network.gateway], search };
  };
  const syncNetworks = async (networks: NetworkInfo[]): Promise<void> => {
    if (!cfg.dnsContainerAddress) return;
    const want = new Set(networks.flatMap((n) => (n.gateway ? [n.gateway] : [])));
    for (const g of want) await listenOn(g);
    for (const [g, p] of [...gateways]) {
      if (want.has(g)) continue;
      gateways.delete(g);
      await (await p)?.close();
    }
  };
  const removeResolvConfs = async (app: string): Promise<number> => {
    // `resolv-APP.` : app and environment names have no dots, so app `a` never matches app `a-b`'s files.
    const mine = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.startsWith(`resolv-${app}.`) && f.endsWith('.conf'));
    for (const f of mine) await rm(join(dir, f), { force: true });
    return mine.length;
  };
  return {
    resolvConf,
    removeResolvConfs,
    networkDns,
    syncNetworks,
    close: async () => {
      for (const s of servers) await s.close();
      for (const p of gateways.values()) await (await p)?.close();
      gateways.clear();
    },
  };
}
