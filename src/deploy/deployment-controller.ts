import { createHash } from 'node:crypto';
import { buildImagesReady, type DeploymentBuildsPort } from '../core/deployments.ts';
import { isDigestRef, pullDecision, pullFailureMessage, registryOf } from '../core/image-ref.ts';
import type { Clock, EngineImages, Logger, PullProgress } from '../core/ports.ts';
import { DEFAULT_UPDATE, type ServiceSpec } from '../core/spec/types.ts';
import type { DeploymentRecord, DeploymentStore, DesiredStateStore, EventStore, InstanceStore, ReleaseRecord } from '../core/store.ts';
import { waitingOn } from '../core/views.ts';
import { COMPLETED_REASON, dependencyTimeoutText, dependencyWait, type DependencyHold, type DependencyView } from '../core/plan/index.ts';
import type { Result } from '../reconcile/index.ts';
import { RELEASE_FAILURE_LIMIT } from './service-reconciler.ts';

export function deploymentKey(id: string): string {
  return `deploy/${id}`;
}

export interface DeploymentControllerDeps {
  store: DeploymentStore & DesiredStateStore & InstanceStore & EventStore;
  engine: Pick<EngineImages, 'imageId' | 'pull'>;
  clock: Clock;
  logger: Logger;
  newId: () => string;
  /** Wakes the reconciler of a service. */
  enqueueService: (app: string, env: string, service: string) => void;
  /** Current configuration version of an app/env (config center); 0 when none. */
  configVersion?: (app: string, env: string) => number;
  /** Re-renders the ingress (coalesced, returns at once). */
  applyRoutes: () => void;
  /** The build controller: a deployment with build sections runs the images of a build record. */
  builds?: DeploymentBuildsPort;
  /** Whether Berth has credentials for a registry (`berth registry login`): a refused pull says what to do. */
  loggedIn?: (registry: string) => boolean;
  /** How long one image pull may take in all (BERTH_PULL_TIMEOUT_S); default 10 minutes. */
  pullTimeoutMs?: number;
}

const DEFAULT_PULL_TIMEOUT_MS = 600_000;

/** A pull's progress is an event at most this often (the deploy's output shows it). */
const PULL_PROGRESS_EVERY_MS = 2000;

function pullProgressText(p: PullProgress): string {
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  return `${p.layersDone}/${p.layers} layers, ${mb(p.bytes)}/${mb(p.totalBytes)} MB`;
}

/**
 * Stable hash of what makes a release: the service spec and the image it runs (not how many, not how
 * it rolls out, not which text it was written in: a Compose file changed elsewhere is the same release).
 */
export function releaseHash(spec: ServiceSpec, imageId: string): string {
  const { replicas: _r, update: _u, restartGeneration: _g, source: _s, restartWith: _w, exemptions: _e, ...rest } = spec;
  return createHash('sha256').update(stableJson({ ...rest, imageId })).digest('hex').slice(0, 16);
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * Turns a deployment (a whole app spec for one environment) into desired state: resolves image ids
 * (of its build's images for services with a build section: it never builds itself),
 * creates a release for each service whose spec or image changed, sets replicas, removes services no
 * longer in the spec; then follows the releases until all are healthy or one failed.
 */
export class DeploymentController {
  constructor(private readonly d: DeploymentControllerDeps) {}

  async reconcile(id: string): Promise<Result> {
    const dep = this.d.store.getDeployment(id);
    if (!dep || dep.status === 'succeeded' || dep.status === 'failed') return;
    if (dep.status === 'pending' || dep.status === 'building') return this.apply(dep);
    return this.follow(dep);
  }

  private async apply(dep: DeploymentRecord): Promise<Result> {
    const { store, engine, clock } = this.d;
    this.d.logger.debug({ deployment: dep.id, sinceCreatedMs: clock.now() - dep.createdAt }, 'deployment picked up');
    const services = Object.values(dep.spec.services);
    // Images come from the deployment's build (for services with a build section) or the engine.
    const refs = new Map<string, string>();
    if (services.some((s) => s.build)) {
      const got = await this.builtImages(dep);
      if (!(got instanceof Map)) return got;
      for (const [k, v] of got) refs.set(k, v);
    } else if (dep.status === 'pending') {
      store.updateDeployment(dep.id, { status: 'building' });
    }
    const images = new Map<string, string>();
    // One pull per reference, whichever services share it.
    const pulled = new Map<string, Promise<string | undefined>>();
    for (const svc of services) {
      const built = refs.get(svc.name);
      let imageId: string | undefined;
      if (built) {
        imageId = await engine.imageId(built);
        if (!imageId) return this.fail(dep, `image ${built} built for service ${svc.name} is no longer on the engine: deploy again`);
      } else {
        const policy = svc.pullPolicy;
        let p = pulled.get(svc.image);
        if (!p) pulled.set(svc.image, (p = this.pulledImage(dep, svc.name, svc.image, policy)));
        try {
          imageId = await p;
        } catch (err) {
          return this.fail(dep, (err as Error).message);
        }
        if (!imageId) {
          return this.fail(dep, `image ${svc.image} of service ${svc.name} is not on the engine and its pull_policy is never: ` +
            'build or load it there first, or let Berth pull it (pull_policy: missing)');
        }
      }
      images.set(svc.name, imageId);
    }

    const releases: Record<string, string> = {};
    // The config version is part of the release (a config change is a new release); its values are
    // not: secrets stay out of this database and are decrypted only when a container is created.
    const configVersion = this.d.configVersion?.(dep.app, dep.env) ?? 0;
    for (const spec of services) {
      // A release is what runs: the image its build made, not the recipe nor its build-time test (a
      // config rollout or a rollback of it runs that image again instead of building).
      const { configVersion: _v, build: _b, test: _t, ...rest } = spec;
      const ref = refs.get(spec.name);
      const svc: ServiceSpec = { ...rest, ...(ref ? { image: ref } : {}), ...(configVersion > 0 ? { configVersion } : {}) };
      const k = { app: dep.app, env: dep.env, service: svc.name };
      const imageId = images.get(svc.name)!;
      const hash = releaseHash(svc, imageId);
      const cur = store.getService(k);
      const curRel = cur && store.getRelease(cur.releaseId);
      if (cur && curRel && curRel.specHash === hash && curRel.status !== 'failed') {
        releases[svc.name] = curRel.id;
        if (cur.replicas !== svc.replicas) store.updateService(k, { replicas: svc.replicas });
      } else {
        const rel: ReleaseRecord = {
          id: this.d.newId(), app: dep.app, env: dep.env, service: svc.name, seq: store.nextReleaseSeq(k), spec: svc, specHash: hash,
          image: svc.image, imageId, status: 'progressing', message: '', createdAt: clock.now(), createdBy: dep.createdBy,
        };
        store.putService({ app: dep.app, env: dep.env, name: svc.name, replicas: svc.replicas, releaseId: rel.id, failures: 0,
          nextStartAt: 0, updatedAt: clock.now() }, rel);
        releases[svc.name] = rel.id;
        this.event(dep, svc.name, 'release.created', `release ${rel.seq} of ${svc.name}: ${svc.image} (${imageId.slice(7, 19)}), ${svc.replicas} replicas`);
      }
      this.d.enqueueService(dep.app, dep.env, svc.name);
    }
    for (const s of store.listServices({ app: dep.app, env: dep.env })) {
      if (!dep.spec.services[s.name]) {
        store.deleteService({ app: dep.app, env: dep.env, service: s.name });
        this.event(dep, s.name, 'service.removed', `service ${s.name} is no longer in the spec; removing its instances`);
        this.d.enqueueService(dep.app, dep.env, s.name);
      }
    }
    store.updateDeployment(dep.id, { status: 'rolling', releases });
    // New routes (still without backends) go to nginx now, while containers start, not after.
    this.d.applyRoutes();
    return this.follow({ ...dep, status: 'rolling', releases });
  }

  /**
   * The images of the services with a build section, from the deployment's build record: submitted
   * on the first round (the host-context pipeline of the build controller), then read again on every
   * round (the build controller wakes `deploy/ID` when it finishes; a resync is the safety net) until
   * its images are ready, or the build failed or was cancelled, which fails the deployment with its reason.
   */
  private async builtImages(dep: DeploymentRecord): Promise<Map<string, string> | Result> {
    const { builds, store } = this.d;
    const buildId = dep.buildId ?? dep.id;
    if (!builds) return this.fail(dep, 'this server cannot build: no build controller');
    let b = builds.get(buildId);
    if (!b) {
      if (buildId !== dep.id) return this.fail(dep, `build ${buildId} that made this deployment's images no longer exists`);
      b = await builds.submitForDeployment(dep);
      this.event(dep, '', 'build.queued', `build ${b.id} of ${Object.values(dep.spec.services).filter((s) => s.build).map((s) => s.name).join(', ')} ` +
        `queued: berth build logs ${b.id}`);
    }
    if (dep.status === 'pending') store.updateDeployment(dep.id, { status: 'building' });
    if (!buildImagesReady(b)) {
      if (b.status === 'failed') return this.fail(dep, `build ${b.id} failed: ${b.message}`);
      if (b.status === 'cancelled') return this.fail(dep, `build ${b.id} ${/^cancelled/.test(b.message) ? b.message : `cancelled: ${b.message}`}`);
      // The build controller wakes this key when the build ends; this is only a safety net.
      return { requeueAfterMs: 5000 };
    }
    const out = new Map<string, string>();
    for (const svc of Object.values(dep.spec.services)) {
      if (!svc.build) continue;
      const ref = b.images[svc.name];
      if (!ref) return this.fail(dep, `build ${b.id} made no image for service ${svc.name}`);
      out.set(svc.name, ref);
    }
    return out;
  }

  /**
   * The id of an image a service runs, pulled as its `pull_policy` says (Compose's meaning: `missing`
   * by default; `always` also re-pulls a tag that may have moved, never a digest already here;
   * `daily`/`weekly`/`every_<d>` when this server has not pulled it for that long). Undefined when
   * it is missing and may not be pulled; a failed pull throws a message naming the image, the
   * registry and what failed. Progress goes to the deployment's events, at most one line every 2 s.
   */
  private async pulledImage(dep: DeploymentRecord, service: string, ref: string, policy: string | undefined): Promise<string | undefined> {
    const { engine, clock } = this.d;
    const decision = pullDecision(policy);
    const have = await engine.imageId(ref);
    const last = this.d.store.lastPulled(ref);
    const want = decision.pull === 'if-older' ? !have || last === undefined || clock.now() - last >= decision.maxAgeMs
      : decision.pull === 'never' ? false
        : decision.pull === 'if-missing' ? !have
          : !have || !isDigestRef(ref);
    if (!want) return have;
    const registry = registryOf(ref);
    this.event(dep, service, 'image.pulling', `pulling ${ref} from ${registry}${have ? ` (pull_policy: ${policy})` : ''}`);
    let shown = 0;
    let lastProgress: PullProgress | undefined;
    // A registry that accepts the connection and then stalls would hold the deployment forever.
    const timeoutMs = this.d.pullTimeoutMs ?? DEFAULT_PULL_TIMEOUT_MS;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), timeoutMs);
    try {
      await engine.pull(ref, {
        signal: timeout.signal,
        onProgress: (p) => {
          lastProgress = p;
          const now = clock.now();
          if (now - shown < PULL_PROGRESS_EVERY_MS) return;
          shown = now;
          this.event(dep, service, 'image.pulling', `pulling ${ref}: ${pullProgressText(p)}`);
        },
      });
    } catch (err) {
      if (timeout.signal.aborted) {
        throw new Error(`pull of ${ref} (service ${service}) from registry ${registry} timed out after ${timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)}s` : `${timeoutMs}ms`}` +
          `${lastProgress ? ` (${pullProgressText(lastProgress)})` : ' (no layer started)'}: the registry answers too slowly or the image is large; ` +
          'raise BERTH_PULL_TIMEOUT_S on the server, or pull it on the engine first and deploy with pull_policy: missing');
      }
      throw new Error(pullFailureMessage(service, ref, (err as Error).message, this.d.loggedIn?.(registry) ?? false));
    } finally {
      clearTimeout(timer);
    }
    this.d.store.setLastPulled(ref, clock.now());
    const id = await engine.imageId(ref);
    this.event(dep, service, 'image.pulled', `pulled ${ref}${lastProgress ? ` (${pullProgressText(lastProgress)})` : ''}` +
      `${have && id !== have ? ': a newer image than the one here' : have ? ': unchanged' : ''}`);
    return id;
  }

  private follow(dep: DeploymentRecord): Result {
    const { store, clock } = this.d;
    const rels = Object.values(dep.releases).map((id) => store.getRelease(id));
    // some(), not find(): find() returns the missing release itself (undefined) and hides it.
    if (rels.some((r) => !r || r.status === 'failed' || r.status === 'superseded')) {
      const failed = rels.find((r) => r && (r.status === 'failed' || r.status === 'superseded'));
      const msg = failed ? `release ${failed.seq} of ${failed.service} ${failed.status}${failed.message ? ': ' + failed.message : ''}` : 'a release vanished';
      return this.fail(dep, msg);
    }
    // Service reconcilers wake us when a release finishes; this is only a safety net.
    if (!rels.every((r) => r!.status === 'healthy')) return { requeueAfterMs: 2000 };
    // A healthy release is not yet a deployed service: a deploy that only raises replicas reuses the
    // healthy release, and its new instances still have to start and pass their checks.
    let waiting = false;
    for (const r of rels as ReleaseRecord[]) {
      const k = { app: dep.app, env: dep.env, service: r.service };
      const svc = store.getService(k);
      if (!svc || svc.releaseId !== r.id) return this.fail(dep, `${r.service} no longer runs release ${r.seq}: a later deploy or rollback changed it`);
      const insts = store.listInstances(k).filter((i) => i.releaseId === r.id && i.state === 'running');
      const healthy = insts.filter((i) => i.health === 'healthy').length;
      if (healthy >= svc.replicas) continue;
      // A one-shot service (service_completed_successfully) has done its part once its instances completed.
      if (r.spec.oneShot && store.listInstances(k).filter((i) => i.releaseId === r.id && i.reason === COMPLETED_REASON).length >= svc.replicas) continue;
      const crash = svc.lastCrash && svc.lastCrash.releaseId === r.id && svc.lastCrash.at >= dep.createdAt ? svc.lastCrash : undefined;
      const why = () => waitingOn({ healthy, desired: svc.replicas, releaseSeq: r.seq, instances: insts.map((i) => ({ ...i, release: r.seq })),
        ...(crash ? { lastCrash: crash } : {}) }, clock.now());
      if (svc.failures >= RELEASE_FAILURE_LIMIT) return this.fail(dep, `${r.service}: instances crashed ${svc.failures} times in a row: ${why()}`);
      const deadline = (r.spec.update ?? DEFAULT_UPDATE).deadlineMs;
      // Counted from the release's creation when this deployment made it: its build's time is not the rollout's.
      if (clock.now() - Math.max(dep.createdAt, r.createdAt) > deadline) {
        // Never started because a dependency held it: the dependency is the cause, in its own words.
        const held = (store.listInstances(k).some((i) => i.releaseId === r.id) || r.spec.dependsOn.length === 0) ? undefined : this.heldBy(k, r);
        if (held) return this.fail(dep, `${r.service}: ${dependencyTimeoutText(held.hold, deadline, held.view)}`);
        return this.fail(dep, `${r.service} not healthy within ${Math.round(deadline / 1000)}s: ${why()}`);
      }
      waiting = true;
    }
    if (waiting) return { requeueAfterMs: 250 };
    // depends_on restart: true — a service whose dependency this deploy replaced restarts now that the
    // dependency's new instances are healthy (after it, as Compose does), then the deploy follows it too.
    const restarted = this.restartDependents(dep);
    if (restarted) {
      store.updateDeployment(dep.id, { releases: restarted });
      return { requeueAfterMs: 250 };
    }
    store.updateDeployment(dep.id, { status: 'succeeded', message: 'all services healthy' });
    this.event(dep, '', 'deployment.succeeded', `deployment ${dep.id} of ${dep.app}/${dep.env} succeeded`);
    return undefined;
  }

  /**
   * The services to restart because this deployment replaced a dependency they name with `restart:
   * true`: each gets a new release of its current spec and image (the next restart generation), like
   * `berth restart`. Returns the deployment's releases with theirs, or undefined when there is none.
   * A release made by this deployment is one created at or after it; so a restart happens once.
   */
  private restartDependents(dep: DeploymentRecord): Record<string, string> | undefined {
    const { store, clock } = this.d;
    const madeHere = (id: string | undefined) => {
      const r = id === undefined ? undefined : store.getRelease(id);
      return r !== undefined && r.createdAt >= dep.createdAt;
    };
    let releases: Record<string, string> | undefined;
    for (const spec of Object.values(dep.spec.services)) {
      const replaced = (spec.restartWith ?? []).filter((d) => madeHere(dep.releases[d]));
      if (replaced.length === 0 || madeHere(dep.releases[spec.name])) continue;
      const k = { app: dep.app, env: dep.env, service: spec.name };
      const svc = store.getService(k);
      const rel = svc && store.getRelease(svc.releaseId);
      if (!svc || !rel || svc.replicas === 0) continue;
      const next: ReleaseRecord = {
        ...rel, id: this.d.newId(), seq: store.nextReleaseSeq(k), spec: { ...rel.spec, restartGeneration: (rel.spec.restartGeneration ?? 0) + 1 },
        status: 'progressing', message: `restart of release ${rel.seq}: ${replaced.join(', ')} was replaced (depends_on restart: true)`,
        createdAt: clock.now(), createdBy: dep.createdBy,
      };
      delete next.finishedAt;
      store.putService({ ...svc, releaseId: next.id, failures: 0, nextStartAt: 0, updatedAt: clock.now() }, next);
      this.event(dep, spec.name, 'service.restarting', `restarting ${spec.name} (release ${next.seq}, release ${rel.seq}'s spec and image): ` +
        `${replaced.join(', ')} was replaced by this deploy (depends_on restart: true)`);
      this.d.enqueueService(dep.app, dep.env, spec.name);
      releases = { ...(releases ?? dep.releases), [spec.name]: next.id };
    }
    return releases;
  }

  /** The dependency (depends_on) a release's first instances still wait for, with what it looks like now. */
  private heldBy(k: { app: string; env: string }, r: ReleaseRecord): { hold: DependencyHold; view: DependencyView | undefined } | undefined {
    const { store } = this.d;
    const view = (service: string): DependencyView | undefined => {
      const dk = { app: k.app, env: k.env, service };
      const svc = store.getService(dk);
      return svc && { replicas: svc.replicas, instances: store.listInstances(dk).filter((i) => i.releaseId === svc.releaseId || i.state === 'running') };
    };
    const hold = dependencyWait(r.spec.dependsOn, r.spec.dependsOnConditions, view);
    return hold && { hold, view: view(hold.service) };
  }

  private fail(dep: DeploymentRecord, message: string): Result {
    this.d.store.updateDeployment(dep.id, { status: 'failed', message });
    this.event(dep, '', 'deployment.failed', message);
  }

  private event(dep: DeploymentRecord, service: string, kind: string, message: string): void {
    this.d.store.addEvent({ app: dep.app, env: dep.env, service, instance: '', kind, message });
    this.d.logger.info({ app: dep.app, env: dep.env, service, kind }, message);
  }
}
