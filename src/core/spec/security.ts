/**
 * What a service's containers may do: Linux capabilities, no-new-privileges, the user, a read-only
 * root filesystem. Berth's defaults are Docker's minus what a web service does not need; `cap_add`
 * can give any of Docker's defaults back, and nothing beyond them (that needs a policy an admin sets,
 * which a later issue adds).
 */

/** Every Linux capability (as of Linux 6.x), without the `CAP_` prefix. */
export const LINUX_CAPS: readonly string[] = [
  'AUDIT_CONTROL', 'AUDIT_READ', 'AUDIT_WRITE', 'BLOCK_SUSPEND', 'BPF', 'CHECKPOINT_RESTORE', 'CHOWN', 'DAC_OVERRIDE',
  'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'IPC_LOCK', 'IPC_OWNER', 'KILL', 'LEASE', 'LINUX_IMMUTABLE', 'MAC_ADMIN',
  'MAC_OVERRIDE', 'MKNOD', 'NET_ADMIN', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_RAW', 'PERFMON', 'SETFCAP', 'SETGID',
  'SETPCAP', 'SETUID', 'SYSLOG', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_CHROOT', 'SYS_MODULE', 'SYS_NICE', 'SYS_PACCT',
  'SYS_PTRACE', 'SYS_RAWIO', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'WAKE_ALARM',
];

/** The capabilities Docker gives a container unless told otherwise. */
export const DOCKER_DEFAULT_CAPS: readonly string[] = [
  'AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'NET_RAW', 'SETFCAP',
  'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT',
];

/**
 * Docker's defaults that Berth drops. NET_RAW above all: instances share the host's network, and a raw
 * socket there reads the host's loopback traffic (the CLI's bearer token included). MKNOD (device
 * nodes), AUDIT_WRITE (the kernel audit log), SETFCAP (file capabilities on binaries) and SYS_CHROOT
 * are not what a web service does. Kept: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, SETUID, SETGID, SETPCAP
 * and KILL, which official images use to set up files and drop to an unprivileged user at start
 * (gosu, su-exec, nginx and postgres entrypoints), and NET_BIND_SERVICE for images that listen below 1024.
 */
export const BERTH_DROPPED_CAPS: readonly string[] = ['NET_RAW', 'MKNOD', 'AUDIT_WRITE', 'SETFCAP', 'SYS_CHROOT'];

/** `cap_net_raw`, `CAP_NET_RAW`, `NET_RAW` → `NET_RAW`. */
export function normalizeCap(raw: string): string {
  return raw.trim().toUpperCase().replace(/^CAP_/, '');
}

/** What a service asks for; absent fields take Berth's defaults. */
export interface SecurityFields {
  capAdd?: readonly string[];
  capDrop?: readonly string[];
  noNewPrivileges?: boolean;
}

/**
 * The engine's CapAdd/CapDrop for a service: Docker's defaults minus BERTH_DROPPED_CAPS minus
 * `cap_drop`, plus `cap_add` (which wins over both drops). `cap_drop: [ALL]` starts from nothing.
 */
export function capabilitySets(s: SecurityFields): { capAdd: string[]; capDrop: string[] } {
  const add = [...new Set(s.capAdd ?? [])].sort();
  const userDrop = s.capDrop ?? [];
  if (userDrop.includes('ALL')) return { capAdd: add, capDrop: ['ALL'] };
  const drop = [...new Set([...BERTH_DROPPED_CAPS, ...userDrop])].filter((c) => !add.includes(c)).sort();
  // Adding one of Docker's defaults that is not dropped changes nothing: leave it out.
  return { capAdd: add.filter((c) => !DOCKER_DEFAULT_CAPS.includes(c) || BERTH_DROPPED_CAPS.includes(c) || userDrop.includes(c)), capDrop: drop };
}

/** `user:` as Docker takes it: a name or uid, optionally `:group` or `:gid`. */
export const USER_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/;

/** tmpfs mount options Berth passes on (`size=64m,mode=1777,noexec`...). */
export const TMPFS_OPTION = /^(size=\d+[kmg]?|mode=[0-7]{3,4}|uid=\d+|gid=\d+|rw|ro|exec|noexec|suid|nosuid|dev|nodev)$/;
