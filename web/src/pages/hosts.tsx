/**
 * Hosts (GET /v1/hosts): one-host or Swarm mode; each host's address, pool, labels, state, capacity,
 * reservations and the instances running there. Owners label, drain (and undo) and remove hosts in
 * Swarm mode; the page follows the event stream (host.ready/down/draining/removed, instance changes).
 */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.ts';
import type { InstanceView, ServiceView } from '../api.ts';
import { drainHost, edgeToken, labelHost, listEdgeHosts, listHosts, removeHost } from '../../../src/client/host-client.ts';
import { HOST_LABEL } from '../../../src/core/ports.ts';
import { isOwner } from '../can.ts';
import { Link } from '../router.tsx';
import { Badge, Empty, Loaded, OutcomeNote, Page, Scroll, Time, useAction, useCoalesced, useData, useEvents } from '../ui.tsx';
import { bytes } from './volumes.tsx';

type Host = Awaited<ReturnType<typeof listHosts>>['hosts'][number];
type Placed = { svc: ServiceView; inst: InstanceView };

const STATE_TONE: Record<string, string> = { ready: 'ok', draining: 'pending', down: 'failed' };
const cpus = (nano: number) => `${(nano / 1e9).toFixed(nano % 1e9 === 0 ? 0 : 1)} CPU`;
const pct = (part: number, whole: number) => (whole > 0 ? ` (${Math.round((part / whole) * 100)}%)` : '');

function Labels(props: { host: Host; owner: boolean; run: ReturnType<typeof useAction>['run']; busy: boolean; reload: () => void }) {
  const { host: h } = props;
  const entries = Object.entries(h.labels).sort(([a], [b]) => a.localeCompare(b));
  const [text, setText] = useState('');
  return (
    <div>
      {entries.length === 0 && <span class="muted small">none</span>}
      {entries.map(([k, v]) => (
        <div key={k} class="label-chip">
          <code>{k}={v}</code>
          {props.owner && <button class="btn small ghost" type="button" disabled={props.busy} aria-label={`Remove label ${k} of ${h.name}`} onClick={() => void props.run(async () => {
            await labelHost(api(), h.name, {}, [k]);
            props.reload();
            return `Removed label ${k} of ${h.name}.`;
          })}>×</button>}
        </div>
      ))}
      {props.owner && (
        <form class="inline label-form" aria-label={`Label ${h.name}`} onSubmit={(e) => {
          e.preventDefault();
          const t = text.trim();
          void props.run(async () => {
            const eq = t.indexOf('=');
            if (eq <= 0) throw new Error(`"${t}": write KEY=VALUE, like zone=a or ${HOST_LABEL.pool}=gpu`);
            const r = await labelHost(api(), h.name, { [t.slice(0, eq).trim()]: t.slice(eq + 1).trim() });
            setText('');
            props.reload();
            return `${h.name}: ${t} (pool ${r.host.pool}).`;
          });
        }}>
          <input aria-label={`New label of ${h.name}`} placeholder="key=value" size={14} value={text} onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)} required />
          <button class="btn small" type="submit" disabled={props.busy}>Set</button>
        </form>
      )}
    </div>
  );
}

export function Hosts() {
  const d = useData(async () => {
    const [hosts, apps] = await Promise.all([listHosts(api()), api().apps()]);
    const placed = new Map<string, Placed[]>();
    for (const a of apps.apps) for (const svc of a.services) for (const inst of svc.instances) {
      placed.set(inst.host, [...(placed.get(inst.host) ?? []), { svc, inst }]);
    }
    return { ...hosts, placed };
  }, 'hosts');
  // host.* events (owners see them) and instance changes (anyone, for their apps) both change this page.
  useEvents({}, useCoalesced(d.reload, 1000));
  const owner = isOwner();
  const a = useAction();
  const [confirm, setConfirm] = useState<string>();
  return (
    <Page title="Hosts" sub="Where instances run: address, pool, state, capacity and what is reserved">
      <OutcomeNote outcome={a.outcome} />
      <Loaded d={d} what="hosts">
        {({ mode, hosts, placed }) => (
          <>
            <p class="muted" data-mode={mode}>
              {mode === 'single'
                ? <>One-host mode: Berth runs everything on this engine's host. To add hosts, run <code>berth cluster init ADDRESS</code> on the server, then <code>berth host add</code>.</>
                : <>Cluster mode (Docker Swarm): {hosts.length} host{hosts.length === 1 ? '' : 's'}, {new Set(hosts.map((h) => h.pool)).size} pool(s). Label <code>{HOST_LABEL.pool}</code> puts a host in a pool.</>}
            </p>
            {hosts.length === 0 ? <Empty>No hosts: the engine lists none.</Empty> : (
              <Scroll label="Hosts">
                <table aria-label="Hosts">
                  <thead><tr><th scope="col">Host</th><th scope="col">Address</th><th scope="col">Pool</th><th scope="col">State</th><th scope="col">Capacity</th><th scope="col">Reserved</th>
                    <th scope="col">Instances</th><th scope="col">Labels</th>{owner && mode === 'swarm' && <th scope="col"><span class="sr-only">Actions</span></th>}</tr></thead>
                  <tbody>
                    {hosts.map((h) => {
                      const here = placed.get(h.name) ?? [];
                      return (
                        <tr key={h.id} data-host={h.name} data-state={h.state}>
                          <th scope="row">{h.name}<div class="muted small">{h.role}</div></th>
                          <td><code>{h.address}</code></td>
                          <td><Link href="/pools">{h.pool}</Link></td>
                          <td><Badge status={STATE_TONE[h.state] ?? 'unknown'} label={h.state} />{h.message && <div class="muted small">{h.message}</div>}</td>
                          <td class="nowrap">{cpus(h.capacity.nanoCpus)}<div class="small">{bytes(h.capacity.memoryBytes)}</div></td>
                          <td class="nowrap">{cpus(h.reserved.nanoCpus)}<span class="muted small">{pct(h.reserved.nanoCpus, h.capacity.nanoCpus)}</span>
                            <div class="small">{bytes(h.reserved.memoryBytes)}<span class="muted">{pct(h.reserved.memoryBytes, h.capacity.memoryBytes)}</span></div></td>
                          <td>
                            <span data-instances={h.instances}>{h.instances} container{h.instances === 1 ? '' : 's'}</span>
                            {here.length > 0 && (
                              <details>
                                <summary>{here.length} of your instance{here.length === 1 ? '' : 's'}</summary>
                                <ul class="plain small">
                                  {here.map(({ svc, inst }) => (
                                    <li key={inst.id} data-instance={inst.id}><Link href={`/apps/${encodeURIComponent(svc.app)}?env=${encodeURIComponent(svc.env)}`}>{svc.app}</Link>/{svc.env}/{svc.name} <code>{inst.id}</code> <Badge status={inst.health} /></li>
                                  ))}
                                </ul>
                              </details>
                            )}
                          </td>
                          <td><Labels host={h} owner={owner && mode === 'swarm'} run={a.run} busy={a.busy} reload={d.reload} /></td>
                          {owner && mode === 'swarm' && (
                            <td><div class="row-actions">
                              {h.state === 'draining'
                                ? <button class="btn small" type="button" disabled={a.busy} aria-label={`Undo drain of ${h.name}`} onClick={() => void a.run(async () => {
                                  await drainHost(api(), h.name, false);
                                  d.reload();
                                  return `${h.name} is ready again: new instances may land there.`;
                                })}>Undo drain</button>
                                : h.state === 'ready' && <button class="btn small" type="button" disabled={a.busy} aria-label={`Drain ${h.name}`} onClick={() => void a.run(async () => {
                                  await drainHost(api(), h.name, true);
                                  d.reload();
                                  return `Draining ${h.name}: nothing new lands there, Berth moves its instances away.`;
                                })}>Drain</button>}
                              {confirm === h.name
                                ? <>
                                  <button class="btn small warn" type="button" disabled={a.busy} aria-label={`Confirm removal of ${h.name}`} onClick={() => void a.run(async () => {
                                    setConfirm(undefined);
                                    await removeHost(api(), h.name);
                                    d.reload();
                                    return `Removed ${h.name} from the cluster.`;
                                  })}>Confirm remove</button>
                                  <button class="btn small ghost" type="button" onClick={() => setConfirm(undefined)}>Cancel</button>
                                </>
                                : <button class="btn small warn" type="button" disabled={a.busy} aria-label={`Remove ${h.name}`} onClick={() => setConfirm(h.name)}>Remove…</button>}
                            </div></td>
                          )}
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </Scroll>
            )}
          </>
        )}
      </Loaded>
      {owner && <EdgeHosts />}
    </Page>
  );
}

type EdgeToken = Awaited<ReturnType<typeof edgeToken>>;

/**
 * Edge hosts (GET /v1/edge/hosts, owners): the ingress generation each one's nginx serves and its
 * agent's last contact; a new edge host's token and setup (POST /v1/edge/tokens), shown once.
 */
function EdgeHosts() {
  const d = useData(() => listEdgeHosts(api()), 'edge-hosts');
  // The agents poll: their contact and generation change without an event; a quiet refresh follows them.
  useEffect(() => {
    const t = setInterval(d.reload, 10_000);
    return () => clearInterval(t);
  }, [d.reload]);
  const a = useAction();
  const [made, setMade] = useState<EdgeToken>();
  return (
    <section class="card" aria-labelledby="edge-h">
      <h2 id="edge-h">Edge hosts</h2>
      <p class="muted small">Hosts that run only nginx and the Berth edge agent: they take the routes' traffic and follow the control host's ingress config.</p>
      <Loaded d={d} what="edge hosts">
        {({ generation, hosts }) => hosts.length === 0
          ? <Empty>No edge host has polled yet (this server serves generation {generation}). Make a token below and start the agent on the host.</Empty>
          : (
            <table aria-label="Edge hosts">
              <thead><tr><th scope="col">Edge host</th><th scope="col">Address</th><th scope="col">Serves</th><th scope="col">Last contact</th></tr></thead>
              <tbody>
                {hosts.map((e) => (
                  <tr key={e.host} data-edge={e.host} data-in-sync={String(e.inSync)}>
                    <th scope="row">{e.host}</th>
                    <td><code>{e.address}</code></td>
                    <td><Badge status={e.inSync ? 'ok' : 'pending'} label={e.inSync ? 'in sync' : 'behind'} /> generation {e.applied ?? 'none'} of {generation}
                      {e.error && <div class="muted small">{e.error}</div>}</td>
                    <td><Time ts={e.lastContact} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
      </Loaded>
      <OutcomeNote outcome={a.outcome} />
      <form class="inline" aria-label="Add an edge host" onSubmit={(e) => {
        e.preventDefault();
        const f = new FormData(e.currentTarget as HTMLFormElement);
        const host = String(f.get('host') ?? '').trim();
        const portText = String(f.get('port') ?? '').trim();
        void a.run(async () => {
          const port = portText ? Number(portText) : undefined;
          if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535)) throw new Error(`port: "${portText}" is not a port (1-65535)`);
          const r = await edgeToken(api(), host, port);
          setMade(r);
          return `Token for edge host ${r.host} made: it is shown once below.`;
        });
      }}>
        <label>Edge host name <input name="host" required size={16} placeholder="edge1" /></label>
        <label>Port <input name="port" size={5} placeholder="80" inputMode="numeric" /></label>
        <button class="btn" type="submit" disabled={a.busy}>Make token</button>
      </form>
      {made && (
        <div class="secret-once" data-edge-token={made.host}>
          <p><strong>Token of {made.host}</strong> (a credential for its edge config only; shown once):</p>
          <pre class="cmd" data-edge-token-secret>{made.token}</pre>
          <ol class="small">{made.steps.map((step, i) => <li key={i}>{step}</li>)}</ol>
          <details><summary>systemd unit</summary><pre><code>{made.unit}</code></pre></details>
          <button class="btn small ghost" type="button" onClick={() => setMade(undefined)}>Done: hide the token</button>
        </div>
      )}
    </section>
  );
}
