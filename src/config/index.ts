/**
 * config: the configuration center. Per app and environment, plain values and secrets, versioned
 * with a history (who, when, which keys; never a secret's value). Secrets are sealed with AES-256-GCM
 * under a key kept outside the database (`BERTH_SECRET_KEY` or `DATA_DIR/secret.key`, mode 0600) and
 * bound to `app/env/key`. It has its own SQLite file (`DATA_DIR/config.db`) and migrations. Only the
 * deployer reads decrypted values (`resolved`), to inject them into containers; a change re-deploys
 * the app's current spec (`startConfigRollout`), so configuration rolls out as a release.
 */
export { writeConfigFiles, sweepConfigFiles, CONFIG_FILE_MODE, CONFIG_DIR_MODE, type ConfigFilesOptions } from './config-files.ts';
export {
  ConfigStore, CONFIG_KEY_PATTERN, MAX_VALUE_BYTES, configKeyProblem,
  type ConfigKind, type ConfigEntryInput, type ConfigChange, type ConfigVersion, type ConfigEntryView, type ConfigWriteResult,
} from './config-store.ts';
export { SecretBox, SecretKeyError, loadSecretKey, SECRET_KEY_FILE, type Sealed, type KeySource, type LoadedKey } from './secret-box.ts';
export { currentAppSpec, describeChanges, startConfigRollout, type ConfigRolloutDeps } from './rollout.ts';
export { SpecFiles, externalKeys } from './spec-files.ts';
export { FileMountRoot, isMountPoint, mountsOf } from './file-mounts.ts';
export { RegistryLogins, type RegistryLoginView } from './registry-logins.ts';
