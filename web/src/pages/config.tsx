/** Configuration values and secrets of an app's environment: secrets stay masked until revealed. */
import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { getConfig, listConfig } from '../../../src/client/config-client.ts';
import { Badge, Empty, Loaded, OutcomeNote, Page, Time, useAction, useData } from '../ui.tsx';
import { AppTabs, EnvPicker, useEnv } from './app.tsx';

export function Config({ app }: { app: string }) {
  const appData = useData(() => api().app(app).catch(() => ({ app, services: [] })), `config-app:${app}`);
  const envs = [...new Set(appData.data?.services.map((s) => s.env) ?? [])].sort();
  const env = useEnv(envs.length ? envs : ['prod']);
  const d = useData(() => listConfig(api(), app, env ?? 'prod'), `config:${app}:${env}`);
  const [shown, setShown] = useState<Record<string, string>>({});
  const a = useAction();
  return (
    <Page title={`${app}: configuration`} sub={<EnvPicker envs={envs} env={env} />}>
      <AppTabs app={app} current="config" />
      <OutcomeNote outcome={a.outcome} />
      <Loaded d={d} what="configuration">
        {(c) => c.entries.length === 0 ? <Empty>No configuration for {app} in {env}. Set some with <code>berth config set {app} KEY=value --env {env}</code>.</Empty> : (
          <>
            <p class="muted">Version {c.version}. Secrets are encrypted at rest and masked here; revealing one is a request of its own.</p>
            <table>
              <thead><tr><th scope="col">Key</th><th scope="col">Kind</th><th scope="col">Value</th><th scope="col">Version</th><th scope="col">Changed</th></tr></thead>
              <tbody>
                {c.entries.map((e) => (
                  <tr key={e.key}>
                    <th scope="row"><code>{e.key}</code></th>
                    <td><Badge status={e.kind === 'secret' ? 'pending' : 'none'} label={e.kind} /></td>
                    <td>
                      {e.kind === 'secret' ? (
                        shown[e.key] !== undefined
                          ? <><code class="secret">{shown[e.key]}</code> <button type="button" class="btn small ghost" onClick={() => setShown(({ [e.key]: _, ...rest }) => rest)}>Hide</button></>
                          : <><span role="img" aria-label="hidden secret">••••••••</span> <button type="button" class="btn small" aria-label={`Reveal ${e.key}`} disabled={a.busy} onClick={() => void a.run(async () => {
                            const r = await getConfig(api(), app, env ?? 'prod', e.key, { reveal: true });
                            setShown((s) => ({ ...s, [e.key]: r.entry.value ?? '' }));
                            return `Revealed ${e.key}.`;
                          })}>Reveal</button></>
                      ) : <code>{e.value}</code>}
                    </td>
                    <td>{e.version}</td>
                    <td><Time ts={e.updatedAt} /> by {e.updatedBy}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </Loaded>
    </Page>
  );
}
