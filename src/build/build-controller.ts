import type { DeploymentBuildsPort } from '../core/deployments.ts';
import type { BuildRequest, BuildsPort } from '../core/builds.ts';
import { Conflict, InvalidInput, NotFound } from '../core/errors.ts';
import type { Clock, Logger } from '../core/ports.ts';
import { summaryLine } from '../core/text.ts';
import { runCommand } from '../lib/exec.ts';
import { BUILD_STAGES, isFinished, type BuildLog, type BuildRecord, type BuildStage } from './build-log.ts';
import { checkAppName, type GitRepos } from './git-repos.ts';
import { branchProblem, fetchArgv, fetchEnv, gitRemoteProblem } from './git-remote.ts';
import { BuildCancelled, PipelineFailed, defaultEnvOf, type RunContext } from './pipeline.ts';

export interface BuildControllerDeps {
  builds: BuildLog;
  repos: GitRepos;
  pipeline: { run(rec: BuildRecord, c: RunContext): Promise<void> };
  clock: Clock;
  logger: Logger;
  newId: () => string;
  /** Maps a pushed branch to an environment; default: main/master → prod, other → sanitized branch name. */
  envOf?: (branch: string) => string;
  /** The git remote a webhook build fetches from (the app's configured source), if any. */
  remoteOf: (app: string) => Promise<string | undefined>;
  /** After a build succeeded (e.g. registry garbage collection for the app); never fails the build. */
  afterSuccess?: (rec: BuildRecord) => void;
  /** After a build failed or was cancelled (e.g. removing the images it built that nothing uses). */
  afterFailure?: (rec: BuildRecord) => void;
  /** After any build ended (its record is saved): e.g. waking the deployment that waits for it. */
  finished?: (rec: BuildRecord) => void;
}


interface Active {
  rec: BuildRecord;
  ac: AbortController;
  done: Promise<BuildRecord>;
  resolve: (r: BuildRecord) => void;
  quarantine?: string;
}

/**
 * The build queue. A build is a record first (`queued`, durable), then runs when its app's previous
 * build is done (builds of one app are serialized, in order; image builds across apps share the
 * pipeline's concurrency limit). HTTP handlers only submit, follow, wait and cancel; the pipeline's
 * work (git, the engine, the registry, the deployment) happens here, off any request.
 *
 * Cancelling a queued build ends it at once; a running one is aborted (the engine's build, the test
 * container and the push stop); one that is deploying is not cancelled, because a deployment is
 * never abandoned half-way — roll back instead. After a server restart, unfinished pushes are failed
 * (the pusher's `git push` was rejected when the server went away) and webhook builds run again.
 */
export type { BuildRequest };

export class BuildController implements DeploymentBuildsPort, BuildsPort {
  private readonly active = new Map<string, Active>();
  /** app → the tail of its chain of builds. */
  private readonly tails = new Map<string, Promise<unknown>>();

  constructor(private readonly d: BuildControllerDeps) {}

  /** Records a build as queued and schedules it; returns the record at once. */
  async submit(req: BuildRequest): Promise<BuildRecord> {
    checkAppName(req.app);
    if (!/^[0-9a-f]{40,64}$/.test(req.commit)) throw new InvalidInput(`"${req.commit}" is not a full commit id (40 or 64 hex digits)`);
    const badBranch = branchProblem(req.branch);
    if (badBranch) throw new InvalidInput(`"${req.branch}" is not a branch name: ${badBranch}`);
    const rec: BuildRecord = {
      id: this.d.newId(), app: req.app, branch: req.branch, env: (this.d.envOf ?? defaultEnvOf)(req.branch), commit: req.commit,
      status: 'queued', message: '', images: {}, createdAt: this.d.clock.now(), source: req.source, timings: {},
      ...(req.pushedBy ? { pushedBy: req.pushedBy } : {}),
    };
    await this.d.builds.create(rec);
    this.d.builds.append(rec.id, `-----> Berth build ${rec.id}: ${rec.app} ${rec.branch} @ ${rec.commit.slice(0, 12)}`);
    this.schedule(rec, req.quarantine);
    // A snapshot: the live record changes as the build runs.
    return structuredClone(rec);
  }

  /**
   * The build of a `berth deploy` whose services have build sections (the host-context variant of the
   * pipeline): its id is the deployment's, so submitting again (a deployment controller round after a
   * crash) returns the existing record instead of building twice.
   */
  async submitForDeployment(dep: { id: string; app: string; env: string }): Promise<BuildRecord> {
    const existing = this.get(dep.id);
    if (existing) return structuredClone(existing);
    checkAppName(dep.app);
    const rec: BuildRecord = {
      id: dep.id, app: dep.app, branch: '', env: dep.env, commit: '', status: 'queued', message: '', images: {},
      createdAt: this.d.clock.now(), source: 'deploy', deploymentId: dep.id, timings: {},
    };
    await this.d.builds.create(rec);
    this.d.builds.append(rec.id, `-----> Berth build ${rec.id}: ${rec.app} ${rec.env}, for deployment ${dep.id} (build contexts on the server)`);
    this.schedule(rec);
    return structuredClone(rec);
  }

  /** The record, live while the build runs. */
  get(id: string): BuildRecord | undefined {
    return this.active.get(id)?.rec ?? this.d.builds.get(id);
  }

  /** Newest first, live records for running builds. */
  list(app?: string): BuildRecord[] {
    return this.d.builds.list(app).map((r) => this.active.get(r.id)?.rec ?? r);
  }

  /** The stored output so far. */
  text(id: string): string {
    return this.d.builds.text(id);
  }

  /** Resolves with the finished record. */
  async wait(id: string): Promise<BuildRecord> {
    const a = this.active.get(id);
    if (a) return a.done;
    const r = this.d.builds.get(id);
    if (!r) throw new NotFound(`no build ${id}: see GET /v1/builds?app=APP`);
    return r;
  }

  /**
   * Streams the build's output from its first line: `onLine` gets every line (what is stored, then
   * each new one) until the build ends. Resolves with the finished record; `stop()` detaches early.
   */
  follow(id: string, onLine: (line: string) => void): { done: Promise<BuildRecord>; stop: () => void } {
    const rec = this.get(id);
    if (!rec) throw new NotFound(`no build ${id}: see GET /v1/builds?app=APP`);
    let stop = () => undefined as void;
    const done = new Promise<BuildRecord>((resolve) => {
      // follow() and text() run in one tick: no line can fall between them or come twice.
      const un = this.d.builds.follow(id, (line) => {
        if (line !== null) onLine(line);
      });
      const text = this.d.builds.text(id);
      for (const line of text.split('\n').slice(0, -1)) onLine(line);
      stop = () => {
        un();
        resolve(this.get(id)!);
      };
      void this.wait(id).then((r) => {
        un();
        resolve(r);
      });
    });
    return { done, stop: () => stop() };
  }

  /** Cancels a queued or running build. Conflict once it is deploying or finished. */
  async cancel(id: string, by: string): Promise<BuildRecord> {
    const a = this.active.get(id);
    if (!a) {
      const r = this.d.builds.get(id);
      if (!r) throw new NotFound(`no build ${id}: see \`berth builds\``);
      throw new Conflict(`build ${id} has already ${r.status === 'cancelled' ? 'been cancelled' : r.status}: nothing to cancel`);
    }
    const { rec } = a;
    if (rec.stage === 'deploy') {
      throw new Conflict(`build ${id} is deploying${rec.deploymentId ? ` (deployment ${rec.deploymentId})` : ''}: a deployment is not cancelled ` +
        `half-way; wait for it (its deadline rolls a failing release back) or run \`berth rollback ${rec.app}\` afterwards`);
    }
    rec.cancelledBy = by;
    if (rec.status === 'queued') {
      // Never started: it ends here, and its turn in the app's chain finds it cancelled.
      a.ac.abort(new BuildCancelled('fetch'));
      await this.finish(a, 'cancelled', `cancelled by ${by} while queued: nothing was built`);
      return rec;
    }
    a.ac.abort(new BuildCancelled(rec.stage ?? 'archive'));
    return a.done;
  }

  /**
   * After a restart: builds that were queued or running when the server stopped. A push's pusher was
   * answered already (the hook's connection died, so git rejected the push): failed. A webhook build
   * has nobody waiting on it and its commit is in the repository: it runs again.
   */
  async recover(): Promise<void> {
    for (const rec of this.d.builds.list().reverse()) {
      if (isFinished(rec.status)) continue;
      // A webhook build has nobody waiting on it and its commit is in the repository; a deploy build's
      // deployment waits for it and its contexts are on this host: both run again.
      if (rec.source === 'webhook' || rec.source === 'deploy') {
        rec.status = 'queued';
        delete rec.stage;
        rec.timings = {};
        await this.d.builds.save(rec);
        this.d.builds.append(rec.id, '-----> The Berth server restarted during this build: running it again');
        this.schedule(rec);
        continue;
      }
      rec.status = 'failed';
      rec.message = 'interrupted: the Berth server stopped during this build, so the push was rejected; push again' +
        (rec.deploymentId ? ` (deployment ${rec.deploymentId} had started and completes on its own)` : '');
      rec.finishedAt = this.d.clock.now();
      this.d.builds.append(rec.id, ` !     ${rec.message}`);
      await this.d.builds.save(rec);
    }
  }

  /** Aborts what runs (server shutdown): the records stay unfinished and recover() settles them. */
  close(): void {
    for (const a of this.active.values()) a.ac.abort(new BuildCancelled(a.rec.stage ?? 'archive'));
  }

  private schedule(rec: BuildRecord, quarantine?: string): void {
    const ac = new AbortController();
    let resolve!: (r: BuildRecord) => void;
    const done = new Promise<BuildRecord>((r) => (resolve = r));
    const a: Active = { rec, ac, done, resolve, ...(quarantine ? { quarantine } : {}) };
    this.active.set(rec.id, a);
    const prev = this.tails.get(rec.app) ?? Promise.resolve();
    const mine = prev.then(() => this.execute(a)).catch((err: unknown) => {
      this.d.logger.error({ build: rec.id, err: String(err) }, 'build controller error');
    }).then(() => resolve(rec));
    this.tails.set(rec.app, mine);
    void mine.then(() => {
      if (this.tails.get(rec.app) === mine) this.tails.delete(rec.app);
    });
  }

  private async execute(a: Active): Promise<void> {
    const { rec, ac } = a;
    if (isFinished(rec.status)) return;
    const { builds, clock } = this.d;
    const log = this.d.logger.child({ component: 'build', build: rec.id, app: rec.app });
    rec.status = 'running';
    rec.startedAt = clock.now();
    rec.timings = {};
    await builds.save(rec);
    let stageStart = clock.now();
    const stage = (s: BuildStage) => {
      if (rec.stage) rec.timings![rec.stage] = clock.now() - stageStart;
      rec.stage = s;
      stageStart = clock.now();
    };
    const say = (line: string) => builds.append(rec.id, line);
    try {
      if (rec.source === 'webhook') {
        stage('fetch');
        await this.fetch(rec, ac.signal);
      }
      await this.d.pipeline.run(rec, { say, signal: ac.signal, stage, save: () => builds.save(rec), ...(a.quarantine ? { quarantine: a.quarantine } : {}) });
      if (rec.stage) rec.timings![rec.stage] = clock.now() - stageStart;
      if (rec.source === 'webhook') {
        // The branch in Berth's repository names what was accepted (a push moves it itself).
        await runCommand('git', ['--git-dir', this.d.repos.pathOf(rec.app), 'update-ref', `refs/heads/${rec.branch}`, rec.commit]);
      }
      const took = BUILD_STAGES.filter((s) => rec.timings![s] !== undefined).map((s) => `${s} ${seconds(rec.timings![s]!)}`).join(' · ');
      say(`-----> Done in ${seconds(clock.now() - rec.startedAt)} (${took})`);
      await this.finish(a, 'succeeded', rec.source === 'deploy' ? `built for deployment ${rec.deploymentId}` : `deployed to ${rec.env}`);
      try {
        this.d.afterSuccess?.(rec);
      } catch (err) {
        log.warn({ err: String(err) }, 'after-build hook failed');
      }
    } catch (err) {
      if (rec.stage) rec.timings![rec.stage] = clock.now() - stageStart;
      if (err instanceof BuildCancelled || (ac.signal.aborted && !(err instanceof PipelineFailed))) {
        const where = err instanceof BuildCancelled ? err.stage : (rec.stage ?? 'archive');
        await this.finish(a, 'cancelled', `cancelled${rec.cancelledBy ? ` by ${rec.cancelledBy}` : ''} during the ${where} stage: nothing was deployed`);
        return;
      }
      const known = err instanceof PipelineFailed || (err as { code?: unknown }).code !== undefined;
      if (!known) log.error({ err: (err as Error).message, stack: (err as Error).stack }, 'build failed');
      await this.finish(a, 'failed', known ? (err as Error).message : `internal error: ${(err as Error).message}`);
    }
  }

  private async finish(a: Active, status: 'succeeded' | 'failed' | 'cancelled', message: string): Promise<void> {
    const { rec } = a;
    if (isFinished(rec.status)) return;
    if (status !== 'succeeded') {
      // The whole message in the log (e.g. the build output's tail); the record keeps one short line.
      for (const line of message.split('\n')) this.d.builds.append(rec.id, ` !     ${line}`);
      const what = rec.source === 'webhook' ? `build of ${rec.branch} @ ${rec.commit.slice(0, 12)}`
        : rec.source === 'deploy' ? `build for deployment ${rec.deploymentId}` : `push of ${rec.branch}`;
      this.d.builds.append(rec.id, ` !     ${what} ${status === 'cancelled' ? 'cancelled' : 'failed'}: the running release is untouched`);
    }
    rec.status = status;
    rec.message = summaryLine(message);
    rec.finishedAt = this.d.clock.now();
    await this.d.builds.save(rec);
    this.active.delete(rec.id);
    a.resolve(rec);
    try {
      this.d.finished?.(rec);
    } catch (err) {
      this.d.logger.warn({ build: rec.id, err: String(err) }, 'build-finished hook failed');
    }
    if (status !== 'succeeded' && Object.keys(rec.images).length > 0) {
      try {
        this.d.afterFailure?.(rec);
      } catch (err) {
        this.d.logger.warn({ build: rec.id, err: String(err) }, 'after-failure hook failed');
      }
    }
  }

  /** Webhook builds: the commit comes from the app's configured remote into refs/berth/incoming/BRANCH. */
  private async fetch(rec: BuildRecord, signal: AbortSignal): Promise<void> {
    const remote = await this.d.remoteOf(rec.app);
    if (!remote) throw new PipelineFailed(`app ${rec.app} has no source remote any more: set one with PUT /v1/apps/${rec.app}/source`);
    // A source stored before remotes were checked is checked again here; the fetch's argv is safe anyway.
    const bad = gitRemoteProblem(remote);
    if (bad) throw new PipelineFailed(`the source remote of ${rec.app} is not accepted (${bad}): set it again with PUT /v1/apps/${rec.app}/source`);
    const repo = this.d.repos.pathOf(rec.app);
    this.d.builds.append(rec.id, `-----> Fetching ${rec.branch} from the app's source`);
    try {
      await runCommand('git', fetchArgv(repo, remote, rec.branch), { timeoutMs: 120_000, signal, env: fetchEnv(this.d.repos.env) });
    } catch (err) {
      if (signal.aborted) throw new BuildCancelled('fetch');
      throw new PipelineFailed(`fetching ${rec.branch} from the app's source failed: ${gitSays(err)}`);
    }
    try {
      await runCommand('git', ['--git-dir', repo, 'cat-file', '-e', `${rec.commit}^{commit}`], { signal });
    } catch {
      if (signal.aborted) throw new BuildCancelled('fetch');
      throw new PipelineFailed(`commit ${rec.commit.slice(0, 12)} is not in the app's source after fetching ${rec.branch}`);
    }
    await this.checkForward(rec, repo, signal);
  }

  /**
   * A webhook only moves a branch forward: the commit must be the one Berth last accepted on the
   * branch or a descendant of it. An old commit (a replayed delivery, deliveries out of order) is
   * refused, and so is a force-push at the git host: its new head is not a descendant either, and
   * nothing in a delivery tells the two apart. A force-push is deployed by pushing it to Berth.
   */
  private async checkForward(rec: BuildRecord, repo: string, signal: AbortSignal): Promise<void> {
    const ref = `refs/heads/${rec.branch}`;
    const current = (await runCommand('git', ['--git-dir', repo, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { signal })
      .catch(() => ({ stdout: '' }))).stdout.trim();
    if (!current || current === rec.commit) return;
    try {
      await runCommand('git', ['--git-dir', repo, 'merge-base', '--is-ancestor', current, rec.commit], { signal });
    } catch (err) {
      if (signal.aborted) throw new BuildCancelled('fetch');
      if ((err as { details?: { exitCode?: number } }).details?.exitCode !== 1) {
        throw new PipelineFailed(`cannot tell whether ${rec.commit.slice(0, 12)} follows ${current.slice(0, 12)}: ${gitSays(err)}`);
      }
      this.d.builds.append(rec.id, ` !     ${rec.branch} is at ${current} in Berth; to deploy ${rec.commit} anyway, push it to Berth: ` +
        `git push BERTH_REMOTE +${rec.commit}:refs/heads/${rec.branch}`);
      throw new PipelineFailed(`commit ${rec.commit.slice(0, 12)} does not descend from ${rec.branch}'s ${current.slice(0, 12)} in Berth ` +
        `(older commit, replayed delivery or force-push): webhooks only move a branch forward`);
    }
  }
}

/** The gist of a failed git command: its last line of stderr (`fatal: ...`), without the argv (which may hold credentials). */
function gitSays(err: unknown): string {
  const stderr = (err as { details?: { stderr?: unknown } }).details?.stderr;
  const lines = (typeof stderr === 'string' ? stderr : '').split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.at(-1) ?? (err as Error).message.split('\n')[0]!.replace(/`[^`]*`/, 'git');
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
