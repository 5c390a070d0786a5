import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EngineUnavailable } from '../../core/errors.ts';
import { toBerthError } from './docker-errors.ts';

test('an unreachable local engine says how to start it', () => {
  const e = toBerthError(Object.assign(new Error('connect ENOENT /var/run/docker.sock'), { code: 'ENOENT' }), '/var/run/docker.sock', 'list');
  assert.ok(e instanceof EngineUnavailable);
  assert.match(e.message, /^The Docker Engine at \/var\/run\/docker\.sock is not reachable \(ENOENT\): start it with `bash scripts\/dockerd\.sh start`/);
});

test('an unreachable remote engine (tcp://, cluster mode) names the host checks, not the local start script', () => {
  const e = toBerthError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'tcp://10.0.0.5:2376', 'logs');
  assert.ok(e instanceof EngineUnavailable);
  assert.match(e.message, /^The Docker Engine at tcp:\/\/10\.0\.0\.5:2376 is not reachable \(ECONNRESET\): check that the host is up, that its dockerd listens there with Berth's TLS material/);
  assert.doesNotMatch(e.message, /dockerd\.sh/);
});
