import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommitFiles } from './commit-files.ts';

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
    const files = new CommitFiles(join(dir, '.git'), first);
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
