/** Deploys and promotions waiting for a second person: approve (carried out as its requester) or deny. */
import { api } from '../api.ts';
import { approve, deny, listApprovals, type ApprovalStatus } from '../../../src/client/auth-client.ts';
import { useCan } from '../can.ts';
import { Link, navigate, useLocation, withQuery } from '../router.tsx';
import { Badge, Empty, Loaded, OutcomeNote, Page, Time, useAction, useCoalesced, useData, useEvents, Scroll } from '../ui.tsx';

const STATUSES: ApprovalStatus[] = ['pending', 'approved', 'denied', 'failed'];

export function Approvals() {
  const { path, query } = useLocation();
  const status = (STATUSES.find((s) => s === query.get('status')) ?? 'pending');
  const d = useData(() => listApprovals(api(), status), `approvals:${status}`);
  // Requests and decisions are events of their app (approval.*): the list follows the stream.
  useEvents({}, useCoalesced(d.reload, 300));
  const can = useCan();
  const a = useAction();
  return (
    <Page title="Approvals" sub="Deploys and promotions to environments that need a second person">
      <div class="envs" role="group" aria-label="Status">
        {STATUSES.map((s) => <button key={s} type="button" class={`btn small ${s === status ? 'on' : ''}`} aria-pressed={s === status}
          onClick={() => navigate(withQuery(path, query, { status: s === 'pending' ? undefined : s }))}>{s}</button>)}
      </div>
      <OutcomeNote outcome={a.outcome} />
      <Loaded d={d} what="approvals">
        {({ approvals }) => approvals.length === 0 ? <Empty>No {status} approvals.</Empty> : (
          <Scroll label="Approvals">
            <table aria-label={`${status} approvals`}>
              <thead><tr><th scope="col">Request</th><th scope="col">App/env</th><th scope="col">Asked by</th><th scope="col">Asked</th><th scope="col">Status</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {approvals.map((x) => (
                  <tr key={x.id} data-approval={x.id}>
                    <th scope="row"><span class="kind">{x.action}</span> <span class="muted small">{x.id}</span></th>
                    <td><Link href={`/apps/${encodeURIComponent(x.app)}?env=${encodeURIComponent(x.env)}`}>{x.app}</Link>/{x.env} <span class="muted small">team {x.team}</span></td>
                    <td>{x.requestedBy}</td>
                    <td><Time ts={x.createdAt} /></td>
                    <td><Badge status={x.status === 'approved' ? 'ok' : x.status} label={x.status} />{x.decidedBy && <div class="muted small">by {x.decidedBy} <Time ts={x.decidedAt} /></div>}
                      {x.result && x.status !== 'denied' && <div class="muted small">{x.result.slice(0, 160)}</div>}</td>
                    <td>{x.status === 'pending' && can('app.deploy', { app: x.app, env: x.env, team: x.team }) && (
                      <div class="row-actions">
                        <button class="btn small primary" type="button" disabled={a.busy} onClick={() => void a.run(async () => {
                          const r = await approve(api(), x.id);
                          d.reload();
                          return `Approved ${x.id}: carried out as ${x.requestedBy} (HTTP ${r.status}).`;
                        })}>Approve</button>
                        <button class="btn small" type="button" disabled={a.busy} onClick={() => void a.run(async () => {
                          await deny(api(), x.id);
                          d.reload();
                          return `Denied ${x.id}.`;
                        })}>Deny</button>
                      </div>
                    )}</td>
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
