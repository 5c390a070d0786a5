import { isAbsolute, join as posixJoin, relative } from 'node:path/posix';
import { readFile } from 'node:fs/promises';
import { join as hostJoin } from 'node:path';
import { LABEL, type BuildOptions, type Clock, type EngineContainers, type EngineImages, type EngineTelemetry, type HostPathPolicy, type Logger } from '../core/ports.ts';
import { BerthError } from '../core/errors.ts';
import type { DeploymentsPort } from '../core/deployments.ts';
import { parseEnvFile, parseWithSource, type SourceParse, type SpecSource } from '../core/spec/index.ts';
import { splitShellWords } from '../core/spec/shell-words.ts';
import type { AppSpec, FileMountSpec, ParseResult, SpecWarning } from '../core/spec/types.ts';
import type { BuildLog, BuildRecord, BuildStage } from './build-log.ts';
import { parseRefLines, type PushedRef } from '../core/builds.ts';

export { parseRefLines, type PushedRef };
import type { GitRepos } from './git-repos.ts';
import { CommitFiles } from './commit-files.ts';
import { pushImage, splitRef } from '../images/image-push.ts';
import { applyCheckPolicy, checkImage, fromImages } from '../core/image-checks.ts';
import { DEFAULT_CHECK_POLICY, type CheckPolicy, type ServiceSpec } from '../core/spec/types.ts';

export interface PipelineDeps {
  repos: GitRepos;
  builds: BuildLog;
  engine: Pick<EngineContainers, 'create' | 'start' | 'inspect' | 'kill' | 'remove'> & Pick<EngineImages, 'build' | 'imageInfo' | 'push' | 'tag'> & Pick<EngineTelemetry, 'logs'>;
  clock: Clock;
  logger: Logger;
  /**
   * The one deploy path (deploy/deployments.ts): validated before anything is built, so that a
   * deployment that would be refused fails the push at once; created and followed once built.
   */
  deployments: DeploymentsPort;
  /** Why the pusher may not deploy this app to this environment (undefined: they may). */
  mayDeploy?: (subject: string, app: string, env: string) => string | undefined;
  /**
   * The non-secret configuration values of an app's environment (`berth config set APP --env ENV`):
   * variables for the pushed Compose file, over the commit's `.env`.
   */
  configValues?: (app: string, env: string) => Record<string, string>;
  /** Longest a test container may run. */
  testTimeoutMs?: number;
  /** How many image builds may run at once across all apps (default 1), and each build's memory limit. */
  buildConcurrency?: number;
  buildMemoryBytes?: number;
  /**
   * Berth's own registry (images/LocalRegistry): when set, every built image is pushed there after
   * its tests as `HOST/APP/SERVICE:SHA12` and deployed by digest (`HOST/APP/SERVICE@sha256:…`).
   */
  registry?: ImageRegistryTarget;
  /** The value of a build secret (`build.secrets`, sealed at deploy time), read only to hand it to the build. */
  buildSecretValue?: (app: string, env: string, mount: FileMountSpec) => string;
  /** The spec of a deployment, for the builds of `berth deploy` (source `deploy`): their contexts are host directories. */
  deploymentSpec?: (id: string) => AppSpec | undefined;
  /** Host build contexts are checked again right before they are built (the API checked them at deploy time). */
  hostPaths?: HostPathPolicy;
}

export interface ImageRegistryTarget {
  /** `127.0.0.1:PORT` */
  readonly host: string;
  /** Serializes pushes against garbage collection (LocalRegistry.exclusive). */
  exclusive?<T>(fn: () => Promise<T>): Promise<T>;
}


const COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];
/**
 * Compose label holding a service's test command, run in a container of the freshly built image:
 * the older spelling of `x-berth.test`, still read when that is absent.
 */
export const TEST_LABEL = 'berth-test';

/** The service's test command: `x-berth.test`, else the `berth-test` label; a bad label fails the build. */
function testCommand(svc: ServiceSpec): string[] | undefined {
  if (svc.test) return svc.test;
  const label = svc.labels[TEST_LABEL];
  if (label === undefined) return undefined;
  const argv = splitShellWords(label);
  if (!argv.ok || argv.argv.length === 0) throw new PipelineFailed(`label ${TEST_LABEL} of ${svc.name} is not a command: ${argv.ok ? 'empty' : argv.message}`);
  return argv.argv;
}

export function defaultEnvOf(branch: string): string {
  if (branch === 'main' || branch === 'master') return 'prod';
  const s = branch.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return s || 'dev';
}


/** A stage failed: the message says why (shown in `git push` and the build record); `cause` keeps the error it came from. */
export class PipelineFailed extends BerthError {
  override readonly code = 'pipeline_failed';
}

/** The build was cancelled (`berth build cancel`, or the pusher went away). */
export class BuildCancelled extends BerthError {
  override readonly code = 'cancelled';
  constructor(readonly stage: BuildStage) {
    super(`cancelled during the ${stage} stage`);
  }
}

/** A counting semaphore: the build queue's concurrency limit. Waiting is abortable. */
export class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(n: number) {
    this.free = Math.max(1, n);
  }
  async acquire(onWait?: (ahead: number) => void, signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.free > 0) this.free--;
    else {
      onWait?.(this.waiting.length + 1);
      await new Promise<void>((resolve, reject) => {
        const go = () => {
          signal?.removeEventListener('abort', gone);
          resolve();
        };
        const gone = () => {
          const i = this.waiting.indexOf(go);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal!.reason);
        };
        this.waiting.push(go);
        signal?.addEventListener('abort', gone, { once: true });
      });
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

/** What one run of the pipeline is given by the build controller. */
export interface RunContext {
  /** Progress lines: into the build log and, for pushes, the pusher's terminal. */
  say: (line: string) => void;
  /** Aborted by `cancel`. */
  signal: AbortSignal;
  /** Called when a stage starts (the controller records it and its duration). */
  stage: (s: BuildStage) => void;
  /** Record changed (env, images, deployment id): persist it. */
  save: () => Promise<void>;
  /** During pre-receive the pushed objects are still in this quarantine directory. */
  quarantine?: string;
}

/**
 * The stages of one build of one pushed commit: the exact commit is exported with `git archive`
 * (never a working tree), its Compose file parsed, every service with `build:` built as
 * `berth/APP/SERVICE:SHA12` with commit/branch/build labels, checked against the image standards,
 * its test command run in a container of the new image, pushed to Berth's registry, and deployed by
 * digest through the API's own path; a failure anywhere stops here and nothing is deployed.
 * Queueing, records and cancellation belong to the BuildController.
 */
export class PushPipeline {
  private readonly slots: Slots;

  constructor(private readonly d: PipelineDeps) {
    this.slots = new Slots(d.buildConcurrency ?? 1);
  }

  /** Depth of the final stage's base image in its chain: Berth-built images carry it as a label; others count as bases. */
  private async parentDepth(dockerfile: string): Promise<number> {
    const from = fromImages(dockerfile).at(-1);
    if (!from) return 0;
    const info = await this.d.engine.imageInfo(from).catch(() => undefined);
    const d = Number(info?.labels[LABEL.depth]);
    return Number.isInteger(d) && d > 0 ? d : 1;
  }

  /** The image standards report; a failed check stops the pipeline before anything is pushed or deployed. */
  private async checks(rec: BuildRecord, policy: CheckPolicy, previous: BuildRecord[], svc: ServiceSpec, image: string, dockerfile: string, parentDepth: number, say: (l: string) => void): Promise<void> {
    const info = await this.d.engine.imageInfo(image);
    if (!info) return;
    const prevRef = previous.find((b) => b.images[svc.name])?.images[svc.name];
    const prev = prevRef ? await this.d.engine.imageInfo(prevRef).catch(() => undefined) : undefined;
    const results = applyCheckPolicy(checkImage({
      dockerfile, parentDepth, env: info.env, user: info.user, hasHealthcheck: info.hasHealthcheck, sizeBytes: info.sizeBytes,
      ...(prev ? { previousSizeBytes: prev.sizeBytes } : {}), serviceHasHealth: svc.health.type !== 'none', maxDepth: policy.maxChainDepth,
    }), policy);
    (rec.checks ??= {})[svc.name] = results;
    say(`-----> Checks for ${svc.name}`);
    for (const r of results) say(`       ${r.level.padEnd(4)} ${r.id}: ${r.message}`);
    const failed = results.filter((r) => r.level === 'fail');
    if (failed.length) throw new PipelineFailed(`image checks failed for ${svc.name}: ${failed.map((r) => r.id).join(', ')}`);
  }

  /**
   * Runs archive → build → checks → test → push → deploy for `rec` (whose env is set from its branch
   * by the caller and may be remapped by the pushed compose.yaml). Resolves when deployed; throws
   * PipelineFailed or BuildCancelled otherwise.
   */
  async run(rec: BuildRecord, c: RunContext): Promise<void> {
    if (rec.source === 'deploy') return this.runHost(rec, c);
    const { say, signal } = c;
    const { app, branch, commit: sha } = rec;
    const stopIfCancelled = (stage: BuildStage) => {
      if (signal.aborted) throw new BuildCancelled(stage);
    };
    try {
      c.stage('archive');
      const files = new CommitFiles(this.d.repos.pathOf(app), sha, { env: this.d.repos.env, quarantine: c.quarantine });
      const read = new Map<string, string | undefined>();
      let parsed = await this.readSpec(app, files, rec.id, rec.env, read);
      // x-berth.pipeline.branches in the pushed compose.yaml maps the branch (e.g. main → pre); the
      // file is then interpolated for that environment (its BERTH_ENV and configuration values).
      const mapped = parsed.spec.pipeline?.branches[branch];
      if (mapped && mapped !== rec.env) {
        rec.env = mapped;
        await c.save();
        parsed = await this.readSpec(app, files, rec.id, mapped, read);
      }
      const { spec, warnings, root, source } = parsed;
      for (const w of warnings) say(`warning: ${w.file}:${w.line}:${w.col} ${w.path}: ${w.message}`);
      const env = rec.env;
      say(`-----> Branch ${branch} deploys to env ${env}`);
      // A role in test never reaches prod: the environment the branch (or the pushed file) chose is checked against the pusher's roles.
      const refusal = rec.pushedBy ? this.d.mayDeploy?.(rec.pushedBy, app, env) : undefined;
      if (refusal) throw new PipelineFailed(refusal);
      // The build contexts and the deployment's acceptability are looked up together; the commit's own
      // problems are reported first.
      const toBuild = Object.values(spec.services).filter((svc) => svc.build);
      const [ctxs, accepted] = await Promise.allSettled([
        Promise.all(toBuild.map((svc) => this.contextOf(files, root, svc))),
        // This build makes the images: the contexts are the commit's, not host directories.
        this.d.deployments.validate({ app, env, spec, warnings, source, buildId: rec.id, ...(rec.pushedBy ? { actor: rec.pushedBy } : {}) }),
      ]);
      if (ctxs.status === 'rejected') throw ctxs.reason;
      if (accepted.status === 'rejected') {
        throw new PipelineFailed(`deployment to ${env} would be refused, so nothing was built: ${(accepted.reason as Error).message}`);
      }
      const contexts = new Map(toBuild.map((svc, i) => [svc.name, ctxs.value[i]!]));
      // Images are a function of the commit: dated by it, labelled with nothing that changes between
      // two builds of it (no build id or build time), so a rebuild with the layer cache is the very
      // same image — and the same digest in the registry.
      const committedAt = toBuild.length ? await files.committedAt() : 0;
      const tag = sha.slice(0, 12);
      const built: { svc: ServiceSpec; dockerfile: string; parentDepth: number }[] = [];
      c.stage('build');
      for (const svc of Object.values(spec.services)) {
        if (!svc.build) continue;
        const image = `berth/${app}/${svc.name}:${tag}`;
        const ctx = contexts.get(svc.name)!;
        const dockerfile = ctx.dockerfileText;
        const parentDepth = await this.parentDepth(dockerfile);
        say(`-----> Building ${svc.name} as ${image}`);
        const secrets = this.buildSecrets(rec, svc.name, svc.build);
        await this.buildInSlot(svc.name, {
          context: `${ctx.dir || '.'} of commit ${sha.slice(0, 12)}`, dockerfile: svc.build.dockerfile, tag: image, ...(secrets ? { secrets } : {}),
          // SOURCE_DATE_EPOCH (reproducible-builds.org): BuildKit 0.11+ dates the image and its history by it.
          args: { SOURCE_DATE_EPOCH: String(committedAt), ...svc.build.args },
          ...(svc.build.target ? { target: svc.build.target } : {}),
          // Straight from git's object store: the commit is never written out and read back.
          contextTar: { open: () => files.archive(ctx.dir, signal), dockerfileText: ctx.dockerfileText, ...(ctx.dockerignore !== undefined ? { dockerignore: ctx.dockerignore } : {}) },
          labels: {
            [LABEL.app]: app, [LABEL.service]: svc.name, [LABEL.commit]: sha,
            [LABEL.commitTime]: new Date(committedAt * 1000).toISOString(), [LABEL.depth]: String(parentDepth + 1),
          },
        }, c);
        rec.images[svc.name] = image;
        say(`-----> ${svc.name} built: ${image}`);
        built.push({ svc, dockerfile, parentDepth });
      }
      await c.save();
      stopIfCancelled('build');
      c.stage('checks');
      const policy = spec.pipeline?.checks ?? DEFAULT_CHECK_POLICY;
      try {
        // The app's earlier successful builds, read once (sizes are compared against the last one).
        const previous = this.d.builds.list(app).filter((b) => b.status === 'succeeded');
        for (const b of built) await this.checks(rec, policy, previous, b.svc, rec.images[b.svc.name]!, b.dockerfile, b.parentDepth, say);
      } finally {
        await c.save();
      }
      c.stage('test');
      for (const svc of Object.values(spec.services)) {
        const argv = testCommand(svc);
        if (argv) await this.test(rec, svc.name, rec.images[svc.name] ?? svc.image, argv, svc.environment, say, signal);
      }
      stopIfCancelled('test');
      // Deployed (and promoted) by digest: the exact bytes that were built and tested.
      await this.pushStage(rec, c, Object.values(spec.services).filter((svc) => rec.images[svc.name]).map((svc) => svc.name), tag);
      stopIfCancelled('push');
      // From here on the build is not cancellable: a deployment is never abandoned half-way.
      c.stage('deploy');
      say(`-----> Deploying to ${env}`);
      let dep: { id: string };
      try {
        // The deployment runs this build's images (rec.images) for the services with a build section.
        dep = await this.d.deployments.create({ app, env, spec, warnings, source, buildId: rec.id, ...(rec.pushedBy ? { actor: rec.pushedBy } : {}) });
      } catch (err) {
        throw new PipelineFailed(`deployment refused: ${(err as Error).message}`, { cause: err });
      }
      rec.deploymentId = dep.id;
      await c.save();
      say(`       deployment ${dep.id} created; waiting for it to become healthy`);
      const res = await this.d.deployments.follow(dep.id);
      if (res.status !== 'succeeded') throw new PipelineFailed(`deployment ${dep.id} failed: ${res.message}`);
      say(`-----> ${app} deployed to ${env} (deployment ${dep.id})`);
    } catch (err) {
      if (signal.aborted && !(err instanceof BuildCancelled) && rec.stage !== 'deploy') throw new BuildCancelled(rec.stage ?? 'archive');
      throw err;
    }
  }

  /**
   * The host-context variant (source `deploy`, a `berth deploy` with build sections): the same stages
   * as a push from build on — build → checks (the app's policy) → test (x-berth.test) → push (when
   * Berth's registry runs) — over the deployment's build contexts, which are directories of this host
   * (checked by the host-path rules at deploy time, and again here). It does not deploy: the
   * deployment waits for this record and runs the images it lists. Services whose build sections are
   * identical (context, Dockerfile, target, args) are built once and tagged for each.
   */
  /** The values of a build's secrets by id, or undefined when it has none. */
  private buildSecrets(rec: BuildRecord, names: string, b: NonNullable<ServiceSpec['build']>): Record<string, string> | undefined {
    if (!b.secrets?.length) return undefined;
    const out: Record<string, string> = {};
    for (const s of b.secrets) {
      // A pushed commit's spec still holds what the server read for it (in memory); a deployment's, a sealed digest.
      if (s.mount?.value !== undefined) {
        out[s.target] = s.mount.value;
        continue;
      }
      if (!s.mount || !this.d.buildSecretValue) throw new PipelineFailed(`build of ${names}: build secret "${s.source}" has no value on this server: deploy the Compose file again`);
      try {
        out[s.target] = this.d.buildSecretValue(rec.app, rec.env, s.mount);
      } catch (err) {
        throw new PipelineFailed(`build of ${names}: build secret "${s.source}": ${(err as Error).message}`);
      }
    }
    return out;
  }

  private async runHost(rec: BuildRecord, c: RunContext): Promise<void> {
    const { say, signal } = c;
    const stopIfCancelled = (stage: BuildStage) => {
      if (signal.aborted) throw new BuildCancelled(stage);
    };
    try {
      const spec = rec.deploymentId ? this.d.deploymentSpec?.(rec.deploymentId) : undefined;
      if (!spec) throw new PipelineFailed(`deployment ${rec.deploymentId ?? '?'} of this build no longer exists: nothing to build`);
      const groups = new Map<string, ServiceSpec[]>();
      for (const svc of Object.values(spec.services)) {
        if (!svc.build) continue;
        const key = stableKey(svc.build);
        groups.set(key, [...(groups.get(key) ?? []), svc]);
      }
      const built: { svc: ServiceSpec; dockerfile: string; parentDepth: number }[] = [];
      c.stage('build');
      for (const svcs of groups.values()) {
        const first = svcs[0]!;
        const b = first.build!;
        const names = svcs.map((x) => x.name).join(', ');
        const checked = this.d.hostPaths ? await this.d.hostPaths.buildContext(b.context, b.dockerfileInline !== undefined ? '' : b.dockerfile) : { path: b.context };
        if (checked.refused !== undefined) throw new PipelineFailed(`build of ${names} refused: ${checked.refused}`);
        let dockerfile: string;
        try {
          dockerfile = b.dockerfileInline ?? await readFile(hostJoin(checked.path, b.dockerfile), 'utf8');
        } catch (err) {
          throw new PipelineFailed(`build of ${names}: cannot read ${b.dockerfile} in ${checked.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
        const parentDepth = await this.parentDepth(dockerfile);
        say(`-----> Building ${names} as ${first.image} from ${checked.path}`);
        const secrets = this.buildSecrets(rec, names, b);
        await this.buildInSlot(names, {
          context: checked.path, dockerfile: b.dockerfile, tag: first.image, args: b.args, ...(secrets ? { secrets } : {}),
          ...(b.target ? { target: b.target } : {}), ...(b.dockerfileInline !== undefined ? { dockerfileInline: b.dockerfileInline } : {}),
          labels: { [LABEL.app]: rec.app, [LABEL.service]: first.name, [LABEL.depth]: String(parentDepth + 1) },
        }, c, async () => {
          // Compose's meaning of image + build: the built image carries each service's name.
          for (const other of svcs.slice(1)) {
            if (other.image === first.image) continue;
            const { repo, tag } = splitRef(other.image);
            await this.d.engine.tag(first.image, repo, tag);
          }
        });
        for (const svc of svcs) {
          rec.images[svc.name] = svc.image;
          built.push({ svc, dockerfile, parentDepth });
        }
        say(`-----> ${names} built: ${first.image}`);
      }
      await c.save();
      stopIfCancelled('build');
      c.stage('checks');
      const policy = spec.pipeline?.checks ?? DEFAULT_CHECK_POLICY;
      try {
        const previous = this.d.builds.list(rec.app).filter((x) => x.status === 'succeeded');
        for (const b of built) await this.checks(rec, policy, previous, b.svc, rec.images[b.svc.name]!, b.dockerfile, b.parentDepth, say);
      } finally {
        await c.save();
      }
      c.stage('test');
      for (const { svc } of built) {
        const argv = testCommand(svc);
        if (argv) await this.test(rec, svc.name, rec.images[svc.name]!, argv, svc.environment, say, signal);
      }
      stopIfCancelled('test');
      await this.pushStage(rec, c, built.map((b) => b.svc.name), `deploy-${rec.id}`);
      stopIfCancelled('push');
      say(`-----> Images ready for deployment ${rec.deploymentId}: ${Object.entries(rec.images).map(([k, v]) => `${k} ${v}`).join(' · ')}`);
    } catch (err) {
      if (signal.aborted && !(err instanceof BuildCancelled)) throw new BuildCancelled(rec.stage ?? 'build');
      throw err;
    }
  }

  /**
   * The Compose file of the commit, parsed with the repository mapped at a virtual root (nothing is
   * on disk): env_files are read from the commit, paths outside it do not exist. It is interpolated
   * for `env` like `berth deploy --env` would: BERTH_ENV and BERTH_APP, the environment's
   * configuration values, and the commit's `.env` beside the file (the lowest layer). `read` caches
   * the commit's files across calls.
   */
  private async readSpec(app: string, files: CommitFiles, buildId: string, env: string, read: Map<string, string | undefined>):
    Promise<{ spec: AppSpec; warnings: SpecWarning[]; root: string; source: SpecSource }> {
    const root = `/berth-commit/${buildId}`;
    const fetch = async (paths: string[]) => {
      const missing = paths.filter((p) => !read.has(p));
      if (missing.length) (await files.readMany(missing)).forEach((o, k) => read.set(missing[k]!, o?.text));
      return paths.map((p) => read.get(p));
    };
    const texts = await fetch([...COMPOSE_FILES, '.env']);
    const i = texts.findIndex((t, k) => k < COMPOSE_FILES.length && t !== undefined);
    if (i < 0) throw new PipelineFailed(`the commit has no ${COMPOSE_FILES.join(' / ')} at its root: add one to describe the app`);
    const file = COMPOSE_FILES[i]!;
    const text = texts[i]!;
    const dotenv = parseEnvFile(texts[COMPOSE_FILES.length] ?? '');
    const bad = dotenv.problems[0];
    if (bad) throw new PipelineFailed(`.env:${bad.line}:${bad.col}: ${bad.message}`);
    const config = this.d.configValues?.(app, env) ?? {};
    // The parser reads synchronously; what it asks for that is not loaded yet is fetched and the parse
    // runs again (env_files name no further files, so this settles in one more round).
    for (let round = 0; ; round++) {
      const wanted = new Set<string>();
      let res: SourceParse | undefined;
      let error: unknown;
      try {
        res = parseWithSource(text, {
          file, baseDir: root, appName: app, environment: env,
          readFile: (p) => {
            if (!p.startsWith(root + '/')) return undefined;
            const rel = p.slice(root.length + 1);
            if (!read.has(rel)) wanted.add(rel);
            return read.get(rel);
          },
        }, { variables: dotenv.vars, config });
      } catch (err) {
        error = err;
      }
      if (wanted.size === 0 || round >= 2) {
        if (res) {
          refuseCommitBinds(file, res, root);
          return { ...res, root };
        }
        throw new PipelineFailed(`${file} is not valid: ${(error as Error).message}`);
      }
      await fetch([...wanted]);
    }
  }

  /** A service's build context in the commit: its directory, Dockerfile text and .dockerignore. */
  private async contextOf(files: CommitFiles, root: string, svc: ServiceSpec): Promise<{ dir: string; dockerfileText: string; dockerignore?: string }> {
    const b = svc.build!;
    const rel = relative(root, b.context);
    if (rel.startsWith('..') || isAbsolute(rel)) {
      throw new PipelineFailed(`the build context of ${svc.name} (${isAbsolute(rel) ? b.context : rel}) is outside the repository: builds use only what the commit holds`);
    }
    const dir = rel;
    const dfPath = posixJoin(dir, b.dockerfile);
    if (dfPath.startsWith('..')) throw new PipelineFailed(`the Dockerfile of ${svc.name} (${b.dockerfile}) is outside the repository`);
    const [ctx, df, ignore] = await files.readMany([dir, dfPath, posixJoin(dir, '.dockerignore')]);
    const type = ctx?.type;
    const dockerfileText = df?.text;
    const dockerignore = ignore?.text;
    if (type !== 'tree') throw new PipelineFailed(`the build context of ${svc.name}, ${dir || '.'}, is not a directory in commit ${files.commit.slice(0, 12)}`);
    if (dockerfileText === undefined) throw new PipelineFailed(`commit ${files.commit.slice(0, 12)} has no ${dfPath} for ${svc.name}: add it, or set build.dockerfile`);
    return { dir, dockerfileText, ...(dockerignore !== undefined ? { dockerignore } : {}) };
  }

  /** Runs the service's test command in a container of the new image; non-zero fails the push. */
  /**
   * One image build in a build slot, for both kinds of build: waits for a slot (cancellable), builds
   * with the server's memory cap and the run's signal, streams the builder's lines, then `after` (still
   * in the slot). A failure is the build stage's PipelineFailed naming `what`, or BuildCancelled.
   */
  private async buildInSlot(what: string, opts: Omit<BuildOptions, 'memoryBytes' | 'signal'>, c: RunContext, after?: () => Promise<void>): Promise<void> {
    const { say, signal } = c;
    const stopIfCancelled = () => {
      if (signal.aborted) throw new BuildCancelled('build');
    };
    const release = await this.slots.acquire((n) => say(`       waiting for a build slot (${n} ahead)`), signal)
      .catch((err: unknown) => {
        stopIfCancelled();
        throw err;
      });
    try {
      await this.d.engine.build({
        ...opts, ...(this.d.buildMemoryBytes ? { memoryBytes: this.d.buildMemoryBytes } : {}), signal,
      }, (line) => say(`       ${line}`));
      await after?.();
    } catch (err) {
      stopIfCancelled();
      throw new PipelineFailed(`build of ${what} failed: ${(err as Error).message}`);
    } finally {
      release();
    }
  }

  /**
   * The push stage (when a registry is configured): each service's built image to
   * `REGISTRY/APP/SERVICE:TAG`; `rec.images` then names it by digest (`repo@sha256:…`).
   */
  private async pushStage(rec: BuildRecord, c: RunContext, services: string[], tag: string): Promise<void> {
    const registry = this.d.registry;
    if (!registry) return;
    const { say, signal } = c;
    c.stage('push');
    for (const name of services) {
      const target = `${registry.host}/${rec.app}/${name}:${tag}`;
      say(`-----> Pushing ${name} to ${target}`);
      const push = () => pushImage(this.d.engine, rec.images[name]!, target, undefined, signal);
      let pushed: { digest: string; ref: string };
      try {
        pushed = registry.exclusive ? await registry.exclusive(push) : await push();
      } catch (err) {
        if (signal.aborted) throw new BuildCancelled('push');
        throw new PipelineFailed(`push of ${name} to ${target} failed: ${(err as Error).message}`);
      }
      rec.images[name] = pushed.ref;
      say(`-----> ${name} pushed: ${pushed.ref}`);
    }
    await c.save();
  }

  private async test(rec: BuildRecord, service: string, image: string, argv: string[], env: Record<string, string>, say: (l: string) => void, signal: AbortSignal): Promise<void> {
    say(`-----> Testing ${service}: ${argv.join(' ')}`);
    const { engine } = this.d;
    const id = await engine.create({
      name: `berth-test-${rec.id}-${service}`, image, labels: { [LABEL.build]: rec.id, [LABEL.test]: service },
      env, cmd: argv, mounts: [],
    });
    try {
      await engine.start(id);
      const deadline = Date.now() + (this.d.testTimeoutMs ?? 600_000);
      let info = await engine.inspect(id);
      while (info && (info.running || info.state === 'created' || info.state === 'restarting')) {
        if (signal.aborted) {
          await engine.kill(id, 'SIGKILL').catch(() => undefined);
          throw new BuildCancelled('test');
        }
        if (Date.now() > deadline) {
          await engine.kill(id, 'SIGKILL').catch(() => undefined);
          throw new PipelineFailed(`tests of ${service} timed out`);
        }
        await new Promise((r) => setTimeout(r, 100));
        info = await engine.inspect(id);
      }
      await engine.logs(id, { follow: false }, (l) => say(`       ${l.text}`));
      const code = info?.exitCode ?? -1;
      if (code !== 0) throw new PipelineFailed(`tests of ${service} failed (exit code ${code}): not deployed`);
      say(`-----> Tests of ${service} passed`);
    } finally {
      await engine.remove(id).catch(() => undefined);
    }
  }
}

/**
 * A bind source relative to the Compose file names a directory of the commit, which is never on the
 * host's disk: say so (absolute sources go to the server's host-path policy like any deploy's).
 */
export function refuseCommitBinds(file: string, res: ParseResult, root: string): void {
  for (const [name, svc] of Object.entries(res.spec.services)) {
    svc.volumes.forEach((v, i) => {
      if (v.type !== 'bind' || (v.source !== root && !v.source.startsWith(root + '/'))) return;
      const at = res.hostPathSources[`services.${name}.volumes[${i}]`];
      const where = at ? `${file}:${at.line}:${at.col}: ${at.path}` : `${file}: services.${name}.volumes`;
      throw new PipelineFailed(`${where}: a bind mount of a directory of the repository (./${v.source.slice(root.length + 1)}) cannot work for a pushed app: ` +
        'the commit is never written to the host; use a named volume, or an absolute path under the directories the server allows');
    });
  }
}

/** A key equal for equal values, whatever their keys' order: identical build sections build once. */
function stableKey(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableKey).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableKey((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
