import { test } from 'node:test';
import assert from 'node:assert/strict';
import { responseLines } from './client.ts';

/** A response whose body arrives in these chunks. */
function chunked(chunks: string[]): Response {
  const enc = new TextEncoder();
  return new Response(new ReadableStream({
    start(c) {
      for (const x of chunks) c.enqueue(enc.encode(x));
      c.close();
    },
  }));
}

test('responseLines: lines split across chunks are joined, several in one chunk are split; empty and unterminated lines are skipped', async () => {
  const got: string[] = [];
  for await (const l of responseLines(chunked(['{"a":', '1}\n{"b":2}\n\n{"c"', ':3}\n{"partial"']))) got.push(l);
  assert.deepEqual(got, ['{"a":1}', '{"b":2}', '{"c":3}']);
});

test('responseLines with text: empty lines are lines, an unterminated last line is kept', async () => {
  const got: string[] = [];
  for await (const l of responseLines(chunked(['one\n\ntw', 'o\nlast']), { text: true })) got.push(l);
  assert.deepEqual(got, ['one', '', 'two', 'last']);
});

test('responseLines: a multi-byte character split between chunks stays whole', async () => {
  const bytes = new TextEncoder().encode('✔ ok\n');
  const body = new ReadableStream({
    start(c) {
      c.enqueue(bytes.slice(0, 1));
      c.enqueue(bytes.slice(1));
      c.close();
    },
  });
  const got: string[] = [];
  for await (const l of responseLines(new Response(body))) got.push(l);
  assert.deepEqual(got, ['✔ ok']);
});
