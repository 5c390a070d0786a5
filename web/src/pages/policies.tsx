/**
 * Container guardrails (api/policy-routes.ts): the policy that applies at a scope (installation, team,
 * environment, team+environment) field by field with the layer that set it, the stored layers and
 * their versions, a layer's editor (owners: any layer; a team's admins: tighten their team's), and the
 * exemptions (one key of one app or service in one environment, reasoned, expiring; the app's admins).
 */
import { useState } from 'preact/hooks';
import { api, knownSession } from '../api.ts';
import { addExemption, getPolicies, listExemptions, revokeExemption, setGuardPolicy, type ExemptionView, type GuardPolicyBody, type PolicyLayerView } from '../../../src/client/policy-client.ts';
import { listTeams } from '../../../src/client/auth-client.ts';
import { GUARD_FIELDS, GUARD_KEYS, describePolicy, type GuardField, type GuardPolicy } from '../../../src/core/guard.ts';
import { roleAtLeast } from '../../../src/core/auth.ts';
import { BOOL_FIELDS, LIST_FIELDS, fieldLabel, fieldText, layerFrom } from '../policy-form.ts';
import { isOwner, useCan } from '../can.ts';
import { Link, navigate, useLocation, withQuery } from '../router.tsx';
import { Badge, Empty, Loaded, OutcomeNote, Page, Scroll, Time, useAction, useData } from '../ui.tsx';

const HINT: Record<GuardField, string> = {
  privileged: 'privileged: true allowed',
  capabilities: 'what cap_add may give, comma-separated (none: nothing)',
  noNewPrivileges: 'no-new-privileges required',
  pidsLimit: 'pids limit applied and the most a service may set (0: none)',
  memoryDefaultBytes: 'memory limit applied when a service sets none (512m, 1g; 0: none)',
  hostNamespaces: 'pid/ipc/uts/userns/cgroup: host allowed',
  hostNetwork: "the host's network allowed (false: app networks only)",
  devices: 'devices allowed',
  unconfined: 'seccomp/apparmor unconfined allowed',
  binds: 'bind mounts allowed',
  bindRoots: 'bind sources must lie under these paths (none: the server’s roots)',
  readOnly: 'read_only: true required',
  sysctls: 'sysctls a service may set: names or prefixes ending in * (none: nothing)',
};
const scopeText = (team: string, env: string) => (team && env ? `team ${team} (env ${env})` : team ? `team ${team}` : env ? `env ${env}` : 'the installation');

/** Whether the person may set the layer of team/env: owners any; a team's admins their team's (the server still checks tightening). */
function maySet(team: string, env: string): boolean {
  if (isOwner()) return true;
  if (!team) return false;
  return (knownSession()?.grants ?? []).some((g) => roleAtLeast(g.role, 'admin') && g.team === team && g.app === '*' && (g.env === '*' || (env !== '' && g.env === env)));
}

function LayerEditor(props: { team: string; env: string; layer: PolicyLayerView | undefined; onSaved: () => void }) {
  const a = useAction();
  const { team, env, layer } = props;
  return (
    <form class="card upload" aria-labelledby="edit-h" onSubmit={(e) => {
      e.preventDefault();
      const f = new FormData(e.currentTarget as HTMLFormElement);
      void a.run(async () => {
        const r = await setGuardPolicy(api(), team, env, layerFrom((k) => String(f.get(k) ?? '')) as GuardPolicyBody);
        props.onSaved();
        return `The policy of ${r.layer.scope} is now version ${r.layer.version}.`;
      });
    }}>
      <h2 id="edit-h">Layer of {scopeText(team, env)}{layer ? ` (version ${layer.version})` : ' (new)'}</h2>
      <p class="muted">An empty field inherits from the layers below. Saving makes a new version; the audit log keeps who and when.
        {!isOwner() && ' As a team admin you may tighten this layer, not loosen it.'}</p>
      <OutcomeNote outcome={a.outcome} />
      <div class="policy-fields">
        {GUARD_FIELDS.map((k) => {
          const id = `pf-${k}`;
          const cur = fieldText(layer?.policy as GuardPolicy | undefined, k);
          const bool = BOOL_FIELDS.has(k);
          return (
            <div key={`${team}/${env}/${layer?.version ?? 0}/${k}`} class="policy-field">
              <label for={id}>{fieldLabel(k)}</label>
              {bool
                ? <select id={id} name={k} defaultValue={cur} aria-describedby={`${id}-h`}><option value="">inherit</option><option value="true">true</option><option value="false">false</option></select>
                : <input id={id} name={k} defaultValue={cur} placeholder="inherit" aria-describedby={`${id}-h`} inputMode={k === 'pidsLimit' ? 'numeric' : undefined} />}
              <span id={`${id}-h`} class="muted small">{HINT[k]}</span>
            </div>
          );
        })}
      </div>
      <div class="actions">
        <button class="btn primary" type="submit" disabled={a.busy}>Save layer</button>
        {layer && Object.keys(layer.policy).length > 0 && (
          <button class="btn warn" type="button" disabled={a.busy} onClick={() => void a.run(async () => {
            const r = await setGuardPolicy(api(), team, env, {});
            props.onSaved();
            return `The layer of ${r.layer.scope} is cleared (version ${r.layer.version}): every field inherits.`;
          })}>Clear layer</button>
        )}
      </div>
    </form>
  );
}

function Exemptions() {
  const d = useData(() => listExemptions(api()), 'exemptions');
  const apps = useData(() => api().apps(), 'policy-apps');
  const can = useCan();
  const a = useAction();
  const [showAll, setShowAll] = useState(false);
  const mine = (apps.data?.apps ?? []).filter((x) => x.envs.some((env) => can('app.admin', { app: x.name, env })));
  return (
    <section aria-labelledby="ex-h">
      <h2 id="ex-h">Exemptions</h2>
      <p class="muted">One key of one app (or service) in one environment, let through the guardrails until it expires.</p>
      <OutcomeNote outcome={a.outcome} />
      <Loaded d={d} what="exemptions">
        {({ exemptions }) => {
          const list = showAll ? exemptions : exemptions.filter((e) => e.status === 'active');
          return (
            <>
              <label class="small"><input type="checkbox" checked={showAll} onChange={(e) => setShowAll((e.currentTarget as HTMLInputElement).checked)} /> Show expired and revoked ({exemptions.length - exemptions.filter((e) => e.status === 'active').length})</label>
              {list.length === 0 ? <Empty>No {showAll ? '' : 'active '}exemptions: every service keeps to its policy.</Empty> : (
                <Scroll label="Exemptions">
                  <table aria-label="Exemptions">
                    <thead><tr><th scope="col">App / service</th><th scope="col">Env</th><th scope="col">Key</th><th scope="col">Reason</th><th scope="col">By</th><th scope="col">Expires</th><th scope="col">Status</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
                    <tbody>
                      {list.map((e: ExemptionView) => (
                        <tr key={e.id} data-exemption={e.id}>
                          <th scope="row"><Link href={`/apps/${encodeURIComponent(e.app)}`}>{e.app}</Link>{e.service === '*' ? <span class="muted"> (every service)</span> : ` / ${e.service}`}</th>
                          <td>{e.env}</td>
                          <td><code>{e.key}</code></td>
                          <td class="msg">{e.reason}</td>
                          <td>{e.createdBy} <div class="muted small"><Time ts={e.createdAt} /></div></td>
                          <td><time dateTime={new Date(e.expiresAt).toISOString()}>{new Date(e.expiresAt).toLocaleString()}</time></td>
                          <td><Badge status={e.status === 'active' ? 'ok' : 'none'} label={e.status} /></td>
                          <td>{e.status === 'active' && can('app.admin', { app: e.app, env: e.env }) && (
                            <button class="btn small warn" type="button" disabled={a.busy} aria-label={`Revoke the exemption of ${e.app} ${e.key} in ${e.env}`} onClick={() => void a.run(async () => {
                              await revokeExemption(api(), e.id);
                              d.reload();
                              return `Revoked: ${e.app} ${e.key} in ${e.env} is checked again at its next deploy.`;
                            })}>Revoke</button>
                          )}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </Scroll>
              )}
            </>
          );
        }}
      </Loaded>
      {mine.length > 0 && (
        <form class="card upload" aria-labelledby="exadd-h" onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget as HTMLFormElement);
          const s = (k: string) => String(f.get(k) ?? '').trim();
          void a.run(async () => {
            const r = await addExemption(api(), { app: s('app'), service: s('service') || '*', env: s('env'), key: s('key') as (typeof GUARD_KEYS)[number], reason: s('reason'), expires: s('expires') });
            d.reload();
            return `Exempted ${r.exemption.app}${r.exemption.service === '*' ? '' : `/${r.exemption.service}`} from ${r.exemption.key} in ${r.exemption.env} until ${new Date(r.exemption.expiresAt).toLocaleString()}.`;
          });
        }}>
          <h2 id="exadd-h">Exempt a key</h2>
          <label>App <select name="app" required>{mine.map((x) => <option key={x.name} value={x.name}>{x.name}</option>)}</select></label>
          <label>Service <input name="service" placeholder="* (every service)" /></label>
          <label>Environment <input name="env" required defaultValue="prod" /></label>
          <label>Key <select name="key" required>{GUARD_KEYS.map((k) => <option key={k} value={k}>{k}</option>)}</select></label>
          <label>Reason <input name="reason" required minLength={5} placeholder="why this service needs it (kept, and in the audit log)" /></label>
          <label>Expires in <input name="expires" required defaultValue="7d" placeholder="7d, 12h (at most 90d)" /></label>
          <button class="btn primary" type="submit" disabled={a.busy}>Exempt</button>
        </form>
      )}
    </section>
  );
}

export function Policies() {
  const { path, query } = useLocation();
  const team = query.get('team') ?? '';
  const env = query.get('env') ?? '';
  const history = query.get('history') === '1';
  const teams = useData(() => listTeams(api()), 'policy-teams');
  const d = useData(async () => {
    const [cur, hist] = await Promise.all([
      getPolicies(api(), { ...(team ? { team } : {}), ...(env ? { env } : {}) }),
      history ? getPolicies(api(), { ...(team ? { team } : {}), ...(env ? { env } : {}), history: true }) : Promise.resolve(undefined),
    ]);
    return { cur, hist };
  }, `policies:${team}/${env}/${history}`);
  const here = (l: PolicyLayerView) => l.team === team && l.env === env;
  return (
    <Page title="Guardrails" sub="What containers may take from the host: policy layers and exemptions">
      <form class="filters" aria-label="Scope" onSubmit={(e) => {
        e.preventDefault();
        const f = new FormData(e.currentTarget as HTMLFormElement);
        navigate(withQuery(path, query, { team: String(f.get('team') ?? ''), env: String(f.get('env') ?? '').trim(), history: undefined }));
      }}>
        <label>Team <select name="team" key={`t-${team}`} defaultValue={team}>
          <option value="">any (installation-wide)</option>
          {teams.data?.teams.map((t) => <option key={t.name} value={t.name}>{t.name}</option>)}
        </select></label>
        <label>Environment <input name="env" key={`e-${env}`} defaultValue={env} placeholder="any" size={10} /></label>
        <button class="btn" type="submit">Show</button>
      </form>
      <Loaded d={d} what="policies">
        {({ cur, hist }) => {
          const layer = cur.layers.find(here);
          return (
            <>
              {cur.effective && (
                <Scroll label="Policy that applies">
                  <h2>Policy for {scopeText(cur.effective.team, team || env ? cur.effective.env : '')}</h2>
                  <table aria-label="Policy that applies">
                    <thead><tr><th scope="col">Field</th><th scope="col">Value</th><th scope="col">Set by</th></tr></thead>
                    <tbody>
                      {Object.entries(cur.effective.shown).map(([k, v]) => (
                        <tr key={k} data-field={k}><th scope="row">{fieldLabel(k as GuardField)}</th><td class="msg"><code>{LIST_FIELDS.has(k as GuardField) ? v.replace(/,/g, ', ') : v}</code></td><td class="small nowrap">{cur.effective!.from[k]}</td></tr>
                      ))}
                    </tbody>
                  </table>
                </Scroll>
              )}
              <Scroll label="Stored layers">
                <h2>Stored layers</h2>
                {cur.layers.length === 0 ? <Empty>No layers here: Berth's built-in policy applies.</Empty> : (
                  <table aria-label="Stored layers">
                    <thead><tr><th scope="col">Scope</th><th scope="col">Version</th><th scope="col">Set</th><th scope="col">Fields</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
                    <tbody>
                      {cur.layers.map((l) => (
                        <tr key={l.scope} data-layer={l.scope} class={here(l) ? 'current' : undefined}>
                          <th scope="row">{l.scope}</th>
                          <td>{l.version}</td>
                          <td>{l.setBy} <div class="muted small"><Time ts={l.setAt} /></div></td>
                          <td class="small msg">{Object.entries(describePolicy(l.policy)).map(([k, v]) => <div key={k}><code>{fieldLabel(k as GuardField)}={LIST_FIELDS.has(k as GuardField) ? v.replace(/,/g, ', ') : v}</code></div>)}{Object.keys(l.policy).length === 0 && <span class="muted">(cleared)</span>}</td>
                          <td><div class="row-actions">
                            {!here(l) && <Link class="btn small" href={withQuery(path, new URLSearchParams(), { team: l.team, env: l.env })} aria-label={`Open ${l.scope}`}>Open</Link>}
                            {here(l) && !history && <Link class="btn small" href={withQuery(path, query, { history: '1' })}>History</Link>}
                          </div></td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                )}
              </Scroll>
              {hist && (
                <Scroll label="Versions">
                  <h2>Versions of {scopeText(team, env)}</h2>
                  {hist.layers.length === 0 ? <Empty>Never set.</Empty> : (
                    <table aria-label="Versions">
                      <thead><tr><th scope="col">Version</th><th scope="col">Set</th><th scope="col">Fields</th></tr></thead>
                      <tbody>{[...hist.layers].reverse().map((l) => (
                        <tr key={l.version}><th scope="row">{l.version}</th><td>{l.setBy} <div class="muted small"><Time ts={l.setAt} /></div></td>
                          <td class="small msg"><code>{JSON.stringify(l.policy)}</code></td></tr>
                      ))}</tbody>
                    </table>
                  )}
                </Scroll>
              )}
              {maySet(team, env) && <LayerEditor team={team} env={env} layer={layer} onSaved={d.reload} />}
            </>
          );
        }}
      </Loaded>
      <Exemptions />
    </Page>
  );
}
