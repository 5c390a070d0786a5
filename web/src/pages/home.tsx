/** Home for operations: what needs attention first, then recent deploys and events across apps. */
import { ApiError, api, listApps, primedOr } from '../api.ts';
import { listHosts } from '../../../src/client/host-client.ts';
import type { AlertView, AppView, EventView, ServiceView } from '../api.ts';
import { Link } from '../router.tsx';
import { Badge, Empty, Loaded, Page, Time, useCoalesced, useData, useEvents } from '../ui.tsx';
import { EventList } from './events.tsx';

const BAD = new Set(['failed', 'crash-looping', 'degraded']);
const PENDING = new Set(['pending', 'building', 'rolling']);

type HostView = Awaited<ReturnType<typeof listHosts>>['hosts'][number];

interface HomeData {
  apps: AppView[];
  alerts: AlertView[];
  events: EventView[];
  last: number;
  /** Hosts that are not ready (down or draining). */
  hosts: HostView[];
  /** What happened to hosts lately (ready, down, draining, removed) and the failovers off them: shown while a host is not ready. */
  hostEvents: EventView[];
}

const isHostEvent = (e: EventView) => e.kind.startsWith('host.') || e.kind.endsWith('.failover');

/** What home shows (main.tsx primes it when a load starts on `/`). */
export async function loadHome(): Promise<HomeData> {
  // Alerts are the installation's (owners): a person without that right sees the rest.
  const alertsSeen = api().alerts().catch((err) => {
    if (err instanceof ApiError && err.status === 403) return { alerts: [] };
    throw err;
  });
  // Hosts: a failure to read them (the engine away) is on the event timeline already; the rest shows.
  const hostsSeen = listHosts(api()).then((r) => r.hosts, () => [] as HostView[]);
  const [apps, alerts, events, hosts] = await Promise.all([listApps(), alertsSeen, api().events({ limit: 30 }), hostsSeen]);
  const unwell = hosts.filter((h) => h.state !== 'ready');
  // Only while a host is not ready: the host events of the last day (installation-wide ones are the owners').
  const hostEvents = unwell.length === 0 ? [] : (await api().events({ since: '24h', limit: 500 }).catch(() => ({ events: [] as EventView[] }))).events.filter(isHostEvent).reverse().slice(0, 10);
  return { apps: apps.apps, alerts: alerts.alerts, events: events.events.slice().reverse(), last: events.last, hosts: unwell, hostEvents };
}

export function Home() {
  const d = useData(() => primedOr('home', loadHome), 'home');
  const refresh = useCoalesced(d.reload, 400);
  // Home's own read returns the newest event id: the stream starts from it, once that read is in.
  useEvents({}, refresh, d.data ? d.data.last : d.error ? undefined : null);
  return (
    <Page title="Home" sub="What needs attention first, then what changed">
      <Loaded d={d} what="the overview">
        {(h) => <Overview h={h} />}
      </Loaded>
    </Page>
  );
}

function Overview({ h }: { h: HomeData }) {
  const services = h.apps.flatMap((a) => a.services);
  const failing = services.filter((s) => BAD.has(s.status));
  const deploying = services.filter((s) => s.status === 'deploying');
  const pending = h.apps.filter((a) => a.lastDeployment && PENDING.has(a.lastDeployment.status));
  const firing = h.alerts.filter((a) => a.state === 'firing');
  const deploys = h.apps.filter((a) => a.lastDeployment).sort((a, b) => b.lastDeployment!.createdAt - a.lastDeployment!.createdAt).slice(0, 10);
  const healthy = services.filter((s) => s.status === 'running').length;
  const calm = failing.length + pending.length + firing.length + deploying.length + h.hosts.length === 0;
  return (
    <>
      <div class="tiles" role="list" aria-label="Summary">
        <Tile label="apps" value={h.apps.length} />
        <Tile label="services running" value={`${healthy}/${services.length}`} tone={healthy === services.length ? 'ok' : 'warn'} />
        <Tile label="failing" value={failing.length} tone={failing.length ? 'bad' : 'ok'} />
        <Tile label="alerts firing" value={firing.length} tone={firing.length ? 'bad' : 'ok'} />
        {h.hosts.length > 0 && <Tile label="hosts not ready" value={h.hosts.length} tone="bad" />}
      </div>
      <section aria-labelledby="attention" class="card">
        <h2 id="attention">Needs attention</h2>
        {calm && <Empty>Nothing needs attention: every service runs as desired, every host is ready, no deploy is pending and no alert fires.</Empty>}
        {h.hosts.length > 0 && (
          <>
            <ul class="attention" aria-label="Hosts not ready">
              {h.hosts.map((x) => (
                <li key={x.id} data-host-attention={x.name}><Badge status={x.state === 'down' ? 'failed' : 'pending'} label={x.state} /> host <Link href="/hosts">{x.name}</Link> ({x.address}, pool {x.pool}) is {x.state}{x.message ? `: ${x.message}` : ''}</li>
              ))}
            </ul>
            {h.hostEvents.length > 0 && (
              <details open class="host-events">
                <summary>What happened to hosts</summary>
                <EventList events={h.hostEvents} />
              </details>
            )}
          </>
        )}
        {firing.length > 0 && (
          <ul class="attention">
            {firing.map((a) => (
              <li key={a.name}><Badge status="firing" /> alert <Link href="/alerts">{a.name}</Link>: {a.rule.metric} {a.value ?? ''} over {a.rule.threshold}
                {a.rule.app && <> on {a.rule.app}{a.rule.service ? `/${a.rule.service}` : ''}</>} since <Time ts={a.since} /></li>
            ))}
          </ul>
        )}
        {failing.length > 0 && <ServiceProblems services={failing} />}
        {(pending.length > 0 || deploying.length > 0) && (
          <ul class="attention">
            {pending.map((a) => (
              <li key={a.name}><Badge status={a.lastDeployment!.status} /> deploy of <Link href={`/apps/${encodeURIComponent(a.name)}?env=${a.lastDeployment!.env}`}>{a.name}</Link> to {a.lastDeployment!.env}: {a.lastDeployment!.message || 'in progress'}</li>
            ))}
            {deploying.map((s) => (
              <li key={`${s.app}/${s.env}/${s.name}`}><Badge status="deploying" /> <Link href={`/apps/${encodeURIComponent(s.app)}?env=${s.env}`}>{s.app}/{s.env}/{s.name}</Link>: {s.detail}</li>
            ))}
          </ul>
        )}
      </section>
      <div class="cols">
        <section aria-labelledby="apps-h" class="card">
          <h2 id="apps-h">Apps</h2>
          {h.apps.length === 0 ? <Empty>No apps yet: deploy one with <code>berth deploy -f compose.yaml</code> or a git push.</Empty> : (
            <table>
              <thead><tr><th scope="col">App</th><th scope="col">Envs</th><th scope="col">Ready</th><th scope="col">Last deploy</th></tr></thead>
              <tbody>
                {h.apps.map((a) => {
                  const ready = a.services.reduce((n, s) => n + s.healthy, 0);
                  const want = a.services.reduce((n, s) => n + s.desired, 0);
                  return (
                    <tr key={a.name}>
                      <th scope="row"><Link href={`/apps/${encodeURIComponent(a.name)}`}>{a.name}</Link></th>
                      <td>{a.envs.join(', ')}</td>
                      <td><Badge status={ready === want ? 'healthy' : a.services.some((s) => BAD.has(s.status)) ? 'failed' : 'deploying'} label={`${ready}/${want}`} /></td>
                      <td>{a.lastDeployment ? <><Badge status={a.lastDeployment.status} /> {a.lastDeployment.env}, <Time ts={a.lastDeployment.createdAt} /></> : '-'}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )}
        </section>
        <section aria-labelledby="deploys-h" class="card">
          <h2 id="deploys-h">Recent deploys</h2>
          {deploys.length === 0 ? <Empty>No deploys yet.</Empty> : (
            <ul class="plain">
              {deploys.map((a) => (
                <li key={a.name}><Badge status={a.lastDeployment!.status} /> <Link href={`/apps/${encodeURIComponent(a.name)}/releases?env=${a.lastDeployment!.env}`}>{a.name}</Link> to {a.lastDeployment!.env} <Time ts={a.lastDeployment!.createdAt} />
                  {a.lastDeployment!.message && <div class="muted small">{a.lastDeployment!.message}</div>}</li>
              ))}
            </ul>
          )}
        </section>
      </div>
      <section aria-labelledby="events-h" class="card">
        <h2 id="events-h">Recent events</h2>
        <EventList events={h.events} showApp />
        <p><Link href="/events">All events →</Link></p>
      </section>
    </>
  );
}

function ServiceProblems({ services }: { services: ServiceView[] }) {
  return (
    <ul class="attention">
      {services.map((s) => (
        <li key={`${s.app}/${s.env}/${s.name}`}>
          <Badge status={s.status} /> <Link href={`/apps/${encodeURIComponent(s.app)}?env=${s.env}`}>{s.app}/{s.env}/{s.name}</Link> {s.healthy}/{s.desired} healthy: {s.detail}
          {' '}<Link href={`/apps/${encodeURIComponent(s.app)}/logs?env=${s.env}&service=${s.name}`}>logs</Link>
        </li>
      ))}
    </ul>
  );
}

function Tile(props: { label: string; value: number | string; tone?: string }) {
  return (
    <div class={`tile ${props.tone ?? ''}`} role="listitem">
      <div class="tile-v">{props.value}</div>
      <div class="tile-l">{props.label}</div>
    </div>
  );
}
