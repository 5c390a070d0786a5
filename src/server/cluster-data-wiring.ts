import { join } from 'node:path';
import Docker from 'dockerode';
import type { Logger } from '../core/ports.ts';
import type { RegistryLogins } from '../config/index.ts';
import { FileMountRoot } from '../config/index.ts';
import { swarmShipping, type SwarmShipping } from '../engine/docker/index.ts';
import { ClusterRegistry, type LocalRegistry } from '../images/index.ts';
import { ClusterCa, checkIssued } from '../tls/index.ts';
import type { ServerConfig } from './config.ts';

// Many hosts (issue 13 item 4): what a host other than this one needs to run an instance — Berth's
// registry on the cluster address (read-only, TLS from the cluster CA) and the data plane the Swarm
// containers role uses (image references every host pulls, Berth's files as Swarm secrets, a
// resolv.conf naming Berth's DNS on the cluster address).

export interface ClusterDataParts {
  ca: ClusterCa;
  /** Absent when Berth's own registry does not run (docker-registry not installed). */
  registry?: ClusterRegistry;
  /** For SwarmContainers (`o.data`). */
  shipping: SwarmShipping;
  /** What a joining host runs to trust the registry (part of `berth host add`). */
  registryTrust?: { host: string; caPem: string };
}

export async function startClusterData(cfg: ServerConfig, cluster: string, d: {
  imageRegistry: LocalRegistry; imageRegistryUp: boolean; registryLogins: RegistryLogins; logger: Logger;
  /** The cluster CA (tls-wiring: one per server, DATA/cluster-ca.json). */
  clusterCa: () => Promise<ClusterCa>;
}): Promise<ClusterDataParts | undefined> {
  const address = cfg.clusterAddress;
  if (!address) return undefined;
  const ca = await d.clusterCa();
  let registry: ClusterRegistry | undefined;
  if (d.imageRegistryUp) {
    // The registry's key lives on a tmpfs of its own, like the ingress's certificate keys.
    const tlsDir = join(cfg.runDir, cluster, 'registry-tls');
    const problem = await new FileMountRoot(tlsDir).prepare();
    if (problem) d.logger.warn(`${problem}; the cluster registry's key goes to a root-only (0600) file on disk instead`);
    registry = new ClusterRegistry({
      local: d.imageRegistry, address, port: cfg.clusterRegistryPort, tlsDir, caPem: ca.caPem, logger: d.logger,
      issue: () => ca.issueEngine({ host: 'berth-registry', addresses: [address] }),
      // Re-issued when it is not ours, names another address, or has less than 30 days left.
      stillGood: (pem) => checkIssued(ca.caPem, pem, { usage: 'server', address, now: Date.now() + 30 * 86_400_000 }).length === 0,
    });
    try {
      await registry.start();
    } catch (err) {
      d.logger.error({ err: (err as Error).message }, 'cluster registry not started: hosts other than this one cannot pull Berth\'s images');
      registry = undefined;
    }
  }
  const dnsDir = join(cfg.dataDir, 'dns');
  const shipping = swarmShipping({
    docker: new Docker({ socketPath: cfg.dockerSocket }),
    toCluster: (ref) => registry?.refFor(ref),
    auth: (host) => (registry && host === registry.host ? d.imageRegistry.credentials : d.registryLogins.credentials(host)),
    // Berth's config and secret files (the tmpfs under the run directory) and its resolv.conf files.
    roots: [join(cfg.runDir, cluster), dnsDir],
    rewrite: (path, content) => (path.startsWith(`${dnsDir}/`) ? Buffer.from(clusterResolvConf(content.toString('utf8'), cfg.dnsContainerAddress, address)) : content),
  });
  return { ca, shipping, ...(registry ? { registry, registryTrust: { host: registry.host, caPem: ca.caPem } } : {}) };
}

/** A container's resolv.conf for another host: Berth's DNS on the cluster address instead of the loopback listener. */
export function clusterResolvConf(text: string, loopback: string | undefined, address: string): string {
  return text.split('\n').map((l) => (loopback && l.trim() === `nameserver ${loopback}` ? `nameserver ${address}` : l)).join('\n');
}
