import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommitFiles, committerTime } from './commit-files.ts';

test('CommitFiles reads one commit from the object store: files, types, archives; a bad path is an error, not an empty context', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-commit-'));
  const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x.invalid' };
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args], { env }).toString().trim();
  try {
    mkdirSync(join(dir, 'api'));
    writeFileSync(join(dir, 'compose.yaml'), 'services: {}\n');
    writeFileSync(join(dir, 'api', 'Dockerfile'), 'FROM x\n');
    git('init', '-q', '-b', 'main');
    git('add', '-A');
    git('commit', '-qm', 'one');
    const first = git('rev-parse', 'HEAD');
    // The working tree and a later commit change; the commit read stays what it was.
    writeFileSync(join(dir, 'compose.yaml'), 'changed\n');
    git('commit', '-qam', 'two');
    const files = new CommitFiles(join(dir, '.git'), first, { env: process.env });
    const [compose, nope, api, dockerfile, missing] = await files.readMany(['compose.yaml', 'nope.yaml', 'api', 'api/Dockerfile', 'missing']);
    assert.equal(compose?.text, 'services: {}\n');
    assert.equal(nope, undefined);
    assert.equal(api?.type, 'tree');
    assert.equal(dockerfile?.type, 'blob');
    assert.equal(missing, undefined);
    assert.deepEqual(await files.readMany(['compose.yaml', 'missing', 'api', 'api/Dockerfile', '']), [
      { type: 'blob', text: 'services: {}\n' }, undefined, { type: 'tree' }, { type: 'blob', text: 'FROM x\n' }, { type: 'tree' },
    ]);
    let bytes = 0;
    for await (const c of files.archive('api')) bytes += (c as Buffer).length;
    assert.ok(bytes >= 1024, 'a tar of api/');
    await assert.rejects(async () => {
      for await (const _ of files.archive('missing')) void _;
    }, /git archive .* failed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a commit is dated by its committer time (what reproducible builds use), not the author time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-commit-'));
  const env = {
    ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x.invalid',
    GIT_AUTHOR_DATE: '2001-02-03T04:05:06Z', GIT_COMMITTER_DATE: '2021-02-03T04:05:06+0200',
  };
  try {
    execFileSync('git', ['-C', dir, 'init', '-q', '-b', 'main'], { env });
    execFileSync('git', ['-C', dir, 'commit', '-q', '--allow-empty', '-m', 'x'], { env });
    const sha = execFileSync('git', ['-C', dir, 'rev-parse', 'HEAD']).toString().trim();
    assert.equal(await new CommitFiles(join(dir, '.git'), sha, { env: process.env }).committedAt(), Date.parse('2021-02-03T02:05:06Z') / 1000);
    await assert.rejects(new CommitFiles(join(dir, '.git'), 'f'.repeat(40), { env: process.env }).committedAt(), /git cat-file commit/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(committerTime('tree x\nauthor a <a> 1 +0000\ncommitter c <c> 1700000000 -0130\n\nmsg\ncommitter z <z> 5 +0000\n'), 1700000000);
  assert.throws(() => committerTime('tree x\n\ncommitter c <c> 1 +0000'), /no committer line/);
});
