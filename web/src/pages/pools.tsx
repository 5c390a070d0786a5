/**
 * Pools (GET /v1/pools): each pool's hosts, the ready hosts' capacity and reservations, what the
 * services placed there desire, its quota and the teams granted it. Owners set quotas and grant or
 * revoke teams (PUT /v1/pools/:pool/quota, POST|DELETE /v1/pools/:pool/grants/:team); a refusal shows
 * the API's words. Others see the pools open to them, with only their own teams among the grants.
 */
import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { grantPool, listPools, revokePool, setPoolQuota } from '../../../src/client/pool-client.ts';
import { isOwner } from '../can.ts';
import { Link } from '../router.tsx';
import { Empty, Loaded, OutcomeNote, Page, Scroll, useAction, useCoalesced, useData, useEvents } from '../ui.tsx';
import { bytes } from './volumes.tsx';

type Pool = Awaited<ReturnType<typeof listPools>>['pools'][number];
const cpus = (nano: number) => `${Number((nano / 1e9).toFixed(2))} CPU`;

/** A quota field as typed: '' keeps the limit, `none` removes it, anything else is the server's to judge. */
function quotaValue(raw: FormDataEntryValue | null): string | null | undefined {
  const v = String(raw ?? '').trim();
  if (v === '') return undefined;
  return v === 'none' ? null : v;
}

function QuotaForm(props: { pool: Pool; run: ReturnType<typeof useAction>['run']; busy: boolean; reload: () => void }) {
  const p = props.pool;
  return (
    <form class="inline quota-form" aria-label={`Quota of ${p.name}`} onSubmit={(e) => {
      e.preventDefault();
      const form = e.currentTarget as HTMLFormElement;
      const f = new FormData(form);
      void props.run(async () => {
        const inst = quotaValue(f.get('instances'));
        if (typeof inst === 'string' && !/^\d+$/.test(inst)) throw new Error(`instances: "${inst}" is not a whole number (none removes the limit)`);
        const body = {
          ...(quotaValue(f.get('cpus')) !== undefined ? { cpus: quotaValue(f.get('cpus'))! } : {}),
          ...(quotaValue(f.get('memory')) !== undefined ? { memory: quotaValue(f.get('memory'))! } : {}),
          ...(inst !== undefined ? { instances: inst === null ? null : Number(inst) } : {}),
        };
        const r = await setPoolQuota(api(), p.name, body);
        form.reset();
        props.reload();
        return `Quota of ${p.name}: ${r.pool.quotaShown}.`;
      });
    }}>
      <label>CPUs <input name="cpus" size={4} placeholder={p.quota.nanoCpus !== undefined ? String(p.quota.nanoCpus / 1e9) : 'no limit'} /></label>
      <label>Memory <input name="memory" size={5} placeholder={p.quota.memoryBytes !== undefined ? bytes(p.quota.memoryBytes) : 'no limit'} /></label>
      <label>Instances <input name="instances" size={4} placeholder={p.quota.instances !== undefined ? String(p.quota.instances) : 'no limit'} /></label>
      <button class="btn small" type="submit" disabled={props.busy}>Set quota</button>
    </form>
  );
}

export function Pools() {
  const d = useData(() => listPools(api()), 'pools');
  useEvents({}, useCoalesced(d.reload, 1000));
  const owner = isOwner();
  const a = useAction();
  const [team, setTeam] = useState<Record<string, string>>({});
  return (
    <Page title="Pools" sub="Groups of hosts (label io.berth.pool): capacity, what is placed there, quotas and the teams that may deploy there">
      <OutcomeNote outcome={a.outcome} />
      <Loaded d={d} what="pools">
        {({ pools }) => pools.length === 0 ? <Empty>No pool is open to you: an owner grants your team one (<code>berth pool grant POOL TEAM</code>).</Empty> : (
          <Scroll label="Pools">
            <table aria-label="Pools">
              <thead><tr><th scope="col">Pool</th><th scope="col">Hosts</th><th scope="col">Capacity (ready hosts)</th><th scope="col">Reserved</th><th scope="col">Placed</th><th scope="col">Quota</th><th scope="col">Teams</th></tr></thead>
              <tbody>
                {pools.map((p) => (
                  <tr key={p.name} data-pool={p.name}>
                    <th scope="row">{p.name}</th>
                    <td>{p.hosts.length === 0 ? <span class="muted">none</span> : p.hosts.map((h) => <div key={h}><Link href="/hosts">{h}</Link></div>)}</td>
                    <td class="nowrap">{cpus(p.capacity.nanoCpus)}<div class="small">{bytes(p.capacity.memoryBytes)}</div></td>
                    <td class="nowrap">{cpus(p.reserved.nanoCpus)}<div class="small">{bytes(p.reserved.memoryBytes)}</div></td>
                    <td class="nowrap" data-used={p.used.instances}>{p.used.instances} instance{p.used.instances === 1 ? '' : 's'}<div class="small">{cpus(p.used.nanoCpus)}, {bytes(p.used.memoryBytes)}</div></td>
                    <td><span data-quota>{p.quotaShown}</span>{owner && <QuotaForm pool={p} run={a.run} busy={a.busy} reload={d.reload} />}</td>
                    <td>
                      {p.teams.length === 0 && <span class="muted small">no team (owners only)</span>}
                      {p.teams.map((t) => (
                        <div key={t} class="label-chip" data-team={t}>
                          {t === '*' ? 'every team' : t}
                          {owner && <button class="btn small ghost" type="button" disabled={a.busy} aria-label={`Revoke ${t === '*' ? 'every team' : `team ${t}`} from ${p.name}`} onClick={() => void a.run(async () => {
                            await revokePool(api(), p.name, t);
                            d.reload();
                            return `${t === '*' ? 'Every team' : `Team ${t}`} may no longer deploy into ${p.name}.`;
                          })}>×</button>}
                        </div>
                      ))}
                      {owner && (
                        <form class="inline label-form" aria-label={`Grant ${p.name}`} onSubmit={(e) => {
                          e.preventDefault();
                          const t = (team[p.name] ?? '').trim();
                          void a.run(async () => {
                            const r = await grantPool(api(), p.name, t);
                            setTeam((x) => ({ ...x, [p.name]: '' }));
                            d.reload();
                            return r.granted ? `${t === '*' ? 'Every team' : `Team ${t}`} may deploy into ${p.name}.` : `${t} was granted ${p.name} already.`;
                          });
                        }}>
                          <input aria-label={`Team to grant ${p.name}`} placeholder="team, or *" size={10} required value={team[p.name] ?? ''} onInput={(e) => setTeam((x) => ({ ...x, [p.name]: (e.currentTarget as HTMLInputElement).value }))} />
                          <button class="btn small" type="submit" disabled={a.busy}>Grant</button>
                        </form>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
      </Loaded>
      {owner && (
        <form class="card upload" aria-labelledby="grant-h" onSubmit={(e) => {
          e.preventDefault();
          const form = e.currentTarget as HTMLFormElement;
          const f = new FormData(form);
          const pool = String(f.get('pool') ?? '').trim();
          const t = String(f.get('team') ?? '').trim();
          void a.run(async () => {
            await grantPool(api(), pool, t);
            form.reset();
            d.reload();
            return `${t === '*' ? 'Every team' : `Team ${t}`} may deploy into ${pool}.`;
          });
        }}>
          <h2 id="grant-h">Open a pool to a team</h2>
          <p class="muted">A pool exists once a host carries its label (<code>io.berth.pool=NAME</code> on the Hosts page), or a quota or grant names it. <code>default</code> is open to every team until an owner says otherwise.</p>
          <label>Pool <input name="pool" required placeholder="gpu" /></label>
          <label>Team <input name="team" required placeholder="a team, or * for every team" /></label>
          <button class="btn primary" type="submit" disabled={a.busy}>Grant</button>
        </form>
      )}
    </Page>
  );
}
