/** The audit log (owners): who did what, filters, the hash chain's verification and a JSON lines export. */
import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { audit, auditJsonlPath, auditVerify, type AuditFilterArgs } from '../../../src/client/auth-client.ts';
import { navigate, useLocation, withQuery } from '../router.tsx';
import { Badge, Empty, Loaded, OutcomeNote, Page, Time, useAction, useCoalesced, useData, useEvents, Scroll } from '../ui.tsx';

const FIELDS = ['actor', 'app', 'action', 'since', 'until'] as const;

/** `datetime-local` text (local time) ↔ ms since the epoch. */
const toMs = (v: string | null) => (v ? new Date(v).getTime() : undefined);

export function Audit() {
  const { path, query } = useLocation();
  const f: AuditFilterArgs = {
    ...(query.get('actor') ? { actor: query.get('actor')! } : {}), ...(query.get('app') ? { app: query.get('app')! } : {}),
    ...(query.get('action') ? { action: query.get('action')! } : {}),
    ...(toMs(query.get('since')) ? { since: toMs(query.get('since'))! } : {}), ...(toMs(query.get('until')) ? { until: toMs(query.get('until'))! } : {}),
    limit: 500,
  };
  const d = useData(() => audit(api(), f), `audit:${query.toString()}`);
  // Changes land in the audit log as they happen; the event stream says something changed.
  useEvents({}, useCoalesced(d.reload, 1000));
  const v = useAction();
  const [verified, setVerified] = useState<{ ok: boolean; text: string }>();
  return (
    <Page title="Audit log" sub="Every change and secret read: who, from where, what, and the answer"
      actions={<a class="btn" href={auditJsonlPath({ ...f, limit: 10000 })} download="berth-audit.jsonl">Export JSON lines</a>}>
      <form class="filters" aria-label="Filter the audit log" onSubmit={(e) => {
        e.preventDefault();
        const data = new FormData(e.currentTarget as HTMLFormElement);
        navigate(withQuery(path, query, Object.fromEntries(FIELDS.map((k) => [k, String(data.get(k) ?? '').trim() || undefined]))));
      }}>
        <label>Who <input name="actor" size={10} value={query.get('actor') ?? ''} /></label>
        <label>App <input name="app" size={10} value={query.get('app') ?? ''} /></label>
        <label>Action <input name="action" size={16} placeholder="POST /v1/apps/:app/scale" value={query.get('action') ?? ''} /></label>
        <label>Since <input name="since" type="datetime-local" value={query.get('since') ?? ''} /></label>
        <label>Until <input name="until" type="datetime-local" value={query.get('until') ?? ''} /></label>
        <button class="btn" type="submit">Filter</button>
        <button class="btn" type="button" disabled={v.busy} onClick={() => void v.run(async () => {
          const r = await auditVerify(api());
          const text = r.ok
            ? `Chain intact: ${r.checked} entries checked${r.retainedFrom > 1 ? ` (kept from #${r.retainedFrom})` : ''}.`
            : `Chain broken at entry #${r.firstBad?.seq}: ${r.firstBad?.reason}`;
          setVerified({ ok: r.ok, text });
          return text;
        })}>Verify chain</button>
      </form>
      {verified ? <p class={`outcome ${verified.ok ? 'ok' : 'bad'}`} role="status" data-verify={verified.ok ? 'ok' : 'bad'}>{verified.text}</p> : <OutcomeNote outcome={v.outcome} />}
      <Loaded d={d} what="the audit log">
        {({ entries }) => entries.length === 0 ? <Empty>No audit entries{query.toString() ? ' match these filters' : ''}.</Empty> : (
          <Scroll label="Audit entries">
            <table aria-label="Audit entries">
              <thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">App/env</th><th scope="col">Answer</th><th scope="col">From</th></tr></thead>
              <tbody>
                {[...entries].reverse().map((e) => (
                  <tr key={e.seq}>
                    <td>{e.seq}</td>
                    <td class="nowrap"><Time ts={e.ts} /></td>
                    <th scope="row">{e.actorName}</th>
                    <td><span class="kind">{e.action}</span></td>
                    <td>{[e.app, e.env].filter(Boolean).join('/') || '-'}</td>
                    <td><Badge status={e.status < 400 ? 'ok' : 'failed'} label={String(e.status)} /> <span class="small">{e.result}</span></td>
                    <td class="small">{e.ip}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
      </Loaded>
    </Page>
  );
}
