import { access, chmod, mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Agent, request } from 'node:http';
import { dirname, isAbsolute, join } from 'node:path';
import type { Ingress, IngressRoute, Logger } from '../core/ports.ts';
import { BerthError, Conflict, ExternalCommandFailed, InvalidInput } from '../core/errors.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { waitFor } from '../lib/backoff.ts';
import { runCommand } from '../lib/exec.ts';
import { checkRoutes, isFrozenBackends, onlyBackendsDiffer, parseGeneration, planConfig, routeAtLine, type LuaOptions, type RenderOptions, type RouteProblem } from './render.ts';
import { BACKENDS_ADMIN_PATH, TOKEN_HEADER } from './lua.ts';
import { findMaster, listWorkers, normalizePrefix } from './nginx-process.ts';
import { NginxTester } from './nginx-tester.ts';

export interface NginxIngressOptions {
  /** Directory owned by this writer (e.g. DATA/nginx): conf/, logs/, tmp/ live under it. */
  prefix: string;
  /** Public port (default 8080). */
  listenPort?: number;
  /** Public address (default 0.0.0.0). */
  listenAddress?: string;
  /** Loopback port of nginx's admin server (generation probe, stub_status). */
  adminPort: number;
  /** Public HTTPS port for hosts with a certificate (render.ts `httpsPort`); undefined: no TLS. */
  httpsPort?: number;
  /** Directory of ACME HTTP-01 answers served at /.well-known/acme-challenge/ (render.ts). */
  acmeChallengeDir?: string;
  /** nginx binary (default `nginx` on PATH). */
  nginxBin?: string;
  /** Applies within this window are rendered and reloaded once (default 50 ms). */
  coalesceMs?: number;
  /** How long a reload may take to be in effect (default 10 s). */
  reloadTimeoutMs?: number;
  /**
   * `user` directive when running as root. Default: `nobody nogroup` when the prefix is reachable by
   * other users (nginx creates its temp dirs for the workers' user), else `root`.
   */
  workerUser?: string;
  logger: Logger;
  /**
   * Called after a pass with the routes it newly left out (each reported once while it stays out):
   * the control plane records an event for the app whose route it is. Must not throw.
   */
  onRoutesRefused?: (problems: RouteProblem[]) => void;
  /**
   * Reload-free backend changes with the Lua balancer (lua.ts) when nginx can load it (default
   * true); false: every backend change is a reload, as without the modules.
   */
  luaBalancer?: boolean;
  /** Where ndk_http_module.so and ngx_http_lua_module.so are looked for (default /usr/lib/nginx/modules). */
  luaModuleDir?: string;
  /**
   * Token for the admin endpoint that takes backend sets (never logged; nginx keeps only its hash).
   * The same value across restarts lets a restarted Berth update an adopted nginx without a reload;
   * default: a random one per writer.
   */
  adminToken?: string;
  /** Test-only: rewrites the candidate file before `nginx -t`, to exercise the rejection path. */
  testOnlyCandidateFilter?: (config: string) => string;
}

const SAFE_PATH_RE = /^[A-Za-z0-9._/+@=,-]+$/;

/**
 * Berth's ingress data plane writer: renders the route table to nginx.conf, tests the candidate with
 * `nginx -t`, swaps it in atomically, reloads with SIGHUP and waits until the new workers serve. nginx
 * runs daemonized from its own prefix and outlives this object (and the Berth process).
 */
export class NginxIngress implements Ingress {
  readonly port: number;
  /** SIGHUPs sent (not counting the initial start). Tests use it to check coalescing. */
  reloadCount = 0;
  /** Why the last flush did not make the desired table fully live; cleared by a successful flush. */
  lastError: Error | undefined;
  /**
   * Routes left out of the config: those `checkRoutes` refuses, and those whose lines `nginx -t`
   * refused. The others are live; leaving a route out is not a failure of the pass.
   */
  rejectedRoutes: RouteProblem[] = [];
  /** Backend sets sent to nginx's admin endpoint (Lua balancer), each one without a reload. */
  backendPushCount = 0;
  /** How backend changes reach nginx, and why not without a reload when they cannot. Known after start(). */
  backendUpdates: { mode: 'lua' | 'reload'; reason?: string } = { mode: 'reload', reason: 'ingress not started yet' };

  private readonly prefix: string;
  private readonly listenAddress: string;
  private readonly adminPort: number;
  private readonly bin: string;
  private readonly coalesceMs: number;
  private readonly reloadTimeoutMs: number;
  private readonly log: Logger;
  private readonly confPath: string;
  /** nginx.conf as this process last wrote or read it; undefined: read the file. */
  private confText: string | undefined;
  /** Runs `nginx -t` on the candidate (made on the first test). */
  private tester: NginxTester | undefined;
  /** One kept-alive connection to nginx's admin server for pushes (closed when idle for 30 s; nginx keeps idle ones 75 s). */
  private readonly adminAgent = new Agent({ keepAlive: true, maxSockets: 1, timeout: 30_000 });
  private readonly errorLogPath: string;
  private renderOpts: Omit<RenderOptions, 'generation'> | undefined;
  private readonly backendsPath: string;
  private readonly verifierPath: string;
  private readonly adminToken: string;
  /** Backends file text on disk, and the text nginx's shared dict holds as far as we know (undefined: unknown). */
  private writtenBackends: string | undefined;
  private pushedBackends: string | undefined;
  /** When the oldest apply() not yet taken by a pass arrived (for the debug log of how long a change took). */
  private appliedAt: number | undefined;

  private desired: IngressRoute[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private started = false;
  private closed = false;
  /** The file on disk is newer than what the workers serve (a reload failed or was interrupted). */
  private needsReload = false;
  private liveGeneration: number | undefined;
  /** Backends (`upstream address:port`) nginx serves now; undefined when unknown (adopted, or after a failure). */
  private liveBackends: Map<string, Set<string>> | undefined;
  /** Passes queued or running, and when the last one ended (for leading-edge coalescing). */
  private pending = 0;
  private lastPassAt = 0;
  /** Passes queued that have not started yet (each reads `desired` when it starts). */
  private waiting = 0;
  /** Whether the last pass reloaded nginx: only then do changes wait out the coalescing window. */
  private lastPassReloaded = true;
  private masterPidValue: number | undefined;
  /** Routes nginx -t refused (by `routeKey`), kept out while they stay the same so each pass tests once. */
  private nginxRefused = new Map<string, RouteProblem>();
  /** Problems already passed to onRoutesRefused (by `problemKey`). */
  private reported = new Set<string>();

  constructor(private readonly opts: NginxIngressOptions) {
    const prefix = normalizePrefix(opts.prefix);
    if (!isAbsolute(prefix) || !SAFE_PATH_RE.test(prefix)) {
      throw new InvalidInput(`ingress prefix ${JSON.stringify(opts.prefix)} must be an absolute path of letters, digits and ._/+@=,- (it is written into nginx.conf)`);
    }
    this.prefix = prefix;
    this.port = opts.listenPort ?? 8080;
    this.listenAddress = opts.listenAddress ?? '0.0.0.0';
    this.adminPort = opts.adminPort;
    for (const [name, p] of [['listen port', this.port], ['admin port', this.adminPort]] as const) {
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw new InvalidInput(`ingress ${name} ${p} must be an integer in 1..65535`);
    }
    if (opts.httpsPort !== undefined && (!Number.isInteger(opts.httpsPort) || opts.httpsPort < 1 || opts.httpsPort > 65535 || [this.port, this.adminPort].includes(opts.httpsPort))) {
      throw new InvalidInput(`ingress HTTPS port ${opts.httpsPort} must be an integer in 1..65535, other than the HTTP and admin ports`);
    }
    if (opts.acmeChallengeDir !== undefined && (!isAbsolute(opts.acmeChallengeDir) || !SAFE_PATH_RE.test(opts.acmeChallengeDir))) {
      throw new InvalidInput(`ACME challenge directory ${JSON.stringify(opts.acmeChallengeDir)} must be an absolute path of letters, digits and ._/+@=,-`);
    }
    if (this.port === this.adminPort) throw new InvalidInput(`ingress listen port and admin port must differ (both ${this.port})`);
    if (!/^[0-9A-Fa-f.:]+$/.test(this.listenAddress)) throw new InvalidInput(`ingress listen address ${JSON.stringify(this.listenAddress)} must be an IP address`);
    this.bin = opts.nginxBin ?? 'nginx';
    this.coalesceMs = opts.coalesceMs ?? 50;
    this.reloadTimeoutMs = opts.reloadTimeoutMs ?? 10_000;
    this.log = opts.logger.child({ component: 'ingress' });
    this.confPath = join(prefix, 'conf', 'nginx.conf');
    this.errorLogPath = join(prefix, 'logs', 'error.log');
    this.backendsPath = join(prefix, 'conf', 'backends.conf');
    this.verifierPath = join(prefix, 'admin', 'token.sha1');
    this.adminToken = opts.adminToken ?? randomBytes(32).toString('hex');
  }

  /** Generation the serving workers answer with (undefined before start). */
  get generation(): number | undefined {
    return this.liveGeneration;
  }

  /** Pid of the nginx master started or adopted. */
  get masterPid(): number | undefined {
    return this.masterPidValue;
  }

  async start(): Promise<void> {
    await this.serialize(() => this.doStart());
    // Applies that arrived while starting may be newer than what start() rendered.
    if (this.desired !== undefined) this.schedule();
  }

  apply(routes: IngressRoute[]): void {
    if (this.closed) {
      this.log.warn('apply() after close() ignored');
      return;
    }
    // Copied (the caller may change its own afterwards), but for frozen backends arrays (the route
    // table's): those cannot change, and what a pass learnt about them is kept by their identity.
    this.desired = routes.map((r) => ({ ...r, backends: isFrozenBackends(r.backends) ? r.backends : r.backends.map((b) => ({ ...b })) }));
    this.appliedAt ??= Date.now();
    if (this.started) this.schedule();
  }

  /**
   * Leading edge when idle (the first change after a quiet spell goes out at once); while a pass runs,
   * or within the window after one, changes wait and go out together in the next pass. The window is
   * for reloads: after a pass that only pushed backends (a few ms, no new workers), the next change
   * goes out at once too. A pass already queued and not started takes every change made before it.
   */
  private schedule(): void {
    if (this.timer || this.closed || this.waiting > 0) return;
    const quiet = !this.lastPassReloaded || (this.pending === 0 && Date.now() - this.lastPassAt >= this.coalesceMs);
    // Quiet: the pass starts in a microtask (it reads `desired` then: applies made before it, in this
    // turn, go with it), not after a timer and whatever I/O the event loop takes first (1-14 ms
    // between a health flip and its pass in the propagation bench).
    if (quiet) {
      this.serialize(() => this.sync()).catch(() => undefined);
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // Failures are logged and kept in lastError; flush() callers see them too.
      this.serialize(() => this.sync()).catch(() => undefined);
    }, this.coalesceMs);
  }

  async flush(): Promise<void> {
    if (!this.started) throw new BerthError('ingress flush() before start()');
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    // Whatever is queued reads `desired` when it runs, so one more pass after it covers every apply
    // made before this call; it is a cheap no-op when nothing changed.
    await this.serialize(() => this.sync());
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    await this.chain.catch(() => undefined);
    this.adminAgent.destroy();
    this.tester?.close();
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    this.pending++;
    this.waiting++;
    const p = this.chain.then(() => {
      this.waiting--;
      return fn();
    }).finally(() => {
      this.pending--;
      this.lastPassAt = Date.now();
    });
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async doStart(): Promise<void> {
    if (this.started) return;
    for (const d of ['conf', 'logs', 'tmp']) await mkdir(join(this.prefix, d), { recursive: true });
    this.renderOpts = {
      prefix: this.prefix,
      listenPort: this.port,
      listenAddress: this.listenAddress,
      adminPort: this.adminPort,
      ...(this.opts.httpsPort !== undefined ? { httpsPort: this.opts.httpsPort } : {}),
      ...(this.opts.acmeChallengeDir !== undefined ? { acmeChallengeDir: this.opts.acmeChallengeDir } : {}),
      stubStatus: await this.hasStubStatus(),
      workerUser: await this.pickWorkerUser(),
    };
    const lua = await this.detectLua();
    if (lua) this.renderOpts.lua = lua;

    const pid = await findMaster(this.prefix);
    if (pid !== undefined) {
      // A Berth restart: nginx kept serving. Keep it and its config until told otherwise, so a
      // control-plane restart is never a traffic outage.
      this.masterPidValue = pid;
      const fileGen = parseGeneration(await readFile(this.confPath, 'utf8').catch(() => ''));
      const live = await this.probeGeneration().catch(() => undefined);
      this.liveGeneration = live;
      this.needsReload = live === undefined || live !== fileGen;
      this.log.info({ pid, generation: live, fileGeneration: fileGen }, 'adopted running nginx');
      this.started = true;
      // Routes applied before start() are flushed by the timer start() schedules; here only make
      // sure the workers serve the file on disk (a reload may have been cut short by our crash).
      if (this.needsReload && this.desired === undefined && fileGen !== undefined) {
        await this.reload(fileGen).catch((e: unknown) => {
          this.lastError = e instanceof Error ? e : new Error(String(e));
          this.log.warn({ err: this.lastError.message }, 'adopted nginx did not take its config on disk; retrying with the next update');
        });
      }
      return;
    }

    const current = await readFile(this.confPath, 'utf8').catch(() => undefined);
    const { plan } = await this.renderTested(current, this.desired ?? [], false);
    if (plan.backends !== undefined) await this.writeBackends(plan.backends);
    await this.launch(plan.generation);
    this.pushedBackends = plan.backends;
    this.started = true;
    this.report();
  }

  /**
   * Renders the routes nginx can take and, when the config changes, tests and swaps it in. A
   * candidate `nginx -t` refuses because of a route's own lines (its location or upstream block, its
   * host's server_name) is rendered again without that route, a few times at most: one app's route
   * must not keep every other app's changes out. Anything else nginx refuses is thrown.
   */
  private async renderTested(current: string | undefined, desired: IngressRoute[], knownGood: boolean): Promise<{ plan: ReturnType<typeof planConfig>; valid: IngressRoute[] }> {
    const { routes: checked, problems } = checkRoutes(desired);
    const live = new Set(checked.map(routeKey));
    for (const k of [...this.nginxRefused.keys()]) if (!live.has(k)) this.nginxRefused.delete(k);
    let valid = checked.filter((r) => !this.nginxRefused.has(routeKey(r)));
    for (let attempt = 0; ; attempt++) {
      const plan = planConfig(current, valid, this.renderOpts!);
      if (!plan.changed) return this.settle(plan, valid, problems);
      try {
        await this.testAndSwap(plan.config, knownGood ? current : undefined);
        return this.settle(plan, valid, problems);
      } catch (e) {
        const at = (e as ExternalCommandFailed).details as { routeAt?: { upstream: string } | { host: string }; stderr?: string } | undefined;
        const culprit = at?.routeAt;
        const hit = culprit === undefined ? [] : valid.filter((r) => ('upstream' in culprit ? r.upstream === culprit.upstream : r.host === culprit.host));
        if (attempt >= 4 || hit.length === 0) throw e;
        const why = /\[(?:emerg|alert|crit)\] (?:\d+#\d+: )?(.*?)(?: in \S+:\d+)?$/m.exec(at?.stderr ?? '')?.[1] ?? 'nginx -t refused it';
        for (const r of hit) {
          this.nginxRefused.set(routeKey(r), { upstream: r.upstream, ...(r.host === undefined ? {} : { host: r.host }), path: r.path, message: `nginx refused it: ${why}`, ...(r.owner ? { owner: r.owner } : {}) });
        }
        this.log.warn({ routes: hit.map((r) => r.upstream), err: why }, 'nginx -t refused the routes of one owner; testing the config without them');
        valid = valid.filter((r) => !this.nginxRefused.has(routeKey(r)));
      }
    }
  }

  private settle(plan: ReturnType<typeof planConfig>, valid: IngressRoute[], problems: RouteProblem[]): { plan: ReturnType<typeof planConfig>; valid: IngressRoute[] } {
    this.rejectedRoutes = [...problems, ...this.nginxRefused.values()];
    return { plan, valid };
  }

  /** Logs and reports the routes left out that were not left out before. */
  private report(): void {
    const now = new Set<string>();
    const fresh: RouteProblem[] = [];
    for (const p of this.rejectedRoutes) {
      const k = problemKey(p);
      now.add(k);
      if (this.reported.has(k)) continue;
      fresh.push(p);
      this.log.error({ upstream: p.upstream, host: p.host, path: p.path }, `route left out of nginx config: ${p.message}`);
    }
    this.reported = now;
    if (fresh.length > 0 && this.opts.onRoutesRefused) {
      try {
        this.opts.onRoutesRefused(fresh);
      } catch (e) {
        this.log.warn({ err: String(e) }, 'onRoutesRefused failed');
      }
    }
  }

  /**
   * One pass: render, compare, test, swap, reload, wait. Runs only inside `serialize`. Routes left
   * out (see `rejectedRoutes`) do not fail the pass: the rest of the table is what is live.
   */
  private async sync(): Promise<void> {
    const since = this.appliedAt;
    this.appliedAt = undefined;
    const t0 = Date.now();
    const reloads = this.reloadCount;
    let failed = false;
    try {
      if (this.desired !== undefined) {
        // The file as this process last wrote it (read once): a read through the thread pool on the path
        // of every backend change waited behind other file work (6-56 ms per pass in the propagation bench).
        const current = this.confText ?? await readFile(this.confPath, 'utf8').catch(() => undefined);
        const { plan, valid } = await this.renderTested(current, this.desired, true);
        if (!plan.changed) this.confText = plan.config;
        if (plan.changed) this.needsReload = true;
        const reloading = this.needsReload || this.liveGeneration !== plan.generation;
        // Before any reload or start: init_by_lua reads it, and it is what a restarted nginx serves. A
        // pass that only pushes writes it after the push (below), still before any later pass.
        if (plan.backends !== undefined && reloading) await this.writeBackends(plan.backends);
        const tWritten = Date.now();
        if (reloading) {
          const next = backendKeys(valid);
          const prev = this.liveBackends;
          this.liveBackends = undefined; // unknown until this reload is known to be in effect
          // The reload's init_by_lua loads the file but keeps upstreams that left (old workers may
          // still route to them); the push below drops those.
          this.pushedBackends = undefined;
          await this.reload(plan.generation, prev !== undefined && onlyAdds(prev, next));
          this.liveBackends = next;
        }
        if (plan.backends !== undefined && plan.backends !== this.pushedBackends) {
          await this.pushBackends(plan.backends, plan.generation);
          // Every worker, old and new, picks from what was pushed: that is what serves now.
          this.liveBackends = backendKeys(valid);
          this.log.debug({ waitedMs: since === undefined ? undefined : t0 - since, renderMs: tWritten - t0, passMs: Date.now() - t0 }, 'backends live in nginx');
        }
        if (plan.backends !== undefined) await this.writeBackends(plan.backends);
        this.report();
      }
      this.lastError = undefined;
    } catch (e) {
      failed = true;
      this.lastError = e instanceof Error ? e : new Error(String(e));
      this.log.error({ err: this.lastError.message }, 'ingress update failed; nginx keeps serving its previous config');
      throw this.lastError;
    } finally {
      this.lastPassReloaded = failed || this.reloadCount !== reloads || this.renderOpts?.lua === undefined;
    }
  }

  /**
   * Tests the candidate with `nginx -t` and only then renames it over nginx.conf. A candidate that
   * differs from the current (tested) file only in its upstreams' `server` lines — a backend joining
   * or leaving, the common case — is swapped in without the test: Berth renders those lines itself
   * from validated addresses and ports, and each upstream keeps at least one.
   */
  private async testAndSwap(config: string, current?: string): Promise<void> {
    if (current !== undefined && !this.opts.testOnlyCandidateFilter && onlyBackendsDiffer(current, config)) {
      this.confText = undefined;
      await writeFileAtomic(this.confPath, config);
      await fsyncDir(dirname(this.confPath));
      this.confText = config;
      this.log.debug('only upstream servers changed: swapped without nginx -t');
      return;
    }
    const candidate = `${this.confPath}.candidate`;
    const text = this.opts.testOnlyCandidateFilter ? this.opts.testOnlyCandidateFilter(config) : config;
    await writeFileAtomic(candidate, text);
    const t0 = Date.now();
    try {
      // `-e stderr`: with a log file, nginx -t writes its reasons there and nothing to stderr.
      // Through one long-lived shell (NginxTester): a new child of the server blocked its event loop.
      this.tester ??= new NginxTester(this.bin, `${this.prefix}/`, candidate);
      await this.tester.test();
    } catch (e) {
      const rejected = `${this.confPath}.rejected`;
      await rename(candidate, rejected).catch(() => undefined);
      const stderr = e instanceof ExternalCommandFailed ? ((e.details as { stderr?: string } | undefined)?.stderr ?? e.message) : String(e);
      // nginx names the first line it refused: `... in /prefix/conf/nginx.conf.candidate:123`.
      const line = new RegExp(`in ${escapeRegExp(candidate)}:(\\d+)`).exec(stderr)?.[1];
      const routeAt = line === undefined ? undefined : routeAtLine(text, Number(line));
      throw new ExternalCommandFailed(`nginx rejected the rendered config (kept the previous one; candidate saved as ${rejected}):\n${stderr.trim()}`, {
        cause: e,
        details: { stderr, candidate: rejected, ...(routeAt ? { routeAt } : {}) },
      });
    }
    this.confText = undefined;
    await rename(candidate, this.confPath);
    await fsyncDir(dirname(this.confPath));
    this.confText = text;
    this.log.debug({ testMs: Date.now() - t0 }, 'nginx -t passed; config swapped');
  }

  /** SIGHUP the master and wait until only workers of `generation` accept connections. */
  /**
   * `onlyAdds`: no backend leaves with this config. Then the reload counts as done as soon as new
   * workers answer: old workers, which nginx's master keeps accepting for ~100 ms more, can only
   * route to backends that are still there. When a backend leaves, wait until no old worker accepts.
   */
  private async reload(generation: number, onlyAdds = false): Promise<void> {
    const pid = await findMaster(this.prefix);
    if (pid === undefined) {
      this.log.warn({ prefix: this.prefix }, 'nginx master is gone; starting it again');
      await this.launch(generation);
      return;
    }
    this.masterPidValue = pid;
    // Only a removal waits for the old workers, so only then are they worth listing.
    const oldWorkers = onlyAdds ? new Set<number>() : new Set((await listWorkers(pid)).filter((w) => !w.shuttingDown).map((w) => w.pid));
    const logOffset = await fileSize(this.errorLogPath);
    this.needsReload = true;
    const t0 = Date.now();
    process.kill(pid, 'SIGHUP');
    this.reloadCount++;
    try {
      await waitFor(
        async () => {
          // Old workers close their listening sockets as they start shutting down; until then they may
          // still take new connections with the old routes.
          if (!onlyAdds) {
            const workers = await listWorkers(pid);
            if (workers.some((w) => oldWorkers.has(w.pid) && !w.shuttingDown)) return false;
          }
          return (await this.probeGeneration()) === generation;
        },
        { timeoutMs: this.reloadTimeoutMs, intervalMs: 20, what: `nginx generation ${generation}` },
      );
    } catch (e) {
      const errors = await readFrom(this.errorLogPath, logOffset);
      throw new ExternalCommandFailed(
        `nginx (pid ${pid}) did not bring up config generation ${generation} within ${this.reloadTimeoutMs} ms after SIGHUP; it keeps serving the previous one.${errors ? `\nerror.log:\n${errors}` : ''}`,
        { cause: e, details: { stderr: errors } },
      );
    }
    this.needsReload = false;
    this.liveGeneration = generation;
    this.log.info({ generation, pid, ms: Date.now() - t0, onlyAdds }, 'nginx reloaded');
  }

  private async launch(generation: number): Promise<void> {
    await this.checkPortFree(this.listenAddress, this.port, `ingress port ${this.port} on ${this.listenAddress}`, 'start berth with --ingress-port <free port>');
    await this.checkPortFree('127.0.0.1', this.adminPort, `ingress admin port ${this.adminPort} on 127.0.0.1`, 'choose another ingress admin port');
    const logOffset = await fileSize(this.errorLogPath);
    try {
      // `daemon on` in the config: this returns once the master has forked away from us.
      await runCommand(this.bin, ['-p', `${this.prefix}/`, '-c', this.confPath, '-e', this.errorLogPath], { timeoutMs: 30_000 });
    } catch (e) {
      const errors = await readFrom(this.errorLogPath, logOffset);
      const inUse = /bind\(\) to (\S+) failed \(98: Address already in use\)/.exec(errors);
      if (inUse) {
        throw new Conflict(`nginx could not listen on ${inUse[1]}: another program uses it; stop it or start berth with --ingress-port <free port>`, { cause: e });
      }
      throw new ExternalCommandFailed(`could not start nginx: ${e instanceof Error ? e.message : String(e)}${errors ? `\nerror.log:\n${errors}` : ''}`, {
        cause: e,
        details: { stderr: errors },
      });
    }
    try {
      await waitFor(async () => (await this.probeGeneration()) === generation, { timeoutMs: this.reloadTimeoutMs, intervalMs: 20, what: `nginx generation ${generation}` });
    } catch (e) {
      const errors = await readFrom(this.errorLogPath, logOffset);
      throw new ExternalCommandFailed(`nginx started but its admin endpoint on 127.0.0.1:${this.adminPort} did not answer generation ${generation}${errors ? `\nerror.log:\n${errors}` : ''}`, {
        cause: e,
      });
    }
    this.masterPidValue = await findMaster(this.prefix);
    this.liveGeneration = generation;
    this.needsReload = false;
    this.log.info({ pid: this.masterPidValue, generation, port: this.port }, 'nginx started');
  }

  /**
   * Whether nginx can run the Lua balancer: not turned off,
   * both modules exist and a config loading them (with resty.core and ngx.balancer) passes `nginx -t`.
   * Said once in the log either way; `backendUpdates` keeps it for `berth status`.
   */
  private async detectLua(): Promise<LuaOptions | undefined> {
    const moduleDir = (this.opts.luaModuleDir ?? '/usr/lib/nginx/modules').replace(/\/+$/, '');
    const fallback = (reason: string): undefined => {
      this.backendUpdates = { mode: 'reload', reason };
      this.log.warn({ reason }, `backend changes reload nginx (no Lua balancer: ${reason})`);
      return undefined;
    };
    if (this.opts.luaBalancer === false) return fallback('turned off');
    if (!isAbsolute(moduleDir) || !SAFE_PATH_RE.test(moduleDir)) return fallback(`module directory ${JSON.stringify(moduleDir)} is not an absolute path of safe characters`);
    const missing: string[] = [];
    for (const m of ['ndk_http_module.so', 'ngx_http_lua_module.so']) {
      if (!(await access(join(moduleDir, m)).then(() => true, () => false))) missing.push(join(moduleDir, m));
    }
    if (missing.length > 0) return fallback(`${missing.join(' and ')} not found: install the Debian packages libnginx-mod-http-lua and lua-resty-core`);
    const probe = join(this.prefix, 'tmp', 'lua-probe.conf');
    await writeFileAtomic(probe, [
      `load_module ${moduleDir}/ndk_http_module.so;`, `load_module ${moduleDir}/ngx_http_lua_module.so;`,
      'events {}', 'http {', '    lua_shared_dict berth_probe 1m;', '    init_by_lua_block { require("ngx.balancer") }', '}', '',
    ].join('\n'));
    try {
      await runCommand(this.bin, ['-t', '-q', '-p', `${this.prefix}/`, '-c', probe, '-e', 'stderr'], { timeoutMs: 30_000 });
    } catch (e) {
      const stderr = e instanceof ExternalCommandFailed ? ((e.details as { stderr?: string } | undefined)?.stderr ?? e.message) : String(e);
      const why = /\[(?:emerg|alert|crit|error)\] (?:\d+#\d+: )?(.*)$/m.exec(stderr)?.[1] ?? stderr.trim().split('\n')[0] ?? 'nginx -t failed';
      return fallback(`nginx cannot load the Lua modules (${why}); install the Debian packages libnginx-mod-http-lua and lua-resty-core for this nginx`);
    }
    // The master (root) reads the token's hash at start and reload; nobody else can.
    await mkdir(dirname(this.verifierPath), { recursive: true, mode: 0o700 });
    await chmod(dirname(this.verifierPath), 0o700);
    await writeFileAtomic(this.verifierPath, `${createHash('sha1').update(this.adminToken).digest('base64')}\n`, { mode: 0o600, onlyIfChanged: true });
    this.backendUpdates = { mode: 'lua' };
    this.log.info({ mode: 'lua' }, 'backend changes go to nginx without a reload (Lua balancer)');
    return { moduleDir, backendsFile: this.backendsPath, verifierFile: this.verifierPath };
  }

  private async writeBackends(text: string): Promise<void> {
    if (text === this.writtenBackends) return;
    // Atomic against a crash of Berth or nginx (temp file + rename), not fsynced: on the path of every
    // backend change, and after a power loss Berth renders and writes it again before nginx starts.
    const tmp = `${this.backendsPath}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, this.backendsPath);
    this.writtenBackends = text;
  }

  /**
   * Sends the complete backend set to nginx's admin endpoint: every worker, old and new, picks from
   * it for the next request. A master that is gone is started again (from the files on disk); one
   * that knows another token (an adopted nginx from before a token change) reloads, which reads it.
   */
  private async pushBackends(text: string, generation: number): Promise<void> {
    const t0 = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        await this.putBackends(text);
        break;
      } catch (e) {
        if ((await findMaster(this.prefix)) === undefined) {
          this.log.warn({ prefix: this.prefix }, 'nginx master is gone; starting it again');
          // A new master reads the backends file (a pass that only pushes writes it after the push).
          await this.writeBackends(text);
          await this.launch(generation);
          this.pushedBackends = text;
          return;
        }
        if (attempt === 0 && (e as { status?: number }).status === 403) {
          this.log.warn({ status: 403 }, 'nginx does not know the current admin token; reloading it so it reads the token file');
          await this.reload(generation);
          continue;
        }
        throw new ExternalCommandFailed(`nginx did not take the new backends: ${e instanceof Error ? e.message : String(e)}; it keeps the previous ones`, { cause: e });
      }
    }
    this.pushedBackends = text;
    this.backendPushCount++;
    this.log.debug({ ms: Date.now() - t0 }, 'backends pushed to nginx');
  }

  /**
   * PUT the backend set to the loopback admin server; resolves on a 2xx answer. Over one kept-alive
   * connection (a flip's push waits for no connect); a kept connection that an nginx worker closed
   * meanwhile (old workers close theirs when a reload retires them) is retried once on a new one —
   * the PUT replaces the whole set, so sending it twice is harmless.
   */
  private async putBackends(body: string): Promise<void> {
    try {
      await this.putBackendsOnce(body);
    } catch (e) {
      if (!(e as { reused?: boolean }).reused) throw e;
      this.log.debug({ err: String(e) }, 'the kept admin connection failed; pushing again on a new one');
      await this.putBackendsOnce(body);
    }
  }

  private putBackendsOnce(body: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = request({
        host: '127.0.0.1', port: this.adminPort, path: BACKENDS_ADMIN_PATH, method: 'PUT', agent: this.adminAgent, timeout: 5_000,
        headers: { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), [TOKEN_HEADER]: this.adminToken },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) return resolve();
          reject(Object.assign(new Error(`admin endpoint answered ${res.statusCode}: ${text.trim().slice(0, 300)}`), { status: res.statusCode }));
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('admin endpoint timed out')));
      // Failed on a connection used before: the worker may have closed it (retried once on a new one).
      req.on('error', (err) => reject(req.reusedSocket ? Object.assign(err, { reused: true }) : err));
      req.end(body);
    });
  }

  private async checkPortFree(host: string, port: number, what: string, todo: string): Promise<void> {
    const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      const srv = createServer();
      srv.once('error', (e: NodeJS.ErrnoException) => resolve(e));
      srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(undefined)));
    });
    if (err?.code === 'EADDRINUSE') throw new Conflict(`${what} is already in use by another program; stop it or ${todo}`);
    if (err) throw new BerthError(`cannot check ${what}: ${err.message}`, { cause: err });
  }

  /** Asks the admin server which generation answers; a fresh connection each time, never a pooled one. */
  private probeGeneration(): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: this.adminPort, path: '/berth/generation', agent: false, timeout: 1000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          const n = Number(body.trim());
          if (res.statusCode === 200 && Number.isInteger(n)) resolve(n);
          else reject(new Error(`admin endpoint answered ${res.statusCode}: ${body.slice(0, 200)}`));
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('admin endpoint timed out')));
      req.on('error', reject);
      req.end();
    });
  }

  private async hasStubStatus(): Promise<boolean> {
    const { stdout, stderr } = await runCommand(this.bin, ['-V'], { timeoutMs: 10_000 });
    return /--with-http_stub_status_module/.test(stderr + stdout);
  }

  private async pickWorkerUser(): Promise<string | undefined> {
    if (process.getuid?.() !== 0) return undefined;
    if (this.opts.workerUser) return this.opts.workerUser;
    // Workers need to reach the temp dirs nginx creates for them under the prefix.
    for (let d = this.prefix; d !== '/'; d = dirname(d)) {
      const st = await stat(d).catch(() => undefined);
      if (!st || (st.mode & 0o001) === 0) {
        this.log.warn({ dir: d }, 'nginx workers run as root: the prefix is not reachable by other users');
        return 'root';
      }
    }
    const groups = await readFile('/etc/group', 'utf8').catch(() => '');
    const group = /^nogroup:/m.test(groups) ? 'nogroup' : /^nobody:/m.test(groups) ? 'nobody' : undefined;
    return group ? `nobody ${group}` : 'root';
  }
}

function routeKey(r: IngressRoute): string {
  return `${r.upstream} ${r.host ?? '*'} ${r.path}`;
}

function problemKey(p: RouteProblem): string {
  return `${p.upstream} ${p.host ?? '*'} ${p.path} ${p.message}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function fileSize(path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.size ?? 0;
}

/** What was appended to a log since `offset` (last 4 KiB of it). */
async function readFrom(path: string, offset: number): Promise<string> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return '';
  try {
    const size = (await fh.stat()).size;
    const start = Math.max(offset, size - 4096);
    if (size <= start) return '';
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    return buf.toString('utf8').trim();
  } finally {
    await fh.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  await fh.sync().catch(() => undefined);
  await fh.close();
}

/** upstream → its backends (`address:port`). */
/** Backends per route: the key is the upstream with the host and path it serves. */
export function backendKeys(routes: readonly IngressRoute[]): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  for (const r of routes) {
    const key = `${r.upstream} ${r.host ?? '*'} ${r.path}`;
    const set = m.get(key) ?? new Set<string>();
    for (const b of r.backends) set.add(`${b.address}:${b.port}`);
    m.set(key, set);
  }
  return m;
}

/**
 * True when a request that an old worker (old config) still takes would succeed all the same: no
 * backend leaves, every route that serves now was already in the old config (a new route, even one
 * rendered with no backends yet, answers 404 from an old worker: its backends arrive later by push,
 * and old workers keep accepting for ~100 ms after a reload), and every route that had no backend
 * before has none now (one coming back from zero backends answers 503 in the old config).
 */
export function onlyAdds(prev: Map<string, Set<string>>, next: Map<string, Set<string>>): boolean {
  for (const [route, backends] of prev) {
    const after = next.get(route);
    for (const b of backends) if (!after?.has(b)) return false;
  }
  for (const [route, backends] of next) {
    const before = prev.get(route);
    if (before === undefined) return false;
    if (backends.size > 0 && before.size === 0) return false;
  }
  return true;
}
