/** An app: its environments, services and instances, with the actions an operator takes on them. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from '../api.ts';
import type { InstanceView, ReleaseView, ServiceView } from '../api.ts';
import { listHosts } from '../../../src/client/host-client.ts';
import { Link, navigate, useLocation, withQuery } from '../router.tsx';
import { Badge, Empty, Loaded, OutcomeNote, Page, Time, followWhileMounted, shortId, span, useAction, useCoalesced, useData, useEvents } from '../ui.tsx';
import { useCan, type Can } from '../can.ts';

const TABS: [string, string][] = [['', 'Services'], ['releases', 'Releases'], ['logs', 'Logs'], ['metrics', 'Metrics'], ['graph', 'Graph'], ['config', 'Config'], ['events', 'Events'], ['volumes', 'Volumes']];

/** The sub-pages of an app, keeping the chosen environment. */
export function AppTabs(props: { app: string; current: string }) {
  const { query } = useLocation();
  const env = query.get('env');
  return (
    <nav class="tabs" aria-label={`${props.app} pages`}>
      {TABS.map(([t, label]) => (
        <Link key={t} href={`/apps/${encodeURIComponent(props.app)}${t ? `/${t}` : ''}${env ? `?env=${encodeURIComponent(env)}` : ''}`}
          aria-current={props.current === t ? 'page' : undefined}>{label}</Link>
      ))}
    </nav>
  );
}

/** The chosen environment: ?env=, else prod if the app runs there, else its first. */
export function useEnv(envs: string[] | undefined): string | undefined {
  const { query } = useLocation();
  const q = query.get('env');
  if (q) return q;
  if (!envs?.length) return undefined;
  return envs.includes('prod') ? 'prod' : envs[0];
}

export function EnvPicker(props: { envs: string[]; env: string | undefined }) {
  const { path, query } = useLocation();
  if (props.envs.length <= 1) return props.env ? <span class="env-one">Environment <strong>{props.env}</strong></span> : null;
  return (
    <div class="envs" role="group" aria-label="Environment">
      {props.envs.map((e) => (
        <button key={e} type="button" class={`btn small ${e === props.env ? 'on' : ''}`} aria-pressed={e === props.env}
          onClick={() => navigate(withQuery(path, query, { env: e }))}>{e}</button>
      ))}
    </div>
  );
}

/** The app's services as GET /v1/apps/APP/stream sends them on each change, reconnecting with backoff; undefined until the first. */
function useAppState(app: string): ServiceView[] | undefined {
  const [state, setState] = useState<{ app: string; services: ServiceView[] }>();
  useEffect(() => followWhileMounted(async (signal, connected) => {
    await api().followApp(app, {}, { state: (st) => {
      connected();
      setState({ app, services: st.services });
    } }, signal);
  }), [app]);
  return state?.app === app ? state.services : undefined;
}

export function AppPage({ app }: { app: string }) {
  const d = useData(async () => {
    const [status, releases] = await Promise.all([api().app(app), api().releases(app)]);
    return { services: status.services, releases: releases.releases };
  }, `app:${app}`);
  const refresh = useCoalesced(d.reload, 300);
  useEvents({ app }, refresh);
  // The app's stream sends its services on every change of their records (an instance that goes, too).
  const live = useAppState(app);
  const all = live ?? d.data?.services;
  const envs = [...new Set(all?.map((s) => s.env) ?? [])].sort();
  const env = useEnv(envs);
  const services = all?.filter((s) => s.env === env) ?? [];
  const can = useCan();
  return (
    <Page title={app} sub={<EnvPicker envs={envs} env={env} />}>
      <AppTabs app={app} current="" />
      <Loaded d={d} what={`app ${app}`}>
        {(data) => services.length === 0
          ? <Empty>{app} runs nothing{env ? ` in ${env}` : ''}. Deploy it with <code>berth deploy -f compose.yaml --env {env ?? 'prod'}</code>.</Empty>
          : <>{services.map((s) => <ServiceCard key={s.name} s={s} can={can} releases={data.releases.filter((r) => r.env === s.env && r.service === s.name)} changed={refresh} />)}</>}
      </Loaded>
    </Page>
  );
}

function ServiceCard({ s, releases, changed, can }: { s: ServiceView; releases: ReleaseView[]; changed: () => void; can: Can }) {
  const operate = can('app.operate', { app: s.app, env: s.env });
  const deploy = can('app.deploy', { app: s.app, env: s.env });
  const a = useAction();
  const [replicas, setReplicas] = useState(String(s.desired));
  const [confirm, setConfirm] = useState<string>();
  const [target, setTarget] = useState('');
  const id = `svc-${s.env}-${s.name}`;
  const c = api();
  const act = (fn: () => Promise<string>) => a.run(async () => {
    setConfirm(undefined);
    const text = await fn();
    changed();
    return text;
  });
  const others = releases.filter((r) => !r.current).sort((x, y) => y.seq - x.seq);
  return (
    <section class="card service" aria-labelledby={id}>
      <header class="svc-head">
        <h2 id={id}>{s.name}</h2>
        <Badge status={s.status} />
        <span class="muted">{s.healthy}/{s.desired} healthy · release #{s.release.seq} <Badge status={s.release.status} /> · {s.strategy}</span>
      </header>
      {s.detail && s.status !== 'running' && <p class="detail">{s.detail}</p>}
      <dl class="facts">
        <div><dt>Image</dt><dd><code>{s.release.image}</code> <span class="muted">{shortId(s.release.imageId)}</span></dd></div>
        <div><dt>Routes</dt><dd>{s.routes.length ? s.routes.map((r) => `${r.host ?? '*'}${r.path}`).join(', ') : 'none'}</dd></div>
        <div><dt>Restarts</dt><dd>{s.failures}{s.lastCrash ? <> · last crash <Time ts={s.lastCrash.at} /></> : ''}</dd></div>
        {/* Many hosts: a stateful service stays on its volumes' host (absent on one host: nowhere to move it). */}
        {s.pinned && <div data-pinned={s.pinned.host}><dt>Placement</dt><dd><Link href="/hosts">{s.pinned.text}</Link></dd></div>}
      </dl>
      {operate && <div class="actions" role="group" aria-label={`Actions on ${s.name}`}>
        <form class="inline" onSubmit={(e) => {
          e.preventDefault();
          void act(async () => {
            const r = await c.scale(s.app, s.env, s.name, Number(replicas));
            return `Scaling ${r.service} from ${r.from} to ${r.to}.`;
          });
        }}>
          <label>Replicas <input type="number" min={0} max={100} required value={replicas} onInput={(e) => setReplicas((e.target as HTMLInputElement).value)} size={4} /></label>
          <button class="btn" type="submit" disabled={a.busy}>Scale</button>
        </form>
        <button class="btn" type="button" disabled={a.busy} onClick={() => void act(async () => {
          await c.reload(s.app, s.env, s.name);
          return `Asked ${s.name} to reload.`;
        })}>Reload</button>
        {confirm === 'restart'
          ? <button class="btn warn" type="button" disabled={a.busy} onClick={() => void act(async () => {
            const r = await c.restart(s.app, s.env, s.name);
            return `Restarting: ${r.restarts.map((x) => `${x.service} → release #${x.release}`).join(', ')}.`;
          })}>Confirm restart</button>
          : <button class="btn" type="button" disabled={a.busy} onClick={() => setConfirm('restart')}>Restart…</button>}
        {deploy && (confirm === 'rollback'
          ? <button class="btn warn" type="button" disabled={a.busy} onClick={() => void act(async () => {
            const r = await c.rollback(s.app, { env: s.env, service: s.name });
            return `Rolling back: ${r.rollbacks.map((x) => `${x.service} → release #${x.to}`).join(', ')}.`;
          })}>Confirm roll back</button>
          : <button class="btn" type="button" disabled={a.busy} onClick={() => setConfirm('rollback')}>Roll back…</button>)}
        {deploy && others.length > 0 && (
          <form class="inline" onSubmit={(e) => {
            e.preventDefault();
            if (!target) return;
            void act(async () => {
              const r = await c.rollback(s.app, { env: s.env, service: s.name, to: target });
              return `Deploying release #${r.rollbacks[0]?.to ?? target} of ${s.name}.`;
            });
          }}>
            <label>Release <select value={target} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>
              <option value="">choose…</option>
              {others.map((r) => <option key={r.id} value={r.id}>#{r.seq} {r.status} ({shortId(r.imageId, 10)})</option>)}
            </select></label>
            <button class="btn" type="submit" disabled={a.busy || !target}>Deploy release</button>
          </form>
        )}
        {confirm && <button class="btn ghost" type="button" onClick={() => setConfirm(undefined)}>Cancel</button>}
      </div>}
      {operate && s.pinned && <Failover s={s} pinned={s.pinned} act={act} busy={a.busy} />}
      <OutcomeNote outcome={a.outcome} />
      <Instances s={s} restart={operate ? (id) => act(async () => {
        const r = await c.restartInstance(s.app, s.env, id);
        return `Restarting ${r.instance}: a new instance of ${r.service} replaces it.`;
      }) : undefined} busy={a.busy} />
    </section>
  );
}

/**
 * The explicit failover of a pinned service (POST /v1/apps/APP/failover, `berth failover`): Berth
 * never moves it on its own. To a ready host; while its
 * host is up the API refuses (its volumes would start empty elsewhere) and says so; the page then
 * offers the forced move, named for what it does.
 */
function Failover({ s, pinned, act, busy }: { s: ServiceView; pinned: { host: string }; act: (fn: () => Promise<string>) => Promise<void>; busy: boolean }) {
  const hosts = useData(() => listHosts(api()), 'failover-hosts');
  const [to, setTo] = useState('');
  const [force, setForce] = useState<string>();
  const ready = hosts.data?.hosts.filter((h) => h.state === 'ready') ?? [];
  const move = (target: string, forced: boolean) => act(async () => {
    setForce(undefined);
    try {
      const r = await api().failover(s.app, s.env, s.name, target, forced);
      return `Moving ${r.service} from ${r.from || 'nowhere'} to ${r.to}: volume${r.volumes.length === 1 ? '' : 's'} ${r.volumes.join(', ')} start${r.volumes.length === 1 ? 's' : ''} empty there.`;
    } catch (err) {
      // The refusal of a move off a host that is up: shown as it is, and the forced move offered.
      if (!forced && err instanceof ApiError && err.status === 409 && /force/.test(err.message)) setForce(target);
      throw err;
    }
  });
  return (
    <div class="actions" role="group" aria-label={`Failover of ${s.name}`}>
      <form class="inline" onSubmit={(e) => {
        e.preventDefault();
        if (to) void move(to, false);
      }}>
        <label>Move to host <select value={to} onChange={(e) => setTo((e.target as HTMLSelectElement).value)}>
          <option value="">choose…</option>
          {ready.map((h) => <option key={h.id} value={h.name}>{h.name}{h.name === pinned.host ? ' (pinned here)' : ''} · {h.pool}</option>)}
        </select></label>
        <button class="btn" type="submit" disabled={busy || !to}>Fail over</button>
      </form>
      {force && <>
        <button class="btn warn" type="button" disabled={busy} onClick={() => void move(force, true)}>Move to {force} anyway: its volumes start empty</button>
        <button class="btn ghost" type="button" onClick={() => setForce(undefined)}>Cancel</button>
      </>}
    </div>
  );
}

function Instances({ s, restart, busy }: { s: ServiceView; restart: ((id: string) => Promise<void>) | undefined; busy: boolean }) {
  const [confirm, setConfirm] = useState<string>();
  if (s.instances.length === 0) return <Empty>No instances{s.desired === 0 ? ' (scaled to 0)' : ' yet'}.</Empty>;
  const now = Date.now();
  return (
    <table class="instances" aria-label={`Instances of ${s.name}`}>
      <thead><tr><th scope="col">Instance</th><th scope="col">State</th><th scope="col">Health</th><th scope="col">Host</th><th scope="col">Address</th><th scope="col">Uptime</th><th scope="col">Release</th><th scope="col"><span class="sr-only">Links and actions</span></th></tr></thead>
      <tbody>
        {s.instances.map((i: InstanceView) => (
          <tr key={i.id} data-instance={i.id}>
            <th scope="row"><code>{i.id}</code></th>
            <td><Badge status={i.state} /></td>
            <td><Badge status={i.health} />{i.check && !i.check.ok && <div class="muted small">{i.check.text}</div>}{i.reason && <div class="muted small">{i.reason}</div>}</td>
            <td><Link href="/hosts" title={`${i.host}: see its pool, state and capacity`}>{i.host}</Link></td>
            <td><code>{i.address}:{i.port}</code></td>
            <td>{i.startedAt ? span(now - i.startedAt) : '-'}</td>
            <td>#{i.release}</td>
            <td><div class="row-actions">
              <Link href={`/apps/${encodeURIComponent(s.app)}/logs?env=${s.env}&service=${s.name}&instance=${i.id}`}>logs</Link>
              {restart && i.state === 'running' && (confirm === i.id
                ? <button class="btn small warn" type="button" disabled={busy} onClick={() => {
                  setConfirm(undefined);
                  void restart(i.id);
                }}>Confirm restart of {i.id}</button>
                : <button class="btn small" type="button" disabled={busy} aria-label={`Restart instance ${i.id}`} onClick={() => setConfirm(i.id)}>Restart</button>)}
            </div></td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
