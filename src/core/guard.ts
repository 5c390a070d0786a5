/**
 * Container guardrails: what a service's containers may take from the host, as a policy that admins
 * set per team and/or environment, and the explicit, reasoned, expiring exemptions from it. Pure: the
 * layers and exemptions come from the store (store/auth-store.ts), the check runs at every deploy,
 * promotion, push and manual rollback (deploy/deployments.ts, api/service-routes.ts).
 *
 * Layers, least specific first: Berth's built-in defaults < the installation's policy < the team's <
 * the environment's (every team) < the team's in that environment. Each layer sets only the fields it
 * names; the rest come from the layers below, so a refusal names the layer that set the field.
 */
import { DOCKER_DEFAULT_CAPS, LINUX_CAPS } from './spec/security.ts';
import type { AppSpec, ServiceSpec } from './spec/types.ts';

/** One layer of policy: every field optional (absent: inherited). */
export interface GuardPolicy {
  /** `privileged: true` allowed. */
  privileged?: boolean;
  /** Capabilities `cap_add` may give (beyond them: refused). */
  capabilities?: string[];
  /** `no-new-privileges` required (`security_opt: [no-new-privileges:false]` refused). */
  noNewPrivileges?: boolean;
  /** Pids limit of every container: applied when the service sets none, the most it may set. 0: none. */
  pidsLimit?: number;
  /** Memory limit applied when the service sets none, bytes. 0: none. */
  memoryDefaultBytes?: number;
  /** `pid`, `ipc`, `uts`, `userns_mode`, `cgroup: host` allowed. */
  hostNamespaces?: boolean;
  /** The host's network (`x-berth.port`, `network_mode: host`) allowed; false: app networks only. */
  hostNetwork?: boolean;
  /** `devices` allowed. */
  devices?: boolean;
  /** `security_opt: seccomp=unconfined / apparmor=unconfined` allowed. */
  unconfined?: boolean;
  /** Bind mounts allowed at all (always within the server's BERTH_ALLOWED_BIND_ROOTS). */
  binds?: boolean;
  /** Bind sources must lie under one of these (narrower than the server's roots); empty: the server's roots. */
  bindRoots?: string[];
  /** `read_only: true` required. */
  readOnly?: boolean;
  /** Sysctls a service may set: names, or prefixes ending in `*` (`net.ipv4.*`). */
  sysctls?: string[];
}

export type GuardField = keyof GuardPolicy;
export const GUARD_FIELDS: readonly GuardField[] = [
  'privileged', 'capabilities', 'noNewPrivileges', 'pidsLimit', 'memoryDefaultBytes', 'hostNamespaces', 'hostNetwork', 'devices', 'unconfined',
  'binds', 'bindRoots', 'readOnly', 'sysctls',
];

/** Capabilities a service may ask for by default: today's kept set plus Docker's other defaults (what `cap_add` could always give back). */
export const DEFAULT_CAPABILITIES: readonly string[] = DOCKER_DEFAULT_CAPS;

/** Berth's built-in policy: what applies where no admin said otherwise. */
export const BUILTIN_POLICY: Required<GuardPolicy> = {
  privileged: false,
  capabilities: [...DEFAULT_CAPABILITIES],
  noNewPrivileges: true,
  pidsLimit: 4096,
  memoryDefaultBytes: 1024 ** 3,
  hostNamespaces: false,
  // Berth's own host-network mode (a port per instance, PORT) is the default way to run a service.
  hostNetwork: true,
  devices: false,
  unconfined: false,
  binds: true,
  bindRoots: [],
  readOnly: false,
  sysctls: ['net.*'],
};

/** Where a layer applies: `team` and/or `env` ('' for "any"); both empty: the installation's. */
export interface PolicyScope {
  team: string;
  env: string;
}

/** A stored layer (versioned: every `set` is a new version of its scope). */
export interface PolicyLayer extends PolicyScope {
  version: number;
  policy: GuardPolicy;
  setBy: string;
  setAt: number;
}

/** The policy that applies to one field, and the layer it came from (for people). */
export interface EffectivePolicy {
  policy: Required<GuardPolicy>;
  /** Field → the layer's name (`built-in`, `installation`, `team web`, `env prod`, `team web (env prod)`). */
  from: Record<GuardField, string>;
}

export function scopeName(s: PolicyScope): string {
  if (s.team && s.env) return `team ${s.team} (env ${s.env})`;
  if (s.team) return `team ${s.team}`;
  if (s.env) return `env ${s.env}`;
  return 'the installation';
}

/** The layers that apply to an app of `team` in `env`, least specific first. */
export function applicableScopes(team: string | undefined, env: string): PolicyScope[] {
  const out: PolicyScope[] = [{ team: '', env: '' }];
  if (team) out.push({ team, env: '' });
  out.push({ team: '', env });
  if (team) out.push({ team, env });
  return out;
}

/** Overlays the layers (least specific first) on the built-in policy. */
export function effectivePolicy(layers: readonly (PolicyScope & { policy: GuardPolicy })[]): EffectivePolicy {
  const policy = structuredClone(BUILTIN_POLICY);
  const from = Object.fromEntries(GUARD_FIELDS.map((f) => [f, 'Berth\'s built-in policy'])) as Record<GuardField, string>;
  for (const l of layers) {
    for (const f of GUARD_FIELDS) {
      const v = l.policy[f];
      if (v === undefined) continue;
      (policy as Record<string, unknown>)[f] = Array.isArray(v) ? [...v] : v;
      from[f] = `policy of ${scopeName(l)}`;
    }
  }
  return { policy, from };
}

/** Compose key of a refusal: what an exemption names (`berth policy exempt APP/SERVICE KEY`). */
export const GUARD_KEYS = [
  'privileged', 'cap_add', 'security_opt', 'pid', 'ipc', 'uts', 'userns_mode', 'cgroup', 'network_mode', 'devices', 'volumes', 'read_only', 'sysctls', 'pids_limit',
] as const;
export type GuardKey = (typeof GUARD_KEYS)[number];

/** An explicit permission for one service (or every service: `*`) of an app in one environment to use one refused key. */
export interface Exemption {
  id: string;
  app: string;
  service: string;
  env: string;
  key: GuardKey;
  reason: string;
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number;
}

/** A key a policy refuses: where (spec path by Compose names), which key, and why (with the narrow way out where there is one). */
export interface GuardViolation {
  /** `services.db.privileged`, `services.web.cap_add[1]`, `services.web.volumes[0]`. */
  path: string;
  service: string;
  key: GuardKey;
  message: string;
}

export interface GuardResult {
  violations: GuardViolation[];
  /** The spec with the policy's limits applied (pids, default memory) and the exemptions used recorded. */
  spec: AppSpec;
}

function underRoot(path: string, root: string): boolean {
  const r = root.endsWith('/') ? root.slice(0, -1) : root;
  return path === r || path.startsWith(`${r}/`) || r === '';
}

export function sysctlAllowed(name: string, allow: readonly string[]): boolean {
  return allow.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

const MiB = 1024 * 1024;
function bytesText(n: number): string {
  return n % (1024 * MiB) === 0 ? `${n / (1024 * MiB)}g` : n % MiB === 0 ? `${n / MiB}m` : `${n}`;
}

/**
 * Checks every service of `spec` against the effective policy of its team in `env`; exemptions (live
 * at `now`, for this app and env) let exactly their key of their service through. Returns every
 * violation at once, and the spec as it is to be stored.
 */
export function checkGuardrails(spec: AppSpec, opts: { env: string; team?: string; effective: EffectivePolicy; exemptions: readonly Exemption[]; now: number }): GuardResult {
  const { policy: p, from } = opts.effective;
  const out = structuredClone(spec);
  const violations: GuardViolation[] = [];
  const owner = opts.team ? `team ${opts.team}` : 'no team';
  for (const svc of Object.values(out.services)) {
    // Paths by Berth's service names, like host-path refusals: the parse's positions map them to file:line:col.
    const name = svc.composeName ?? svc.name;
    const base = `services.${svc.name}`;
    const live = opts.exemptions.filter((e) => e.app === spec.name && e.env === opts.env && (e.service === '*' || e.service === svc.name || e.service === name) &&
      e.revokedAt === 0 && e.expiresAt > opts.now);
    const used = new Map<string, Exemption>();
    const refuse = (key: GuardKey, path: string, field: GuardField, why: string) => {
      const ex = live.find((e) => e.key === key);
      if (ex) {
        used.set(ex.id, ex);
        return;
      }
      violations.push({
        path, service: name, key,
        message: `refused by ${from[field]} (app ${spec.name} of ${owner} in env ${opts.env}): ${why}. ` +
          `An admin of the team can exempt it: berth policy exempt ${spec.name}/${name} ${key} --env ${opts.env} --reason "…" --expires 7d`,
      });
    };
    if (svc.privileged && !p.privileged) {
      refuse('privileged', `${base}.privileged`, 'privileged', 'privileged containers are not allowed — they hold every capability and device of the host. ' +
        'Ask for what the service needs instead: a bigger /dev/shm with `shm_size: 1g`, one capability with `cap_add: [NAME]`, one device with `devices`');
    }
    (svc.capAdd ?? []).forEach((c, i) => {
      if (!p.capabilities.includes(c)) {
        refuse('cap_add', `${base}.cap_add[${i}]`, 'capabilities', `capability ${c} is not in the allowed list (${p.capabilities.join(', ') || 'none'})`);
      }
    });
    if (svc.noNewPrivileges === false && p.noNewPrivileges) {
      refuse('security_opt', `${base}.security_opt`, 'noNewPrivileges', 'no-new-privileges is required (setuid binaries cannot raise privileges); ' +
        'run the process as the user it needs with `user:` instead');
    }
    for (const u of svc.unconfined ?? []) {
      if (!p.unconfined) refuse('security_opt', `${base}.security_opt`, 'unconfined', `${u}=unconfined is not allowed: containers keep Docker's default ${u} profile; add the one capability the service needs with cap_add`);
    }
    for (const ns of svc.hostNamespaces ?? []) {
      if (p.hostNamespaces) continue;
      const key: GuardKey = ns === 'userns' ? 'userns_mode' : ns;
      const narrow = ns === 'ipc' ? '; for a bigger /dev/shm use `shm_size: 1g` instead' : ns === 'pid' ? '; to reap zombies use `init: true` instead' : '';
      refuse(key, `${base}.${key}`, 'hostNamespaces', `the host's ${ns} namespace is not shared with containers${narrow}`);
    }
    if (!p.hostNetwork && svc.networkMode !== 'app') {
      refuse('network_mode', `${base}.network_mode`, 'hostNetwork', 'services run on the app\'s own network here, not the host\'s: drop `network_mode: host` and `x-berth.port`, and publish the port with `ports`');
    }
    (svc.devices ?? []).forEach((dev, i) => {
      if (!p.devices) refuse('devices', `${base}.devices[${i}]`, 'devices', `host device ${dev.source} is not given to containers`);
    });
    svc.volumes.forEach((v, i) => {
      if (v.type !== 'bind') return;
      if (!p.binds) {
        refuse('volumes', `${base}.volumes[${i}]`, 'binds', `bind mounts of host directories (${v.source}) are not allowed: use a named volume (\`volumes: [data:${v.target}]\`)`);
      } else if (p.bindRoots.length > 0 && !p.bindRoots.some((r) => underRoot(v.source, r))) {
        refuse('volumes', `${base}.volumes[${i}]`, 'bindRoots', `${v.source} is not under the directories allowed for binds (${p.bindRoots.join(', ')}): use a named volume, or a directory there`);
      }
    });
    if (p.readOnly && !svc.readOnly) {
      refuse('read_only', `${base}.read_only`, 'readOnly', 'a read-only root filesystem is required: set `read_only: true`, with `tmpfs: [/tmp]` or a volume for what the service writes');
    }
    for (const k of Object.keys(svc.sysctls ?? {})) {
      if (!sysctlAllowed(k, p.sysctls)) refuse('sysctls', `${base}.sysctls.${k}`, 'sysctls', `sysctl ${k} is not in the allowed list (${p.sysctls.join(', ') || 'none'})`);
    }
    if (p.pidsLimit > 0) {
      if (svc.limits.pids === undefined) svc.limits.pids = p.pidsLimit;
      else if (svc.limits.pids <= 0 || svc.limits.pids > p.pidsLimit) {
        refuse('pids_limit', `${base}.pids_limit`, 'pidsLimit', `${svc.limits.pids <= 0 ? 'no' : `a ${svc.limits.pids}`} pids limit is more than the ${p.pidsLimit} allowed: set pids_limit to at most ${p.pidsLimit}`);
      }
    }
    if (p.memoryDefaultBytes > 0 && svc.limits.memoryBytes === undefined) svc.limits.memoryBytes = p.memoryDefaultBytes;
    if (used.size > 0) svc.exemptions = [...used.values()].map((e) => ({ id: e.id, key: e.key, expiresAt: e.expiresAt }));
    else delete svc.exemptions;
  }
  violations.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { violations, spec: out };
}

/**
 * Warnings for services whose release was accepted with an exemption that no longer holds (expired
 * or revoked, and no live one for the same key): they keep running; their next deploy is refused.
 */
export function expiredExemptions(services: readonly Pick<ServiceSpec, 'name' | 'exemptions'>[], covered: (service: string, key: string) => boolean, now: number): string[] {
  const out: string[] = [];
  for (const s of services) {
    for (const e of s.exemptions ?? []) {
      if (covered(s.name, e.key)) continue;
      out.push(`${s.name} runs with an exemption for ${e.key} (${e.id}) that has ${e.expiresAt <= now ? 'expired' : 'been revoked'}: ` +
        'the running containers are not stopped, but the next deploy, promotion or rollback of it is refused until it complies or is exempted again');
    }
  }
  return out;
}

/**
 * True if setting `proposed` on top of `inherited` (what applies without the layer) would allow
 * something `inherited` refuses — a team admin may only tighten; loosening is the owners'.
 */
export function loosens(proposed: GuardPolicy, inherited: Required<GuardPolicy>): GuardField[] {
  const out: GuardField[] = [];
  const allow = ['privileged', 'hostNamespaces', 'hostNetwork', 'devices', 'unconfined', 'binds'] as const;
  for (const f of allow) if (proposed[f] === true && !inherited[f]) out.push(f);
  for (const f of ['noNewPrivileges', 'readOnly'] as const) if (proposed[f] === false && inherited[f]) out.push(f);
  for (const f of ['pidsLimit', 'memoryDefaultBytes'] as const) {
    const v = proposed[f];
    if (v !== undefined && inherited[f] > 0 && (v === 0 || v > inherited[f])) out.push(f);
  }
  if (proposed.capabilities?.some((c) => !inherited.capabilities.includes(c))) out.push('capabilities');
  if (proposed.sysctls?.some((s) => !inherited.sysctls.includes(s) && !(s.endsWith('*') ? false : sysctlAllowed(s, inherited.sysctls)))) out.push('sysctls');
  if (proposed.bindRoots !== undefined && inherited.bindRoots.length > 0 &&
    (proposed.bindRoots.length === 0 || proposed.bindRoots.some((r) => !inherited.bindRoots.some((i) => underRoot(r, i))))) out.push('bindRoots');
  return out;
}

/** Problems with a policy layer as sent (field → what is wrong); empty when it is fine. */
export function policyProblems(p: GuardPolicy): string[] {
  const out: string[] = [];
  for (const c of p.capabilities ?? []) if (!LINUX_CAPS.includes(c)) out.push(`capabilities: "${c}" is not a Linux capability (write e.g. NET_BIND_SERVICE, without CAP_)`);
  for (const r of p.bindRoots ?? []) if (!r.startsWith('/') || r.includes('/../') || r.endsWith('/..')) out.push(`bindRoots: "${r}" is not an absolute path`);
  for (const s of p.sysctls ?? []) if (!/^[a-z0-9_.]+\*?$/.test(s)) out.push(`sysctls: "${s}" is not a sysctl name or a prefix ending in * (e.g. net.ipv4.*)`);
  return out;
}

/** A policy for people: `memoryDefaultBytes` as `1g`, lists joined. */
export function describePolicy(p: GuardPolicy): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of GUARD_FIELDS) {
    const v = p[f];
    if (v === undefined) continue;
    out[f] = Array.isArray(v) ? v.join(',') || '(none)' : f === 'memoryDefaultBytes' ? (v === 0 ? '0 (none)' : bytesText(v as number)) : String(v);
  }
  return out;
}

/** Store role: policy layers (every version kept) and exemptions (store/auth-store.ts). */
export interface GuardStore {
  /** The newest version of every scope's layer. */
  policyLayers(): PolicyLayer[];
  /** Every version of one scope, newest first. */
  policyHistory(scope: PolicyScope): PolicyLayer[];
  /** Stores `policy` as the scope's next version (an empty policy: the scope inherits everything again). */
  setPolicy(scope: PolicyScope, policy: GuardPolicy, setBy: string, setAt: number): PolicyLayer;
  addExemption(e: Exemption): void;
  getExemption(id: string): Exemption | undefined;
  listExemptions(app?: string): Exemption[];
  revokeExemption(id: string, at: number): boolean;
}

/** The effective policy of an app of `team` in `env`, from the stored layers. */
export function policyFor(layers: readonly PolicyLayer[], team: string | undefined, env: string): EffectivePolicy {
  const scopes = applicableScopes(team, env);
  return effectivePolicy(scopes.flatMap((s) => layers.filter((l) => l.team === s.team && l.env === s.env)));
}

/**
 * The container guardrails as the deploy path sees them: the stored policy layers of the app's team
 * in the environment and the app's exemptions, read at each check (a policy set a moment ago applies
 * to the next deploy; an exemption expired a moment ago no longer does).
 */
export function guardrails(store: GuardStore & { appTeam(app: string): string | undefined }, clock: { now(): number }): (app: string, env: string, spec: AppSpec) => GuardResult {
  return (app, env, spec) => {
    const team = store.appTeam(app);
    return checkGuardrails(spec, {
      env, ...(team !== undefined ? { team } : {}), effective: policyFor(store.policyLayers(), team, env), exemptions: store.listExemptions(app), now: clock.now(),
    });
  };
}

/** Status warnings of one environment's services whose release relies on an exemption that no longer holds. */
export function exemptionWarnings(store: GuardStore, clock: { now(): number }): (app: string, env: string, services: readonly Pick<ServiceSpec, 'name' | 'exemptions'>[]) => string[] {
  return (app, env, services) => {
    const now = clock.now();
    const live = store.listExemptions(app).filter((e) => e.env === env && e.revokedAt === 0 && e.expiresAt > now);
    return expiredExemptions(services, (service, key) => live.some((e) => e.key === key && (e.service === '*' || e.service === service)), now);
  };
}
