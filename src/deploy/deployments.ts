import { createHash } from 'node:crypto';
import { Conflict, InvalidInput } from '../core/errors.ts';
import { admit, placementOfService, type CurrentInstance, type PoolRulesOf } from '../core/pool-admission.ts';
import type { DeploymentOutcome, DeploymentsPort, DeployRequest } from '../core/deployments.ts';
import type { ClusterMode, Clock, HostInfo, HostPathPolicy, SpecFilesPort } from '../core/ports.ts';
import type { AppSpec } from '../core/spec/types.ts';
import type { GuardResult } from '../core/guard.ts';
import { parseSource } from '../core/spec/source.ts';
import { canonicalRouteKey } from '../core/spec/routes.ts';
import type { SpecSource } from '../core/spec/source.ts';
import type { DeploymentRecord, DeploymentStatus, DeploymentStore, DesiredStateStore, EventStore, InstanceStore } from '../core/store.ts';
import { checkHostPaths } from './host-paths.ts';

export interface DeploymentServiceDeps {
  store: DeploymentStore & DesiredStateStore & EventStore & Pick<InstanceStore, 'listInstances'>;
  clock: Clock;
  newId: () => string;
  /** Which host paths bind mounts and build contexts may use (resolved on the server's filesystem). */
  hostPaths: HostPathPolicy;
  /** Values of Compose secrets and configs: sealed on the way in (the stored spec names digests), external ones checked. */
  specFiles?: SpecFilesPort;
  /** Hands a new deployment to the deployment controller (its work-queue key). */
  enqueue: (id: string) => void;
  /**
   * The wire schema's reading of a spec (normalised hosts and paths, defaults): in-process callers'
   * specs get exactly the checks an HTTP body gets. Throws InvalidInput naming the field.
   */
  parseSpec?: (spec: unknown) => AppSpec;
  /**
   * The container guardrails of the app's team in the environment (core/guard.ts checkGuardrails with
   * the stored policy and exemptions): violations refuse the deployment, the returned spec carries the
   * policy's limits and the exemptions used. Absent: no guardrails beyond the spec's own checks.
   */
  guard?: (app: string, env: string, spec: AppSpec) => GuardResult;
  /**
   * Pools as objects (grants and quotas over the stores): the app's team must be granted the pool of
   * every service (owners bypass) and the change must stay within each pool's quota. Absent: none.
   */
  pools?: PoolRulesOf;
  /**
   * Many hosts: the engine's mode and hosts. In cluster mode the admission also checks what a Swarm
   * service cannot be and that the services fit their pools' free capacity now. Absent, or one-host
   * mode: no capacity check (one host keeps its memory check on scale, core/capacity.ts).
   */
  placement?: { mode(): Promise<ClusterMode>; hosts(): Promise<HostInfo[]> };
  /** How long `follow` waits at most (default 30 min). */
  followTimeoutMs?: number;
  /** A safety re-read while following, in case a change was missed (default 5 s). Not the wake-up path. */
  followRecheckMs?: number;
}

const FINISHED: ReadonlySet<DeploymentStatus> = new Set(['succeeded', 'failed']);

/**
 * The deployments service: validate, dry-run, create and follow — the one path from a spec to a
 * deployment record, called in-process by the deploy route, promotion and the push pipeline.
 * `changed(id)` is called by whoever moves a deployment (the controller manager, after each round of
 * `deploy/ID`): followers wake on it instead of polling.
 */
export class DeploymentService implements DeploymentsPort {
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(private readonly d: DeploymentServiceDeps) {}

  async validate(req: DeployRequest): Promise<AppSpec> {
    return (await this.prepare(req, false)).spec;
  }

  async create(req: DeployRequest): Promise<DeploymentRecord> {
    const { spec, sourceId } = await this.prepare(req, true);
    const { store, clock } = this.d;
    if (sourceId) store.putSource(sourceId, req.app, req.source!);
    const dep: DeploymentRecord = {
      id: this.d.newId(), app: req.app, env: req.env, spec, warnings: req.warnings, status: 'pending', message: '',
      createdAt: clock.now(), createdBy: 'admin', releases: {},
    };
    // Services with a build section run the images of one build: the caller's (a push), or the
    // deployment's own host-context build, which the controller submits under the deployment's id.
    const builds = Object.values(spec.services).some((s) => s.build);
    if (req.buildId) dep.buildId = req.buildId;
    else if (builds) dep.buildId = dep.id;
    store.createDeployment(dep);
    store.addEvent({ app: req.app, env: req.env, service: '', instance: '', kind: 'deployment.created',
      message: `deployment ${dep.id} of ${req.app}/${req.env}: ${Object.keys(spec.services).join(', ')}` });
    this.d.enqueue(dep.id);
    return dep;
  }

  /** Wakes the followers of deployment `id` (its record may have changed). */
  changed(id: string): void {
    for (const wake of this.waiters.get(id) ?? []) wake();
  }

  async follow(id: string, opts: { timeoutMs?: number; onStatus?: (s: DeploymentStatus, message: string) => void } = {}): Promise<DeploymentOutcome> {
    const deadline = Date.now() + (opts.timeoutMs ?? this.d.followTimeoutMs ?? 30 * 60_000);
    const recheck = this.d.followRecheckMs ?? 5000;
    let last: DeploymentStatus | undefined;
    let woken = false;
    let wake: () => void = () => { woken = true; };
    const waiter = () => wake();
    let set = this.waiters.get(id);
    if (!set) this.waiters.set(id, (set = new Set()));
    set.add(waiter);
    try {
      for (;;) {
        woken = false;
        const dep = this.d.store.getDeployment(id);
        if (!dep) return { status: 'failed', message: `deployment ${id} vanished` };
        if (dep.status !== last) {
          last = dep.status;
          opts.onStatus?.(dep.status, dep.message);
        }
        if (FINISHED.has(dep.status)) return { status: dep.status as 'succeeded' | 'failed', message: dep.message };
        const left = deadline - Date.now();
        if (left <= 0) return { status: 'failed', message: `deployment ${id} still ${dep.status} after the deadline` };
        if (woken) continue;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(recheck, left));
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = () => { woken = true; };
      }
    } finally {
      set.delete(waiter);
      if (set.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id);
    }
  }

  /**
   * The admission (core/pool-admission.ts `admit`, one pass): pool grants and quotas, then in cluster
   * mode what a Swarm service cannot be and the capacity of the pools — on the services as they would
   * run (after the guardrails: the policy's limits are reservations too). Throws its refusal.
   */
  private async admit(req: DeployRequest, spec: AppSpec): Promise<void> {
    const r = admit({
      app: req.app, env: req.env, after: Object.values(spec.services).map((s) => ({ name: s.name, replicas: s.replicas, spec: s })),
      ...(this.d.pools ? { rules: this.d.pools({ app: req.app, env: req.env, ...(req.actor !== undefined ? { actor: req.actor } : {}) }) } : {}),
      ...await this.capacity(req),
    });
    if (!r.ok) throw r.error;
  }

  /** Cluster mode: the hosts, and the environment's instances now with what each reserves. */
  private async capacity(req: DeployRequest): Promise<{ capacity?: { hosts: HostInfo[]; current: CurrentInstance[] } }> {
    const p = this.d.placement;
    if (!p || (await p.mode()) !== 'swarm') return {};
    const { store } = this.d;
    const current = store.listInstances({ app: req.app, env: req.env })
      .filter((i) => i.state !== 'stopping' && i.host !== '')
      .map((i) => {
        const rel = store.getRelease(i.releaseId);
        return { service: i.service, host: i.host, reservation: rel ? placementOfService(rel.spec).reservation : { nanoCpus: 0, memoryBytes: 0 } };
      });
    return { capacity: { hosts: await p.hosts(), current } };
  }

  /** Every check of a deployment, in the order the API always made them; the spec as it would be stored. */
  private async prepare(req: DeployRequest, keep: boolean): Promise<{ spec: AppSpec; sourceId?: string }> {
    const { store } = this.d;
    const parsed = this.d.parseSpec ? this.d.parseSpec(req.spec) : req.spec;
    if (parsed.name !== req.app) throw new InvalidInput(`spec.name "${parsed.name}" does not match the app "${req.app}"`);
    checkServiceNames(parsed);
    checkRouteConflicts(store, parsed, req.env);
    // Bind sources and build contexts as the server resolves them: the stored spec names real paths.
    const resolved = await checkHostPaths(this.d.hostPaths, parsed, { builds: !req.buildId });
    // The guardrail policy judges what will run: resolved bind sources, the service as stored.
    const checked = this.d.guard ? guarded(this.d.guard(req.app, req.env, resolved), req) : resolved;
    // Admission: pool grants, quotas and (cluster mode) capacity, on the services as they would run.
    await this.admit(req, checked);
    // Last: secret values are sealed only once everything else holds, and never stored as sent.
    const spec = this.d.specFiles ? this.d.specFiles.prepare(req.app, req.env, checked, { keep }) : withoutFileValues(checked);
    // The source (Compose text + variables) is kept by id on every service, for promote to interpolate again.
    const sourceId = req.source ? sourceIdOf(req.app, req.source) : undefined;
    for (const [name, svc] of Object.entries(spec.services)) {
      if (sourceId) svc.source = sourceId;
      else if (svc.source && !store.getSource(svc.source)) {
        throw new InvalidInput(`spec.services.${name}.source: no stored source "${svc.source}": send the Compose source itself in "source"`);
      }
    }
    return { spec, ...(sourceId ? { sourceId } : {}) };
  }
}

/**
 * The spec with the policy's limits, or InvalidInput listing every refused key at once — at the
 * file:line:col that wrote it when the deployment carries its Compose source (`details.refused` by
 * spec path, which the CLI maps with its own parse).
 */
function guarded(r: GuardResult, req: DeployRequest): AppSpec {
  if (r.violations.length === 0) return r.spec;
  let positions: Record<string, { file?: string; line: number; col: number; path: string }> = {};
  if (req.source) {
    try {
      positions = parseSource(req.source, req.app, req.env).hostPathSources;
    } catch {
      // A source that does not parse here (a variable only the caller had) just loses the positions.
    }
  }
  const lines = r.violations.map((v) => {
    const at = positions[v.path] ?? positions[`services.${v.path.split('.')[1]}`];
    return at ? `${at.file ?? req.source!.file}:${at.line}:${at.col}: ${v.path.replace(/^services\.[^.[]+/, `services.${v.service}`)}: ${v.message}` : `spec.${v.path}: ${v.message}`;
  });
  throw new InvalidInput(lines.join('\n'), { details: { refused: r.violations.map((v) => ({ path: v.path, key: v.key, message: v.message })) } });
}

/** Without a store for them, a spec with secret or config values is refused rather than stored with them. */
function withoutFileValues(spec: AppSpec): AppSpec {
  for (const [name, s] of Object.entries(spec.services)) {
    if ([...s.secrets ?? [], ...s.configs ?? [], ...s.build?.secrets ?? []].length > 0) {
      throw new InvalidInput(`spec.services.${name}: this server keeps no secrets or configs, so it cannot deploy them`);
    }
  }
  return spec;
}

function checkServiceNames(spec: AppSpec): void {
  for (const [key, s] of Object.entries(spec.services)) {
    if (key !== s.name) throw new InvalidInput(`spec.services.${key}.name is "${s.name}": it must equal its key "${key}"`);
  }
}

/**
 * Two apps (or environments) claiming the same host and path would steal each other's traffic: the
 * first owner keeps it. The same app in another environment needs its own host; the message shows
 * how to write one per environment with ${BERTH_ENV}.
 */
function checkRouteConflicts(store: Pick<DesiredStateStore, 'listServices' | 'getRelease'>, spec: AppSpec, env: string): void {
  const claimed = new Map<string, { app: string; env: string; service: string }>();
  for (const s of store.listServices()) {
    if (s.app === spec.name && s.env === env) continue;
    const rel = store.getRelease(s.releaseId);
    // Stored routes may predate normalisation: compare canonical forms, so `SEC-CASE.LOCAL.` is `sec-case.local`.
    for (const r of rel?.spec.routes ?? []) claimed.set(canonicalRouteKey(r), { app: s.app, env: s.env, service: s.name });
  }
  const mine = new Map<string, { app: string; env: string; service: string }>();
  for (const s of Object.values(spec.services)) {
    for (const r of s.routes) {
      const key = canonicalRouteKey(r);
      const other = claimed.get(key) ?? mine.get(key);
      if (other) {
        const what = `route ${r.host ?? '(any host)'}${r.path} of ${s.name} is already served by ${other.app}/${other.env}/${other.service}`;
        if (other.app === spec.name && other.env !== env) {
          const host = perEnvHost(r.host, spec.name);
          throw new Conflict(`${what}: ${spec.name} in ${env} needs a host of its own — write the environment into the host, ` +
            `e.g. host: ${host} (served as ${host.replace('${BERTH_ENV}', env)} in ${env} and ${host.replace('${BERTH_ENV}', other.env)} in ${other.env})`);
        }
        throw new Conflict(`${what}: choose another host or path`);
      }
      mine.set(key, { app: spec.name, env, service: s.name });
    }
  }
}

/** `shop.example.com` → `shop-${BERTH_ENV}.example.com`, `*.example.com` → `*.${BERTH_ENV}.example.com`; no host → `APP-${BERTH_ENV}.example.com`. */
function perEnvHost(host: string | undefined, app: string): string {
  if (!host) return `${app}-\${BERTH_ENV}.example.com`;
  if (host.startsWith('*.')) return `*.\${BERTH_ENV}${host.slice(1)}`;
  const dot = host.indexOf('.');
  return dot < 0 ? `${host}-\${BERTH_ENV}` : `${host.slice(0, dot)}-\${BERTH_ENV}${host.slice(dot)}`;
}

/** Content address of a deployment's source: the same file and variables are stored once. */
function sourceIdOf(app: string, source: SpecSource): string {
  const sorted = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const canonical = JSON.stringify([app, source.file, source.text, source.baseDir, sorted(source.files), sorted(source.variables), source.environmentConfig === true,
    ...(source.moreFiles || source.profiles ? [source.moreFiles ?? [], source.profiles ?? []] : [])]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 32);
}
