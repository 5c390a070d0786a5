/**
 * Log collection against the real Docker Engine: a busybox container printing numbered lines is
 * followed into a LogStore; every line is searchable; a collector killed with SIGKILL mid-stream and
 * started again stores every line exactly once; retention keeps the store under its size bound.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { LABEL, systemClock, type Logger } from '../src/core/ports.ts';
import { DockerEngine } from '../src/engine/docker/index.ts';
import { waitFor } from '../src/lib/backoff.ts';
import { LogCollector, LogStore, type StoredLine } from '../src/logs/index.ts';

const ROOT = resolve(import.meta.dirname, '..');
const CHILD = join(ROOT, 'test/helpers/log-collector-child.ts');
const RUN_ID = randomBytes(4).toString('hex');
const TEST_LABEL = 'io.berth.test.logs';
const silent: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, child: () => silent };

const engine = new DockerEngine({ logger: silent, hostName: 'test-host' });
const containers: string[] = [];
const dirs: string[] = [];
const children: ChildProcess[] = [];
let seq = 0;

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const id of containers) await engine.remove(id).catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'berth-logcollect-'));
  dirs.push(d);
  return d;
}

/** Starts a busybox container carrying this run's label (and a per-test group) running `script`. */
async function runContainer(group: string, script: string, instance = `i${++seq}`): Promise<string> {
  const id = await engine.create({
    name: `berth-logtest-${RUN_ID}-${++seq}`,
    image: 'berth/busybox:latest',
    labels: { [TEST_LABEL]: `${RUN_ID}-${group}`, [LABEL.app]: 'logapp', [LABEL.env]: 'test', [LABEL.service]: 'printer', [LABEL.instance]: instance },
    env: {},
    cmd: ['sh', '-c', script],
    mounts: [],
  });
  containers.push(id);
  await engine.start(id);
  return id;
}

function listFor(group: string) {
  return async () => (await engine.list({ [TEST_LABEL]: `${RUN_ID}-${group}` })).map((c) => ({
    containerId: c.id, app: c.labels[LABEL.app]!, env: c.labels[LABEL.env]!, service: c.labels[LABEL.service]!,
    instance: c.labels[LABEL.instance]!, running: c.running,
  }));
}

async function exited(id: string): Promise<boolean> {
  return (await engine.inspect(id))?.running === false;
}

/** Reads the texts of every stored line straight from the database (another process may own the store). */
function storedTexts(dbPath: string): string[] {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const parts = db.prepare('SELECT id FROM parts').all() as { id: number }[];
    return parts.flatMap((p) => (db.prepare(`SELECT text FROM lines_${p.id}`).all() as { text: string }[]).map((r) => r.text));
  } finally {
    db.close();
  }
}

function storedCount(dbPath: string): number {
  try {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('SELECT coalesce(sum(lines), 0) AS n FROM parts').get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
}

function all(store: LogStore, q: Parameters<LogStore['search']>[0]): StoredLine[] {
  const out: StoredLine[] = [];
  let before: string | undefined;
  for (;;) {
    const page = store.search({ limit: 1000, ...q, ...(before ? { before } : {}) });
    out.push(...page.lines);
    if (!page.next) return out;
    before = page.next;
  }
}

/** Asserts that `texts` holds `line 0` … `line N-1` exactly once each. */
function assertExactlyOnce(texts: string[], n: number): void {
  const counts = new Map<number, number>();
  for (const t of texts) {
    const m = /^line (\d+)$/.exec(t);
    if (m) counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1);
  }
  const missing: number[] = [];
  const dup: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = counts.get(i) ?? 0;
    if (c === 0) missing.push(i);
    if (c > 1) dup.push(i);
  }
  assert.deepEqual({ missing: missing.slice(0, 20), missingCount: missing.length, dup: dup.slice(0, 20), dupCount: dup.length },
    { missing: [], missingCount: 0, dup: [], dupCount: 0 });
  assert.equal(counts.size, n);
}

function startChild(dbPath: string, group: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dbPath, `${TEST_LABEL}=${RUN_ID}-${group}`], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((res, rej) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ready')) res(child);
    });
    child.once('exit', (code, sig) => rej(new Error(`collector child exited early (${code ?? sig})`)));
  });
}

const numbered = (n: number, every: number, pause: string) =>
  `i=0; while [ $i -lt ${n} ]; do echo "line $i"; i=$((i+1)); [ $((i % ${every})) = 0 ] && sleep ${pause}; done; true`;

describe('log collection (real Docker)', () => {
  test('every line of a container is stored once, searchable and filterable', async () => {
    const dir = tempDir();
    const store = new LogStore(join(dir, 'logs.db'));
    const collector = new LogCollector({ engine, store, listContainers: listFor('basic'), logger: silent, clock: systemClock });
    try {
      const script = `${numbered(3000, 500, '0.05')}; echo "ERROR disk on fire" >&2; echo '{"level":40,"msg":"slow query"}'`;
      const id = await runContainer('basic', script, 'basic-1');
      const live: StoredLine[] = [];
      const off = collector.tail({ app: 'logapp', level: 'error' }, (l) => live.push(l));
      await collector.sync();
      await waitFor(async () => (await exited(id)) && store.stats().lines === 3002, { timeoutMs: 60_000, intervalMs: 100, what: 'all lines stored' });
      // Syncing again after the container ended reads nothing twice.
      await collector.sync();
      await waitFor(() => collector.active.length === 0, { timeoutMs: 10_000, what: 'streams ended' });
      off();
      const lines = all(store, {});
      assert.equal(lines.length, 3002);
      assertExactlyOnce(lines.map((l) => l.text), 3000);
      const hit = store.search({ text: 'line 1234' }).lines;
      assert.equal(hit.length, 1);
      assert.equal(hit[0]!.text, 'line 1234');
      assert.equal(hit[0]!.containerId, id);
      assert.equal(hit[0]!.instance, 'basic-1');
      assert.equal(hit[0]!.service, 'printer');
      assert.equal(store.search({ text: '1234' }).lines.length, 1);
      assert.equal(all(store, { text: 'line', app: 'logapp', env: 'test', service: 'printer' }).length, 3000);
      assert.equal(all(store, { text: 'line', app: 'other' }).length, 0);
      const errs = all(store, { stream: 'stderr' });
      assert.deepEqual(errs.map((l) => [l.text, l.level]), [['ERROR disk on fire', 'error']]);
      assert.deepEqual(all(store, { level: 'warn' }).map((l) => l.text), ['{"level":40,"msg":"slow query"}']);
      assert.deepEqual(live.map((l) => l.text), ['ERROR disk on fire']);
      // The last two lines went to different streams: Docker stamps each stream in its own copier,
      // so their order by time is not guaranteed; both are newer than every numbered line.
      const newest = store.search({ limit: 3 }).lines;
      assert.deepEqual(newest.slice(0, 2).map((l) => l.text).sort(), ['ERROR disk on fire', '{"level":40,"msg":"slow query"}']);
      assert.equal(newest[2]!.text, 'line 2999');
      const t = Math.max(Date.parse(newest[0]!.time), Date.parse(newest[1]!.time));
      assert.ok(Math.abs(t - Date.now()) < 120_000, 'timestamps come from the engine');
      assert.equal(all(store, { since: t + 1 }).length, 0);
    } finally {
      await collector.close();
      store.close();
    }
  });

  test('collector killed with SIGKILL mid-stream and restarted: every number exactly once', async () => {
    const dir = tempDir();
    const dbPath = join(dir, 'logs.db');
    const N = 20_000;
    let child = await startChild(dbPath, 'crash');
    const id = await runContainer('crash', numbered(N, 500, '0.1'));
    // Kill while the container is still writing and the collector is in the middle of it.
    await waitFor(() => storedCount(dbPath) >= 3000, { timeoutMs: 60_000, intervalMs: 20, what: 'first lines stored' });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const atKill = storedCount(dbPath);
    assert.ok(!(await exited(id)), 'container still running after the kill');
    assert.ok(atKill < N, `killed mid-stream (${atKill} stored)`);
    // While no collector runs, the container keeps writing: those lines come from Docker on resume.
    await new Promise((r) => setTimeout(r, 500));
    child = await startChild(dbPath, 'crash');
    await waitFor(async () => (await exited(id)) && storedCount(dbPath) >= N, { timeoutMs: 120_000, intervalMs: 100, what: 'all lines stored after restart' });
    // Give a duplicate (if any) the chance to arrive before counting.
    await new Promise((r) => setTimeout(r, 700));
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const texts = storedTexts(dbPath);
    assert.equal(texts.length, N);
    assertExactlyOnce(texts, N);
    const store = new LogStore(dbPath);
    try {
      assert.equal(store.search({ text: 'line 19999' }).lines.length, 1);
      const cp = store.checkpoint(id);
      assert.ok(cp && cp.countAtTs >= 1, 'checkpoint stored');
    } finally {
      store.close();
    }
  });

  test('retention keeps the store under its size bound while lines stream in', async () => {
    const dir = tempDir();
    const maxBytes = 3 * 1024 * 1024;
    const store = new LogStore(join(dir, 'logs.db'));
    const collector = new LogCollector({
      engine, store, listContainers: listFor('retention'), logger: silent, clock: systemClock,
      retention: { maxBytes, intervalMs: 100 },
    });
    try {
      const pad = 'x'.repeat(80);
      const id = await runContainer('retention', `i=0; while [ $i -lt 60000 ]; do echo "line $i ${pad}"; i=$((i+1)); done`);
      await collector.sync();
      let peak = 0;
      await waitFor(async () => {
        peak = Math.max(peak, store.sizeBytes());
        return (await exited(id)) && collector.active.length === 0;
      }, { timeoutMs: 120_000, intervalMs: 100, what: 'container done and read' });
      await collector.close();
      await store.enforce({ maxBytes });
      const size = store.sizeBytes();
      assert.ok(size <= maxBytes, `size ${size} <= ${maxBytes}`);
      const st = store.stats();
      assert.ok(st.lines > 1000 && st.lines < 60_000, `some lines kept, old ones dropped (${st.lines})`);
      assert.equal(store.search({ limit: 1 }).lines[0]!.text, `line 59999 ${pad}`);
      assert.equal(store.search({ text: 'line 0' }).lines.length, 0);
      // The kept lines are the newest ones, without a gap.
      const kept = all(store, {}).map((l) => Number(l.text.split(' ')[1]));
      assert.equal(kept.length, st.lines);
      assert.equal(Math.min(...kept), 60_000 - st.lines);
      process.stderr.write(`retention: peak ${peak} bytes while streaming, ${size} after enforce, ${st.lines} lines kept\n`);
    } finally {
      await collector.close();
      store.close();
    }
  });
});
