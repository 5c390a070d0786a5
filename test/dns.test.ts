/*
 * Berth's DNS server against the real `dig` (dnsutils): A and SRV return exactly the healthy
 * instances over UDP and TCP, NXDOMAIN vs NODATA with SOA, REFUSED out of zone, TC on a large UDP
 * answer with dig's own retry over TCP, garbage in without harm, pipelined TCP queries, and forwarding
 * to a local dnsmasq. Everything listens on 127.0.0.1 ports picked by the kernel.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import dnsPacket from 'dns-packet';
import type { InstanceRecord, ServiceRecord, Store } from '../src/core/store.ts';
import { DnsServer, buildDnsSnapshot, type DnsSnapshot } from '../src/dns/index.ts';

/** The snapshot of a store's running, healthy instances (the server reads the registry, which holds the same). */
function snapshotOf(store: Store, zone: string): DnsSnapshot {
  return buildDnsSnapshot(zone, store.listServices(), store.listInstances().filter((i) => i.state === 'running')
    .map((i) => ({ service: i.service, env: i.env, app: i.app, id: i.id, address: i.address, port: i.port, healthy: i.health === 'healthy' })));
}
import { silentLogger } from '../src/lib/logger.ts';
import { waitFor } from '../src/lib/backoff.ts';

const run = promisify(execFile);

interface Dig {
  status: string;
  flags: string[];
  answer: string[];
  authority: string[];
  additional: string[];
  raw: string;
}

/** Runs dig against 127.0.0.1:port and parses its sections (records as whitespace-normalised lines). */
async function dig(port: number, ...args: string[]): Promise<Dig> {
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args], { timeout: 15_000 });
  const out: Dig = { status: '', flags: [], answer: [], authority: [], additional: [], raw: stdout };
  let section: 'answer' | 'authority' | 'additional' | undefined;
  for (const line of stdout.split('\n')) {
    const st = /status: (\w+)/.exec(line);
    if (st) out.status = st[1]!;
    const fl = /^;; flags: ([^;]*);/.exec(line);
    if (fl) out.flags = fl[1]!.trim().split(/\s+/);
    const sec = /^;; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:/.exec(line);
    if (sec) {
      section = sec[1]!.toLowerCase() as typeof section;
      continue;
    }
    if (line.trim() === '') section = undefined;
    else if (section && !line.startsWith(';')) out[section].push(line.trim().split(/\s+/).join(' '));
  }
  return out;
}

async function digShort(port: number, ...args: string[]): Promise<string[]> {
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', '+short', ...args], { timeout: 15_000 });
  return stdout.split('\n').map((l) => l.trim()).filter(Boolean).sort();
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** A store with just what the snapshot reads: web (3 healthy, 1 unhealthy, 1 starting, 1 stopping), api (none healthy), big (60). */
function fakeStore(): Store {
  const svc = (name: string): ServiceRecord => ({ app: 'shop', env: 'prod', name, replicas: 1, releaseId: 'r', failures: 0, nextStartAt: 0, updatedAt: 0 });
  const inst = (id: string, service: string, port: number, state: InstanceRecord['state'], health: InstanceRecord['health'], address = '127.0.0.1'): InstanceRecord => ({
    id, app: 'shop', env: 'prod', service, releaseId: 'r', host: 'local', address, port, state, health, createdAt: 0,
  });
  const instances = [
    inst('w1', 'web', 20001, 'running', 'healthy'),
    inst('w2', 'web', 20002, 'running', 'healthy'),
    inst('w3', 'web', 20003, 'running', 'healthy', '127.0.0.2'),
    inst('w4', 'web', 20004, 'running', 'unhealthy', '127.0.0.3'),
    inst('w5', 'web', 20005, 'running', 'starting', '127.0.0.4'),
    inst('w6', 'web', 20006, 'stopping', 'healthy', '127.0.0.5'),
    inst('a1', 'api', 20101, 'running', 'unhealthy'),
    ...Array.from({ length: 60 }, (_, k) => inst(`b${String(k).padStart(2, '0')}`, 'big', 30000 + k, 'running', 'healthy')),
  ];
  return { listServices: () => [svc('web'), svc('api'), svc('big')], listInstances: () => instances } as unknown as Store;
}

const WEB_SRV = ['0 10 20001 w1.web.shop.prod.berth.', '0 10 20002 w2.web.shop.prod.berth.', '0 10 20003 w3.web.shop.prod.berth.'];

describe('DnsServer with dig', () => {
  let server: DnsServer;
  let snapshot: DnsSnapshot;
  let port: number;

  before(async () => {
    snapshot = snapshotOf(fakeStore(), 'berth');
    server = new DnsServer({ port: 0, zone: 'berth', ttl: 5, logger: silentLogger, snapshot: () => snapshot });
    await server.start();
    port = server.port;
  });
  after(async () => {
    await server.close();
  });

  it('A returns exactly the healthy instances\' addresses, over UDP and TCP', async () => {
    assert.deepEqual(await digShort(port, 'web.shop.prod.berth', 'A'), ['127.0.0.1', '127.0.0.2']);
    assert.deepEqual(await digShort(port, '+tcp', 'web.shop.prod.berth', 'A'), ['127.0.0.1', '127.0.0.2']);
    const full = await dig(port, 'web.shop.prod.berth', 'A');
    assert.equal(full.status, 'NOERROR');
    assert.ok(full.flags.includes('aa'), `flags ${full.flags}`);
    assert.ok(!full.flags.includes('ra'));
    assert.deepEqual(full.answer.sort(), ['web.shop.prod.berth. 5 IN A 127.0.0.1', 'web.shop.prod.berth. 5 IN A 127.0.0.2']);
  });

  it('SRV returns exactly the healthy instances with their ports, targets resolvable from the additional section', async () => {
    assert.deepEqual(await digShort(port, '_web._tcp.shop.prod.berth', 'SRV'), WEB_SRV);
    assert.deepEqual(await digShort(port, '+tcp', '_web._tcp.shop.prod.berth', 'SRV'), WEB_SRV);
    const full = await dig(port, '_web._tcp.shop.prod.berth', 'SRV');
    assert.deepEqual(full.additional.filter((r) => / A /.test(r)).sort(),
      ['w1.web.shop.prod.berth. 5 IN A 127.0.0.1', 'w2.web.shop.prod.berth. 5 IN A 127.0.0.1', 'w3.web.shop.prod.berth. 5 IN A 127.0.0.2']);
    assert.deepEqual(await digShort(port, 'w3.web.shop.prod.berth', 'A'), ['127.0.0.2']);
  });

  it('NXDOMAIN for an unknown name and NODATA for a known one, both with the SOA', async () => {
    const nx = await dig(port, 'nope.prod.berth', 'A');
    assert.equal(nx.status, 'NXDOMAIN');
    assert.deepEqual(nx.answer, []);
    assert.match(nx.authority.join('\n'), /^prod\.berth\. 5 IN SOA ns\.berth\. hostmaster\.berth\. \d+ 3600 600 86400 5$/);
    const nodata = await dig(port, 'web.shop.prod.berth', 'AAAA');
    assert.equal(nodata.status, 'NOERROR');
    assert.deepEqual(nodata.answer, []);
    assert.equal(nodata.authority.length, 1);
    assert.match(nodata.authority[0]!, / SOA /);
    const none = await dig(port, 'api.shop.prod.berth', 'A');
    assert.equal(none.status, 'NOERROR', 'a service with no healthy instance exists: NODATA');
    assert.deepEqual(none.answer, []);
  });

  it('refuses names outside the zone without offering recursion', async () => {
    const r = await dig(port, 'example.com', 'A');
    assert.equal(r.status, 'REFUSED');
    assert.ok(!r.flags.includes('ra') && !r.flags.includes('aa'), `flags ${r.flags}`);
  });

  it('a large SRV answer over UDP sets TC, and dig\'s retry over TCP gets all 60 instances', async () => {
    const before = server.stats;
    const truncated = await dig(port, '+ignore', '+bufsize=1232', '_big._tcp.shop.prod.berth', 'SRV');
    assert.ok(truncated.flags.includes('tc'), `flags ${truncated.flags}`);
    assert.ok(truncated.answer.length < 60);
    const full = await dig(port, '_big._tcp.shop.prod.berth', 'SRV');
    assert.match(full.raw, /Truncated, retrying in TCP mode/);
    assert.ok(!full.flags.includes('tc'));
    const want = Array.from({ length: 60 }, (_, k) => `_big._tcp.shop.prod.berth. 5 IN SRV 0 10 ${30000 + k} b${String(k).padStart(2, '0')}.big.shop.prod.berth.`);
    assert.deepEqual(full.answer.sort(), want.sort());
    assert.equal(full.additional.filter((r) => / A /.test(r)).length, 60);
    const after = server.stats;
    assert.ok(after.truncated >= before.truncated + 2 && after.tcp > before.tcp, JSON.stringify(after));
  });

  it('answers garbage with FORMERR or silence and keeps answering', async () => {
    const sock = createSocket('udp4');
    const replies: Buffer[] = [];
    sock.on('message', (m) => replies.push(m));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    const send = (b: Buffer) => new Promise<void>((r, j) => sock.send(b, port, '127.0.0.1', (e) => (e ? j(e) : r())));
    await send(Buffer.from([1, 2, 3]));
    await send(Buffer.from('this is not a dns packet at all, not even close'));
    await send(Buffer.from([0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x3f, 0xff, 0xff]));
    const errorsBefore = server.stats.errors;
    for (let k = 0; k < 200; k++) await send(Buffer.from(Array.from({ length: 1 + (k % 60) }, (_, j) => (k * 31 + j * 7) & 0xff)));
    await waitFor(() => replies.some((m) => m.readUInt16BE(0) === 0xabcd), { timeoutMs: 5000, what: 'FORMERR for the bad question' });
    const formerr = dnsPacket.decode(replies.find((m) => m.readUInt16BE(0) === 0xabcd)!) as unknown as { rcode: string };
    assert.equal(formerr.rcode, 'FORMERR');
    sock.close();
    assert.ok(server.stats.errors > errorsBefore);
    assert.deepEqual(await digShort(port, 'web.shop.prod.berth', 'A'), ['127.0.0.1', '127.0.0.2']);
  });

  it('answers several queries on one TCP connection, including after a garbage frame', async () => {
    const frame = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
    const q = (id: number, name: string, type: 'A' | 'SRV') => frame(dnsPacket.encode({ type: 'query', id, questions: [{ name, type }] }));
    const sock = connect({ port, host: '127.0.0.1' });
    await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
    let buf = Buffer.alloc(0);
    const got: Array<{ id: number; rcode: string; answers: number }> = [];
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const p = dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))) as unknown as { id: number; rcode: string; answers: unknown[] };
        got.push({ id: p.id, rcode: p.rcode, answers: p.answers.length });
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
    });
    // One write carrying three queries, split oddly across two more writes for the last two.
    const garbage = frame(Buffer.from([0x00, 0x07, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x05, 0x61]));
    sock.write(Buffer.concat([q(1, 'web.shop.prod.berth', 'A'), garbage, q(3, '_big._tcp.shop.prod.berth', 'SRV')]));
    const tail = Buffer.concat([q(4, 'nope.prod.berth', 'A'), q(5, 'w1.web.shop.prod.berth', 'A')]);
    sock.write(tail.subarray(0, 5));
    await new Promise((r) => setTimeout(r, 20));
    sock.write(tail.subarray(5));
    await waitFor(() => got.length === 5, { timeoutMs: 5000, what: '5 TCP answers' });
    sock.destroy();
    assert.deepEqual(got, [
      { id: 1, rcode: 'NOERROR', answers: 2 },
      { id: 7, rcode: 'FORMERR', answers: 0 },
      { id: 3, rcode: 'NOERROR', answers: 60 },
      { id: 4, rcode: 'NXDOMAIN', answers: 0 },
      { id: 5, rcode: 'NOERROR', answers: 1 },
    ]);
  });

  it('follows a new snapshot on the next query', async () => {
    const old = snapshot;
    try {
      snapshot = { zone: 'berth', serial: 2, services: new Map([['web.shop.prod', [{ instance: 'n1', address: '127.0.0.9', port: 1 }]]]) };
      assert.deepEqual(await digShort(port, 'web.shop.prod.berth', 'A'), ['127.0.0.9']);
    } finally {
      snapshot = old;
    }
    assert.deepEqual(await digShort(port, 'web.shop.prod.berth', 'A'), ['127.0.0.1', '127.0.0.2']);
  });
});

describe('DnsServer start and failure modes', () => {
  it('a port in use is a Conflict that says what to do; an upstream pointing at itself is refused', async () => {
    const snapshot = snapshotOf(fakeStore(), 'berth');
    const first = new DnsServer({ port: 0, zone: 'berth', logger: silentLogger, snapshot: () => snapshot });
    await first.start();
    try {
      const second = new DnsServer({ port: first.port, zone: 'berth', logger: silentLogger, snapshot: () => snapshot });
      await assert.rejects(second.start(), (e: Error & { code?: string }) => e.code === 'conflict' && /already in use/.test(e.message));
    } finally {
      await first.close();
    }
    const port = await freePort();
    const loop = new DnsServer({ port, zone: 'berth', logger: silentLogger, snapshot: () => snapshot, upstream: { address: '127.0.0.1', port } });
    await assert.rejects(loop.start(), /would loop/);
    await assert.rejects(new DnsServer({ port: 0, zone: 'other', logger: silentLogger, snapshot: () => snapshot }).start(), /differs from the server's zone/);
  });

  it('a failing snapshot gives SERVFAIL, and answers resume when it recovers', async () => {
    const good = snapshotOf(fakeStore(), 'berth');
    let broken = false;
    const server = new DnsServer({ port: 0, zone: 'berth', logger: silentLogger, snapshot: () => {
      if (broken) throw new Error('store closed');
      return good;
    } });
    await server.start();
    try {
      broken = true;
      assert.equal((await dig(server.port, 'web.shop.prod.berth', 'A')).status, 'SERVFAIL');
      assert.equal((await dig(server.port, '+tcp', 'web.shop.prod.berth', 'A')).status, 'SERVFAIL');
      broken = false;
      assert.deepEqual(await digShort(server.port, 'web.shop.prod.berth', 'A'), ['127.0.0.1', '127.0.0.2']);
    } finally {
      await server.close();
    }
  });
});

describe('DnsServer forwarding to an upstream (a local dnsmasq)', () => {
  let dir: string;
  let dnsmasq: ChildProcess;
  let upstreamPort: number;
  let server: DnsServer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-dns-'));
    await writeFile(join(dir, 'hosts'), '127.0.0.77 outside.test\n');
    upstreamPort = await freePort();
    dnsmasq = spawn('dnsmasq', ['--no-daemon', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--addn-hosts=${join(dir, 'hosts')}`,
      `--port=${upstreamPort}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--user=root', '--pid-file='], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    dnsmasq.stderr!.on('data', (c) => (stderr += String(c)));
    await waitFor(async () => (await digShort(upstreamPort, 'outside.test', 'A')).includes('127.0.0.77'),
      { timeoutMs: 10_000, what: `dnsmasq answering (${stderr})` });
    const snapshot = snapshotOf(fakeStore(), 'berth');
    server = new DnsServer({ port: 0, zone: 'berth', logger: silentLogger, snapshot: () => snapshot, upstream: { address: '127.0.0.1', port: upstreamPort, timeoutMs: 1000 } });
    await server.start();
  });
  after(async () => {
    await server?.close();
    if (dnsmasq?.pid && dnsmasq.exitCode === null) {
      dnsmasq.kill('SIGTERM');
      await new Promise((r) => dnsmasq.once('exit', r));
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('relays out-of-zone answers over UDP and TCP and still answers its own zone', async () => {
    assert.deepEqual(await digShort(server.port, 'outside.test', 'A'), ['127.0.0.77']);
    assert.deepEqual(await digShort(server.port, '+tcp', 'outside.test', 'A'), ['127.0.0.77']);
    assert.deepEqual(await digShort(server.port, 'web.shop.prod.berth', 'A'), ['127.0.0.1', '127.0.0.2']);
    assert.ok(server.stats.forwarded >= 2);
  });

  it('answers SERVFAIL when the upstream does not answer', async () => {
    const deadPort = await freePort();
    const snapshot = snapshotOf(fakeStore(), 'berth');
    const lonely = new DnsServer({ port: 0, zone: 'berth', logger: silentLogger, snapshot: () => snapshot, upstream: { address: '127.0.0.1', port: deadPort, timeoutMs: 300 } });
    await lonely.start();
    try {
      assert.equal((await dig(lonely.port, 'outside.test', 'A')).status, 'SERVFAIL');
    } finally {
      await lonely.close();
    }
  });
});
