import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExternalCommandFailed } from '../core/errors.ts';
import { NginxTester } from './nginx-tester.ts';

const GOOD = 'daemon off;\nevents {}\nhttp {\n  server { listen 127.0.0.1:1; location / { return 204; } }\n}\n';
const BAD = 'daemon off;\nevents {}\nhttp {\n  server { listen 127.0.0.1:1; location / { retrun 204; } }\n}\n';

/** Processes whose command line names `path`. */
async function processesRunning(path: string): Promise<number> {
  await new Promise((r) => setTimeout(r, 100));
  let n = 0;
  for (const pid of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(path)) n++;
  }
  return n;
}

/** A stand-in for nginx that answers (exit 0) once `gate` exists: the tests control when it ends. */
async function gatedStandIn(dir: string): Promise<{ fake: string; gate: string }> {
  const fake = join(dir, 'fake-nginx');
  const gate = join(dir, 'gate');
  await writeFile(fake, `#!/bin/sh\nwhile [ ! -e ${gate} ]; do sleep 0.02; done\nexit 0\n`);
  await chmod(fake, 0o755);
  return { fake, gate };
}

async function withDir(fn: (dir: string, candidate: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-nginx-tester-'));
  try {
    for (const d of ['conf', 'logs']) await mkdir(join(dir, d));
    await fn(dir, join(dir, 'conf', 'nginx.conf.candidate'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('NginxTester: real nginx -t accepts a good candidate, refuses a bad one with nginx\'s words and the line, and the same shell serves the next test', async () => {
  await withDir(async (dir, candidate) => {
    const t = new NginxTester('nginx', `${dir}/`, candidate);
    try {
      await writeFile(candidate, GOOD);
      await t.test();
      await writeFile(candidate, BAD);
      const err = await t.test().then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ExternalCommandFailed, String(err));
      const stderr = (err.details as { stderr: string }).stderr;
      assert.match(stderr, /unknown directive "retrun"/);
      assert.match(stderr, new RegExp(`in ${candidate.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4`), 'the line nginx refused, for routeAtLine');
      assert.match(err.message, /exit code 1/);
      await writeFile(candidate, GOOD);
      await t.test();
    } finally {
      t.close();
    }
  });
});

test('NginxTester: a shell that died is replaced on the next test; one test at a time; close fails the test in progress', async () => {
  await withDir(async (dir, candidate) => {
    const { fake, gate } = await gatedStandIn(dir);
    const t = new NginxTester(fake, `${dir}/`, candidate);
    try {
      await writeFile(gate, '');
      await t.test();
      // Kill the shell between tests (as an OOM killer or an operator might): the next test starts another.
      (t as unknown as { sh: { kill(s: string): void } }).sh.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 50));
      await t.test();
      await rm(gate);
      const running = t.test();
      await assert.rejects(t.test(), /already running/);
      t.close();
      await assert.rejects(running, /cancelled/);
      assert.equal(await processesRunning(fake), 0, 'the stand-in it was running is gone with the shell');
    } finally {
      t.close();
    }
  });
});

test('NginxTester: no answer within the timeout fails the test and the next one runs in a new shell', async () => {
  await withDir(async (dir, candidate) => {
    const { fake, gate } = await gatedStandIn(dir);
    const t = new NginxTester(fake, `${dir}/`, candidate, 300);
    try {
      await assert.rejects(t.test(), /no answer within 300 ms/);
      assert.equal(await processesRunning(fake), 0, 'the stuck stand-in was ended with its shell');
      await writeFile(gate, '');
      await t.test();
    } finally {
      t.close();
    }
  });
});
