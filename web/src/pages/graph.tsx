/** An app's services and what each depends on (Compose depends_on), laid out in layers, each with its health. */
import { api } from '../api.ts';
import type { ServiceView } from '../api.ts';
import { Link } from '../router.tsx';
import { Empty, Loaded, Page, useCoalesced, useData, useEvents } from '../ui.tsx';
import { AppTabs, EnvPicker, useEnv } from './app.tsx';
import { layout } from '../graph-layout.ts';

const W = 180;
const H = 64;
const GX = 90;
const GY = 36;
const TONE: Record<string, string> = { running: 'ok', deploying: 'busy', degraded: 'warn', 'crash-looping': 'bad', failed: 'bad', stopped: 'muted' };

/** A release's spec is opaque in the API document (a service spec): its `dependsOn` names, if any. */
function dependsOn(spec: Record<string, unknown>): string[] {
  const deps = spec.dependsOn;
  return Array.isArray(deps) ? deps.filter((x): x is string => typeof x === 'string') : [];
}

export function Graph({ app }: { app: string }) {
  const d = useData(async () => {
    const status = await api().app(app);
    const specs = await Promise.all(status.services.map((s) => api().release(app, s.release.id).then((r) => dependsOn(r.release.spec), () => [])));
    return status.services.map((s, i) => ({ s, deps: specs[i]! }));
  }, `graph:${app}`);
  const refresh = useCoalesced(d.reload, 500);
  useEvents({ app }, refresh);
  const envs = [...new Set(d.data?.map((x) => x.s.env) ?? [])].sort();
  const env = useEnv(envs);
  return (
    <Page title={`${app}: dependency graph`} sub={<EnvPicker envs={envs} env={env} />}>
      <AppTabs app={app} current="graph" />
      <Loaded d={d} what="the graph">
        {(all) => {
          const items = all.filter((x) => x.s.env === env);
          if (items.length === 0) return <Empty>No services in {env ?? 'this environment'}.</Empty>;
          const pos = layout(items.map((x) => ({ name: x.s.name, deps: x.deps })));
          const at = new Map(pos.map((p) => [p.name, { x: 10 + p.layer * (W + GX), y: 10 + p.row * (H + GY) }]));
          const width = Math.max(...pos.map((p) => p.layer)) * (W + GX) + W + 20;
          const height = Math.max(...pos.map((p) => p.row)) * (H + GY) + H + 20;
          const svc = new Map<string, ServiceView>(items.map((x) => [x.s.name, x.s]));
          return (
            <div class="graph-wrap">
              <svg class="graph" viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img" aria-labelledby="graph-desc">
                <desc id="graph-desc">{items.map((x) => `${x.s.name} (${x.s.status})${x.deps.length ? ` depends on ${x.deps.join(', ')}` : ''}`).join('. ')}</desc>
                <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="edge-head" /></marker></defs>
                {items.flatMap((x) => x.deps.filter((dep) => at.has(dep)).map((dep) => {
                  const a = at.get(x.s.name)!;
                  const b = at.get(dep)!;
                  const x1 = a.x;
                  const y1 = a.y + H / 2;
                  const x2 = b.x + W;
                  const y2 = b.y + H / 2;
                  const mx = (x1 + x2) / 2;
                  return <path key={`${x.s.name}>${dep}`} class="edge" d={`M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`} marker-end="url(#arrow)" />;
                }))}
                {pos.map((p) => {
                  const s = svc.get(p.name)!;
                  const { x, y } = at.get(p.name)!;
                  return (
                    <g key={p.name} class={`node ${TONE[s.status] ?? 'muted'}`} transform={`translate(${x},${y})`}>
                      <rect width={W} height={H} rx={8} />
                      <text x={12} y={24} class="node-name">{p.name}</text>
                      <text x={12} y={46} class="node-sub">{s.status} · {s.healthy}/{s.desired}</text>
                    </g>
                  );
                })}
              </svg>
              <ul class="graph-list">
                {items.map((x) => (
                  <li key={x.s.name}><Link href={`/apps/${encodeURIComponent(app)}?env=${x.s.env}`}>{x.s.name}</Link>: {x.s.status}, {x.s.healthy}/{x.s.desired} healthy{x.deps.length ? `; depends on ${x.deps.join(', ')}` : ''}</li>
                ))}
              </ul>
            </div>
          );
        }}
      </Loaded>
    </Page>
  );
}
