/**
 * The DNS answerer: one decoded query + a snapshot → one response packet. Pure (no I/O; randomness for
 * the shuffled order is injectable), so every rule below is tested with tables in answer.test.ts.
 *
 * Names (ZONE defaults to `berth`; every ENV.ZONE is its own zone apex, §8 "own DNS zone per env").
 * An app's services are named within the app; external services (registered through the API, no
 * app) are named per environment. The label count tells them apart:
 *   ZONE, ENV.ZONE                    SOA, NS (target `ns.ZONE`); other types NODATA
 *   ns.ZONE                           A = the server's address (the NS target)
 *   SERVICE.APP.ENV.ZONE              A = the app's healthy instances' addresses, deduplicated,
 *                                     shuffled; SRV = as `_SERVICE._tcp` below (a convenience, as Consul does)
 *   _SERVICE._tcp.APP.ENV.ZONE        SRV 0 10 PORT INSTANCE.SERVICE.APP.ENV.ZONE, shuffled, with the
 *                                     targets' A records in the additional section (RFC 2782 form)
 *   INSTANCE.SERVICE.APP.ENV.ZONE     A = that instance's address
 *   APP.ENV.ZONE, _tcp.APP.ENV.ZONE   exist (empty non-terminals): NODATA
 *   SERVICE.ENV.ZONE                  an external service: A and SRV as above
 *   _SERVICE._tcp.ENV.ZONE            its SRV records, targets INSTANCE.SERVICE.ENV.ZONE
 *   _tcp.ENV.ZONE                     exists (empty non-terminal): NODATA
 * Containers search `APP.ENV.ZONE ENV.ZONE ZONE`, so the short name `web` is their own app's `web`
 * and `db` an external `db` of their environment.
 * A known name without records of the asked type is NODATA (NOERROR, empty answer, SOA in authority);
 * an unknown name in the zone is NXDOMAIN with SOA; the SOA's TTL and MINIMUM are the answer TTL, so
 * negative answers are cached as briefly as positive ones. A name outside the zone is REFUSED (no
 * recursion: RA is never set; the server may instead forward it to a configured upstream, see
 * dns-server.ts). ANY gets a minimal answer in the spirit of RFC 8482: the name's main RRset (A for
 * services and instances, SOA for apexes, SRV for `_SERVICE._tcp` names), not everything.
 * Over UDP the response honours the client's EDNS payload size (512 without OPT): additional records
 * are dropped first (they are optional), then answers, and then TC is set so the client retries over TCP.
 */
import dnsPacket from 'dns-packet';
import type { Answer, OptAnswer, Packet, Question, SoaAnswer, SrvAnswer, StringAnswer } from 'dns-packet';
import type { DnsInstance, DnsSnapshot } from './snapshot.ts';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** Extended rcode 16 (BADVERS) = OPT extendedRcode 1, header rcode 0. */
const BADVERS_EXTENDED = 1;

const FLAG_AA = 1 << 10;
const FLAG_TC = 1 << 9;
const FLAG_RD = 1 << 8;
const FLAG_CD = 1 << 4;

/** What we advertise in our OPT record (DNS flag day 2020 size: no IP fragmentation). */
export const SERVER_UDP_PAYLOAD = 1232;
const SRV_PRIORITY = 0;
const SRV_WEIGHT = 10;

export interface AnswerOptions {
  /** TTL in seconds of every record, and the SOA MINIMUM (negative-caching TTL). */
  ttl: number;
  /** UDP responses are truncated to the client's payload size; TCP ones are not (up to 65535 bytes). */
  transport: 'udp' | 'tcp';
  /** Address answered for `ns.ZONE`, the NS target. Default 127.0.0.1. */
  nsAddress?: string;
  /** Upper bound on the client's advertised EDNS payload size we honour. Default 4096. */
  maxUdpPayload?: number;
  /** Source of randomness for the shuffled order (tests pass a seeded one). Default Math.random. */
  random?: () => number;
}

/** True when `name` (any case, with or without trailing dot) is the zone apex or below it. */
export function isInZone(name: string, zone: string): boolean {
  const n = canonical(name);
  return n === zone || n.endsWith(`.${zone}`);
}

/**
 * The response to one decoded query. The server drops packets that are responses (QR set) before
 * calling this; for undecodable bytes it uses `answerUndecodable`.
 */
export function answerQuery(query: Packet, snapshot: DnsSnapshot, opts: AnswerOptions): Packet {
  const qflags = query.flags ?? 0;
  const opcode = (qflags >> 11) & 0xf;
  const flags = qflags & ((0xf << 11) | FLAG_RD | FLAG_CD);
  const id = query.id ?? 0;
  const questions = query.questions ?? [];
  let opt: OptAnswer | undefined;
  let opts_ = 0;
  for (const r of query.additionals ?? []) {
    if (r.type === 'OPT') {
      opt = r;
      opts_++;
    }
  }
  if (query.type === 'response' || opts_ > 1 || questions.length !== 1) return response(id, flags | RCODE.FORMERR, []);
  const q = questions[0]!;
  if (!validName(q.name)) return response(id, flags | RCODE.FORMERR, []);
  const echo: Question[] = [{ name: q.name, type: q.type, class: q.class ?? 'IN' }];
  if (opt && opt.ednsVersion !== 0) return response(id, flags | RCODE.NOERROR, echo, [], [], [ourOpt(BADVERS_EXTENDED)]);
  const optRecords = opt ? [ourOpt(0)] : [];
  if (opcode !== 0) return response(id, flags | RCODE.NOTIMP, echo, [], [], optRecords);

  const name = canonical(q.name);
  const zone = snapshot.zone;
  const klass = q.class ?? 'IN';
  const type = q.type.toUpperCase();
  if (!isInZone(name, zone) || (klass !== 'IN' && klass !== 'ANY') || type === 'AXFR' || type === 'IXFR') {
    return response(id, flags | RCODE.REFUSED, echo, [], [], optRecords);
  }

  const idx = indexOf(snapshot);
  const rel = name === zone ? [] : name.slice(0, -(zone.length + 1)).split('.');
  const node = lookup(rel, idx);
  const ttl = opts.ttl;
  const last = rel[rel.length - 1];
  const soaOwner = last !== undefined && idx.envs.has(last) ? `${last}.${zone}` : zone;
  if (!node) {
    return fit(response(id, flags | FLAG_AA | RCODE.NXDOMAIN, echo, [], [soaRecord(soaOwner, snapshot, ttl)], optRecords), opt, opts);
  }

  const owner = q.name.endsWith('.') ? q.name.slice(0, -1) : q.name;
  const random = opts.random ?? Math.random;
  const nsAddress = opts.nsAddress ?? '127.0.0.1';
  const any = type === 'ANY';
  let answers: Answer[] = [];
  let additionals: Answer[] = [];
  switch (node.kind) {
    case 'apex':
      if (type === 'SOA' || any) answers = [soaRecord(owner, snapshot, ttl)];
      else if (type === 'NS') {
        answers = [{ name: owner, type: 'NS', class: 'IN', ttl, data: `ns.${zone}` }];
        additionals = [aRecord(`ns.${zone}`, nsAddress, ttl)];
      } else if (node.ns && type === 'A') answers = [aRecord(owner, nsAddress, ttl)];
      break;
    case 'ns':
      if (type === 'A' || any) answers = [aRecord(owner, nsAddress, ttl)];
      break;
    case 'service':
      if (type === 'A' || any) answers = shuffle(dedupe(node.list).map((addr) => aRecord(owner, addr, ttl)), random);
      else if (type === 'SRV') [answers, additionals] = srvRecords(owner, node.base, zone, node.list, ttl, random);
      break;
    case 'srv':
      if (type === 'SRV' || any) [answers, additionals] = srvRecords(owner, node.base, zone, node.list, ttl, random);
      break;
    case 'instance':
      if (type === 'A' || any) answers = [aRecord(owner, node.inst.address, ttl)];
      break;
    case 'ent':
      break;
  }
  const authorities = answers.length === 0 ? [soaRecord(soaOwner, snapshot, ttl)] : [];
  if (optRecords.length) additionals.push(...optRecords);
  return fit(response(id, flags | FLAG_AA | RCODE.NOERROR, echo, answers, authorities, additionals), opt, opts);
}

function response(id: number, flags: number, questions: Question[], answers: Answer[] = [], authorities: Answer[] = [], additionals: Answer[] = []): Packet {
  return { type: 'response', id, flags, questions, answers, authorities, additionals };
}

function ourOpt(extendedRcode: number): OptAnswer {
  return { type: 'OPT', name: '.', udpPayloadSize: SERVER_UDP_PAYLOAD, extendedRcode, ednsVersion: 0, flags: 0, flag_do: false, options: [] };
}

function aRecord(name: string, address: string, ttl: number): StringAnswer {
  return { name, type: 'A', class: 'IN', ttl, data: address };
}

/** SOA of a zone apex; its TTL and MINIMUM are the answer TTL, so negative answers are cached as briefly as positive ones. */
function soaRecord(owner: string, snapshot: DnsSnapshot, ttl: number): SoaAnswer {
  const zone = snapshot.zone;
  return {
    name: owner, type: 'SOA', class: 'IN', ttl,
    data: { mname: `ns.${zone}`, rname: `hostmaster.${zone}`, serial: snapshot.serial, refresh: 3600, retry: 600, expire: 86400, minimum: ttl },
  };
}

/** SRV records (shuffled) and the targets' A records for the additional section; `base` is the service's name without the zone. */
function srvRecords(owner: string, base: string, zone: string, list: DnsInstance[], ttl: number, random: () => number): [Answer[], Answer[]] {
  const answers: SrvAnswer[] = [];
  const additionals: Answer[] = [];
  for (const i of shuffle([...list], random)) {
    const target = `${i.instance}.${base}.${zone}`;
    answers.push({ name: owner, type: 'SRV', class: 'IN', ttl, data: { priority: SRV_PRIORITY, weight: SRV_WEIGHT, port: i.port, target } });
    additionals.push(aRecord(target, i.address, ttl));
  }
  return [answers, additionals];
}

/**
 * Whether a message's header claims more questions and records than its bytes can hold (a question
 * takes at least 5 bytes, a record 11): such a message is undecodable, and is refused before
 * dns-packet sees it — it sizes its arrays by the header's counts, ~4.5 ms of CPU for a random
 * 12-byte packet claiming tens of thousands of records, a cheap way to keep the server busy.
 */
export function countsExceedLength(buf: Uint8Array): boolean {
  if (buf.length < 12) return true;
  const count = (i: number) => (buf[i]! << 8) | buf[i + 1]!;
  return 12 + count(4) * 5 + (count(6) + count(8) + count(10)) * 11 > buf.length;
}

/**
 * The response to bytes that dns-packet could not decode: FORMERR carrying the query's id, or
 * undefined (send nothing) when there is no complete header or the packet is itself a response.
 */
export function answerUndecodable(buf: Uint8Array): Packet | undefined {
  if (buf.length < 12) return undefined;
  const id = (buf[0]! << 8) | buf[1]!;
  const flags = (buf[2]! << 8) | buf[3]!;
  if (flags & 0x8000) return undefined;
  return { type: 'response', id, flags: (flags & ((0xf << 11) | FLAG_RD | FLAG_CD)) | RCODE.FORMERR, questions: [], answers: [], authorities: [], additionals: [] };
}

/** A bare error response (SERVFAIL when forwarding fails, ...) that echoes the query's question. */
export function errorResponse(query: Packet, rcode: number): Packet {
  const flags = query.flags ?? 0;
  return {
    type: 'response', id: query.id ?? 0, flags: (flags & ((0xf << 11) | FLAG_RD | FLAG_CD)) | rcode,
    questions: (query.questions ?? []).slice(0, 1), answers: [], authorities: [], additionals: [],
  };
}

// ---------------------------------------------------------------------------------------------

/** `base`: the service's name without the zone (`web.shop.prod` or, for an external, `db.prod`). */
type Node =
  | { kind: 'apex'; ns: boolean }
  | { kind: 'ns' }
  | { kind: 'service'; base: string; list: DnsInstance[] }
  | { kind: 'srv'; base: string; list: DnsInstance[] }
  | { kind: 'instance'; inst: DnsInstance }
  | { kind: 'ent' };

interface Index {
  envs: Set<string>;
  /** `app.env` of every app with a service in the snapshot. */
  apps: Set<string>;
  services: Map<string, DnsInstance[]>;
}

/** Derived lookups, computed once per snapshot object (snapshots are immutable once built). */
const indexes = new WeakMap<DnsSnapshot, Index>();

function indexOf(s: DnsSnapshot): Index {
  let idx = indexes.get(s);
  if (!idx) {
    const envs = new Set<string>();
    const apps = new Set<string>();
    for (const key of s.services.keys()) {
      const labels = key.split('.');
      envs.add(labels[labels.length - 1]!);
      if (labels.length === 3) apps.add(`${labels[1]}.${labels[2]}`);
    }
    idx = { envs, apps, services: s.services };
    indexes.set(s, idx);
  }
  return idx;
}

/** `rel` = the name's labels above the zone apex, lower-case. */
function lookup(rel: string[], idx: Index): Node | undefined {
  const service = (base: string, kind: 'service' | 'srv'): Node | undefined => {
    const list = idx.services.get(base);
    return list ? { kind, base, list } : undefined;
  };
  const instance = (id: string, base: string): Node | undefined => {
    const inst = idx.services.get(base)?.find((i) => i.instance === id);
    return inst ? { kind: 'instance', inst } : undefined;
  };
  switch (rel.length) {
    case 0:
      return { kind: 'apex', ns: false };
    case 1:
      if (idx.envs.has(rel[0]!)) return { kind: 'apex', ns: rel[0] === 'ns' };
      return rel[0] === 'ns' ? { kind: 'ns' } : undefined;
    case 2: {
      // SERVICE.ENV (an external service), APP.ENV (an app: empty non-terminal), _tcp.ENV
      const [first, env] = rel as [string, string];
      if (first === '_tcp') return idx.envs.has(env) ? { kind: 'ent' } : undefined;
      return service(`${first}.${env}`, 'service') ?? (idx.apps.has(`${first}.${env}`) ? { kind: 'ent' } : undefined);
    }
    case 3: {
      // SERVICE.APP.ENV, _SERVICE._tcp.ENV (external), _tcp.APP.ENV, INSTANCE.SERVICE.ENV (external)
      const [first, second, env] = rel as [string, string, string];
      if (second === '_tcp') return first.startsWith('_') ? service(`${first.slice(1)}.${env}`, 'srv') : undefined;
      if (first === '_tcp') return idx.apps.has(`${second}.${env}`) ? { kind: 'ent' } : undefined;
      return service(`${first}.${second}.${env}`, 'service') ?? instance(first, `${second}.${env}`);
    }
    case 4: {
      // _SERVICE._tcp.APP.ENV, INSTANCE.SERVICE.APP.ENV
      const [first, second, app, env] = rel as [string, string, string, string];
      if (second === '_tcp') return first.startsWith('_') ? service(`${first.slice(1)}.${app}.${env}`, 'srv') : undefined;
      return instance(first, `${second}.${app}.${env}`);
    }
    default:
      return undefined;
  }
}

/** Truncates a UDP response to the client's payload size (TCP responses pass through). */
function fit(resp: Packet, opt: OptAnswer | undefined, opts: AnswerOptions): Packet {
  if (opts.transport === 'tcp') return resp;
  const cap = opts.maxUdpPayload ?? 4096;
  const limit = opt ? Math.max(512, Math.min(opt.udpPayloadSize, cap)) : 512;
  let size = dnsPacket.encodingLength(resp);
  if (size <= limit) return resp;
  // Additional data is optional (RFC 2181 §9): drop it (keeping OPT) without setting TC.
  const keep = (resp.additionals ?? []).filter((r) => r.type === 'OPT');
  for (const r of resp.additionals ?? []) if (r.type !== 'OPT') size -= rrLength(r);
  resp.additionals = keep;
  if (size <= limit) return resp;
  // The answer itself does not fit: keep the records that do and set TC; the client retries over TCP.
  resp.flags = (resp.flags ?? 0) | FLAG_TC;
  for (const section of ['authorities', 'answers'] as const) {
    const list = resp[section] ?? [];
    while (size > limit && list.length > 0) size -= rrLength(list.pop()!);
  }
  return resp;
}

/** Wire length of one resource record (dns-packet exports the codec, its types do not name it). */
export const rrLength: (r: Answer) => number = (dnsPacket as unknown as { answer: { encodingLength(r: Answer): number } }).answer.encodingLength;

function canonical(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

/** Labels of at most 63 bytes, a name of at most 255 on the wire: what we can echo back safely. */
function validName(name: string): boolean {
  if (name === '.' || name === '') return true;
  const labels = name.replace(/\.$/, '').split('.');
  let wire = 1;
  for (const l of labels) {
    const len = Buffer.byteLength(l);
    if (len === 0 || len > 63) return false;
    wire += len + 1;
  }
  return wire <= 255;
}

/** The instances' distinct addresses (all instances on one host share its address). */
function dedupe(list: DnsInstance[]): string[] {
  const out: string[] = [];
  for (const i of list) if (!out.includes(i.address)) out.push(i.address);
  return out;
}

/** Fisher–Yates, in place. */
export function shuffle<T>(xs: T[], random: () => number): T[] {
  for (let k = xs.length - 1; k > 0; k--) {
    const j = Math.floor(random() * (k + 1));
    const t = xs[k]!;
    xs[k] = xs[j]!;
    xs[j] = t;
  }
  return xs;
}
