/** Named volumes of apps: size, who mounts them, and the stateful services that keep to them (stop-first, one host). */
import { api } from '../api.ts';
import type { ServiceView } from '../api.ts';
import { listVolumes } from '../../../src/client/volume-client.ts';
import { Link } from '../router.tsx';
import { Badge, Empty, Loaded, Page, useCoalesced, useData, useEvents, Scroll } from '../ui.tsx';
import { AppTabs } from './app.tsx';

export function bytes(n: number | null): string {
  if (n === null) return 'unknown';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function Volumes(props: { app?: string }) {
  const d = useData(async () => {
    const [v, apps] = await Promise.all([listVolumes(api(), props.app ? { app: props.app } : {}), props.app ? api().app(props.app).then((a) => a.services) : api().apps().then((a) => a.apps.flatMap((x) => x.services))]);
    return { volumes: v.volumes, services: apps };
  }, `volumes:${props.app ?? ''}`);
  useEvents(props.app ? { app: props.app } : {}, useCoalesced(d.reload, 1000));
  const svc = (s: { app: string; env: string; service: string }, all: ServiceView[]) => all.find((x) => x.app === s.app && x.env === s.env && x.name === s.service);
  return (
    <Page title={props.app ? `${props.app}: volumes` : 'Volumes'} sub="Named volumes, their size and the services that keep data in them">
      {props.app && <AppTabs app={props.app} current="volumes" />}
      <Loaded d={d} what="volumes">
        {({ volumes, services }) => volumes.length === 0 ? <Empty>No named volumes{props.app ? ` in ${props.app}` : ''}: a service keeps data in one with <code>volumes: [data:/var/lib/data]</code>.</Empty> : (
          <Scroll label="Volumes">
            <table aria-label="Volumes">
              <thead><tr><th scope="col">Volume</th>{!props.app && <th scope="col">App</th>}<th scope="col">Env</th><th scope="col">Size</th><th scope="col">Mounted by</th><th scope="col">Pinned</th></tr></thead>
              <tbody>
                {volumes.map((v) => (
                  <tr key={v.volume} data-volume={v.name}>
                    <th scope="row">{v.name} <div class="muted small"><code>{v.volume}</code></div></th>
                    {!props.app && <td><Link href={`/apps/${encodeURIComponent(v.app)}/volumes`}>{v.app}</Link></td>}
                    <td>{v.env}</td>
                    <td>{v.exists ? bytes(v.sizeBytes) : <Badge status="none" label="not made yet" />}</td>
                    <td>{v.services.length === 0 ? <span class="muted">no service</span> : v.services.map((s) => (
                      <div key={s.service}>{s.service} <span class="muted small">at {s.target}{s.readOnly ? ' (read-only)' : ''}</span></div>
                    ))}</td>
                    <td>{v.services.map((s) => {
                      const st = svc({ app: v.app, env: v.env, service: s.service }, services);
                      const hosts = [...new Set(st?.instances.map((i) => i.host) ?? [])];
                      return <div key={s.service} class="small">{s.service}: {st ? <>{st.strategy}{hosts.length ? ` on ${hosts.join(', ')}` : ''}{st.strategyReason && <div class="muted">{st.strategyReason}</div>}</> : 'not running'}</div>;
                    })}</td>
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
