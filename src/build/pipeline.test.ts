import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PipelineFailed, defaultEnvOf, parseRefLines } from './pipeline.ts';
import { parseCgiHeaders } from './git-http.ts';
import { hookScript } from './git-repos.ts';
import { basicAuthToken, isGitHookRequest } from '../api/git-routes.ts';

test('branch → environment', () => {
  for (const [b, e] of [['main', 'prod'], ['master', 'prod'], ['feature/Login_Page', 'feature-login-page'], ['--', 'dev'], ['pre', 'pre']]) {
    assert.equal(defaultEnvOf(b!), e, b);
  }
  assert.ok(defaultEnvOf('x'.repeat(100)).length <= 63);
});

test('ref lines from the hook', () => {
  const a = 'a'.repeat(40);
  const z = '0'.repeat(40);
  assert.deepEqual(parseRefLines(`${z} ${a} refs/heads/main\n\ngarbage\n${a} ${z} refs/tags/v1\n`), [
    { oldSha: z, newSha: a, ref: 'refs/heads/main' },
    { oldSha: a, newSha: z, ref: 'refs/tags/v1' },
  ]);
});

test('CGI headers', () => {
  assert.deepEqual(parseCgiHeaders('Status: 404 Not Found\r\nContent-Type: text/plain\r\nExpires: x'), {
    status: 404, headers: { 'content-type': 'text/plain', expires: 'x' },
  });
  assert.equal(parseCgiHeaders('Content-Type: application/x-git-receive-pack-result').status, 200);
});

test('Basic auth token and the hook exemption', () => {
  assert.equal(basicAuthToken(`Basic ${Buffer.from('x:tok:en').toString('base64')}`)?.[1], 'tok:en');
  assert.equal(basicAuthToken(`Basic ${Buffer.from('x:').toString('base64')}`), null);
  assert.equal(basicAuthToken('Bearer abc'), null);
  assert.ok(isGitHookRequest('/v1/git/hooks/pre-receive?app=a'));
  assert.ok(!isGitHookRequest('/v1/git/hooks/pre-receive-x'));
  assert.ok(!isGitHookRequest('/v1/apps'));
});

test('hook script quotes its arguments', () => {
  const s = hookScript('app', 'http://127.0.0.1:1', "/data/it's/hook.token");
  assert.match(s, /cat '\/data\/it'\\''s\/hook\.token'/);
  assert.match(s, /'http:\/\/127\.0\.0\.1:1\/v1\/git\/hooks\/pre-receive\?app=app'/);
});

test('the build queue: at most N builds at once, the others wait in order', async () => {
  const { Slots } = await import('./pipeline.ts');
  const slots = new Slots(2);
  const order: string[] = [];
  const waits: number[] = [];
  const r1 = await slots.acquire();
  const r2 = await slots.acquire();
  const p3 = slots.acquire((n) => waits.push(n)).then((r) => (order.push('third'), r));
  const p4 = slots.acquire((n) => waits.push(n)).then((r) => (order.push('fourth'), r));
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(order, [], 'both wait while two builds run');
  assert.deepEqual(waits, [1, 2]);
  r1();
  r1(); // releasing twice frees one slot only
  const r3 = await p3;
  assert.deepEqual(order, ['third']);
  r2();
  (await p4)();
  r3();
  assert.deepEqual(order, ['third', 'fourth']);
});

test('a pushed compose: binds into the repository are refused with file:line:col', async () => {
  const { refuseCommitBinds } = await import('./pipeline.ts');
  const { parseAppSpec } = await import('../core/spec/index.ts');
  const root = '/berth-commit/b1';
  const parse = (text: string) => parseAppSpec(text, { file: 'compose.yaml', env: {}, baseDir: root, appName: 'a', readFile: () => undefined });
  const rel = parse('services:\n  web:\n    build: .\n    volumes: [/srv/data:/d, ./data:/data]\n');
  // A PipelineFailed (a BerthError with its own code), not a bare Error.
  assert.throws(() => refuseCommitBinds('compose.yaml', rel, root),
    (err: Error) => err instanceof PipelineFailed && (err as PipelineFailed).code === 'pipeline_failed' && /^compose\.yaml:4:29: services\.web\.volumes\[1\]: a bind mount of a directory of the repository \(\.\/data\) cannot work for a pushed app/.test(err.message));
  // Absolute sources are the server's to judge (its host-path policy, in the dry run).
  assert.doesNotThrow(() => refuseCommitBinds('compose.yaml', parse('services:\n  web:\n    image: x\n    volumes: [/srv/data:/d]\n'), root));
});
