import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, isIPv4, isIPv6, type Server as TcpServer, type Socket as TcpSocket } from 'node:net';
import dnsPacket from 'dns-packet';
import type { Packet } from 'dns-packet';
import type { Logger } from '../core/ports.ts';
import { Conflict, Forbidden, InvalidInput } from '../core/errors.ts';
import { RCODE, answerQuery, answerUndecodable, countsExceedLength, errorResponse, isInZone, type AnswerOptions } from './answer.ts';
import { ResponseCache } from './response-cache.ts';
import { normalizeZone, type DnsSnapshot } from './snapshot.ts';

/** A resolver that out-of-zone queries are forwarded to (raw, over UDP; over TCP when the client used TCP and the answer was truncated). */
export interface DnsUpstream {
  address: string;
  port: number;
  /** Default 2000 ms; on timeout the client gets SERVFAIL. */
  timeoutMs?: number;
}

export interface DnsServerOptions {
  /** Listen address (UDP and TCP). Default 127.0.0.1: answers name the host's instances, so keep it local unless asked. */
  host?: string;
  /** UDP and TCP port; 0 picks a free port (read it from `port` after start). */
  port: number;
  /** Zone apex, e.g. `berth`. Must equal the snapshots' zone. */
  zone: string;
  /** TTL of answers and of negative caching, seconds. Default 5. */
  ttl?: number;
  /** Forward names outside the zone here; without it they are REFUSED. */
  upstream?: DnsUpstream;
  logger: Logger;
  /** Called once per query; must be cheap (the caller caches a snapshot and rebuilds it on change). */
  snapshot: () => DnsSnapshot;
  /** A TCP connection without a complete query for this long is closed. Default 10 000 ms. */
  tcpIdleTimeoutMs?: number;
  /** Default 256. */
  maxTcpConnections?: number;
}

export interface DnsServerStats {
  /** Every packet or TCP frame received (including undecodable ones). */
  queries: number;
  udp: number;
  tcp: number;
  /** Undecodable packets, exceptions while answering, forwarding failures, socket errors. */
  errors: number;
  /** UDP responses sent with TC set. */
  truncated: number;
  forwarded: number;
  /** Queries answered from the response cache (a subset of `queries`). */
  cacheHits: number;
}

/** A TCP peer may pipeline queries; stop reading from it while this much is waiting to be written. */
const TCP_WRITE_HIGH_WATER = 256 * 1024;

/**
 * Berth's authoritative DNS server for the zone (see answer.ts for the names it answers): UDP and
 * TCP on the same port, answers computed per query from `snapshot()`. Out-of-zone names are REFUSED,
 * or forwarded to `upstream` when one is configured (RA stays unset: Berth does not recurse itself).
 */
export class DnsServer {
  private readonly host: string;
  private readonly zone: string;
  private readonly ttl: number;
  private readonly idleMs: number;
  private readonly log: Logger;
  private udp?: UdpSocket;
  private tcp?: TcpServer;
  private readonly conns = new Set<TcpSocket>();
  private boundPort = 0;
  private closed = false;
  private readonly counters: Omit<DnsServerStats, 'cacheHits'> = { queries: 0, udp: 0, tcp: 0, errors: 0, truncated: 0, forwarded: 0 };
  private readonly answerOpts: { udp: AnswerOptions; tcp: AnswerOptions };
  private readonly cache = new ResponseCache();

  constructor(private readonly opts: DnsServerOptions) {
    this.host = opts.host ?? '127.0.0.1';
    this.zone = normalizeZone(opts.zone);
    if (!this.zone) throw new InvalidInput('DNS zone is empty: set it to a name such as "berth"');
    this.ttl = opts.ttl ?? 5;
    if (!Number.isInteger(this.ttl) || this.ttl < 0) throw new InvalidInput(`DNS ttl must be a whole number of seconds ≥ 0, got ${opts.ttl}`);
    this.idleMs = opts.tcpIdleTimeoutMs ?? 10_000;
    this.log = opts.logger.child({ component: 'dns' });
    const nsAddress = isIPv4(this.host) && this.host !== '0.0.0.0' ? this.host : '127.0.0.1';
    this.answerOpts = {
      udp: { ttl: this.ttl, transport: 'udp', nsAddress },
      tcp: { ttl: this.ttl, transport: 'tcp', nsAddress },
    };
  }

  /** The bound port (after start). */
  get port(): number {
    return this.boundPort;
  }

  /** Counters since start (a copy). */
  get stats(): DnsServerStats {
    return { ...this.counters, cacheHits: this.cache.hits };
  }

  /** Binds UDP and TCP on the same port. With port 0, retries until both get the same free port. */
  async start(): Promise<void> {
    const snapZone = this.opts.snapshot().zone;
    if (normalizeZone(snapZone) !== this.zone) {
      throw new InvalidInput(`DNS snapshot zone "${snapZone}" differs from the server's zone "${this.zone}": build both from the same setting`);
    }
    for (let attempt = 0; ; attempt++) {
      const udp = await this.bindUdp(this.opts.port).catch((err: unknown) => {
        throw portError(err, this.host, this.opts.port);
      });
      const port = udp.address().port;
      try {
        this.tcp = await this.listenTcp(port);
        const up = this.opts.upstream;
        if (up && up.port === port && (up.address === this.host || this.host === '0.0.0.0' || this.host === '::')) {
          await new Promise<void>((r) => this.tcp!.close(() => r()));
          this.tcp = undefined;
          throw new InvalidInput(`DNS upstream ${up.address}:${up.port} is this server itself: forwarding would loop; point it at another resolver`);
        }
        this.udp = udp;
        this.boundPort = port;
        break;
      } catch (err) {
        udp.close();
        if (this.opts.port !== 0 || attempt >= 10 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw portError(err, this.host, port);
      }
    }
    this.log.info({ host: this.host, port: this.boundPort, zone: this.zone, upstream: this.opts.upstream }, 'dns server listening');
  }

  /** Stops listening and closes open TCP connections. */
  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.conns) c.destroy();
    this.conns.clear();
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    await Promise.all([
      udp ? new Promise<void>((r) => udp.close(() => r())) : undefined,
      tcp ? new Promise<void>((r) => tcp.close(() => r())) : undefined,
    ]);
  }

  // --- UDP ------------------------------------------------------------------------------------

  private bindUdp(port: number): Promise<UdpSocket> {
    return new Promise((resolve, reject) => {
      // Replies go to the sender's IP literal: a synchronous lookup saves dns.lookup's nextTick per packet.
      const family = isIPv6(this.host) ? 6 : 4;
      const sock = createSocket({ type: family === 6 ? 'udp6' : 'udp4', lookup: (address, _opts, cb) => cb(null, address, family) });
      const onError = (err: Error) => {
        sock.close();
        reject(err);
      };
      sock.once('error', onError);
      sock.bind(port, this.host, () => {
        sock.off('error', onError);
        sock.on('error', (err) => {
          this.counters.errors++;
          this.log.warn({ err: err.message }, 'dns udp socket error');
        });
        sock.on('message', (msg, rinfo) => this.onUdp(sock, msg, rinfo));
        resolve(sock);
      });
    });
  }

  private onUdp(sock: UdpSocket, msg: Buffer, rinfo: RemoteInfo): void {
    this.counters.queries++;
    this.counters.udp++;
    const r = this.respond(msg, 'udp');
    if (r === undefined) return;
    if (r instanceof Promise) r.then((out) => this.sendUdp(sock, out, rinfo), this.onForwardFailed);
    else this.sendUdp(sock, r, rinfo);
  }

  private sendUdp(sock: UdpSocket, out: Buffer | undefined, rinfo: RemoteInfo): void {
    // No callback: with one, node schedules a nextTick per datagram even when the send completed
    // synchronously (the usual case). A lost UDP reply is the client's to retry, as with any UDP loss.
    if (!out || this.closed) return;
    try {
      sock.send(out, rinfo.port, rinfo.address);
    } catch {
      // e.g. a spoofed source port 0: node throws synchronously; never let that reach the event loop.
      this.counters.errors++;
    }
  }

  private readonly onForwardFailed = (): void => {
    this.counters.errors++;
  };

  // --- TCP ------------------------------------------------------------------------------------

  private listenTcp(port: number): Promise<TcpServer> {
    return new Promise((resolve, reject) => {
      const srv = createServer((sock) => this.onTcpConnection(sock));
      srv.maxConnections = this.opts.maxTcpConnections ?? 256;
      srv.once('error', reject);
      srv.listen({ port, host: this.host, exclusive: true }, () => {
        srv.off('error', reject);
        srv.on('error', (err) => this.log.warn({ err: err.message }, 'dns tcp server error'));
        resolve(srv);
      });
    });
  }

  private onTcpConnection(sock: TcpSocket): void {
    if (this.closed) {
      sock.destroy();
      return;
    }
    this.conns.add(sock);
    sock.setNoDelay(true);
    sock.setTimeout(this.idleMs, () => sock.destroy());
    sock.on('close', () => this.conns.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.on('drain', () => sock.resume());
    let buf: Buffer = Buffer.alloc(0);
    // Responses are written in query order, even when one of them waits for the upstream.
    let chain: Promise<void> = Promise.resolve();
    const write = (out: Buffer | undefined) => {
      if (!out || sock.destroyed) return;
      const len = Buffer.allocUnsafe(2);
      len.writeUInt16BE(out.length);
      sock.write(Buffer.concat([len, out]));
      if (sock.writableLength > TCP_WRITE_HIGH_WATER) sock.pause();
    };
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        this.counters.queries++;
        this.counters.tcp++;
        const r = this.respond(msg, 'tcp');
        if (r instanceof Promise) {
          chain = chain.then(() => r).then(write, () => void this.counters.errors++);
        } else {
          chain = chain.then(() => write(r));
        }
      }
    });
  }

  // --- answering --------------------------------------------------------------------------------

  /** The encoded response to one message, or undefined to send nothing. Never throws. */
  private respond(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined | Promise<Buffer | undefined> {
    // Responses (QR set) and runts get nothing; cached answers skip decoding altogether.
    if (msg.length >= 12 && msg[2]! & 0x80) return undefined;
    let snapshot: DnsSnapshot;
    try {
      snapshot = this.opts.snapshot();
    } catch (err) {
      this.counters.errors++;
      this.log.warn({ err: (err as Error).message }, 'dns snapshot unavailable');
      const r = answerUndecodable(msg);
      if (r) r.flags = ((r.flags ?? 0) & ~0xf) | RCODE.SERVFAIL;
      return r ? dnsPacket.encode(r) : undefined;
    }
    const hit = this.cache.get(msg, transport, snapshot);
    if (hit) return hit;
    let query: Packet;
    try {
      if (countsExceedLength(msg)) throw new Error('the header claims more than the message holds');
      query = dnsPacket.decode(msg);
    } catch {
      this.counters.errors++;
      const r = answerUndecodable(msg);
      return r ? dnsPacket.encode(r) : undefined;
    }
    if (query.type === 'response') return undefined;
    try {
      const q = query.questions?.[0];
      if (this.opts.upstream && q && query.questions?.length === 1 && !isInZone(q.name, this.zone)) {
        return this.forward(msg, query, transport);
      }
      const resp = answerQuery(query, snapshot, this.answerOpts[transport]);
      if ((resp.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE) this.counters.truncated++;
      const out = echoQuestion(msg, dnsPacket.encode(resp));
      this.cache.put(msg, transport, snapshot, resp, out);
      return out;
    } catch (err) {
      this.counters.errors++;
      this.log.debug({ err: (err as Error).message }, 'dns query failed');
      try {
        return dnsPacket.encode(errorResponse(query, RCODE.SERVFAIL));
      } catch {
        return undefined;
      }
    }
  }

  private async forward(msg: Buffer, query: Packet, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    const up = this.opts.upstream!;
    const timeoutMs = up.timeoutMs ?? 2000;
    this.counters.forwarded++;
    try {
      let resp = await forwardUdp(msg, up, timeoutMs);
      if (transport === 'tcp' && resp.length >= 4 && resp[2]! & 0x02) resp = await forwardTcp(msg, up, timeoutMs);
      return resp;
    } catch (err) {
      this.counters.errors++;
      this.log.debug({ err: (err as Error).message, upstream: up }, 'dns forward failed');
      return dnsPacket.encode(errorResponse(query, RCODE.SERVFAIL));
    }
  }
}

/** EADDRINUSE/EACCES as a message that says what to do; anything else as it is. */
function portError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new Conflict(`DNS port ${port} on ${host} is already in use (UDP or TCP): stop the other server or choose another DNS port`, { cause: err });
  if (code === 'EACCES') return new Forbidden(`not allowed to listen on DNS port ${port} on ${host}: ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port ≥ 1024`, { cause: err });
  if (code === 'EADDRNOTAVAIL') return new InvalidInput(`DNS listen address ${host} is not an address of this host`, { cause: err });
  return err;
}

/**
 * Copies the query's question bytes over the response's, so the echo is byte-exact (case, and
 * classes dns-packet cannot name). Only when both carry one question of the same wire length.
 */
function echoQuestion(query: Buffer, resp: Buffer): Buffer {
  if (query.length < 12 || resp.length < 12 || query.readUInt16BE(4) !== 1 || resp.readUInt16BE(4) !== 1) return resp;
  const qEnd = questionEnd(query);
  const rEnd = questionEnd(resp);
  if (qEnd !== undefined && qEnd === rEnd) query.copy(resp, 12, 12, qEnd);
  return resp;
}

/** Offset just past the first question (uncompressed name + type + class), if well-formed. */
function questionEnd(buf: Buffer): number | undefined {
  let off = 12;
  for (;;) {
    if (off >= buf.length) return undefined;
    const len = buf[off]!;
    if (len === 0) break;
    if (len & 0xc0) return undefined;
    off += len + 1;
  }
  off += 1 + 4;
  return off <= buf.length ? off : undefined;
}

function forwardUdp(msg: Buffer, up: DnsUpstream, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(isIPv6(up.address) ? 'udp6' : 'udp4');
    const id = msg.readUInt16BE(0);
    const done = (err: Error | undefined, out?: Buffer) => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(out!);
    };
    const timer = setTimeout(() => done(new Error(`upstream ${up.address}:${up.port} did not answer within ${timeoutMs} ms`)), timeoutMs);
    sock.on('error', (err) => done(err));
    sock.on('message', (m, r) => {
      // Only the upstream's answer to this query (the socket is ours alone, on a random port).
      if (r.port === up.port && m.length >= 12 && m.readUInt16BE(0) === id) done(undefined, m);
    });
    sock.send(msg, up.port, up.address, (err) => {
      if (err) done(err);
    });
  });
}

function forwardTcp(msg: Buffer, up: DnsUpstream, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: up.address, port: up.port });
    let buf = Buffer.alloc(0);
    sock.setTimeout(timeoutMs, () => {
      sock.destroy();
      reject(new Error(`upstream ${up.address}:${up.port} (tcp) did not answer within ${timeoutMs} ms`));
    });
    sock.on('error', reject);
    sock.on('connect', () => {
      const len = Buffer.allocUnsafe(2);
      len.writeUInt16BE(msg.length);
      sock.write(Buffer.concat([len, msg]));
    });
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        sock.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    sock.on('end', () => reject(new Error(`upstream ${up.address}:${up.port} closed the TCP connection without an answer`)));
  });
}
