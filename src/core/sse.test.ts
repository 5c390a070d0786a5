import { test } from 'node:test';
import assert from 'node:assert/strict';
import { takeSseFrames } from './sse.ts';

test('takeSseFrames: complete messages with their event, id and data; an unfinished one is kept; messages without data are skipped', () => {
  const { frames, rest } = takeSseFrames('event: state\nid: 7\ndata: {"a":1}\n\n: keep-alive\n\ndata: "plain"\n\nevent: done\ndata: {"b"');
  assert.deepEqual(frames, [{ event: 'state', id: 7, data: '{"a":1}' }, { event: 'message', data: '"plain"' }]);
  assert.equal(rest, 'event: done\ndata: {"b"');
  const next = takeSseFrames(rest + ':2}\n\n');
  assert.deepEqual(next, { frames: [{ event: 'done', data: '{"b":2}' }], rest: '' });
});
