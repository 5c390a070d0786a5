/** Every deploy of an app as a record, with its diff against the previous release and one-click rollback. */
import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import type { ReleaseRecord, ReleaseView } from '../api.ts';
import { Link } from '../router.tsx';
import { Badge, Empty, ErrorBox, Loaded, Loading, OutcomeNote, Page, Time, shortId, useAction, useCoalesced, useData, useEvents } from '../ui.tsx';
import { AppTabs, EnvPicker, useEnv } from './app.tsx';
import { EventList } from './events.tsx';
import { specDiff } from '../spec-diff.ts';

export function Releases({ app }: { app: string }) {
  const d = useData(() => api().releases(app), `releases:${app}`);
  const refresh = useCoalesced(d.reload, 300);
  useEvents({ app }, refresh);
  const envs = [...new Set(d.data?.releases.map((r) => r.env) ?? [])].sort();
  const env = useEnv(envs);
  const releases = (d.data?.releases ?? []).filter((r) => r.env === env);
  const services = [...new Set(releases.map((r) => r.service))].sort();
  return (
    <Page title={`${app}: releases`} sub={<EnvPicker envs={envs} env={env} />}>
      <AppTabs app={app} current="releases" />
      <Loaded d={d} what="releases">
        {() => releases.length === 0 ? <Empty>No releases{env ? ` in ${env}` : ''} yet.</Empty> : (
          <>{services.map((s) => <ServiceReleases key={s} app={app} list={releases.filter((r) => r.service === s).sort((a, b) => b.seq - a.seq)} changed={refresh} />)}</>
        )}
      </Loaded>
    </Page>
  );
}

function ServiceReleases({ app, list, changed }: { app: string; list: ReleaseView[]; changed: () => void }) {
  const a = useAction();
  const [open, setOpen] = useState<string>();
  const s = list[0]!;
  const hid = `rel-${s.env}-${s.service}`;
  return (
    <section class="card" aria-labelledby={hid}>
      <h2 id={hid}>{s.service}</h2>
      <OutcomeNote outcome={a.outcome} />
      <table class="releases">
        <thead><tr><th scope="col">Release</th><th scope="col">Outcome</th><th scope="col">Image and digest</th><th scope="col">Config</th><th scope="col">Strategy</th><th scope="col">Who</th><th scope="col">When</th><th scope="col">Actions</th></tr></thead>
        <tbody>
          {list.map((r, i) => {
            const prev = list[i + 1];
            // What the release ran: from its creation until the next release replaced it (or now).
            const window = releaseWindow(r, list[i - 1]);
            return [
              <tr key={r.id} class={r.current ? 'current' : ''} data-release={r.seq}>
                <th scope="row">#{r.seq}{r.current && <> <Badge status="running" label="current" /></>}</th>
                <td><Badge status={r.status} />{r.message && <div class="muted small">{r.message}</div>}</td>
                <td><code>{r.image}</code><div class="muted small" title={r.imageId} data-digest={r.imageId}>{shortId(r.imageId)}</div></td>
                <td data-config={r.configVersion}>{r.configVersion ? `v${r.configVersion}` : <span class="muted">none</span>}</td>
                <td>{r.strategy} · {r.replicas}×</td>
                <td>{r.createdBy}</td>
                <td class="nowrap"><Time ts={r.createdAt} /></td>
                <td class="row-actions">
                  <button type="button" class="btn small" aria-expanded={open === r.id} aria-controls={`diff-${r.id}`} onClick={() => setOpen(open === r.id ? undefined : r.id)}>
                    {open === r.id ? 'Hide' : 'Diff & events'}
                  </button>
                  {!r.current && (
                    <button type="button" class="btn small" disabled={a.busy} onClick={() => void a.run(async () => {
                      const res = await api().rollback(app, { env: r.env, service: r.service, to: r.id });
                      changed();
                      return `Rolling ${r.service} back to release #${res.rollbacks[0]?.to ?? r.seq}.`;
                    })}>Roll back to #{r.seq}</button>
                  )}
                  <Link class="btn small ghost" aria-label={`Logs of release #${r.seq}`} href={`/apps/${encodeURIComponent(app)}/logs?${window}`}>Logs</Link>
                  <Link class="btn small ghost" aria-label={`Events of release #${r.seq}`} href={`/apps/${encodeURIComponent(app)}/events?${window}`}>Events</Link>
                </td>
              </tr>,
              open === r.id && (
                <tr key={`${r.id}-d`} class="expand"><td colSpan={8} id={`diff-${r.id}`}><ReleaseDetail app={app} id={r.id} prev={prev?.id} /></td></tr>
              ),
            ];
          })}
        </tbody>
      </table>
    </section>
  );
}

/** The query of a release's logs and events: its service from its creation until `next` (the release after it) was made. */
export function releaseWindow(r: ReleaseView, next: ReleaseView | undefined): string {
  const q = new URLSearchParams({ env: r.env, service: r.service, since: new Date(r.createdAt).toISOString() });
  if (next) q.set('until', new Date(next.createdAt).toISOString());
  return q.toString();
}

/** The config version a release's spec names (0: none). */
function configOf(r: ReleaseRecord): number {
  const v = r.spec['configVersion'];
  return typeof v === 'number' ? v : 0;
}

function ReleaseDetail({ app, id, prev }: { app: string; id: string; prev?: string }) {
  const d = useData(async () => {
    const [cur, before] = await Promise.all([api().release(app, id), prev ? api().release(app, prev) : Promise.resolve(undefined)]);
    return { cur, before };
  }, `rel:${id}:${prev ?? ''}`);
  if (d.error) return <ErrorBox error={d.error} retry={d.reload} />;
  if (!d.data) return <Loading what="the release" />;
  const { cur, before } = d.data;
  const withImage = (r: typeof cur.release) => ({ image: r.image, imageId: r.imageId, spec: r.spec });
  const diff = before ? specDiff(withImage(before.release), withImage(cur.release)) : [];
  return (
    <div class="detail-grid">
      <div>
        <h3>{before ? `Changes from #${before.release.seq}` : 'First release'}</h3>
        {before && diff.length === 0 && <Empty>Same spec and image as #{before.release.seq} (a restart or config rollout).</Empty>}
        {diff.length > 0 && (
          <table class="diff">
            <thead><tr><th scope="col">Field</th><th scope="col">Before</th><th scope="col">After</th></tr></thead>
            <tbody>{diff.map((c) => <tr key={c.key}><th scope="row"><code>{c.key}</code></th><td class="del">{c.before ?? '—'}</td><td class="add">{c.after ?? '—'}</td></tr>)}</tbody>
          </table>
        )}
        <p class="muted small">Config version {configOf(cur.release) || 'none'} · image digest <code>{cur.release.imageId}</code> · by {cur.release.createdBy}</p>
      </div>
      <div>
        <h3>Rollout events</h3>
        <EventList events={cur.events.slice().reverse()} compact />
      </div>
    </div>
  );
}
