import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyPullError, pullDecision, pullFailureMessage, registryHostProblem, registryOf } from './image-ref.ts';

test('registryOf: Docker\'s rule for which part of a reference is a registry', () => {
  const cases: [string, string][] = [
    ['postgres:16', 'docker.io'], ['library/redis', 'docker.io'], ['berth/node:20', 'docker.io'],
    ['127.0.0.1:5000/x/y:1', '127.0.0.1:5000'], ['ghcr.io/o/r@sha256:' + 'a'.repeat(64), 'ghcr.io'], ['localhost/x', 'localhost'],
    ['Registry.Example.com/a/b', 'registry.example.com'],
  ];
  for (const [ref, want] of cases) assert.equal(registryOf(ref), want, ref);
});

test('registryHostProblem: hosts with an optional port; schemes and paths refused with what to write', () => {
  for (const ok of ['registry.example.com', '127.0.0.1:5000', 'localhost:5001', 'ghcr.io']) assert.equal(registryHostProblem(ok), undefined, ok);
  assert.match(registryHostProblem('https://ghcr.io/v2')!, /without a scheme: ghcr\.io/);
  assert.match(registryHostProblem('a b')!, /a registry host such as/);
  assert.match(registryHostProblem('h:99999')!, /port 99999 is not a port/);
  assert.match(registryHostProblem('')!, /a registry host/);
});

test('pull failures are told apart: auth, not found, unreachable', () => {
  assert.equal(classifyPullError('pulling x failed: Head "http://127.0.0.1:5001/v2/x/manifests/1": no basic auth credentials'), 'auth');
  assert.equal(classifyPullError('unauthorized: authentication required'), 'auth');
  assert.equal(classifyPullError('manifest for 127.0.0.1:5001/x/y:2 not found: manifest unknown: manifest unknown'), 'not_found');
  assert.equal(classifyPullError('Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused'), 'unreachable');
  assert.equal(classifyPullError('something else'), 'other');
  const m = pullFailureMessage('web', '127.0.0.1:5001/x/y:1', 'pulling 127.0.0.1:5001/x/y:1 failed: no basic auth credentials', false);
  assert.equal(m, 'pull of 127.0.0.1:5001/x/y:1 (service web) from registry 127.0.0.1:5001 failed: authentication: no basic auth credentials: ' +
    'Berth has no credentials for 127.0.0.1:5001: run `berth registry login 127.0.0.1:5001`');
  assert.match(pullFailureMessage('web', 'a.io/x:1', 'unauthorized', true), /the credentials Berth has for a\.io were refused/);
});

test('pull_policy: when to pull', () => {
  assert.deepEqual(pullDecision(undefined), { pull: 'if-missing' });
  assert.deepEqual(pullDecision('if_not_present'), { pull: 'if-missing' });
  assert.deepEqual(pullDecision('always'), { pull: 'always' });
  assert.deepEqual(pullDecision('refresh'), { pull: 'always' });
  assert.deepEqual(pullDecision('never'), { pull: 'never' });
  assert.deepEqual(pullDecision('daily'), { pull: 'if-older', maxAgeMs: 86_400_000 });
  assert.deepEqual(pullDecision('every_12h'), { pull: 'if-older', maxAgeMs: 43_200_000 });
  assert.deepEqual(pullDecision('every_90'), { pull: 'if-older', maxAgeMs: 90_000 });
  assert.deepEqual(pullDecision('every_1h30m'), { pull: 'if-older', maxAgeMs: 5_400_000 });
});

test('pullDecision: every_<duration> is read by the one duration parser (weeks, days, fractions); a duration it refuses is if-missing', () => {
  assert.deepEqual(pullDecision('every_1w'), { pull: 'if-older', maxAgeMs: 604_800_000 });
  assert.deepEqual(pullDecision('every_2d12h'), { pull: 'if-older', maxAgeMs: 216_000_000 });
  assert.deepEqual(pullDecision('every_1.5h'), { pull: 'if-older', maxAgeMs: 5_400_000 });
  assert.deepEqual(pullDecision('every_soon'), { pull: 'if-missing' });
});
