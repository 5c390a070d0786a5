/** People & teams: users and their grants, teams and their apps, API tokens (a new token's secret is shown once). */
import { useState } from 'preact/hooks';
import { api, knownSession } from '../api.ts';
import {
  addGrant, addTeam, createToken, listGrants, listTeams, listTokens, listUsers, removeGrant, revokeToken, type GrantRecordView, type Role, type Scope,
} from '../../../src/client/auth-client.ts';
import { ROLES } from '../../../src/core/auth.ts';
import { isOwner } from '../can.ts';
import { Badge, Empty, Loaded, OutcomeNote, Page, Time, useAction, useData } from '../ui.tsx';

const where = (g: { team: string; app: string; env: string }) => [g.team, g.app, g.env].join('/');

export function People() {
  const owner = isOwner();
  return (
    <Page title="People & teams" sub="Who may do what: users, teams, grants and API tokens">
      <Tokens />
      <Teams owner={owner} />
      {owner ? <Users /> : null}
      <Grants />
    </Page>
  );
}

/** Role, team, app and environment fields of a scope. */
function ScopeFields() {
  return (
    <>
      <label>Role <select name="role" required>{ROLES.map((r) => <option key={r} value={r}>{r}</option>)}</select></label>
      <label>Team <input name="team" required size={10} placeholder="web" /></label>
      <label>App <input name="app" size={10} placeholder="* (all)" /></label>
      <label>Env <input name="env" size={8} placeholder="* (all)" /></label>
    </>
  );
}

function scopeOf(f: FormData): Scope {
  const s = (k: string) => String(f.get(k) ?? '').trim();
  return { role: s('role') as Role, team: s('team'), ...(s('app') ? { app: s('app') } : {}), ...(s('env') ? { env: s('env') } : {}) };
}

function Tokens() {
  const d = useData(() => listTokens(api()), 'tokens');
  const a = useAction();
  const [secret, setSecret] = useState<{ name: string; token: string }>();
  const now = Date.now();
  return (
    <section class="card" aria-labelledby="tokens-h">
      <h2 id="tokens-h">API tokens</h2>
      <p class="muted">A token carries roles you hold (capped by yours) and expires. Its secret is shown once, when it is made.</p>
      <form class="actions" aria-label="Create a token" onSubmit={(e) => {
        e.preventDefault();
        const f = new FormData(e.currentTarget as HTMLFormElement);
        const name = String(f.get('name') ?? '').trim();
        void a.run(async () => {
          const r = await createToken(api(), name, [scopeOf(f)], String(f.get('expires') ?? '') || undefined);
          setSecret({ name: r.name, token: r.token });
          d.reload();
          return `Token ${r.name} made (${r.id}).`;
        });
      }}>
        <label>Name <input name="name" required size={14} placeholder="ci deploys" /></label>
        <ScopeFields />
        <label>Expires in <select name="expires"><option value="30d">30 days</option><option value="90d">90 days</option><option value="365d">365 days</option><option value="1d">1 day</option></select></label>
        <button class="btn primary" type="submit" disabled={a.busy}>Create token</button>
      </form>
      <OutcomeNote outcome={a.outcome} />
      {secret && (
        <div class="secret-once" role="status">
          <p><strong>Copy the secret of {secret.name} now:</strong> it is not shown again.</p>
          <pre class="cmd" data-token-secret>{secret.token}</pre>
          <button class="btn small" type="button" onClick={() => setSecret(undefined)}>Done, hide it</button>
        </div>
      )}
      <Loaded d={d} what="tokens">
        {({ tokens }) => tokens.length === 0 ? <Empty>No API tokens.</Empty> : (
          <table aria-label="API tokens">
            <thead><tr><th scope="col">Token</th><th scope="col">Grants</th><th scope="col">By</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col">State</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {tokens.map((t) => {
                const state = t.revokedAt ? 'revoked' : t.expiresAt <= now ? 'expired' : 'active';
                return (
                  <tr key={t.id} data-token={t.name}>
                    <th scope="row">{t.name} <span class="muted small">{t.id}</span></th>
                    <td>{t.grants.map((g) => `${g.role}:${where(g)}`).join(', ')}</td>
                    <td>{t.createdBy}</td>
                    <td><time dateTime={new Date(t.expiresAt).toISOString()}>{new Date(t.expiresAt).toLocaleDateString()}</time></td>
                    <td>{t.lastUsedAt ? <Time ts={t.lastUsedAt} /> : 'never'}</td>
                    <td><Badge status={state === 'active' ? 'ok' : 'stopped'} label={state} /></td>
                    <td>{state === 'active' && <button class="btn small warn" type="button" disabled={a.busy} aria-label={`Revoke ${t.name}`} onClick={() => void a.run(async () => {
                      await revokeToken(api(), t.id);
                      d.reload();
                      return `Token ${t.name} revoked: it no longer works.`;
                    })}>Revoke</button>}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}

function Teams(props: { owner: boolean }) {
  const d = useData(() => listTeams(api()), 'teams');
  const a = useAction();
  return (
    <section class="card" aria-labelledby="teams-h">
      <h2 id="teams-h">Teams</h2>
      {props.owner && (
        <form class="actions" aria-label="Make a team" onSubmit={(e) => {
          e.preventDefault();
          const name = String(new FormData(e.currentTarget as HTMLFormElement).get('team') ?? '').trim();
          void a.run(async () => {
            await addTeam(api(), name);
            d.reload();
            return `Team ${name} made. Give it apps with berth team assign ${name} APP.`;
          });
        }}>
          <label>New team <input name="team" required size={14} /></label>
          <button class="btn" type="submit" disabled={a.busy}>Make team</button>
        </form>
      )}
      <OutcomeNote outcome={a.outcome} />
      <Loaded d={d} what="teams">
        {({ teams }) => teams.length === 0 ? <Empty>No teams{props.owner ? '' : ' you have a role in'}.</Empty> : (
          <table aria-label="Teams">
            <thead><tr><th scope="col">Team</th><th scope="col">Apps</th><th scope="col">Made</th></tr></thead>
            <tbody>{teams.map((t) => <tr key={t.name}><th scope="row">{t.name}</th><td>{t.apps.join(', ') || <span class="muted">none</span>}</td><td><Time ts={t.createdAt} /> by {t.createdBy}</td></tr>)}</tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}

function Users() {
  const d = useData(() => listUsers(api()), 'users');
  return (
    <section class="card" aria-labelledby="users-h">
      <h2 id="users-h">Users</h2>
      <Loaded d={d} what="users">
        {({ users }) => users.length === 0 ? <Empty>No users yet: add one with <code>berth user add NAME</code>.</Empty> : (
          <table aria-label="Users">
            <thead><tr><th scope="col">User</th><th scope="col">Roles</th><th scope="col">Added</th></tr></thead>
            <tbody>{users.map((u) => (
              <tr key={u.name}><th scope="row">{u.name}</th><td>{u.grants.map((g) => `${g.role}:${where(g)}`).join(', ') || <span class="muted">no role yet</span>}</td><td><Time ts={u.createdAt} /> by {u.createdBy}</td></tr>
            ))}</tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}

function Grants() {
  const d = useData(() => listGrants(api()), 'grants');
  const a = useAction();
  const who = knownSession();
  // Owners and team admins give roles (within what they hold); the API refuses the rest with its reason.
  const mayGive = !!who?.grants.some((g) => g.role === 'owner' || g.role === 'admin');
  const label = (g: GrantRecordView) => ('user' in g ? g.user : `token ${g.token}`);
  return (
    <section class="card" aria-labelledby="grants-h">
      <h2 id="grants-h">Grants</h2>
      {mayGive && (
        <form class="actions" aria-label="Give a role" onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget as HTMLFormElement);
          const user = String(f.get('user') ?? '').trim();
          void a.run(async () => {
            const r = await addGrant(api(), user, scopeOf(f));
            d.reload();
            return `${user} is now ${r.grant.role} of ${where(r.grant)}.`;
          });
        }}>
          <label>User <input name="user" required size={10} /></label>
          <ScopeFields />
          <button class="btn" type="submit" disabled={a.busy}>Give role</button>
        </form>
      )}
      <OutcomeNote outcome={a.outcome} />
      <Loaded d={d} what="grants">
        {({ grants }) => grants.length === 0 ? <Empty>No grants you may see.</Empty> : (
          <table aria-label="Grants">
            <thead><tr><th scope="col">Who</th><th scope="col">Role</th><th scope="col">Team/app/env</th><th scope="col">By</th>{mayGive && <th scope="col"><span class="sr-only">Actions</span></th>}</tr></thead>
            <tbody>{grants.map((g) => (
              <tr key={g.id}>
                <th scope="row">{label(g)}</th><td>{g.role}</td><td>{where(g)}</td><td>{g.createdBy}</td>
                {mayGive && <td><button class="btn small" type="button" disabled={a.busy} aria-label={`Take ${g.role} of ${where(g)} from ${label(g)}`} onClick={() => void a.run(async () => {
                  await removeGrant(api(), g.id);
                  d.reload();
                  return `Took ${g.role} of ${where(g)} from ${label(g)}.`;
                })}>Remove</button></td>}
              </tr>
            ))}</tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}
