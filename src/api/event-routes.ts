/**
 * The event timeline and the logs over HTTP: `GET /v1/events` (a page), `GET /v1/events/stream`
 * (server-sent events as they are written), `GET /v1/apps/APP/logs` (a page newest first, or a live
 * NDJSON tail). Reads only: the event store, the log store, which names exist, the clock.
 */
import type { FastifyInstance } from 'fastify';
import { InvalidInput } from '../core/errors.ts';
import type { Clock } from '../core/ports.ts';
import type { EventRecord, EventStore, StoreWatch } from '../core/store.ts';
import { parseDuration } from '../core/spec/units.ts';
import type { LogFilter, LogPage, LogQuery, StoredLine } from '../logs/index.ts';
import type { KnownApps } from './known.ts';
import { eventsQuery, eventsStreamQuery, logsQuery } from './spec-schema.ts';
import { followSse } from './sse.ts';

export interface EventRouteDeps {
  store: Pick<EventStore, 'listEvents'> & StoreWatch;
  clock: Clock;
  known: KnownApps;
  /** The log store: newest-first search and live tail of every replica. */
  logs: { search(q: LogQuery): LogPage; tail(filter: LogFilter, onLine: (l: StoredLine) => void): () => void };
}

export function registerEventRoutes(app: FastifyInstance, d: EventRouteDeps): void {
  // Server-sent events: the event timeline as it happens (deploy progress, health flips, rollbacks),
  // woken by the store's writes: each new event is on the stream as soon as it is committed.
  app.get('/v1/events/stream', async (req, reply) => {
    const q = eventsStreamQuery.parse(req.query);
    if (q.app) scopeCheck(d.known, q.app, q.env, q.service);
    else if (q.env || q.service) throw new InvalidInput('env and service filter the events of one app: give app too');
    const cursor = { after: q.after ?? d.store.listEvents({ limit: 1 }).at(-1)?.id ?? 0 };
    const scope = { ...(q.app ? { app: q.app } : {}), ...(q.env ? { env: q.env } : {}), ...(q.service ? { service: q.service } : {}) };
    // Only the events of apps the caller may see (installation-wide events, app "", are the owners').
    const see = req.canSee ?? (() => true);
    return followSse(req, reply, {
      store: d.store,
      relevant: (c) => c.kind === 'event' && inScope(c.event, scope) && see(c.event.app),
      wake: (sink) => {
        sendEventsAfter(d.store, scope, cursor, (e) => {
          if (see(e.app)) sink.send(e.kind, e, e.id);
        });
        return false;
      },
    });
  });

  app.get('/v1/apps/:app/logs', async (req, reply) => {
    const { app: appName } = req.params as { app: string };
    const q = logsQuery.parse(req.query);
    if (q.service) d.known.requireService(appName, q.env, q.service);
    else d.known.requireEnv(appName, q.env);
    const now = d.clock.now();
    const filter: LogFilter = {
      app: appName, env: q.env, ...(q.service ? { service: q.service } : {}), ...(q.instance ? { instance: q.instance } : {}),
      ...(q.grep ? { text: q.grep } : {}), ...(q.level ? { level: q.level } : {}), ...(q.stream ? { stream: q.stream } : {}),
      ...(q.since ? { since: timeArg('since', q.since, now) } : {}), ...(q.until ? { until: timeArg('until', q.until, now) } : {}),
    };
    const page = d.logs.search({ ...filter, limit: q.limit, ...(q.before ? { before: q.before } : {}) });
    const follow = q.follow === 'true' || q.follow === '1';
    if (!follow) return { lines: page.lines, ...(page.next ? { next: page.next } : {}) };
    // Live tail: the latest page oldest-first, then every new line of every replica as it arrives.
    reply.raw.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    for (const l of [...page.lines].reverse()) reply.raw.write(JSON.stringify(l) + '\n');
    const untail = d.logs.tail(filter, (l) => reply.raw.write(JSON.stringify(l) + '\n'));
    await new Promise<void>((resolve) => req.raw.on('close', () => resolve()));
    untail();
    return reply;
  });

  app.get('/v1/events', async (req) => {
    const q = eventsQuery.parse(req.query);
    if (q.app) scopeCheck(d.known, q.app, q.env, q.service);
    else if (q.env || q.service) throw new InvalidInput('env and service filter the events of one app: give app too');
    const since = q.since ? timeArg('since', q.since, d.clock.now()) : undefined;
    const until = q.until ? timeArg('until', q.until, d.clock.now()) : undefined;
    // `last`: the newest event of any app, a cursor to follow from (GET /v1/events/stream?after=).
    const last = d.store.listEvents({ limit: 1 }).at(-1)?.id ?? 0;
    // Only the events of apps the caller may see (installation-wide events, app "", are the owners').
    const see = req.canSee ?? (() => true);
    return { events: d.store.listEvents({ ...q.app ? { app: q.app } : {}, ...q.env ? { env: q.env } : {}, ...q.service ? { service: q.service } : {}, afterId: q.after,
      ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}), limit: q.limit }).filter((e) => see(e.app)), last };
  });
}

/** Whether an event belongs to app/env/service (each when given). */
export function inScope(e: EventRecord, s: { app?: string; env?: string; service?: string }): boolean {
  return (s.app === undefined || e.app === s.app) && (s.env === undefined || e.env === s.env) && (s.service === undefined || e.service === s.service);
}

/** Sends the events in scope after `cursor.after`, oldest first, moving the cursor past each. */
export function sendEventsAfter(store: Pick<EventStore, 'listEvents'>, scope: { app?: string; env?: string; service?: string },
  cursor: { after: number }, send: (e: EventRecord) => void): void {
  for (;;) {
    const evs = store.listEvents({ ...scope, afterId: cursor.after, limit: 500, take: 'oldest' });
    for (const e of evs) {
      send(e);
      cursor.after = e.id;
    }
    if (evs.length < 500) return;
  }
}

/** An app, and optionally its environment and service: each must exist. */
function scopeCheck(known: KnownApps, app: string, env?: string, service?: string): void {
  if (service) known.requireService(app, env, service);
  else if (env) known.requireEnv(app, env);
  else known.requireApp(app);
}

/** The latest time a Date can hold (year 275760): beyond it a time is not a time. */
const MAX_TIME_MS = 8.64e15;

/**
 * A duration before now (`1h`, `30m`, `1h30m`, `2d`: core's parseDuration with days), an ISO time, or
 * epoch milliseconds; between 1970 and the year 275760, or a 400 naming the parameter (never a 500
 * from an overflow further down).
 */
export function timeArg(name: string, v: string, now: number): number {
  const shown = v.length > 40 ? `${v.slice(0, 40)}…` : v;
  // A duration before now (`1h`, `1h30m`, `2d`): a number and then a unit, which no date starts with.
  if (/^(\d+(\.\d*)?|\.\d+)[a-zµ]/i.test(v)) {
    const rel = parseDuration(v, { days: true });
    if (rel.error !== undefined) throw new InvalidInput(`${name}: ${rel.error}; or give an ISO time (2026-01-31T12:00:00Z) or epoch milliseconds`);
    const t = now - rel.value;
    if (!(t >= 0)) {
      throw new InvalidInput(`${name} "${shown}" reaches back before 1970: give a shorter duration (e.g. 7d), or leave ${name} out to search everything kept`);
    }
    return t;
  }
  if (/^\d{12,}$/.test(v)) {
    const t = Number(v);
    if (!(t <= MAX_TIME_MS)) throw new InvalidInput(`${name} "${shown}" is not a time: epoch milliseconds have at most 16 digits (e.g. ${now})`);
    return t;
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidInput(`${name} "${shown}" is not a time: write e.g. 1h, 30m, 2026-01-31T12:00:00Z or epoch milliseconds`);
  if (t < 0) throw new InvalidInput(`${name} "${shown}" is before 1970: give a later time`);
  return t;
}
