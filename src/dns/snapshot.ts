/** One routable instance as DNS sees it. */
export interface DnsInstance {
  /** Instance id: a DNS-safe label (`[a-z0-9]+`), used as `INSTANCE.SERVICE.ENV.ZONE`. */
  instance: string;
  /** IPv4 address (host networking: the host's address). */
  address: string;
  port: number;
}

/**
 * Everything the DNS server answers from, built once per change and read per query (so it is
 * never mutated after it is built: the answerer memoizes indexes per snapshot object).
 */
export interface DnsSnapshot {
  /** Zone apex, lower-case, no trailing dot: `berth`. */
  zone: string;
  /** SOA serial; changes whenever the content changes. */
  serial: number;
  /**
   * Name (lower-case, without the zone) → its healthy, running instances, sorted by instance id:
   * `"service.app.env"` for an app's service, `"service.env"` for an external service registered in
   * an environment (no app). The label count tells them apart (see `dnsName`). A known service with
   * no healthy instance maps to `[]`, so it answers NODATA rather than NXDOMAIN.
   */
  services: Map<string, DnsInstance[]>;
}

/**
 * The DNS name (without the zone) of a service: `web.shop.prod` for service `web` of app `shop` in
 * `prod`; `db.prod` for an external service `db` registered in `prod` (externals belong to no app).
 * Names of different apps never mix.
 */
export function dnsName(service: string, env: string, app?: string): string {
  return (app ? `${service}.${app}.${env}` : `${service}.${env}`).toLowerCase();
}

/** One instance the registry knows: an app's (with `app`) or an external service's (without). */
export interface DnsEntry {
  service: string;
  env: string;
  app?: string;
  id: string;
  address: string;
  port: number;
  /** Only healthy instances are answered. */
  healthy: boolean;
}

/**
 * The one snapshot builder: every known service of an app gets its name (NODATA while none of its
 * instances is healthy), and each healthy entry is listed under its service's name, sorted by
 * instance id. The serial follows the content. The server feeds it the registry's entries (Berth's
 * instances and external registrations) and the store's services.
 */
export function buildDnsSnapshot(zone: string, known: readonly { app: string; env: string; name: string }[], entries: readonly DnsEntry[]): DnsSnapshot {
  const services = new Map<string, DnsInstance[]>();
  for (const s of known) services.set(dnsName(s.name, s.env, s.app), []);
  for (const e of entries) {
    const key = dnsName(e.service, e.env, e.app);
    let list = services.get(key);
    if (!list) services.set(key, (list = []));
    if (e.healthy) list.push({ instance: e.id.toLowerCase(), address: e.address, port: e.port });
  }
  for (const list of services.values()) list.sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0));
  const z = normalizeZone(zone);
  return { zone: z, serial: contentSerial(z, services), services };
}

/** `Berth.` → `berth`. */
export function normalizeZone(zone: string): string {
  return zone.trim().replace(/\.+$/, '').replace(/^\.+/, '').toLowerCase();
}

/**
 * A serial derived from the content (FNV-1a, 32 bits, never 0): the same content gives the same
 * serial, so a rebuilt but unchanged snapshot does not look like a zone change. Nothing transfers
 * this zone, so serial arithmetic (RFC 1982) ordering does not matter.
 */
function contentSerial(zone: string, services: Map<string, DnsInstance[]>): number {
  let h = 0x811c9dc5;
  const add = (s: string) => {
    for (let k = 0; k < s.length; k++) {
      h ^= s.charCodeAt(k);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  };
  add(zone);
  for (const key of [...services.keys()].sort()) {
    add(`|${key}`);
    for (const i of services.get(key)!) add(`,${i.instance}=${i.address}:${i.port}`);
  }
  return h || 1;
}
