/**
 * Debian's `pebble` (an ACME test CA) for tests and benchmarks, with a tiny resolver it asks for
 * names: A 127.0.0.1 for every name but `nxdomain-*` (NXDOMAIN), no data for other types. Pebble
 * validates HTTP-01 on `httpPort` of 127.0.0.1 (the ingress), so no traffic leaves loopback. Its
 * listener's CA (for BERTH_ACME_CA_FILE) and its issuing root (for a client that verifies what it
 * issued) are returned; nothing here touches the system's trust store.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { freePort } from './harness.ts';
import { makeCa, makeLeaf } from './certs.ts';
import { waitFor } from '../../src/lib/backoff.ts';

/** A resolver answering every A query with `address` (default 127.0.0.1; an edge host's address in the edge e2e). */
export async function testResolver(address = '127.0.0.1'): Promise<{ port: number; sock: Socket }> {
  const sock = createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const question = q.questions?.[0];
    if (!question) return;
    const nx = question.name.toLowerCase().startsWith('nxdomain-');
    const answers = !nx && question.type === 'A' ? [{ type: 'A' as const, name: question.name, ttl: 1, data: address }] : [];
    const out = dnsPacket.encode({ id: q.id, type: 'response', flags: dnsPacket.AUTHORITATIVE_ANSWER | (nx ? 3 : 0), questions: q.questions, answers });
    sock.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return { port: sock.address().port, sock };
}

export interface Pebble {
  /** For BERTH_ACME_DIRECTORY. */
  directoryUrl: string;
  /** PEM file of the CA of pebble's own listener: for BERTH_ACME_CA_FILE. */
  listenerCaFile: string;
  /** Pebble's issuing root (PEM): what a browser would trust. */
  root: string;
  log(): string;
  stop(): void;
}

/**
 * Starts pebble (files in `dir`) validating HTTP-01 on `address` (default 127.0.0.1):`httpPort`;
 * every order validates for real, at once.
 */
export async function startPebble(dir: string, httpPort: number, address?: string): Promise<Pebble> {
  const resolver = await testResolver(address);
  const listenerCa = await makeCa('Pebble listener test CA');
  const listener = await makeLeaf(listenerCa, ['127.0.0.1', 'localhost']);
  const listenerCaFile = join(dir, 'pebble-listener-ca.pem');
  await writeFile(listenerCaFile, listenerCa.certPem);
  await writeFile(join(dir, 'pebble.crt'), listener.certPem);
  await writeFile(join(dir, 'pebble.key'), listener.keyPem);
  const [acmePort, mgmtPort, tlsAlpnPort] = [await freePort(), await freePort(), await freePort()];
  await writeFile(join(dir, 'pebble.json'), JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`, managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: join(dir, 'pebble.crt'), privateKey: join(dir, 'pebble.key'),
      httpPort, tlsPort: tlsAlpnPort, ocspResponderURL: '', externalAccountBindingRequired: false,
    },
  }));
  let log = '';
  // No authorization reuse (each order is validated), no random sleeps, no rejected nonces.
  const proc: ChildProcess = spawn('pebble', ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${resolver.port}`], {
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_AUTHZREUSE: '0', PEBBLE_WFE_NONCEREJECT: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.on('error', (err) => (log += `\nspawn failed: ${err.message} (install Debian's pebble: scripts/install.sh)`));
  for (const s of [proc.stdout!, proc.stderr!]) s.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-20_000)));
  const stop = () => {
    if (proc.exitCode === null) proc.kill('SIGTERM');
    resolver.sock.close();
  };
  const mgmt = (path: string) => new Promise<string>((res, rej) => {
    const req = httpsRequest({ host: '127.0.0.1', port: mgmtPort, path, ca: listenerCa.certPem, agent: false, timeout: 2000 }, (r) => {
      let b = '';
      r.on('data', (c: Buffer) => (b += c.toString()));
      r.on('end', () => (r.statusCode === 200 ? res(b) : rej(new Error(`HTTP ${r.statusCode}`))));
    });
    req.on('error', rej);
    req.end();
  });
  try {
    const root = await waitFor(async () => (proc.exitCode === null ? mgmt('/roots/0').catch(() => undefined) : undefined), { timeoutMs: 20_000, intervalMs: 100, what: 'pebble to listen' });
    return { directoryUrl: `https://127.0.0.1:${acmePort}/dir`, listenerCaFile, root, log: () => log, stop };
  } catch (err) {
    stop();
    throw new Error(`${(err as Error).message}\n${log}`);
  }
}
