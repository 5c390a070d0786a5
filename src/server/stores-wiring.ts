import { join } from 'node:path';
import type { Clock, Logger } from '../core/ports.ts';
import type { Store } from '../core/store.ts';
import { SqliteAuditStore, SqliteAuthStore, SqliteStore } from '../store/index.ts';
import { ConfigStore, RegistryLogins, SecretBox, loadSecretKey } from '../config/index.ts';
import { Authenticator, ensureAdminToken } from '../auth/index.ts';
import type { ServerConfig } from './config.ts';

// The server's own state: the desired-state store, users and tokens, the audit log, the
// configuration centre and registry logins, with the secrets' key that seals what must be sealed.

export interface Stores {
  store: Store;
  /** The admin token (written to admin.token on the first start). */
  token: string;
  authStore: SqliteAuthStore;
  authenticator: Authenticator;
  secretBox: SecretBox;
  config: ConfigStore;
  audit: SqliteAuditStore;
  registryLogins: RegistryLogins;
  /** Closes the databases (last of all: everything else writes to them while it stops). */
  stop(): void;
}

export async function openStores(cfg: ServerConfig, clock: Clock, logger: Logger): Promise<Stores> {
  const store: Store = new SqliteStore(join(cfg.dataDir, 'berth.db'), clock);
  const token = await ensureAdminToken(store, join(cfg.dataDir, 'admin.token'));
  const authStore = new SqliteAuthStore(join(cfg.dataDir, 'auth.db'));
  const authenticator = new Authenticator({ store: authStore, adminTokens: store, clock });
  const secretBox = SecretBox.fromLoaded(loadSecretKey({ dataDir: cfg.dataDir, fromEnv: cfg.secretKey }));
  const config = new ConfigStore(join(cfg.dataDir, 'config.db'), secretBox, clock);
  const audit = new SqliteAuditStore(join(cfg.dataDir, 'audit.db'));
  const pruneAudit = () => {
    if (cfg.auditRetentionMs <= 0) return;
    const n = audit.prune(clock.now() - cfg.auditRetentionMs);
    if (n) logger.info({ removed: n }, 'audit entries past their retention removed');
  };
  pruneAudit();
  const auditPruner = setInterval(pruneAudit, 6 * 3_600_000);
  auditPruner.unref();
  // Credentials of private image registries (`berth registry login`), sealed with the same key.
  const registryLogins = new RegistryLogins(join(cfg.dataDir, 'registry-logins.json'), secretBox, clock);
  const keyProblem = config.keyProblem();
  if (keyProblem) logger.warn(keyProblem);
  return {
    store, token, authStore, authenticator, secretBox, config, audit, registryLogins,
    stop() {
      store.close();
      authStore.close();
      clearInterval(auditPruner);
      audit.close();
      config.close();
    },
  };
}
