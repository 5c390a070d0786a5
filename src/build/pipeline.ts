import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../core/errors.ts';
import type { Clock, Engine, Logger } from '../core/ports.ts';
import { parseAppSpec } from '../core/spec/index.ts';
import { splitShellWords } from '../core/spec/shell-words.ts';
import type { AppSpec, SpecWarning } from '../core/spec/types.ts';
import type { BuildLog, BuildRecord } from './build-log.ts';
import type { GitRepos } from './git-repos.ts';
import { pushImage } from '../images/image-push.ts';
import { checkImage, fromImages } from '../core/image-checks.ts';
import type { ServiceSpec } from '../core/spec/types.ts';

/** How many levels an image chain may have (base → runtime/middleware → app). */
const MAX_CHAIN_DEPTH = 3;

/** Creates a deployment exactly as `POST /v1/apps/:app/deployments` does (validation included). */
export type DeployFn = (app: string, env: string, spec: AppSpec, warnings: SpecWarning[]) => Promise<{ id: string }>;
/** Resolves when the deployment has finished, with its outcome. */
export type WaitDeploymentFn = (id: string) => Promise<{ status: 'succeeded' | 'failed'; message: string }>;

export interface PipelineDeps {
  repos: GitRepos;
  builds: BuildLog;
  engine: Engine;
  clock: Clock;
  logger: Logger;
  newId: () => string;
  deploy: DeployFn;
  waitDeployment: WaitDeploymentFn;
  /** Maps a pushed branch to an environment; default: main/master → prod, other → sanitized branch name. */
  envOf?: (branch: string) => string;
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
}

export interface ImageRegistryTarget {
  /** `127.0.0.1:PORT` */
  readonly host: string;
  /** Serializes pushes against garbage collection (LocalRegistry.exclusive). */
  exclusive?<T>(fn: () => Promise<T>): Promise<T>;
}

export interface PushedRef {
  oldSha: string;
  newSha: string;
  ref: string;
}

const ZERO = /^0+$/;
const COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];
/**
 * Compose label holding a service's test command, run in a container of the freshly built image.
 * Not `berth.test`: the spec parser reserves `berth.*` labels (the proper home is `x-berth.test`).
 */
export const TEST_LABEL = 'berth-test';

export function defaultEnvOf(branch: string): string {
  if (branch === 'main' || branch === 'master') return 'prod';
  const s = branch.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return s || 'dev';
}

/** `old new ref` lines as git gives them to a post-receive hook. */
export function parseRefLines(text: string): PushedRef[] {
  const out: PushedRef[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{40,64}) ([0-9a-f]{40,64}) (\S+)$/.exec(line.trim());
    if (m) out.push({ oldSha: m[1]!, newSha: m[2]!, ref: m[3]! });
  }
  return out;
}

class PipelineFailed extends Error {}

/**
 * What happens after `git push`: for each pushed branch, the exact commit is exported with
 * `git archive` (never a working tree), its Compose file parsed, every service with `build:` built as
 * `berth/APP/SERVICE:SHA12` with commit/branch/build labels, `berth.test` commands run in a container
 * of the new image (a failure stops here: nothing is deployed), and then a deployment is created
 * through the API's own path and followed to the end. Progress lines go to `sink`.
 */
/** A counting semaphore: the build queue's concurrency limit. */
export class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(n: number) {
    this.free = Math.max(1, n);
  }
  async acquire(onWait?: (ahead: number) => void): Promise<() => void> {
    if (this.free > 0) this.free--;
    else {
      onWait?.(this.waiting.length + 1);
      await new Promise<void>((r) => this.waiting.push(r));
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

export class PushPipeline {
  private readonly running = new Map<string, Promise<unknown>>();

  private readonly slots: Slots;

  constructor(private readonly d: PipelineDeps) {
    this.slots = new Slots(d.buildConcurrency ?? 1);
  }

  /** Runs the pipeline for every branch in the push (one app at a time); true when all succeeded. */
  async handlePush(app: string, refs: PushedRef[], sink: (line: string) => void, quarantine?: string): Promise<boolean> {
    const prev = this.running.get(app) ?? Promise.resolve();
    const mine = prev.catch(() => undefined).then(async () => {
      let ok = true;
      for (const r of refs) {
        if (!r.ref.startsWith('refs/heads/')) {
          sink(`skipping ${r.ref}: only branches are deployed`);
          continue;
        }
        if (ZERO.test(r.newSha)) {
          sink(`branch ${r.ref.slice(11)} deleted: nothing to deploy`);
          continue;
        }
        const b = await this.run(app, r.ref.slice('refs/heads/'.length), r.newSha, sink, quarantine);
        if (b.status !== 'succeeded') ok = false;
      }
      return ok;
    });
    this.running.set(app, mine);
    try {
      return await mine;
    } finally {
      if (this.running.get(app) === mine) this.running.delete(app);
    }
  }

  /** Depth of the final stage's base image in its chain: Berth-built images carry it as a label; others count as bases. */
  private async parentDepth(dockerfile: string): Promise<number> {
    const from = fromImages(dockerfile).at(-1);
    if (!from) return 0;
    const info = await this.d.engine.imageInfo(from).catch(() => undefined);
    const d = Number(info?.labels['io.berth.depth']);
    return Number.isInteger(d) && d > 0 ? d : 1;
  }

  /** The image standards report; a failed check stops the pipeline before anything is pushed or deployed. */
  private async checks(app: string, svc: ServiceSpec, image: string, dockerfile: string, parentDepth: number, say: (l: string) => void): Promise<void> {
    const info = await this.d.engine.imageInfo(image);
    if (!info) return;
    const prevRef = this.d.builds.list(app).find((b) => b.status === 'succeeded' && b.images[svc.name])?.images[svc.name];
    const prev = prevRef ? await this.d.engine.imageInfo(prevRef).catch(() => undefined) : undefined;
    const results = checkImage({
      dockerfile, parentDepth, env: info.env, user: info.user, hasHealthcheck: info.hasHealthcheck, sizeBytes: info.sizeBytes,
      ...(prev ? { previousSizeBytes: prev.sizeBytes } : {}), serviceHasHealth: svc.health.type !== 'none', maxDepth: MAX_CHAIN_DEPTH,
    });
    say(`-----> Checks for ${svc.name}`);
    for (const r of results) say(`       ${r.level.padEnd(4)} ${r.id}: ${r.message}`);
    const failed = results.filter((r) => r.level === 'fail');
    if (failed.length) throw new PipelineFailed(`image checks failed for ${svc.name}: ${failed.map((r) => r.id).join(', ')}`);
  }

  async run(app: string, branch: string, sha: string, sink: (line: string) => void, quarantine?: string): Promise<BuildRecord> {
    const { builds, clock } = this.d;
    let env = (this.d.envOf ?? defaultEnvOf)(branch);
    const rec: BuildRecord = {
      id: this.d.newId(), app, branch, env, commit: sha, status: 'running', message: '', images: {}, createdAt: clock.now(),
    };
    await builds.create(rec);
    const log = this.d.logger.child({ component: 'build', build: rec.id, app });
    const say = (line: string) => {
      builds.append(rec.id, line);
      sink(line);
    };
    say(`-----> Berth build ${rec.id}: ${app} ${branch} @ ${sha.slice(0, 12)}`);
    let dir: string | undefined;
    try {
      dir = await mkdtemp(join(tmpdir(), `berth-build-${rec.id}-`));
      await this.archive(app, sha, dir, quarantine);
      const { spec, warnings } = this.readSpec(app, dir);
      for (const w of warnings) say(`warning: ${w.file}:${w.line}:${w.col} ${w.path}: ${w.message}`);
      // x-berth.pipeline.branches in the pushed compose.yaml maps the branch (e.g. main → pre).
      const mapped = spec.pipeline?.branches[branch];
      if (mapped) {
        env = mapped;
        rec.env = env;
        await builds.save(rec);
      }
      say(`-----> Branch ${branch} deploys to env ${env}`);
      const tag = sha.slice(0, 12);
      for (const svc of Object.values(spec.services)) {
        if (!svc.build) continue;
        const image = `berth/${app}/${svc.name}:${tag}`;
        const dockerfile = readFileSync(join(svc.build.context, svc.build.dockerfile), 'utf8');
        const parentDepth = await this.parentDepth(dockerfile);
        say(`-----> Building ${svc.name} as ${image}`);
        const release = await this.slots.acquire((n) => say(`       waiting for a build slot (${n} ahead)`));
        try {
          await this.d.engine.build({
            context: svc.build.context, dockerfile: svc.build.dockerfile, tag: image, args: svc.build.args,
            labels: {
              'io.berth.app': app, 'io.berth.service': svc.name, 'io.berth.commit': sha, 'io.berth.branch': branch,
              'io.berth.build': rec.id, 'io.berth.build-time': new Date(clock.now()).toISOString(),
              'io.berth.depth': String(parentDepth + 1),
            },
            ...(this.d.buildMemoryBytes ? { memoryBytes: this.d.buildMemoryBytes } : {}),
          }, (line) => say(`       ${line}`));
        } catch (err) {
          throw new PipelineFailed(`build of ${svc.name} failed: ${(err as Error).message}`);
        } finally {
          release();
        }
        svc.image = image;
        // Built here already: the deployment runs the image, it does not rebuild from a temp dir.
        delete svc.build;
        rec.images[svc.name] = image;
        say(`-----> ${svc.name} built: ${image}`);
        await this.checks(app, svc, image, dockerfile, parentDepth, say);
      }
      await builds.save(rec);
      for (const svc of Object.values(spec.services)) {
        const test = svc.labels[TEST_LABEL];
        if (test) await this.test(rec, svc.name, svc.image, test, svc.environment, say);
      }
      const registry = this.d.registry;
      if (registry) {
        for (const svc of Object.values(spec.services)) {
          if (!rec.images[svc.name]) continue;
          const target = `${registry.host}/${app}/${svc.name}:${tag}`;
          say(`-----> Pushing ${svc.name} to ${target}`);
          const push = () => pushImage(this.d.engine, svc.image, target);
          let pushed: { digest: string; ref: string };
          try {
            pushed = registry.exclusive ? await registry.exclusive(push) : await push();
          } catch (err) {
            throw new PipelineFailed(`push of ${svc.name} to ${target} failed: ${(err as Error).message}`);
          }
          // Deployed (and promoted) by digest: the exact bytes that were built and tested.
          svc.image = pushed.ref;
          rec.images[svc.name] = pushed.ref;
          say(`-----> ${svc.name} pushed: ${pushed.ref}`);
        }
        await builds.save(rec);
      }
      say(`-----> Deploying to ${env}`);
      let dep: { id: string };
      try {
        dep = await this.d.deploy(app, env, spec, warnings);
      } catch (err) {
        throw new PipelineFailed(`deployment refused: ${(err as Error).message}`);
      }
      rec.deploymentId = dep.id;
      await builds.save(rec);
      say(`       deployment ${dep.id} created; waiting for it to become healthy`);
      const res = await this.d.waitDeployment(dep.id);
      if (res.status !== 'succeeded') throw new PipelineFailed(`deployment ${dep.id} failed: ${res.message}`);
      say(`-----> ${app} deployed to ${env} (deployment ${dep.id})`);
      rec.status = 'succeeded';
      rec.message = `deployed to ${env}`;
    } catch (err) {
      rec.status = 'failed';
      rec.message = err instanceof PipelineFailed || err instanceof BerthError ? err.message : `internal error: ${(err as Error).message}`;
      if (!(err instanceof PipelineFailed || err instanceof BerthError)) log.error({ err: (err as Error).message, stack: (err as Error).stack }, 'build failed');
      say(` !     ${rec.message}`);
      say(` !     push of ${branch} failed: the running release is untouched`);
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      rec.finishedAt = clock.now();
      await builds.save(rec);
    }
    return rec;
  }

  /** `git archive SHA | tar -x -C dir`: the exact commit, never a working tree. */
  private async archive(app: string, sha: string, dir: string, quarantine?: string): Promise<void> {
    const gitDir = this.d.repos.pathOf(app);
    // During pre-receive the pushed objects are still in the quarantine directory.
    const env = quarantine
      ? { ...process.env, GIT_OBJECT_DIRECTORY: quarantine, GIT_ALTERNATE_OBJECT_DIRECTORIES: join(gitDir, 'objects') }
      : process.env;
    await new Promise<void>((resolve, reject) => {
      const git = spawn('git', ['--git-dir', gitDir, 'archive', '--format=tar', sha], { stdio: ['ignore', 'pipe', 'pipe'], env });
      const tar = spawn('tar', ['-x', '-C', dir], { stdio: ['pipe', 'ignore', 'pipe'] });
      let errText = '';
      git.stderr.on('data', (c: Buffer) => (errText += c.toString()));
      tar.stderr.on('data', (c: Buffer) => (errText += c.toString()));
      git.stdout.pipe(tar.stdin);
      let left = 2;
      let failed = false;
      const done = (what: string) => (code: number | null) => {
        if (code !== 0 && !failed) {
          failed = true;
          reject(new PipelineFailed(`${what} of ${sha.slice(0, 12)} failed (exit ${code}): ${errText.trim()}`));
        }
        if (--left === 0 && !failed) resolve();
      };
      git.on('close', done('git archive'));
      tar.on('close', done('tar -x'));
      git.on('error', (e) => reject(new PipelineFailed(`git archive: ${e.message}`)));
      tar.on('error', (e) => reject(new PipelineFailed(`tar: ${e.message}`)));
    });
  }

  private readSpec(app: string, dir: string): { spec: AppSpec; warnings: SpecWarning[] } {
    const file = COMPOSE_FILES.find((f) => existsSync(join(dir, f)));
    if (!file) throw new PipelineFailed(`the commit has no ${COMPOSE_FILES.join(' / ')} at its root: add one to describe the app`);
    try {
      return parseAppSpec(readFileSync(join(dir, file), 'utf8'), {
        file, env: {}, baseDir: dir, appName: app, allowedBindRoots: [],
        readFile: (p) => {
          try {
            return p.startsWith(dir + '/') ? readFileSync(p, 'utf8') : undefined;
          } catch {
            return undefined;
          }
        },
      });
    } catch (err) {
      throw new PipelineFailed(`${file} is not valid: ${(err as Error).message}`);
    }
  }

  /** Runs the service's `berth.test` command in a container of the new image; non-zero fails the push. */
  private async test(rec: BuildRecord, service: string, image: string, command: string, env: Record<string, string>, say: (l: string) => void): Promise<void> {
    const argv = splitShellWords(command);
    if (!argv.ok || argv.argv.length === 0) throw new PipelineFailed(`label ${TEST_LABEL} of ${service} is not a command: ${argv.ok ? 'empty' : argv.message}`);
    say(`-----> Testing ${service}: ${command}`);
    const { engine } = this.d;
    const id = await engine.create({
      name: `berth-test-${rec.id}-${service}`, image, labels: { 'io.berth.build': rec.id, 'io.berth.test': service },
      env, cmd: argv.argv, mounts: [],
    });
    try {
      await engine.start(id);
      const deadline = Date.now() + (this.d.testTimeoutMs ?? 600_000);
      let info = await engine.inspect(id);
      while (info && (info.running || info.state === 'created' || info.state === 'restarting')) {
        if (Date.now() > deadline) {
          await engine.kill(id, 'SIGKILL').catch(() => undefined);
          throw new PipelineFailed(`tests of ${service} timed out`);
        }
        await new Promise((r) => setTimeout(r, 250));
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
