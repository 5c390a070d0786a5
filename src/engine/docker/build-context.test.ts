import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { PassThrough, type Readable } from 'node:stream';
import { dockerfileBaseImages, filterContextTar, isLoopbackRegistryRef, listContextFiles } from './build-context.ts';

test('dockerfileBaseImages: stages, scratch, ARG substitution, flags', () => {
  const df = [
    'ARG BASE=berth/node:20',
    'ARG TAG',
    'FROM --platform=linux/amd64 ${BASE} AS deps',
    'RUN true',
    'FROM deps AS build',
    'FROM scratch',
    'from berth/busybox:latest',
    'FROM other:$TAG',
    'FROM \\',
    '  berth/node:20',
  ].join('\n');
  assert.deepEqual(dockerfileBaseImages(df), ['berth/node:20', 'berth/busybox:latest']);
  assert.deepEqual(dockerfileBaseImages(df, { TAG: '2', BASE: 'mine:1' }), ['mine:1', 'berth/busybox:latest', 'other:2', 'berth/node:20']);
});

test('isLoopbackRegistryRef', () => {
  assert.equal(isLoopbackRegistryRef('127.0.0.1:5000/app:1'), true);
  assert.equal(isLoopbackRegistryRef('localhost:5000/app'), true);
  assert.equal(isLoopbackRegistryRef('berth/node:20'), false);
  assert.equal(isLoopbackRegistryRef('registry.example.com/app'), false);
  assert.equal(isLoopbackRegistryRef('localhost'), false);
});

test('listContextFiles honours .dockerignore but keeps Dockerfile and exceptions', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-ctx-'));
  try {
    for (const d of ['node_modules/x', 'src/sub', 'logs']) await mkdir(path.join(dir, d), { recursive: true });
    for (const f of ['Dockerfile', 'node_modules/x/i.js', 'src/a.ts', 'src/sub/b.ts', 'src/a.test.ts', 'logs/keep.txt', 'logs/drop.txt', 'x.log']) {
      await writeFile(path.join(dir, f), f);
    }
    await writeFile(path.join(dir, '.dockerignore'), '# comment\nnode_modules\n**/*.test.ts\n*.log\nlogs\n!logs/keep.txt\n');
    assert.deepEqual(await listContextFiles(dir), ['.dockerignore', 'Dockerfile', 'logs/keep.txt', 'src/a.ts', 'src/sub/b.ts']);
    await writeFile(path.join(dir, '.dockerignore'), 'Dockerfile\nsrc\n');
    assert.deepEqual(await listContextFiles(dir), ['.dockerignore', 'Dockerfile', 'logs/drop.txt', 'logs/keep.txt', 'node_modules/x/i.js', 'x.log']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** File names in a tar stream (directories and git's pax header left out), sorted. */
async function tarFiles(tar: Readable): Promise<string[]> {
  const extract = (createRequire(import.meta.url)('tar-stream') as { extract(): NodeJS.WritableStream & { on(ev: string, fn: (...a: never[]) => void): void } }).extract();
  const names: string[] = [];
  await new Promise<void>((resolve, reject) => {
    extract.on('entry', (h: { name: string; type: string }, stream: Readable, next: () => void) => {
      if (h.type === 'file') names.push(h.name);
      stream.on('end', next);
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
    tar.on('error', reject);
    tar.pipe(extract);
  });
  return names.sort();
}

test('filterContextTar: a commit\'s git archive, filtered in flight, holds exactly what listContextFiles packs from a directory', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'berth-ctxtar-'));
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args], { env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x.invalid' } });
  try {
    for (const d of ['node_modules/x', 'src/sub', 'logs']) await mkdir(path.join(dir, d), { recursive: true });
    for (const f of ['Dockerfile', 'node_modules/x/i.js', 'src/a.ts', 'src/sub/b.ts', 'src/a.test.ts', 'logs/keep.txt', 'logs/drop.txt', 'x.log']) {
      await writeFile(path.join(dir, f), f);
    }
    const archive = () => spawn('git', ['-C', dir, 'archive', '--format=tar', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).stdout;
    for (const ignore of ['# comment\nnode_modules\n**/*.test.ts\n*.log\nlogs\n!logs/keep.txt\n', 'Dockerfile\nsrc\n', '']) {
      await writeFile(path.join(dir, '.dockerignore'), ignore);
      git('init', '-q');
      git('add', '-A');
      git('commit', '-qm', 'x', '--allow-empty');
      const fromDir = (await listContextFiles(dir)).filter((f) => !f.startsWith('.git/'));
      assert.deepEqual(await tarFiles(filterContextTar(archive(), ignore)), fromDir, ignore);
    }
    // A source that fails half-way errors the filtered stream instead of ending it as a shorter context.
    const failing = new PassThrough();
    archive().pipe(failing, { end: false });
    setTimeout(() => failing.destroy(new Error('git archive failed')), 50);
    await assert.rejects(tarFiles(filterContextTar(failing, '')), /git archive failed/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
