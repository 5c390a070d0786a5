import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebhookDeliveries } from './webhook-deliveries.ts';

test('a delivery is claimed once: by its id, or by its signed body under any id; per app; remembered across instances', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-deliveries-'));
  try {
    const d = new WebhookDeliveries(dir);
    const body = Buffer.from('{"ref":"refs/heads/main"}');
    assert.equal(await d.claim('shop', { id: 'd1', raw: body, at: 1 }), undefined);
    assert.deepEqual(await d.claim('shop', { id: 'd1', raw: Buffer.from('other'), at: 2 }), { by: 'id', at: 1 });
    assert.deepEqual(await d.claim('shop', { id: 'd2', raw: body, at: 3 }), { by: 'body', at: 1 });
    assert.deepEqual(await d.claim('shop', { raw: body, at: 3 }), { by: 'body', at: 1 });
    assert.equal(await d.claim('blog', { id: 'd1', raw: body, at: 4 }), undefined, 'another app has its own deliveries');
    // Concurrent claims of one delivery: exactly one wins.
    const many = await Promise.all(Array.from({ length: 5 }, () => d.claim('shop', { id: 'd3', raw: Buffer.from('x'), at: 5 })));
    assert.equal(many.filter((r) => r === undefined).length, 1);
    // A restarted server remembers them (and the file is the server's alone).
    assert.deepEqual(await new WebhookDeliveries(dir).claim('shop', { id: 'd3', raw: Buffer.from('y'), at: 6 }), { by: 'id', at: 5 });
    assert.equal(statSync(join(dir, 'shop.deliveries.json')).mode & 0o777, 0o600);
    await assert.rejects(d.claim('../x', { raw: body, at: 1 }), /not an app name/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('only the newest deliveries are kept', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-deliveries-'));
  try {
    const d = new WebhookDeliveries(dir, 3);
    for (let i = 0; i < 5; i++) assert.equal(await d.claim('shop', { id: `d${i}`, raw: Buffer.from(String(i)), at: i }), undefined);
    assert.equal(await d.claim('shop', { id: 'd0', raw: Buffer.from('0'), at: 9 }), undefined, 'the oldest were forgotten');
    assert.ok(await d.claim('shop', { id: 'd4', raw: Buffer.from('n'), at: 9 }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
