/** Alert rules and their state. */
import { api } from '../api.ts';
import { Badge, Empty, Loaded, Page, Time, span, useCoalesced, useData, useEvents } from '../ui.tsx';

export function Alerts() {
  const d = useData(() => api().alerts(), 'alerts');
  useEvents({}, useCoalesced(d.reload, 1000));
  return (
    <Page title="Alerts" sub="Rules and their state; set them with berth alert set">
      <Loaded d={d} what="alerts">
        {({ alerts }) => alerts.length === 0 ? <Empty>No alert rules. Add one with <code>berth alert set NAME --metric restarts --threshold 3</code>.</Empty> : (
          <table>
            <thead><tr><th scope="col">Alert</th><th scope="col">State</th><th scope="col">Rule</th><th scope="col">Scope</th><th scope="col">Value</th><th scope="col">Since</th></tr></thead>
            <tbody>
              {[...alerts].sort((a, b) => Number(b.state === 'firing') - Number(a.state === 'firing') || a.name.localeCompare(b.name)).map((a) => (
                <tr key={a.name}>
                  <th scope="row">{a.name}</th>
                  <td><Badge status={a.state} /></td>
                  <td>{a.rule.metric} &gt; {a.rule.threshold}{a.rule.windowMs ? ` over ${span(a.rule.windowMs)}` : ''}{a.rule.forMs ? ` for ${span(a.rule.forMs)}` : ''}</td>
                  <td>{[a.rule.app, a.rule.env, a.rule.service].filter(Boolean).join('/') || 'everything'}</td>
                  <td>{a.value ?? '-'}</td>
                  <td><Time ts={a.since} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </Page>
  );
}
