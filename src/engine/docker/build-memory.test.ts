import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { BuildMemoryPool, openBuildMemoryPool } from './build-memory.ts';

// The pool only reads and writes files: a plain directory stands in for the cgroup here (the real
// cgroup, and the OOM kill it causes, are exercised by test/docker-engine.test.ts).
const UNLIMITED_V1 = '9223372036854771712';
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function fakeV1(): Promise<{ root: string; cgroup: string; registry: string }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'berth-cgroup-'));
  dirs.push(root);
  const cgroup = path.join(root, 'memory', 'docker', 'buildkit');
  await mkdir(cgroup, { recursive: true });
  await writeFile(path.join(root, 'memory', 'memory.limit_in_bytes'), UNLIMITED_V1);
  await writeFile(path.join(cgroup, 'memory.limit_in_bytes'), UNLIMITED_V1);
  await writeFile(path.join(cgroup, 'memory.memsw.limit_in_bytes'), UNLIMITED_V1);
  return { root, cgroup, registry: path.join(root, 'registry') };
}

const limitOf = async (cgroup: string): Promise<string> => (await readFile(path.join(cgroup, 'memory.limit_in_bytes'), 'utf8')).trim();
const memswOf = async (cgroup: string): Promise<string> => (await readFile(path.join(cgroup, 'memory.memsw.limit_in_bytes'), 'utf8')).trim();

test('v1: the limit is the sum of the builds in flight, and unlimited once none is left', async () => {
  const { root, cgroup, registry } = await fakeV1();
  const pool = await openBuildMemoryPool({ cgroupRoot: root, daemonCgroupParent: '/docker/', registryDir: registry });
  assert.ok(pool instanceof BuildMemoryPool, String(pool));
  assert.equal(pool.dir, cgroup);
  assert.equal(await pool.currentLimit(), undefined);

  const a = await pool.acquire(64 * 2 ** 20);
  assert.equal(await limitOf(cgroup), String(64 * 2 ** 20));
  assert.equal(await memswOf(cgroup), String(64 * 2 ** 20), 'no swapping past the limit');
  const b = await pool.acquire(32 * 2 ** 20);
  assert.equal(await limitOf(cgroup), String(96 * 2 ** 20));
  assert.equal(await pool.currentLimit(), 96 * 2 ** 20);
  await a();
  await a(); // idempotent
  assert.equal(await limitOf(cgroup), String(32 * 2 ** 20));
  await b();
  assert.equal(await limitOf(cgroup), '-1');
  assert.equal(await memswOf(cgroup), '-1');
  assert.equal(await pool.currentLimit(), undefined);
  assert.deepEqual(await readdir(registry), []);
});

test('entries of other live processes count; entries of dead processes are dropped', async () => {
  const { root, cgroup, registry } = await fakeV1();
  const pool = (await openBuildMemoryPool({ cgroupRoot: root, daemonCgroupParent: 'docker', registryDir: registry })) as BuildMemoryPool;
  // Another Berth process on this host, mid-build.
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    const stat = await readFile(`/proc/${other.pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    await mkdir(registry, { recursive: true });
    await writeFile(path.join(registry, `${other.pid}-${start}-1-abc`), String(100 * 2 ** 20));
    // A process that crashed mid-build (no such pid), and a pid whose start time does not match (reused).
    await writeFile(path.join(registry, `999999999-1-1-dead`), String(500 * 2 ** 20));
    await writeFile(path.join(registry, `${other.pid}-1-2-reused`), String(700 * 2 ** 20));

    const release = await pool.acquire(50 * 2 ** 20);
    assert.equal(await limitOf(cgroup), String(150 * 2 ** 20));
    assert.deepEqual((await readdir(registry)).filter((n) => !n.startsWith(`${process.pid}-`)), [`${other.pid}-${start}-1-abc`]);
    await release();
    assert.equal(await limitOf(cgroup), String(100 * 2 ** 20), 'the other process still builds');
  } finally {
    other.kill();
  }
});

test('concurrent acquisitions from one process converge on the sum', async () => {
  const { root, cgroup, registry } = await fakeV1();
  const pool = (await openBuildMemoryPool({ cgroupRoot: root, daemonCgroupParent: 'docker', registryDir: registry })) as BuildMemoryPool;
  const releases = await Promise.all([1, 2, 3, 4].map((n) => pool.acquire(n * 2 ** 20)));
  assert.equal(await limitOf(cgroup), String(10 * 2 ** 20));
  await Promise.all(releases.map((r) => r()));
  assert.equal(await limitOf(cgroup), '-1');
});

test('v2: memory.max and memory.swap.max; no memory controller is a reason, not a pool', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'berth-cgroup2-'));
  dirs.push(root);
  await writeFile(path.join(root, 'cgroup.controllers'), 'cpu memory pids');
  const registry = path.join(root, 'registry');
  const missing = await openBuildMemoryPool({ cgroupRoot: root, daemonCgroupParent: 'docker', registryDir: registry });
  assert.equal(typeof missing, 'string');
  assert.match(missing as string, /memory controller is not enabled/);

  const cgroup = path.join(root, 'docker', 'buildkit');
  await writeFile(path.join(cgroup, 'memory.max'), 'max');
  await writeFile(path.join(cgroup, 'memory.swap.max'), 'max');
  const pool = await openBuildMemoryPool({ cgroupRoot: root, daemonCgroupParent: 'docker', registryDir: registry });
  assert.ok(pool instanceof BuildMemoryPool);
  const release = await pool.acquire(64 * 2 ** 20);
  assert.equal((await readFile(path.join(cgroup, 'memory.max'), 'utf8')).trim(), String(64 * 2 ** 20));
  assert.equal((await readFile(path.join(cgroup, 'memory.swap.max'), 'utf8')).trim(), '0');
  await release();
  assert.equal((await readFile(path.join(cgroup, 'memory.max'), 'utf8')).trim(), 'max');
});

test('no memory controller at all is a reason', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'berth-cgroup-none-'));
  dirs.push(root);
  const r = await openBuildMemoryPool({ cgroupRoot: root, daemonCgroupParent: 'docker', registryDir: path.join(root, 'r') });
  assert.match(String(r), /no cgroup v1 memory controller/);
});
