import http from 'node:http';
import http2 from 'node:http2';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';

/**
 * A BuildKit client session over dockerd's `POST /session` (what `docker build --secret` opens):
 * the connection is upgraded to HTTP/2 (h2c) and dockerd's BuildKit becomes a gRPC *client* of ours.
 * We serve two methods, dependency-free: the health check BuildKit polls every second (a session
 * that does not answer it is closed), and `Secrets/GetSecret`, which hands a `RUN
 * --mount=type=secret,id=ID` step the value of ID from memory. Values never touch a disk, a log or
 * an error message; the build names the session with the `session` query parameter.
 */
export interface BuildkitSession {
  readonly id: string;
  /** Ends the session (after the build). Idempotent. */
  close(): void;
}

const HEALTH_CHECK = '/grpc.health.v1.Health/Check';
const GET_SECRET = '/moby.buildkit.secrets.v1.Secrets/GetSecret';

export function openSecretsSession(socketPath: string, secrets: ReadonlyMap<string, string>): Promise<BuildkitSession> {
  const id = randomUUID();
  return new Promise<BuildkitSession>((resolve, reject) => {
    const req = http.request({
      socketPath, path: '/session', method: 'POST',
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'h2c',
        'X-Docker-Expose-Session-Uuid': id,
        'X-Docker-Expose-Session-Name': 'berth',
        'X-Docker-Expose-Session-Sharedkey': '',
        'X-Docker-Expose-Session-Grpc-Method': [HEALTH_CHECK, GET_SECRET],
      },
    });
    req.on('upgrade', (_res, socket: Socket, head: Buffer) => {
      if (head.length > 0) socket.unshift(head);
      const server = http2.createServer();
      server.on('stream', (stream, headers) => serve(stream, String(headers[':path'] ?? ''), secrets));
      // A session that ends (dockerd closed it, the build is over) leaves nothing behind.
      server.on('sessionError', () => socket.destroy());
      server.emit('connection', socket);
      let closed = false;
      resolve({
        id,
        close: () => {
          if (closed) return;
          closed = true;
          server.close();
          socket.destroy();
        },
      });
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => reject(new Error(`the Docker Engine refused a build session (${res.statusCode}): ${Buffer.concat(chunks).toString('utf8').trim().slice(0, 300)}`)));
    });
    req.on('error', reject);
    req.end();
  });
}

/** One unary gRPC call: read the request message, answer with a message or a status. */
function serve(stream: http2.ServerHttp2Stream, path: string, secrets: ReadonlyMap<string, string>): void {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('error', () => stream.destroy());
  stream.on('end', () => {
    const body = Buffer.concat(chunks);
    const message = body.length >= 5 ? body.subarray(5, 5 + body.readUInt32BE(1)) : Buffer.alloc(0);
    if (path === HEALTH_CHECK) return reply(stream, Buffer.from([0x08, 0x01])); // status: SERVING
    if (path === GET_SECRET) {
      const secretId = stringField(message, 1);
      const value = secretId === undefined ? undefined : secrets.get(secretId);
      // NOT_FOUND: BuildKit reports "secret ID not found" (or skips a mount marked required=false).
      if (value === undefined) return fail(stream, 5, `secret ${secretId ?? '?'} not found: the service's build.secrets do not name it`);
      const data = Buffer.from(value, 'utf8');
      return reply(stream, Buffer.concat([Buffer.from([0x0a]), varint(data.length), data]));
    }
    fail(stream, 12, `${path} is not served by this session`);
  });
}

function reply(stream: http2.ServerHttp2Stream, message: Buffer): void {
  if (stream.destroyed) return;
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(frame);
}

/** A trailers-only response carrying a gRPC status. */
function fail(stream: http2.ServerHttp2Stream, code: number, message: string): void {
  if (stream.destroyed) return;
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message) }, { endStream: true });
}

/** Field `n` of a protobuf message as a UTF-8 string (length-delimited), or undefined. Skips other fields. */
export function stringField(msg: Buffer, n: number): string | undefined {
  let i = 0;
  const readVarint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      if (i >= msg.length) throw new Error('truncated varint');
      const b = msg[i++]!;
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
      shift += 7;
    }
  };
  try {
    while (i < msg.length) {
      const key = readVarint();
      const field = Math.floor(key / 8);
      const wire = key % 8;
      if (wire === 0) readVarint();
      else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else if (wire === 2) {
        const len = readVarint();
        if (field === n) return msg.subarray(i, i + len).toString('utf8');
        i += len;
      } else return undefined;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

export function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}
