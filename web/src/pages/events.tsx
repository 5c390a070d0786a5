/** The event timeline (all apps, or one app), live. */
import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import type { EventView } from '../api.ts';
import { Link, useLocation, withQuery, navigate } from '../router.tsx';
import { Empty, Loaded, Page, Time, useData, useEvents } from '../ui.tsx';
import { AppTabs } from './app.tsx';

/** `compact`: the events of one service's rollout (where is the instance only). */
export function EventList(props: { events: EventView[]; showApp?: boolean; compact?: boolean }) {
  if (props.events.length === 0) return <Empty>No events yet.</Empty>;
  return (
    <table class="events">
      <thead><tr><th scope="col">When</th>{props.showApp && <th scope="col">App</th>}<th scope="col">{props.compact ? 'Instance' : 'Where'}</th><th scope="col">What</th><th scope="col">Message</th></tr></thead>
      <tbody>
        {props.events.map((e) => (
          <tr key={e.id}>
            <td class="nowrap"><Time ts={e.ts} /></td>
            {props.showApp && <td>{e.app ? <Link href={`/apps/${encodeURIComponent(e.app)}`}>{e.app}</Link> : '-'}</td>}
            <td>{(props.compact ? e.instance : [e.env, e.service, e.instance].filter(Boolean).join('/')) || '-'}</td>
            <td><span class="kind">{e.kind}</span></td>
            <td class="msg">{e.message}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Events(props: { app?: string }) {
  const { path, query } = useLocation();
  const env = query.get('env') ?? undefined;
  const service = query.get('service') ?? undefined;
  // A time window (a release's events: from its creation until the next release): since, until.
  const since = query.get('since') ?? undefined;
  const until = query.get('until') ?? undefined;
  const filter = { ...(props.app ? { app: props.app } : {}), ...(env ? { env } : {}), ...(service ? { service } : {}) };
  const key = JSON.stringify({ filter, since, until });
  const d = useData(async () => {
    const r = await api().events({ ...filter, since, until, limit: 200 });
    return { events: r.events.slice().reverse(), last: r.last };
  }, key);
  const [live, setLive] = useState<{ key: string; events: EventView[] }>({ key, events: [] });
  // A window that ended gets no new events; an open one does.
  useEvents(filter, (e) => !until && setLive((l) => ({ key, events: [e, ...(l.key === key ? l.events : [])].slice(0, 500) })), d.data?.last);
  const fresh = live.key === key ? live.events : [];
  return (
    <Page title={props.app ? `${props.app}: events` : 'Events'} sub="Newest first; new events appear as they happen">
      {props.app && <AppTabs app={props.app} current="events" />}
      <form class="filters" onSubmit={(e) => {
        e.preventDefault();
        const f = new FormData(e.currentTarget as HTMLFormElement);
        const v = (k: string) => String(f.get(k) ?? '').trim();
        navigate(withQuery(path, query, { env: v('env'), service: v('service'), since: v('since'), until: v('until') }));
      }}>
        <label>Environment <input name="env" defaultValue={env ?? ''} placeholder="any" key={`e${env}`} /></label>
        <label>Service <input name="service" defaultValue={service ?? ''} placeholder="any" key={`s${service}`} /></label>
        <label>Since <input name="since" defaultValue={since ?? ''} placeholder="1h, ISO time" size={12} key={`si${since}`} /></label>
        <label>Until <input name="until" defaultValue={until ?? ''} placeholder="now" size={12} key={`u${until}`} /></label>
        <button class="btn" type="submit">Filter</button>
      </form>
      <Loaded d={d} what="events">
        {(r) => <EventList events={[...fresh.filter((e) => !r.events.some((x) => x.id === e.id)), ...r.events]} showApp={!props.app} />}
      </Loaded>
    </Page>
  );
}
