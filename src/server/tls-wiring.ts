import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock, Logger } from '../core/ports.ts';
import type { EdgeChallenge } from '../core/edge.ts';
import type { EventStore } from '../core/store.ts';
import type { SecretBox } from '../config/index.ts';
import { FileMountRoot } from '../config/index.ts';
import { AcmeIssuer, CertManager, CertStore, ChallengeDir, ClusterCa, type CertManagerOptions } from '../tls/index.ts';
import type { ServerConfig } from './config.ts';

// Certificates (tls/): keys sealed in tls.db with the secrets' key; the files nginx reads are
// root-only (0700 directory, 0600 files) under the run directory, a tmpfs on a normal system, so
// no key lies in clear on disk. HTTP-01 answers are files nginx serves from its prefix.

export interface TlsParts {
  certs: CertManager;
  /** Where nginx serves HTTP-01 challenge answers from. */
  acmeChallengeDir: string;
  /** Berth's cluster CA (DATA/cluster-ca.json), made on first use: hosts' engine certificates, Berth's client certificate. */
  clusterCa(): Promise<ClusterCa>;
  stop(): Promise<void>;
}

export async function startTls(cfg: ServerConfig, cluster: string, d: {
  secretBox: SecretBox; events: EventStore; clock: Clock; logger: Logger;
  routes: CertManagerOptions['routes'];
  /** A certificate changed: the routes are applied again. */
  changed: () => void;
  /** The open ACME challenges changed (edge hosts serve them too); after an addition, resolves once they do. */
  challengesChanged?: (open: EdgeChallenge[], added: boolean) => Promise<void>;
}): Promise<TlsParts> {
  const acmeChallenges = new ChallengeDir(join(cfg.dataDir, 'nginx', 'acme'), d.challengesChanged);
  const certStore = new CertStore(join(cfg.dataDir, 'tls.db'), d.secretBox);
  const certs = new CertManager({
    store: certStore, fileDir: join(cfg.runDir, cluster, 'tls'), events: d.events, clock: d.clock, logger: d.logger,
    routes: d.routes, changed: d.changed, retryBaseMs: cfg.acmeRetryBaseMs,
    ...(cfg.acme ? {
      issuer: new AcmeIssuer({
        directoryUrl: cfg.acme.directoryUrl, ...(cfg.acme.email ? { email: cfg.acme.email } : {}),
        ...(cfg.acme.caFile ? { caPem: await readFile(cfg.acme.caFile, 'utf8') } : {}),
        accountKey: (create) => certStore.accountKey(cfg.acme!.directoryUrl, create), challenges: acmeChallenges, logger: d.logger,
      }),
    } : {}),
  });
  // The key files nginx reads live on a tmpfs of their own (like secret files): in clear only in memory.
  const tlsTmpfsProblem = await new FileMountRoot(join(cfg.runDir, cluster, 'tls')).prepare();
  if (tlsTmpfsProblem) d.logger.warn(`${tlsTmpfsProblem}; certificate keys for nginx go to root-only (0600) files on disk instead`);
  await certs.start();
  let clusterCa: Promise<ClusterCa> | undefined;
  return {
    certs, acmeChallengeDir: acmeChallenges.dir,
    clusterCa: () => {
      clusterCa ??= ClusterCa.open(join(cfg.dataDir, 'cluster-ca.json'), d.secretBox);
      // A failed open (e.g. an unreadable file) is tried again on the next call, not remembered.
      clusterCa.catch(() => (clusterCa = undefined));
      return clusterCa;
    },
    async stop() {
      await certs.close();
      certStore.close();
    },
  };
}
