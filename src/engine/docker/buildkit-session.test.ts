import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stringField, varint } from './buildkit-session.ts';

test('varint: protobuf base-128 lengths', () => {
  assert.deepEqual([...varint(0)], [0]);
  assert.deepEqual([...varint(127)], [127]);
  assert.deepEqual([...varint(300)], [0xac, 0x02]);
  assert.deepEqual([...varint(512 * 1024)], [0x80, 0x80, 0x20]);
});

test('stringField: the secret ID of a GetSecretRequest, past other fields; undefined for a truncated or absent field', () => {
  const id = Buffer.from('npm_token');
  // field 2 (annotations map entry, length-delimited) first, then field 1 (ID), then a varint field 3.
  const entry = Buffer.from([0x0a, 0x01, 0x6b, 0x12, 0x01, 0x76]);
  const msg = Buffer.concat([Buffer.from([0x12, entry.length]), entry, Buffer.from([0x0a, id.length]), id, Buffer.from([0x18, 0x96, 0x01])]);
  assert.equal(stringField(msg, 1), 'npm_token');
  assert.equal(stringField(Buffer.from([0x18, 0x01]), 1), undefined);
  assert.equal(stringField(Buffer.from([0x0a, 0x80]), 1), undefined, 'a truncated varint');
  assert.equal(stringField(Buffer.alloc(0), 1), undefined);
  const long = Buffer.alloc(300, 0x61);
  assert.equal(stringField(Buffer.concat([Buffer.from([0x0a]), varint(300), long]), 1), 'a'.repeat(300));
});
