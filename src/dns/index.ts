/**
 * dns: service discovery by name. An authoritative DNS server (UDP + TCP, one port) for the zone
 * (`berth` by default): `SERVICE.APP.ENV.berth` answers the healthy instances' addresses of an app's
 * service, `_SERVICE._tcp.APP.ENV.berth` SRV records with their ports; external services have
 * environment-wide names (`SERVICE.ENV.berth`). Answers are computed per query by a
 * pure function (answer.ts) from a snapshot of the registry (snapshot.ts) that the composition root
 * caches and rebuilds when instances change; names outside the zone are refused or, when configured,
 * forwarded to an upstream resolver.
 */
export { DnsServer, type DnsServerOptions, type DnsServerStats, type DnsUpstream } from './dns-server.ts';
export { buildDnsSnapshot, dnsName, normalizeZone, type DnsEntry, type DnsInstance, type DnsSnapshot } from './snapshot.ts';
export { answerQuery, isInZone, RCODE, type AnswerOptions } from './answer.ts';
