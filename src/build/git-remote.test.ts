import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidInput } from '../core/errors.ts';
import { branchProblem, checkGitRemote, fetchArgv, fetchEnv, gitRemoteProblem } from './git-remote.ts';

test('network remotes are accepted: https, http, ssh and scp-style', () => {
  for (const r of [
    'https://github.com/acme/shop.git', 'http://127.0.0.1:8080/git/shop.git', 'https://x:TOKEN@git.example.com/acme/shop',
    'ssh://git@github.com/acme/shop.git', 'ssh://git@[::1]:2222/shop.git', 'SSH://host/x', 'git@github.com:acme/shop.git',
    'gitea.internal:acme/shop.git', 'deploy@[fd00::1]:shop.git',
  ]) assert.equal(gitRemoteProblem(r), undefined, r);
});

test('options, local paths, file:// and other transports are refused, each saying why', () => {
  const cases: [string, RegExp][] = [
    ['--upload-pack=touch /tmp/x', /white space/],
    ['--upload-pack=touch${IFS}/tmp/x', /starts with "-"/],
    ['-oProxyCommand=x', /starts with "-"/],
    ['file:///var/lib/berth/git/other.git', /file:\/\/ remotes/],
    ['/var/lib/berth/git/other.git', /local paths are not accepted/],
    ['../other.git', /local paths/],
    ['other.git', /local paths/],
    ['./x:y', /local paths/],
    ['git://example.com/x.git', /git:\/\/ transport/],
    ['ftp://example.com/x.git', /ftp:\/\/ transport/],
    ['ext::sh -c touch% /tmp/x', /white space/],
    ['ext::touch%/tmp/x', /remote helpers/],
    ['fd::3', /remote helpers/],
    ['ssh://-oProxyCommand=x/y', /not a host name/],
    ['ssh://-x@host/y', /not an ssh user name/],
    ['-host:path', /starts with "-"/],
    ['host:-path', /not a repository path/],
    ['host:', /not a repository path/],
    ['https://', /not a valid URL|not a host name/],
    ['https://exa mple.com/x', /white space/],
    ['', /empty/],
  ];
  for (const [r, why] of cases) assert.match(gitRemoteProblem(r) ?? 'accepted', why, r);
});

test('checkGitRemote throws InvalidInput naming the field, the problem and the accepted forms', () => {
  assert.throws(() => checkGitRemote('--upload-pack=touch /tmp/x'), (e: unknown) => {
    assert.ok(e instanceof InvalidInput);
    assert.match(e.message, /^remote: "--upload-pack=touch \/tmp\/x" is not an accepted git remote \(it contains white space/);
    assert.match(e.message, /use https:\/\/HOST\/PATH, http:\/\/HOST\/PATH, ssh:\/\/\[USER@\]HOST\[:PORT\]\/PATH or scp-style \[USER@\]HOST:PATH$/);
    return true;
  });
  assert.doesNotThrow(() => checkGitRemote('https://github.com/acme/shop.git'));
});

test('the fetch argv is safe for any stored remote: protocol policy first, "--" before the remote', () => {
  for (const remote of ['--upload-pack=touch /tmp/x', 'file:///var/lib/berth/git/other.git', 'ext::sh -c x', 'https://github.com/a/b.git']) {
    const argv = fetchArgv('/data/git/shop.git', remote, 'main');
    const dashdash = argv.indexOf('--');
    assert.ok(dashdash > 0, 'has --');
    assert.equal(argv[dashdash + 1], remote, 'the remote comes right after --, as an operand');
    assert.equal(argv.indexOf(remote), dashdash + 1, 'and nowhere before it');
    assert.deepEqual(argv.slice(dashdash + 2), ['+refs/heads/main:refs/berth/incoming/main']);
    assert.ok(argv.indexOf('fetch') < dashdash);
    // Global options come before the subcommand: every transport not listed is refused by git.
    const configs = argv.slice(0, argv.indexOf('fetch')).filter((_, i, a) => a[i - 1] === '-c');
    assert.deepEqual(configs, ['protocol.allow=never', 'protocol.https.allow=always', 'protocol.http.allow=always', 'protocol.ssh.allow=always']);
  }
  assert.equal(fetchEnv({ PATH: '/bin' }).GIT_TERMINAL_PROMPT, '0');
});

test('branch names from webhooks follow git check-ref-format', () => {
  for (const b of ['main', 'feature/x-1', 'release-2.0', 'a@b']) assert.equal(branchProblem(b), undefined, b);
  for (const b of ['', 'a..b', 'x:refs/heads/main', '-x', 'a b', 'a/.b', 'a.lock', 'a/', '/a', 'a//b', 'a.', '@', 'a@{1}', 'a~1', 'a^', 'x*', 'a[b', 'a\\b']) {
    assert.ok(branchProblem(b), `${JSON.stringify(b)} is refused`);
  }
});
