import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InstanceRecord } from '../core/store.ts';
import type { CutTarget } from '../ingress/index.ts';
import { cutUnreachable, recordEdgeCuts, remoteUnreachable } from './ingress-wiring.ts';

const silent = { debug() {}, info() {}, warn() {}, error() {}, child() { return silent; } } as never;

function inst(host: string, address: string): InstanceRecord {
  return { id: 'i1', app: 'a', env: 'prod', service: 'web', releaseId: 'r1', host, address, port: 20300, state: 'running', health: 'unhealthy', createdAt: 0 };
}

test('cutUnreachable cuts only connections to an instance of another host, and records how many', async () => {
  const calls: CutTarget[][] = [];
  const events: Array<{ kind: string; message: string }> = [];
  const store = { addEvent: (e: { kind: string; message: string }) => void events.push(e) } as never;
  const cut = async (t: readonly CutTarget[]) => { calls.push([...t]); return 2; };
  // This host is alive: its instances (one-host installs, loopback ports, app-network bridge addresses) are never cut.
  cutUnreachable(inst('m1', '172.18.0.5'), 'm1', store, silent, cut);
  cutUnreachable(inst('h2', '127.0.0.1'), 'm1', store, silent, cut);
  cutUnreachable(inst('h2', ''), 'm1', store, silent, cut);
  cutUnreachable(inst('h2', '10.77.6.13'), 'm1', store, silent, cut);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, [[{ address: '10.77.6.13', port: 20300 }]]);
  assert.equal(events.length, 1);
  assert.equal(events[0]!.kind, 'ingress.cut');
  assert.match(events[0]!.message, /10\.77\.6\.13:20300\): 2 connections to it cut/);
});

test('remoteUnreachable: what edge hosts are told to cut is what this host cuts (another host\'s instance, not loopback)', () => {
  assert.deepEqual([inst('m1', '172.18.0.5'), inst('h2', '127.0.0.1'), inst('h2', '::1'), inst('h2', ''), inst('h2', '10.77.6.13')].map((i) => remoteUnreachable(i, 'm1')),
    [false, false, false, false, true]);
});

test('recordEdgeCuts: an edge host\'s reported cut is an ingress.cut event naming the host and the instance', () => {
  const events: Array<{ kind: string; message: string; instance: string }> = [];
  let listener: ((host: string, c: { address: string; port: number; connections: number }, owner: unknown) => void) | undefined;
  recordEdgeCuts({ onCut: (fn) => void (listener = fn) }, { addEvent: (e: { kind: string; message: string; instance: string }) => void events.push(e) } as never);
  listener!('edge-1', { address: '10.77.6.13', port: 20300, connections: 1 }, inst('h2', '10.77.6.13'));
  assert.deepEqual(events.map((e) => [e.kind, e.instance]), [['ingress.cut', 'i1']]);
  assert.match(events[0]!.message, /^edge host edge-1: instance i1 is unreachable \(10\.77\.6\.13:20300\): 1 connection to it cut/);
});
