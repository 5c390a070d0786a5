import dnsPacket from 'dns-packet';
import type { Packet } from 'dns-packet';
import { rrLength, shuffle } from './answer.ts';
import type { DnsSnapshot } from './snapshot.ts';

interface Entry {
  /** Header and question, as sent for the first query (the id is patched per response). */
  head: Buffer;
  /** Each answer record on its own: dns-packet does not compress names, so records can be reordered freely. */
  answers: Buffer[];
  /** Authority and additional sections. */
  tail: Buffer;
  size: number;
}

/**
 * Encoded responses of one snapshot, keyed by the query's bytes after the id (flags, question with its
 * case, EDNS record) and the transport: the same bytes always get the same answer from the same
 * snapshot, up to the order of the answer records, which a hit reshuffles. So most queries skip
 * decoding, answering and encoding. A new snapshot object empties the cache. Truncated responses
 * are not cached (the client comes back over TCP anyway).
 */
export class ResponseCache {
  private snapshot?: DnsSnapshot;
  private readonly entries = new Map<string, Entry>();
  hits = 0;

  constructor(
    private readonly maxEntries = 4096,
    private readonly random: () => number = Math.random,
  ) {}

  /** The encoded response for this query (its id patched in), or undefined on a miss. */
  get(query: Buffer, transport: 'udp' | 'tcp', snapshot: DnsSnapshot): Buffer | undefined {
    if (snapshot !== this.snapshot) {
      this.entries.clear();
      this.snapshot = snapshot;
      return undefined;
    }
    const key = cacheKey(query, transport);
    const e = key === undefined ? undefined : this.entries.get(key);
    if (!e) return undefined;
    this.hits++;
    let out: Buffer;
    if (e.answers.length <= 1) {
      out = Buffer.allocUnsafe(e.size);
      let off = e.head.copy(out, 0);
      if (e.answers.length === 1) off += e.answers[0]!.copy(out, off);
      e.tail.copy(out, off);
    } else {
      out = Buffer.concat([e.head, ...shuffle([...e.answers], this.random), e.tail], e.size);
    }
    out[0] = query[0]!;
    out[1] = query[1]!;
    return out;
  }

  /** Remembers `encoded`, the encoding of `response` (the answer to `query` from `snapshot`). */
  put(query: Buffer, transport: 'udp' | 'tcp', snapshot: DnsSnapshot, response: Packet, encoded: Buffer): void {
    if (snapshot !== this.snapshot) {
      this.entries.clear();
      this.snapshot = snapshot;
    }
    if ((response.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE) return;
    const key = cacheKey(query, transport);
    if (key === undefined || (response.questions?.length ?? 0) !== 1) return;
    const headLen = 12 + (encoded.length - 12 - sectionsLength(response));
    let off = headLen;
    const answers: Buffer[] = [];
    for (const a of response.answers ?? []) {
      const len = rrLength(a);
      answers.push(Buffer.from(encoded.subarray(off, off + len)));
      off += len;
    }
    if (off > encoded.length) return;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(key, { head: Buffer.from(encoded.subarray(0, headLen)), answers, tail: Buffer.from(encoded.subarray(off)), size: encoded.length });
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Undefined for queries too long to be worth a key. */
function cacheKey(query: Buffer, transport: 'udp' | 'tcp'): string | undefined {
  if (query.length < 12 || query.length > 512) return undefined;
  return (transport === 'udp' ? 'u' : 't') + query.toString('latin1', 2);
}

function sectionsLength(p: Packet): number {
  let n = 0;
  for (const list of [p.answers, p.authorities, p.additionals]) for (const r of list ?? []) n += rrLength(r);
  return n;
}
